r"""C2: RNN gradient flow -- does the expected slope predict the per-step gradient gain?

The claim (C2): in a vanilla RNN :math:`h_t = f(W h_{t-1} + U x_t + b)` the gradient
travelling back one step is multiplied by about :math:`\|W\|_2\,\mathbb E[f'(z)]`; for
:math:`z \sim \mathcal N(0, 1)` ReLU gives 0.5 and ELU (:math:`\alpha = 1`) 0.76158,
closer to 1, so gradients travel further without exploding. With :math:`W = g Q` (``Q``
orthogonal) the mean-field gain of the gradient *norm* is :math:`g\sqrt{\mathbb E[f'^2]}`
(:math:`\ge g\,\mathbb E[f']`, Jensen; ReLU 0.707). Which one fits is measured.

Protocol, per seed, on MNIST's 10,000 test images split 60/20/20 by seed, one row per
step. (1) *Probe* (:func:`elulab.diagnostics.gain_probe`) on ``probe_batch`` sequences of
``images_per_sequence`` images, the same ``Q``, ``U`` and sequences for every ``g`` and
activation: the measured gain against :math:`g\,\mathbb E[f']`, :math:`g\sqrt{\mathbb
E[f'^2]}` (under :math:`\mathcal N(0,1)`, a fitted Gaussian per step, and empirical). (2)
*Task*: a :class:`elulab.nn.VanillaRNN` per activation (Adam, no clipping) learns "which
digit came first" (a target's 28 rows, then ``delay`` rows of others): accuracy, largest
gradient norm, explosion, the probe on the trained weights. See the doc page.

Verdict at ``verdict_gain`` (t-intervals, Bonferroni over 6 checks): the effect
:math:`\log\hat\gamma_{\mathrm{ELU}} - \log\hat\gamma_{\mathrm{ReLU}}` above 0 and above
``min_log_gain_gap`` (only the first: "supported (small)"); the claim's
:math:`\|W\|_2\,\mathbb E[f']` (fitted) within ``prediction_tolerance`` (log) of the
measured gain, for ReLU and for ELU; no ELU training run exploding. An effect not above
0 gives its status; above 0 with a formula or explosion failing, "mixed". ELU's gain
below 1 at g = 1 is not checked (analytic for alpha <= 1, f' <= 1).

References: Clevert, Unterthiner and Hochreiter (2015), ELUs, arXiv:1511.07289; Pascanu,
Mikolov and Bengio (2013), arXiv:1211.5063; Schoenholz et al. (2017), arXiv:1611.01232.

Example:
    >>> from elulab.experiments import get_experiment
    >>> get_experiment("rnn_gradient").resolve_config("quick", {"gains": "1.0"}).gains
    (1.0,)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import load_mnist, row_sequences, split_indices
from ..diagnostics import GainProbe, gain_probe
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.verdicts import Check, Verdict, check, key, per_seed, seed_mean, within
from ..nn import VanillaRNN, orthogonal
from ..train import fit

__all__ = ["Config", "RNNGradientFlow"]

_POS = {"gt": 0.0, "lt": math.inf}  # a positive finite number
_ACTS = ("relu", "tanh", "elu", "linear")  # allowed; linear: the known truth (gain = g)
_KINDS = ("rms_fit", "slope_fit", "slope_n01")  # predictions in figures; [:2] also as curves
_XLABEL, _YLABEL = "time lag T - t (steps)", "||v^T dh_T/dh_t|| (geometric mean over sequences)"
_CAPTION_LAG = (  # of the figures
    "Gradient norm against lag on MNIST rows (solid: measured, mean and range over seeds; "
    "dashed: g sqrt(E[f'^2]), dotted: g E[f'] (the claim), both with the fitted Gaussian). "
)
_CAPTION_SCATTER = (
    "Measured against predicted per-step gain, per activation, prediction and ||W||_2 in {} "
    "(mean over seeds); on the black line the prediction is exact. "
)
_GAP_WHY = (  # fixed before the new rule's first results
    "smallest meaningful ELU - ReLU log gain per step: about ln 2 / 28, twice the "
    "gradient reaching back across one 28-row image"
)
_TRAINED = ("spectral_norm", "measured_gain", "pred_slope_fit", "pred_rms_fit")
_FITS = ("logratio_slope_fit", "logratio_rms_fit")
_HEADS = {  # the verdict's first sentence, by status
    "supported": "ELU carries gradients further than ReLU without exploding, as ||W|| E[f'] says.",
    "mixed": "ELU carries gradients further than ReLU, but not all the claim's conditions hold.",
    "not supported": "ELU does not carry gradients further than ReLU.",
    "inconclusive": "The seeds do not settle whether ELU carries gradients further than ReLU.",
}


@dataclass(frozen=True)
class Config:
    """Settings of the RNN gradient-flow experiment (see the module docstring)."""

    seeds: int = param(3, "independent seeds", ge=1)
    activations: tuple[str, ...] = param(_ACTS[:3], "activations run", choices=_ACTS, nonempty=True)
    elu_alpha: float = param(1.0, "the ELU's alpha", **_POS)
    gains: tuple[float, ...] = param((1.0, 1.25, 1.5), "probe's g (W = g Q)", nonempty=True, **_POS)
    verdict_gain: float = param(1.0, "the g at which ELU and ReLU are compared (one of gains)")
    hidden: int = param(128, "hidden units of the probed RNN", ge=1)
    images_per_sequence: int = param(3, "images whose rows make a probe sequence (28 each)", ge=1)
    probe_batch: int = param(128, "probe sequences", ge=2)
    input_var: float = param(0.5, "variance of one unit of U x_t for a standardised row", **_POS)
    train_steps: int = param(300, "Adam steps of the long-range task (0 skips it)", ge=0)
    train_hidden: int = param(64, "hidden units of the trained RNN", ge=1)
    train_gain: float = param(1.0, "spectral norm of the trained RNN's initial W", **_POS)
    delay: int = param(0, "rows of other images after the target in the task", ge=0)
    batch_size: int = param(64, "minibatch size of the task", ge=1)
    lr: float = param(2e-3, "Adam learning rate", **_POS)
    eval_size: int = param(1000, "test sequences for the task's accuracy", ge=1)
    explode_threshold: float = param(1000.0, "a gradient norm above this is an explosion", **_POS)
    prediction_tolerance: float = param(0.1, "largest |log(measured/predicted)|: 'about'", **_POS)
    min_log_gain_gap: float = param(0.025, _GAP_WHY, ge=0.0, lt=math.inf)

    def validate(self) -> None:
        if self.verdict_gain not in self.gains:
            raise ValueError(f"verdict_gain {self.verdict_gain} must be one of gains {self.gains}")
        if len(set(self.activations)) != len(self.activations):
            raise ValueError(f"activations must be distinct, got {self.activations}")

    def act_kw(self, act: str) -> dict[str, Any]:
        """``activation=`` and its parameters for ``act`` (linear: leaky ReLU of slope 1, f = x)."""
        if act == "linear":
            return {"activation": "leaky_relu", "negative_slope": 1.0}
        return {"activation": act, **({"alpha": self.elu_alpha} if act == "elu" else {})}


def _cell(v: float) -> float | None:  # JSON-able: None where unavailable
    return float(v) if math.isfinite(v) else None


def _train(config: Config, act: str, rows, labels, train, test, seed: int):
    """Train on the delayed first-digit task; returns (numbers, trained model)."""
    gen = torch.Generator().manual_seed(seed * 1009 + 17)
    kw = {"gain": config.train_gain, "input_var": config.input_var, "generator": gen}
    model = VanillaRNN(28, config.train_hidden, 10, **kw, **config.act_kw(act))
    norms, pool, steps = [0.0], torch.from_numpy(train), range(config.train_steps)
    idxs = (pool[torch.randint(len(pool), (config.batch_size,), generator=gen)] for _ in steps)
    draws = ((row_sequences(rows, i, config.delay, train, gen), labels[i]) for i in idxs)  # lazy

    def hook(state) -> bool:  # after backward: a non-finite norm stops training as diverged
        gnorm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters())))
        norms.extend([gnorm] if math.isfinite(gnorm) else [])
        return math.isfinite(gnorm)

    opt, ce = torch.optim.Adam(model.parameters(), lr=config.lr), torch.nn.functional.cross_entropy
    res = fit(model, lambda m, b: ce(m(b[0]), b[1]), draws, optimizer=opt, after_backward=hook)
    idx = torch.from_numpy(test[: config.eval_size])
    with torch.no_grad():
        right = model(row_sequences(rows, idx, config.delay, test, gen)).argmax(1) == labels[idx]
    bad, big = float(res.diverged), float(max(norms) > config.explode_threshold)
    out = {"accuracy": float(right.double().mean()), "final_loss": res.final_loss}
    return {**out, "max_grad_norm": max(norms), "exploded": max(bad, big), "nonfinite": bad}, model


class RNNGradientFlow(Experiment):
    """C2: measured per-step gradient gain of a vanilla RNN vs g E[f'] and g sqrt(E[f'^2])."""

    name = "rnn_gradient"
    title = "RNN gradient flow: expected slope predicts per-step gradient gain"
    claims = ("C2",)
    version: ClassVar[int] = 2  # issue 10: per-activation formula checks, margin, no gain < 1
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 3},
        "full": {"seeds": 6, "gains": (0.8, 1.0, 1.25, 1.5, 2.0), "probe_batch": 256,
                 "images_per_sequence": 4, "train_steps": 1000, "delay": 14, "eval_size": 2000},
        "smoke": {"seeds": 2, "gains": (1.0, 2.0), "hidden": 16, "probe_batch": 8,
                  "images_per_sequence": 1, "train_steps": 3, "train_hidden": 8, "delay": 7,
                  "batch_size": 8, "eval_size": 16},
    }  # fmt: skip

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        t0, acts, gains = time.perf_counter(), config.activations, config.gains
        images, labels = load_mnist(context.data_dir)
        rows = (images[:, 0] - 0.1307) / 0.3081  # standardised: MNIST pixel mean and std
        train, _val, test = split_indices(len(labels), seed)
        gen = torch.Generator().manual_seed(seed)  # the same Q, U and sequences for every probe
        q = orthogonal(config.hidden, gen)
        u = torch.randn(config.hidden, 28, generator=gen, dtype=torch.float64)
        u = u * math.sqrt(config.input_var / 28)
        pick = torch.randint(len(test), (config.probe_batch,), generator=gen)
        n_after = 28 * (config.images_per_sequence - 1)
        x = row_sequences(rows, torch.from_numpy(test)[pick], n_after, test, gen).double()
        probe_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))

        def probe(w: torch.Tensor, u: torch.Tensor, act: str, **kw: Any) -> GainProbe:
            g = torch.Generator().manual_seed(probe_seed)  # the same probe vectors every time
            return gain_probe(x, w, u, generator=g, **kw, **config.act_kw(act))

        metrics, series, table, task = {}, {}, [], []
        lags, jobs = [float(k) for k in range(x.shape[1] + 1)], 2 * len(gains) * len(acts)
        for j, g in enumerate(gains):
            ys: dict[str, list[float | None]] = {}
            for i, act in enumerate(acts):
                p = probe(g * q, u, act, norm=g)
                nums = p.summary()
                metrics.update({key("probe", act, g, k): v for k, v in nums.items()})
                table.append({"activation": act, "g": g, **{k: _cell(v) for k, v in nums.items()}})
                curves = {act: p.curve} | {f"{act} pred {k}": p.curves[k] for k in _KINDS[:2]}
                ys.update({k: [_cell(v) for v in np.exp(c)] for k, c in curves.items()})
                context.progress(j * len(acts) + i + 1, jobs)
            series[key("grad_norm_vs_lag", g)] = Series(lags, ys, _XLABEL, _YLABEL, True)
        for i, act in enumerate(acts if config.train_steps > 0 else ()):  # then probe (g measured)
            r, m = _train(config, act, rows, labels, train, test, seed * 31 + i)
            p = probe(*(t.detach().double() for t in (m.w, m.u)), act, bias=m.b.detach().double())
            r.update(trained_spectral_norm=p.norm, trained_measured_gain=p.gain)
            r.update({f"trained_pred_{k}": math.exp(p.predicted[k]) for k in _KINDS[:2]})
            metrics.update({key("task", act, k): float(v) for k, v in r.items()})
            task.append({"activation": act, **{k: _cell(v) for k, v in r.items()}})
            context.progress(len(gains) * (len(acts) + i + 1), jobs)
        metrics["run_seconds"] = time.perf_counter() - t0
        tables = {"gain_measured_vs_predicted": table, "long_range_task": task}
        return RunResult(metrics, series, {k: v for k, v in tables.items() if v})

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, g0, tol = len(results), config.verdict_gain, config.prediction_tolerance
        acts, gains, m = config.activations, config.gains, 6  # Bonferroni over the 6 checks
        name = f"log per-step gradient gain, ELU minus ReLU, at ||W||_2 = {g0:g}"
        if not {"relu", "elu"} <= set(acts):
            why = "C2 compares ELU with ReLU; this run did not include both activations."
            return [Verdict.inconclusive("C2", why, n_seeds=n, effect_name=name)]

        def lg(act: str, g: float) -> list[float]:  # log measured gain, per seed
            return [math.log(v) for v in per_seed(results, "probe", act, g, "measured_gain")]

        def band(act: str, kind: str, what: str) -> list[Check]:  # |log(meas / pred)| < tol
            v = per_seed(results, "probe", act, g0, f"logratio_{kind}")
            return within(f"log(measured / {what}), {act}", v, tol, family=m)

        main = check(name, lg("elu", g0), paired=lg("relu", g0), above=0.0, family=m)
        gap = check(f"{name} (meaningful)", lg("elu", g0), paired=lg("relu", g0),
                    above=config.min_log_gain_gap, family=m)  # fmt: skip
        slope = [c for a in ("relu", "elu") for c in band(a, "slope_fit", "||W|| E[f'] fitted")]
        rms = {a: band(a, "rms_fit", "||W|| sqrt(E[f'^2]) fitted") for a in ("relu", "elu")}
        exploded = sum(r.metrics.get(key("task", "elu", "exploded"), 0.0) for r in results)
        bad = exploded > 0 or any(c.status != "supported" for c in slope)  # formula, explosion
        status = "mixed" if main.status == "supported" and bad else main.status
        qualifier = "small" if status == "supported" and gap.status != "supported" else ""
        ks = [key("probe", *p) for p in itertools.product(("relu", "elu"), gains, _FITS)]
        missing = sum(not math.isfinite(r.metrics.get(k, math.nan)) for r in results for k in ks)
        d = {g: np.subtract(lg("elu", g), lg("relu", g)).mean() for g in gains if g != g0}
        others = ", ".join(f"{g:g}: {v:+.3f}" for g, v in d.items()) or "none"

        def pct(c: Check) -> str:  # measured / predicted - 1, from a log ratio
            return "{:+.1%} [{:+.1%}, {:+.1%}]".format(*np.expm1(np.asarray(c.effect)))

        notes = [
            f"Measured / predicted - 1 at ||W||_2 = {g0:g}, per activation: ||W|| E[f'] "
            + ", ".join(f"{a} {pct(c)}" for a, c in zip(("relu", "elu"), slope[::2], strict=True))
            + "; ||W|| sqrt(E[f'^2]) "
            + ", ".join(f"{a} {pct(rms[a][0])}" for a in rms)
            + " (not decisive; intervals Bonferroni over the 6 checks).",
            f"Not checked: ELU's gain < 1 at ||W||_2 = 1 (for alpha <= 1, f' <= 1, so "
            f"g sqrt(E[f'^2]) <= g). ELU training runs that exploded: {int(exploded)} of {n}.",
            f"Log difference at other ||W||_2: {others}.",
            f"Unavailable fitted predictions (seed x activation x g x kind): {missing}.",
        ]
        if results and all(key("task", "elu", "accuracy") in r.metrics for r in results):
            acc = {a: 100 * per_seed(results, "task", a, "accuracy") for a in acts}
            pcts = ", ".join(f"{a} {v.mean():.1f}%" for a, v in acc.items())
            c = check("ELU - ReLU task accuracy (pp)", acc["elu"], paired=acc["relu"], above=0.0)

            def row(a: str) -> str:  # the trained network's numbers
                vs = (seed_mean(results, "task", a, f"trained_{k}") for k in _TRAINED)
                return " / ".join(f"{v:.3f}" for v in vs)

            notes.append(f"Task accuracy {pcts}; {c.sentence}. Trained W (no longer g Q): ||W||_2"
                         " / measured gain / ||W||_2 E[f'] / ||W||_2 sqrt(E[f'^2]): "
                         + "; ".join(f"{a} {row(a)}" for a in acts) + ".")  # fmt: skip
        kw = dict(effect=main, effect_name=name, n_seeds=n, notes=notes, qualifier=qualifier)
        kw |= dict(status=status, preamble=_HEADS[status])
        return [Verdict.from_checks("C2", [main, gap, *slope], **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        acts, gains, out = config.activations, config.gains, Path(out_dir)

        fig, axes = plots.panels(len(gains), ncols=2, width=4.2)
        for ax, g in zip(axes, gains, strict=True):
            ss = [r.series[key("grad_norm_vs_lag", g)] for r in results]
            for act in acts:
                plots.band(ax, ss[0].x, np.log10([np.array(s.ys[act], float) for s in ss]), act)
                for kind, ls in zip(_KINDS[:2], ("--", ":"), strict=True):
                    ys = np.log10([np.array(s.ys[f"{act} pred {kind}"], float) for s in ss])
                    plots.band(ax, ss[0].x, ys, "_" + act, colour_of=act, kind="none", ls=ls, lw=1)
            ax.set(title=f"||W||_2 = {g:g}", xlabel="time lag (steps)", ylabel="log10 grad norm")
        plots.legend_outside(axes[min(1, len(axes) - 1)])  # line styles: in the caption
        paths = [plots.save(fig, out / "rnn_gradient_norm_vs_lag.png")]
        fig, (ax,) = plots.panels(1, width=4.8, height=4.4)
        for act, (kind, mk) in itertools.product(acts, zip(_KINDS, "sox", strict=True)):
            meas = [seed_mean(results, "probe", act, g, "measured_gain") for g in gains]
            pred = [seed_mean(results, "probe", act, g, f"pred_{kind}") for g in gains]
            c = plots.colour(act)
            style = {"color": c} if mk == "x" else {"facecolors": "none", "edgecolors": c}
            ax.scatter(pred, meas, marker=mk, s=28, label=f"{act}: {kind}", **style)
        ax.axline((0.0, 0.0), (1.0, 1.0), color="k", lw=0.8)
        ax.set(
            xlim=(0, None), ylim=(0, None), xlabel="predicted per-step gain", ylabel="measured gain"
        )
        plots.legend_outside(ax)
        paths.append(plots.save(fig, out / "rnn_gradient_measured_vs_predicted.png"))
        caps = [_CAPTION_LAG, _CAPTION_SCATTER.format(", ".join(f"{g:g}" for g in gains))]
        return [Figure(p, c, "C2") for p, c in zip(paths, caps, strict=True)]
