"""C1: dead neurons. On pre-activations biased negative, how many units stop learning?

The claim: on data that push pre-activations negative, ReLU leaves a large fraction of
units with zero gradient ("dead"); ELU (and Mish) bring that fraction to about zero.

Protocol, on MNIST (the 10,000 shared images split 60/20/20 per seed), for an MLP and a
CNN with ReLU, LeakyReLU, ELU, SELU, GELU and Mish (the same seed gives every
activation the same weights, split and batches: a paired design):

* **mechanism** (checked): after PyTorch's default initialisation each hidden layer's
  bias is set (layer by layer, on a calibration batch) so that each unit's
  pre-activation has mean ``-shift * std``; check: at least ``Phi(shift) - 0.05`` of
  them negative at init. SGD with momentum (:func:`elulab.train.fit`);
* **dead fraction** (:func:`elulab.diagnostics.dead_fractions`), at init and after
  every epoch: a hidden unit (a conv channel) is dead when the gradient at its
  pre-activation is exactly zero on *every* training sample; *saturated*: not dead,
  ``|f'| < eps`` on every sample; the test accuracy (0.1 for a diverged run);
* **float32 zeros of f'** (:func:`elulab.diagnostics.zero_slope_stats`, final weights):
  ELU's ``f' = e^x > 0`` for real ``x``, but is exactly 0 in float32 for ``x <= -150 ln 2
  = -103.97`` (:func:`elulab.diagnostics.zero_slope_point`, measured): the share of
  pre-activations and of units (every sample) with ``f'`` exactly 0; the lowest one.

Verdict (C1), **per architecture** (MLP and CNN disagree): three checks each
(:func:`elulab.lab.verdicts.check`, t-intervals over seeds, Bonferroni over all
``3 x archs``) on the final dead fraction: ReLU's above ``large_threshold``; ELU's and
Mish's below ``zero_threshold``, labelled analytic (``f' > 0`` unless the float32
exponential underflows). Combined by :func:`elulab.lab.stats.combine` (holds for one
architecture, fails for the other: "mixed"); the summary says where each holds; a
failed mechanism check makes it inconclusive. Effect: ReLU's minus ELU's final dead
fraction where ReLU's is lower (paired).

References: Clevert, Unterthiner, Hochreiter (2015), ELUs, arXiv:1511.07289; Lu, Shin,
Su, Karniadakis (2019), Dying ReLU and Initialization, arXiv:1903.06733; Misra (2019),
Mish, arXiv:1908.08681.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.mnist import load_mnist_split
from ..diagnostics import ZeroSlope, dead_fractions, zero_slope_point, zero_slope_stats
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import combine, paired_ci
from ..lab.verdicts import Check, Verdict, check, key, per_seed, per_setting, seed_mean, split_key
from ..nn import get_activation
from ..train import accuracy, batches, build_mlp, fit, seeded

__all__ = ["Config", "DeadNeurons", "build_model", "calibrate_negative_bias"]

ARCHS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "mish")
_NAMES = {"relu": "ReLU", "elu": "ELU", "mish": "Mish"}
_FINAL = ("saturated_final", "dead_final")
_ZEROS = ("zero_slope_share", "zero_slope_units", "min_preact")  # f' exactly 0 in float32
_LARGE = (  # the reason for large_threshold, fixed with the experiment's first version
    "dead fraction ReLU must exceed to count as 'large': one unit in ten, ten times the "
    "'about zero' bound; a lenient reading (the folklore figure is '40% dead', CS231n)"
)


@dataclass(frozen=True)
class Config:
    """Settings of the dead-neuron experiment (see the module docstring)."""

    archs: tuple[str, ...] = param(ARCHS, "models: MLP, CNN", choices=ARCHS, nonempty=True)
    activations: tuple[str, ...] = param(
        ACTIVATIONS, "activations compared", choices=ACTIVATIONS, nonempty=True
    )
    n_train: int = param(6000, "training images (of the 6000 in the split)", ge=1, le=6000)
    n_test: int = param(2000, "test images (of the 2000 in the split)", ge=1, le=2000)
    epochs: int = param(5, "training epochs", ge=1)
    batch_size: int = param(64, "minibatch size (images)", ge=1)
    lr: float = param(0.05, "SGD learning rate", gt=0.0)
    momentum: float = param(0.9, "SGD momentum", ge=0.0, lt=1.0)
    shift: float = param(3.0, "bias at init: pre-activation mean = -shift * std (in stds)")
    calib_size: int = param(512, "training images that calibrate the biases", ge=2)
    mlp_width: int = param(256, "hidden units per MLP layer", ge=1)
    eps: float = param(0.01, "slope threshold of 'saturated' (|f'| < eps)", gt=0.0, lt=1.0)
    large_threshold: float = param(0.10, _LARGE, ge=0.0, le=1.0)
    zero_threshold: float = param(
        0.01, "dead fraction ELU, Mish stay below ('about zero': under 1 unit in 100)", ge=0, le=1
    )
    seeds: int = param(5, "independent seeds", ge=1)


def build_model(arch: str, activation: str, mlp_width: int = 256) -> nn.Sequential:
    """The MLP (784-w-w-10) or CNN (two conv blocks, one hidden Linear) of the experiment.

    PyTorch's default initialisation, from torch's global generator.

    Example:
        >>> [type(m).__name__ for m in build_model("mlp", "elu", 8)][:3]
        ['Flatten', 'Linear', 'ELU']
    """
    act = get_activation
    if arch == "mlp":
        mlp = build_mlp(784, 10, depth=2, width=mlp_width, activation=activation, init="torch")
        return nn.Sequential(nn.Flatten(), *mlp)
    if arch == "cnn":  # conv 8 - pool - conv 16 - pool - Linear 64 - Linear 10
        convs = [(nn.Conv2d(c, d, 3, padding=1), act(activation)) for c, d in ((1, 8), (8, 16))]
        blocks = [m for conv in convs for m in (*conv, nn.MaxPool2d(2))]
        tail = (nn.Flatten(), nn.Linear(16 * 7 * 7, 64), act(activation), nn.Linear(64, 10))
        return nn.Sequential(*blocks, *tail)
    raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(ARCHS)}")


@torch.no_grad()
def calibrate_negative_bias(model: nn.Sequential, x: torch.Tensor, shift: float) -> float:
    """Set each hidden layer's bias so its pre-activations on ``x`` have mean ``-shift * std``.

    Layer by layer in forward order (each sees the already shifted outputs before it);
    the output layer is left alone. Returns the share of hidden pre-activations below
    zero on ``x`` after calibration.
    """
    mods, h, neg, total = list(model), x, 0, 0
    layers = [i for i, m in enumerate(mods) if isinstance(m, (nn.Linear, nn.Conv2d))]
    for i, m in enumerate(mods):
        # hidden: a layer before the last one, followed by an activation
        if i in layers[:-1] and i + 1 not in layers:
            z = m(h)
            dims = (0,) if z.ndim == 2 else (0, 2, 3)
            mean, std = z.mean(dim=dims), z.std(dim=dims)
            m.bias -= mean + shift * std
            z = m(h)
            neg += int((z < 0).sum())
            total += z.numel()
        h = m(h)
    return neg / max(total, 1)


def _one(
    config: Config, arch: str, act: str, data: Sequence[torch.Tensor], seed: int
) -> tuple[dict[str, float], list[float], list[float]]:
    """Build, calibrate and train one model: its metrics, dead and saturated curves."""
    xtr, ytr, xte, yte = data
    with seeded(seed):  # torch.manual_seed(seed): the same weights for every activation
        model = build_model(arch, act, config.mlp_width)
    neg = calibrate_negative_bias(model, xtr[: config.calib_size], config.shift)
    curve = [dead_fractions(model, xtr, ytr, config.eps)]  # at init, then after each epoch

    def after_epoch(m: nn.Module) -> float:
        curve.append(dead_fractions(m, xtr, ytr, config.eps))
        return curve[-1][0]

    res = fit(
        model,
        lambda m, idx: nn.functional.cross_entropy(m(xtr[idx]), ytr[idx]),
        # the generator seeded with `seed`: the same batches for every activation
        batches(len(ytr), config.batch_size, seed=seed, epochs=config.epochs, drop_last=False),
        optimizer=torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum),
        evaluate=after_epoch,
        eval_every=math.ceil(len(ytr) / min(config.batch_size, len(ytr))),
    )
    dead, sat = ([c[i] for c in curve] for i in (0, 1))
    acc = accuracy(model, xte, yte) if not res.diverged else 0.1
    zs = ZeroSlope.pool(zero_slope_stats(model, xtr))  # f' exactly 0 (float32), final weights
    row = {"dead_init": dead[0], "dead_final": dead[-1], "saturated_final": sat[-1], "acc": acc}
    row |= dict(zip(_ZEROS, (zs.zero_share, zs.zero_units, zs.min_input), strict=True))
    return row | {"neg_preact_init": neg, "diverged": float(res.diverged)}, dead, sat


class DeadNeurons(Experiment):
    """C1: dead-unit fraction over training, ReLU vs LeakyReLU/ELU/SELU/GELU/Mish."""

    name = "dead_neurons"
    title = "Dead neurons on negatively biased pre-activations (MNIST, MLP and CNN)"
    claims = ("C1",)
    version: ClassVar[int] = 2  # issue 10: per-architecture verdict, float32 zeros of f'
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "n_train": 1500, "n_test": 1000, "epochs": 2, "mlp_width": 128},
        "full": {"seeds": 5},
        "smoke": {"seeds": 2, "n_train": 64, "n_test": 32, "epochs": 1, "mlp_width": 8},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        data = load_mnist_split(seed, config.n_train, config.n_test, context.data_dir)
        points = {a: zero_slope_point(get_activation(a)) for a in config.activations}
        metrics = {key("float32", a, "zero_slope_point"): x for a, x in points.items() if x > -1e9}
        rows, curves, todo = [], {}, list(itertools.product(config.archs, config.activations))
        for k, (arch, act) in enumerate(todo):
            row, dead, sat = _one(config, arch, act, data, seed)
            metrics |= {key(arch, act, m): v for m, v in row.items()}
            rows.append(dict(arch=arch, activation=act) | {m: round(v, 4) for m, v in row.items()})
            for name, ys in (("dead", dead), ("saturated", sat)):
                pad = [math.nan] * (config.epochs + 1 - len(ys))
                curves.setdefault(key(name, arch), {})[act] = ys + pad
            context.progress(k + 1, len(todo))
        x = [float(e) for e in range(config.epochs + 1)]
        series = {
            k: Series(x, ys, "epoch", f"{split_key(k)[0]} fraction (whole training split)")
            for k, ys in curves.items()
        }
        return RunResult(metrics=metrics, series=series, tables={"per_model": rows})

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, what = len(results), "ReLU minus ELU final dead-unit fraction (paired over seeds)"
        if n == 0 or not {"relu", "elu", "mish"} <= set(config.activations):
            reason = "C1 needs runs with relu, elu and mish"
            return [Verdict.inconclusive("C1", reason, n_seeds=n, effect_name=what)]
        acts, m = config.activations, 3 * len(config.archs)  # Bonferroni over every check

        def mean(*parts: Any) -> float:  # over the seeds with a finite value
            return seed_mean(results, *parts)

        def sub(arch: str, act: str, **kw: Any) -> Check:
            lbl = f"{_NAMES[act]} final dead fraction ({arch.upper()})"
            return check(lbl, per_seed(results, arch, act, "dead_final"), family=m, **kw)

        x0 = {a: mean("float32", a, "zero_slope_point") for a in acts}
        zero, note = config.zero_threshold, "analytic: f' > 0 in float32 unless x <= {:.2f}"
        checks = {
            a.upper(): [sub(a, "relu", above=config.large_threshold)]
            + [sub(a, act, below=zero, note=note.format(x0[act])) for act in ("elu", "mish")]
            for a in config.archs
        }
        where, holds = per_setting(checks)
        flat = [c for cs in checks.values() for c in cs]
        weak = min(config.archs, key=lambda a: checks[a.upper()][0].effect.value)  # lower ReLU
        d = {a: per_seed(results, weak, a, "dead_final") for a in ("relu", "elu")}

        def cells(fmt: str, names: Sequence[str], which: Sequence[str]) -> str:
            row = (", ".join(f"{b} " + fmt.format(*(mean(a, b, k) for k in names)) for b in which)
                   for a in config.archs)  # fmt: skip
            return "; ".join(f"{a.upper()} {r}" for a, r in zip(config.archs, row, strict=True))

        pairs = itertools.product(config.archs, acts)
        neg = min(per_seed(results, a, act, "neg_preact_init").min() for a, act in pairs)
        mech_ok = neg >= 0.5 * (1 + math.erf(config.shift / math.sqrt(2))) - 0.05
        tails = [a for a in acts if x0[a] < 0]  # f' exactly 0 somewhere below 0
        notes = [
            "The ELU and Mish checks are analytic, not an empirical finding: their slopes "
            "are positive for every real x and exactly 0 in float32 only at or below "
            f"(measured on this torch) {', '.join(f'{a} {x0[a]:.4f}' for a in tails)}. "
            "Float32 zeros of f' at the final weights (share of pre-activations / share of "
            "units with f' = 0 on every sample / lowest pre-activation): "
            f"{cells('{:.3g} / {:.3g} / {:.1f}', _ZEROS, tails)}.",
            f"ELU units on the plateau (not dead): {cells('{:.3f}', _FINAL[:1], ['elu'])}. Final "
            f"dead fraction (test accuracy): {cells('{:.3f} ({:.3f})', [_FINAL[1], 'acc'], acts)}. "
            f"Mechanism check (negative bias, shift {config.shift}): at least {neg:.3f} of "
            "pre-activations negative at init "
            f"({'as intended' if mech_ok else 'LESS than intended: the mechanism failed'}).",
        ]
        status = combine([c.status for c in flat]) if mech_ok else "inconclusive"
        partial = mech_ok and holds and status in ("mixed", "inconclusive")
        kw = dict(effect_name=f"{what}, {weak.upper()} (the architecture with less dead ReLU)",
                  preamble=f"Decided per architecture (Bonferroni over the {m} checks): {where}.",
                  qualifier=f"holds for {' and '.join(holds)} only" if partial else "")  # fmt: skip
        effect = paired_ci(d["relu"], d["elu"])
        return [Verdict.from_checks("C1", flat, effect=effect, notes=notes, status=status, **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        fig, axes = plots.panels(len(config.archs), ncols=2)
        for ax, arch in zip(axes, config.archs, strict=True):
            curves = [r.series[key("dead", arch)] for r in results]
            ys = {act: [c.ys[act] for c in curves] for act in config.activations}
            plots.curves(ax, curves[0].x, ys, title=f"{arch.upper()}: dead units", xlabel="epoch",
                         ylabel="dead fraction", integer_x=True, marker="o", ms=3)  # fmt: skip
            ax.set_ylim(0.0, 1.0)
        caption = (
            "Share of hidden units whose gradient is exactly zero over the whole training "
            "split, after each epoch (line: mean over seeds, band: range), with biases set "
            f"so that pre-activations start at mean -{config.shift} std."
        )
        figs = [Figure(plots.save(fig, Path(out_dir) / "dead_neurons_over_training.png"), caption)]
        fig, (ax,) = plots.panels(1, width=5.2, height=3.8)
        for arch, act in itertools.product(config.archs, config.activations):
            d, s, a = (per_seed(results, arch, act, m).mean() for m in (*_FINAL[::-1], "acc"))
            mk, c = "o" if arch == "mlp" else "s", plots.colour(act)
            ax.scatter(d, a, marker=mk, color=c, label=f"{arch} {act}")
            if s > 0.005:
                ax.annotate(f"sat {s:.2f}", (d, a), fontsize=6)
        ax.set(xlabel="final dead fraction", ylabel="test accuracy")
        plots.legend_outside(ax, ncol=2)
        caption = (
            "Test accuracy against the final dead fraction (mean over seeds); a 'sat' label marks "
            "the share of units on a flat region (|f'| < eps) that are not dead, where above 0.5%."
        )
        figs.append(Figure(plots.save(fig, Path(out_dir) / "dead_neurons_accuracy.png"), caption))
        return figs
