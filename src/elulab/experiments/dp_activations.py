"""C10: DP-SGD. Does ELU tolerate a smaller clipping norm C and gain accuracy at fixed epsilon?

The claim (CLAIMS.md C10): with alpha = 1, 0 < ELU' <= 1, so per-sample gradients are
not amplified, a smaller clipping norm C loses little, and less noise (sigma C) gives
better accuracy at a fixed privacy budget. Caveats: ReLU also has 0 <= f' <= 1; Papernot
et al. (2021) found bounded activations (tanh) beat ReLU under DP-SGD on MNIST.

Protocol, per seed: MNIST's 10k images split 60/20/20 into train / validation / test
(:func:`elulab.data.split_indices`); an MLP 784-w-w-10 and a small CNN (two strided
convolutions, 32 hidden units), each with ELU, ReLU, tanh, SELU, GELU from one seeded
init per (model, activation). DP-SGD by :func:`elulab.dp.train_private` (Opacus:
Poisson batches, ghost clipping, sigma from ``get_noise_multiplier`` so the RDP epsilon
of the whole run is at most ``epsilon``; PRV's epsilon is recorded beside it) at each
C of ``clips``; the learning rate ``lr = eta / C`` (a clipped step moves ``lr C``) is
tuned on validation over ``etas`` at each C. Metrics per (model, activation): test
accuracy at each C, at the C chosen on validation (*best*), at ``small_clip`` (*small*);
the non-private ceiling (SGD, lr tuned on validation, same epochs); per-sample gradient
norms (:func:`elulab.dp.per_sample_grad_norms`) at init on the validation split, and
their median during private training (at the largest C, the least distorted).

Verdict (C10), per model and per comparison (ELU vs ReLU, ELU vs tanh): the paired
difference of test accuracy over seeds at the *best* C and at the *small* C, above 0
(the claim says "better accuracy"; any gain counts), t-intervals Bonferroni-adjusted
over all ``2 x 2 x models`` checks. All supported: supported; all below: not supported;
both ways: mixed; else inconclusive. Notes: tanh - ReLU (Papernot et al.'s finding),
the init norms, the ceilings, the largest epsilon spent. Caveats: lr tuning on
validation is not charged to the budget (as in the literature); the norms during
training are statistics of private data, not privatised; 6k training images (the
shared data hold only MNIST's test set) make the noise relatively larger than on 60k.

References:
    Tempered Sigmoid Activations for Deep Learning with Differential Privacy (Papernot,
    Thakurta, Song, Chien, Erlingsson, 2021), AAAI, arXiv:2007.14191.

    Deep Learning with Differential Privacy (Abadi et al., 2016), arXiv:1607.00133.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..data.mnist import load_mnist, split_indices
from ..dp import per_sample_grad_norms, train_private
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import combine
from ..lab.verdicts import Verdict, check, key, per_seed
from ..nn import get_activation
from ..train import accuracy, batch_cross_entropy, batches, build_mlp, fit, seeded

__all__ = ["Config", "DPActivations", "build_model"]

ACTIVATIONS = ("elu", "relu", "tanh", "selu", "gelu")
MODELS = ("mlp", "cnn")
OTHERS = (("relu", "ReLU"), ("tanh", "tanh"))  # what ELU is compared with
LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # quantile levels of the norms


@dataclass(frozen=True)
class Config:
    """Settings of the DP-SGD activation experiment (see the module docstring)."""

    models: tuple[str, ...] = param(MODELS, "architectures", choices=MODELS, nonempty=True)
    activations: tuple[str, ...] = param(
        ACTIVATIONS, "activations compared", choices=ACTIVATIONS, nonempty=True
    )
    clips: tuple[float, ...] = param(
        (0.1, 0.3, 1.0, 3.0), "clipping norms C (per-sample gradient norm bound)", gt=0.0
    )
    small_clip: float = param(
        0.1, "the small common C (one of clips; below most init norms)", gt=0.0
    )
    etas: tuple[float, ...] = param(
        (0.03, 0.1, 0.3), "lr x C grid, tuned on validation at each C (SGD momentum)", gt=0.0
    )
    lrs: tuple[float, ...] = param(
        (0.01, 0.03, 0.1), "non-private SGD learning rates (tuned on validation)", gt=0.0
    )
    epsilon: float = param(3.0, "privacy budget epsilon (Papernot et al.'s MNIST point)", gt=0.0)
    delta: float = param(1e-5, "privacy budget delta (< 1/n_train)", gt=0.0, lt=1.0)
    epochs: int = param(10, "training epochs (private and non-private)", ge=1)
    batch_size: int = param(256, "expected batch size (Poisson rate 1/ceil(n/B))", ge=1)
    momentum: float = param(0.9, "SGD momentum", ge=0.0, lt=1.0)
    n_train: int = param(6000, "training images (of the 6000 in the split)", ge=1, le=6000)
    n_eval: int = param(2000, "validation and test images (of 2000 each)", ge=1, le=2000)
    width: int = param(128, "hidden units per layer of the MLP", ge=1)
    seeds: int = param(5, "independent seeds (split, init, batches, noise)", ge=1)

    def validate(self) -> None:
        if self.small_clip not in self.clips:
            raise ValueError(f"small_clip must be one of clips {self.clips}, got {self.small_clip}")


def build_model(model: str, activation: str, width: int = 128) -> nn.Sequential:
    """The MLP 784-w-w-10 or the small CNN (8 and 16 5x5 stride-2 filters, 32 units)."""
    if model == "mlp":
        mlp = build_mlp(784, 10, depth=2, width=width, activation=activation, init="torch")
        return nn.Sequential(nn.Flatten(), *mlp)
    act = [get_activation(activation) for _ in range(3)]
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2), act[0], nn.Conv2d(8, 16, 5, stride=2), act[1],
        nn.Flatten(), nn.Linear(256, 32), act[2], nn.Linear(32, 10),
    )  # fmt: skip


def _arm(config: Config, model: str, act: str, data: tuple, seed: int) -> tuple[dict, list, list]:
    """One (model, activation): init norms, the non-private ceiling, DP-SGD at each C."""
    xtr, ytr, xva, yva, xte, yte = data

    def tuned(grid: Sequence[float], train: Any) -> tuple[float, float, Any]:
        best: tuple[float, float, Any] = (-math.inf, math.nan, None)  # (val, test, output)
        for value in grid:  # one net per value, all from the same init
            with seeded(seed, "init", model, act):
                net = build_model(model, act, config.width)
            out = train(net, value)
            best = max(
                best, (accuracy(net, xva, yva), accuracy(net, xte, yte), out), key=lambda t: t[0]
            )
        return best

    def sgd(net: nn.Module, lr: float) -> None:
        fit(net, lambda m, idx: batch_cross_entropy(m, (xtr[idx], ytr[idx])),
            batches(len(ytr), config.batch_size, seed=seed, epochs=config.epochs),
            optimizer=torch.optim.SGD(net.parameters(), lr=lr, momentum=config.momentum))  # fmt: skip

    def dp(net: nn.Module, eta: float, clip: float) -> tuple[float, Any]:
        return eta, train_private(
            net, (xtr, ytr), config.epsilon, config.delta, epochs=config.epochs,
            batch_size=config.batch_size, max_grad_norm=clip, lr=eta / clip,
            momentum=config.momentum, record_norms=True, seed=seed,
        )  # fmt: skip

    with seeded(seed, "init", model, act):
        net = build_model(model, act, config.width)
    norms = per_sample_grad_norms(net, batch_cross_entropy, [(xva[:500], yva[:500])])
    qs = np.quantile(norms.total, LEVELS)
    m = {("init_q", q): float(v) for q, v in zip(LEVELS, qs, strict=True)}
    rows = [{"model": model, "activation": act, "layer": layer}
            | dict(zip(("q10", "q50", "q90"), np.quantile(v, (0.1, 0.5, 0.9)).tolist(), strict=True))
            for layer, v in norms.layers.items()]  # fmt: skip
    m[("nonprivate",)] = tuned(config.lrs, sgd)[1]
    best_val, curve = -math.inf, []
    for clip in config.clips:
        val, test, (eta, res) = tuned(config.etas, lambda net, e, c=clip: dp(net, e, c))
        m |= {(clip, "test"): test, (clip, "eta"): eta, ("sigma",): res.noise_multiplier}
        m |= {(clip, "clipped"): res.fit.mean_log("clipped"), (clip, "eps"): res.epsilon}
        m[(clip, "eps_prv")] = res.epsilon_prv
        if val > best_val:
            best_val, m[("best",)], m[("best_clip",)] = val, test, clip
        if clip == config.small_clip:
            m[("small",)] = test
        if clip == max(config.clips):  # the median norm per epoch, at the least clipping
            q50, k = np.asarray(res.fit.logs.get("norm_q50", [])), round(1 / res.sample_rate)
            curve = [float(q50[i : i + k].mean()) for i in range(0, len(q50), k)]
    return {key(model, act, *n): v for n, v in m.items()}, rows, curve


class DPActivations(Experiment):
    """C10: accuracy at a fixed (epsilon, delta) against the clipping norm, per activation."""

    name = "dp_activations"
    title = "DP-SGD at epsilon = 3: accuracy vs clipping norm per activation (MNIST, Opacus)"
    claims = ("C10",)
    version: ClassVar[int] = 1
    requires: ClassVar[dict[str, tuple[str, str]]] = {"opacus": ("Opacus", "dp")}
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "activations": ("elu", "relu", "tanh"), "clips": (0.1, 1.0)}
        | {"etas": (0.1, 0.3), "lrs": (0.03, 0.1), "epochs": 3, "n_train": 2000},
        "full": {"seeds": 5},
        "smoke": {"seeds": 2, "activations": ("elu", "relu", "tanh"), "clips": (0.1, 1.0)}
        | {"etas": (0.1,), "lrs": (0.1,), "epochs": 2, "n_train": 256, "width": 16}
        | {"batch_size": 32, "n_eval": 200},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        images, labels = load_mnist(context.data_dir)
        tr, va, te = (torch.from_numpy(p) for p in split_indices(len(labels), seed))
        parts = (tr[: config.n_train], va[: config.n_eval], te[: config.n_eval])
        data = tuple(t for p in parts for t in (images[p], labels[p]))
        metrics: dict[str, float] = {}
        rows, series, acts = [], {}, config.activations
        todo = list(itertools.product(config.models, acts))
        for k, (model, act) in enumerate(todo):
            got, more, curve = _arm(config, model, act, data, seed)
            metrics, rows = metrics | got, rows + more
            ys = series.setdefault(
                key("train_norm", model),
                Series(list(range(1, len(curve) + 1)), {}, "epoch", "median |g_i|", True),
            ).ys
            ys[act] = curve
            context.progress(k + 1, len(todo))
        eps = [v for n, v in metrics.items() if n.endswith("/eps")]
        prv = [v for n, v in metrics.items() if n.endswith("/eps_prv")]
        metrics |= {"epsilon_max": max(eps), "epsilon_prv_max": max(prv)}
        for m in config.models:
            ys = {a: [metrics[key(m, a, c, "test")] for c in config.clips] for a in acts}
            series[key("acc", m)] = Series(list(config.clips), ys, "C", "test accuracy")
            ys = {a: [metrics[key(m, a, "init_q", q)] for q in LEVELS] for a in acts}
            series[key("init_norm", m)] = Series(list(LEVELS), ys, "quantile", "|g_i|", True)
        return RunResult(metrics=metrics, series=series, tables={"init_norms_per_layer": rows})

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, acts = len(results), config.activations
        what = "test accuracy ELU - ReLU at each one's best C (paired over seeds)"
        if n == 0 or not {"elu", "relu", "tanh"} <= set(acts):
            return [Verdict.inconclusive("C10", "C10 needs runs with elu, relu and tanh",
                                         n_seeds=n, effect_name=what)]  # fmt: skip
        fam = 2 * len(OTHERS) * len(config.models)
        groups, checks = {}, []
        for model in config.models:
            group = []
            for (other, name), (m, words) in itertools.product(
                OTHERS, (("best", "best C"), ("small", f"C = {config.small_clip:g}"))
            ):
                label = f"{model.upper()} acc ELU - {name} ({words})"
                a, b = per_seed(results, model, "elu", m), per_seed(results, model, other, m)
                group.append(check(label, a, paired=b, above=0.0, family=fam))
            groups[model.upper()], checks = group, checks + group
        where = "; ".join(f"{g} {combine([c.status for c in cs])}" for g, cs in groups.items())

        def table(fmt: Any) -> str:  # fmt(model, activation) -> text, for every pair
            return "; ".join(
                f"{m.upper()} " + ", ".join(f"{a} {fmt(m, a)}" for a in acts) for m in config.models
            )

        def mean(*parts: Any) -> float:
            return float(per_seed(results, *parts).mean())

        ceil = table(lambda m, a: f"{mean(m, a, 'nonprivate'):.3f}")
        med = table(lambda m, a: f"{mean(m, a, 'init_q', 0.5):.3g}")
        clip = lambda m, a: np.median(per_seed(results, m, a, "best_clip"))  # noqa: E731
        best = table(lambda m, a: f"{mean(m, a, 'best'):.3f} (C~{clip(m, a):g})")
        tanh = [check(f"{m.upper()} tanh - ReLU (best C, unadjusted)",
                      per_seed(results, m, "tanh", "best"),
                      paired=per_seed(results, m, "relu", "best"), above=0.0).sentence
                for m in config.models]  # fmt: skip
        eps = max(r.metrics["epsilon_max"] for r in results)
        prv = max(r.metrics["epsilon_prv_max"] for r in results)
        notes = [
            f"Per model: {where}.",
            f"Best accuracy (at the C chosen on validation): {best}.",
            f"Non-private ceilings: {ceil}. Median per-sample gradient norm at init: {med}.",
            f"Papernot et al.'s tanh > ReLU: {'; '.join(tanh)}.",
            f"Largest epsilon spent (Opacus RDP) {eps:.4f} <= {config.epsilon:g} "
            f"(PRV {prv:.4f}), delta {config.delta:g}.",
        ]
        head = (f"DP-SGD at (epsilon {config.epsilon:g}, delta {config.delta:g}), "
                f"{config.epochs} epochs, lr tuned on validation at each C; {fam} checks, "
                "Bonferroni-adjusted.")  # fmt: skip
        return [Verdict.from_checks("C10", checks, effect_name=what, preamble=head, notes=notes)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        ms = config.models
        fig, axes = plots.panels(len(ms), ncols=len(ms), width=4.4, height=3.3)
        for i, (ax, m) in enumerate(zip(axes, ms, strict=True)):
            runs = [r.series[key("acc", m)] for r in results]
            ys = {a: [s.ys[a] for s in runs] for a in config.activations}
            plots.curves(ax, runs[0].x, ys, title=f"{m.upper()}: test accuracy at eps "
                         f"{config.epsilon:g}", xlabel="clipping norm C (log)", logx=True,
                         legend=i == len(ms) - 1, marker="o", ms=3)  # fmt: skip
            for a in config.activations:
                ceiling = float(np.mean([r.metrics[key(m, a, "nonprivate")] for r in results]))
                ax.axhline(ceiling, color=plots.colour(a), ls=":", lw=1)
        acc = plots.save(fig, Path(out_dir) / "dp_activations_acc_vs_clip.png")
        fig, axes = plots.panels(2 * len(ms), ncols=2, width=4.4, height=3.2)
        for i, (m, what) in enumerate(itertools.product(ms, ("init_norm", "train_norm"))):
            runs = [r.series[key(what, m)] for r in results]
            ys = {a: [s.ys[a] for s in runs] for a in runs[0].ys}
            title = f"{m.upper()}: " + (
                "quantiles of |g_i| at init"
                if what == "init_norm"
                else f"median |g_i|, training at C={max(config.clips):g}"
            )
            plots.curves(axes[i], runs[0].x, ys, title=title, xlabel=runs[0].xlabel,
                         logy=True, legend=i == 1, marker="o", ms=2, integer_x=what == "train_norm")  # fmt: skip
        norms = plots.save(fig, Path(out_dir) / "dp_activations_grad_norms.png")
        return [
            Figure(acc, f"Test accuracy against the clipping norm C at (epsilon {config.epsilon:g}, "
                   f"delta {config.delta:g}), lr tuned on validation at each C (line: mean over "
                   "seeds, band: range; dotted: each activation's non-private ceiling)."),
            Figure(norms, "Per-sample gradient norms per activation: their quantiles at init "
                   "(validation images) and their median per epoch during private training at "
                   "the largest C (log scale; not privatised)."),
        ]  # fmt: skip
