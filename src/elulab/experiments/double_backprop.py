"""C3: double backpropagation. Does ReLU need a larger lambda than ELU or tanh?

The claim: penalising the input-gradient norm needs ``f''``; ReLU's ``f''`` is zero
almost everywhere, so to reach the same regularisation effect ReLU needs a larger
``lambda`` than ELU or tanh.

Training: :math:`J = L + \\lambda R`, R the mean squared per-sample input-gradient norm,
by :func:`elulab.train.double_backprop_step` under :func:`elulab.train.fit` (Adam; one
seed gives the same weights and batches to every activation and ``lambda``), logging
the *penalty share* :math:`s = \\lambda |\\nabla_\\theta R| / (|\\nabla_\\theta L| + \\lambda
|\\nabla_\\theta R|)` of the weight gradient, averaged over training. For ReLU
:math:`\\nabla_x \\ell = W_1^\\top D_1 W_2^\\top D_2 \\cdots (p - y)`, 0/1 masks D: ``f''``
never appears, yet R depends on every W, so :math:`\\nabla_\\theta R \\neq 0` (measured).
Per activation and ``lambda`` (``<act>/<lambda>/...``): the share, test accuracy, test
input-gradient norm, FGSM accuracy (:func:`elulab.train.input_gradient_probe`).

"The same regularisation effect" is read in five versions, each the ``lambda`` at which
a curve crosses a level in ``log lambda`` (:func:`lambda_needed`): by the mechanism, the
share reaching each of ``share_targets`` (``logit(s)`` interpolated; for fixed weights
``logit(s) = log lambda + log(|grad R| / |grad L|)``, so outside the grid a line of
slope 1 extrapolates, flagged); by the outcome, the test input-gradient norm falling to
``gnorm_fraction`` of its value at lambda 0, and to ``target_gnorm`` (never extrapolated).

Verdict (C3): per version, ``log10 lambda(ReLU) - log10 lambda(ELU)`` and the same
against tanh, paired over seeds (t-intervals, Bonferroni over all checks). All above 0:
supported, qualified "small" unless every interval also lies above ``log10 min_ratio``;
all below 0: not supported; some each way: mixed; else inconclusive (also where a
``lambda`` lies outside the grid). The summary gives the same reading per version.

References:
    Improving generalization performance using double backpropagation (Drucker,
    LeCun, 1992), IEEE Trans. Neural Networks 3(6).

    Improving the Adversarial Robustness and Interpretability of Deep Neural Networks
    by Regularizing their Input Gradients (Ross, Doshi-Velez, 2017), arXiv:1711.09404.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..data.mnist import load_mnist_split
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import Effect, combine, crossing
from ..lab.verdicts import Check, Verdict, check, key, per_seed
from ..train import batches, build_mlp, double_backprop_step, fit, input_gradient_probe, seeded

__all__ = ["Config", "DoubleBackprop", "build_model", "lambda_for_share", "lambda_needed"]

ACTIVATIONS = ("relu", "elu", "tanh", "gelu")
LAMBDAS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
OTHERS = (("elu", "ELU"), ("tanh", "tanh"))  # what ReLU is compared with
CURVES = {  # per-(activation, lambda) metric -> (series name, y label, log y)
    "share": ("share", "penalty share of weight gradient", False),
    "acc": ("acc", "test accuracy", False),
    "fgsm_acc": ("fgsm", "FGSM accuracy", False),
    "input_grad_norm": ("gnorm", "mean |grad_x loss| (test)", True),
    "ratio": ("ratio", "|grad_theta R| / |grad_theta L|", True),
}


@dataclass(frozen=True)
class Config:
    """Settings of the double-backpropagation experiment (see the module docstring)."""

    activations: tuple[str, ...] = param(
        ACTIVATIONS, "activations compared", choices=ACTIVATIONS, nonempty=True
    )
    lambdas: tuple[float, ...] = param(
        LAMBDAS, "penalty weights lambda (with 0, the outcome versions' reference)", ge=0.0
    )
    share_targets: tuple[float, ...] = param(
        (0.25, 0.1, 0.4), "penalty shares that define lambda* (first: the headline)", gt=0.0, lt=0.5
    )  # at a stationary point of J the share is 0.5 for every lambda: 0.5 tells none apart
    gnorm_fraction: float = param(
        0.5, "lambda taking the test |grad_x l| to this fraction of lambda 0's", gt=0.0, lt=1.0
    )
    target_gnorm: float = param(
        0.25, "lambda taking the test |grad_x l| to this (FGSM 0.1: loss +ln 2 at most)", gt=0.0
    )  # ln 2 / (0.1 sqrt(784)) = 0.248: |l(x + 0.1 sign g) - l(x)| <= 0.1 |g|_1 <= ln 2
    min_ratio: float = param(
        2.0, "smallest meaningful lambda ratio ReLU/other (a 1-3-10 grid tells it apart)", gt=1.0
    )
    n_train: int = param(6000, "training images (of the 6000 in the split)", ge=1, le=6000)
    n_test: int = param(2000, "test images (of the 2000 in the split)", ge=1, le=2000)
    steps: int = param(600, "Adam steps per (activation, lambda)", ge=1)
    batch_size: int = param(64, "minibatch size (images, drawn with replacement)", ge=1)
    lr: float = param(1e-3, "Adam learning rate", gt=0.0)
    width: int = param(128, "hidden units per layer of the MLP 784-w-w-10", ge=1)
    fgsm_eps: float = param(0.1, "FGSM step (pixels in [0, 1])", ge=0.0)
    seeds: int = param(8, "independent seeds", ge=1)

    def validate(self) -> None:
        if 0.0 not in self.lambdas or not any(lam > 0 for lam in self.lambdas):
            raise ValueError(f"lambdas must hold 0 and a value > 0, got {self.lambdas}")


def build_model(activation: str, width: int) -> nn.Sequential:
    """The MLP 784-w-w-10 (Flatten first), PyTorch's default initialisation."""
    mlp = build_mlp(784, 10, depth=2, width=width, activation=activation, init="torch")
    return nn.Sequential(nn.Flatten(), *mlp)


def lambda_for_share(
    lambdas: Sequence[float], shares: Sequence[float], target: float
) -> tuple[float, bool]:
    """``(lambda*, extrapolated)``: where the penalty share reaches ``target``.

    :func:`elulab.lab.stats.crossing` of ``logit(share)`` in ``log(lambda)`` (points with
    ``lambda > 0``, ``0 < share < 1``); outside the grid, a line of slope 1 through the
    nearest point (exact for fixed weights).

    Example:
        >>> lam, extra = lambda_for_share([0.1, 1.0], [0.1, 0.5], 0.5)
        >>> round(lam, 6), extra
        (1.0, False)
    """
    pts = [
        (lam, math.log(s / (1.0 - s)))  # (lambda, logit share)
        for lam, s in zip(lambdas, shares, strict=True)
        if lam > 0 and 0.0 < s < 1.0 and math.isfinite(s)
    ]
    if not pts:
        return math.nan, True
    t = math.log(target / (1.0 - target))
    lam = crossing(*zip(*pts, strict=True), t)
    if not math.isnan(lam):
        return lam, False
    near = min(pts, key=lambda p: abs(p[1] - t))
    return near[0] * math.exp(t - near[1]), True


def versions(config: Config) -> list[tuple[str, str]]:
    """The versions of "the same effect": ``(key part, words)``, share targets first."""
    out = [(f"share_{t:g}", f"share {t:g}") for t in config.share_targets]
    out.append((f"gnorm_x{config.gnorm_fraction:g}", f"|grad_x| x{config.gnorm_fraction:g}"))
    return [*out, (f"gnorm_{config.target_gnorm:g}", f"|grad_x| = {config.target_gnorm:g}")]


def lambda_needed(
    config: Config, lambdas: Sequence[float], shares: Sequence[float], gnorms: Sequence[float]
) -> dict[str, tuple[float, bool]]:
    """Per version (:func:`versions`), ``(lambda, outside the grid)`` for one activation.

    ``shares`` and ``gnorms`` (mean test input-gradient norm) are measured at ``lambdas``
    (0 among them); the norm versions interpolate ``log gnorm``, NaN outside the grid.

    Example:
        >>> cfg = Config(share_targets=(0.25,), target_gnorm=1.0)
        >>> got = lambda_needed(cfg, [0.0, 1.0, 100.0], [0.0, 0.2, 0.4], [4.0, 4.0, 0.5])
        >>> {k: (round(v, 3), out) for k, (v, out) in got.items()}
        {'share_0.25': (3.86, False), 'gnorm_x0.5': (4.642, False), 'gnorm_1': (21.544, False)}
    """
    vs, ts = [v for v, _ in versions(config)], config.share_targets
    out = {v: lambda_for_share(lambdas, shares, t) for v, t in zip(vs, ts, strict=False)}
    logs = [math.log(g) if g > 0 else math.nan for g in gnorms]
    g0 = gnorms[list(lambdas).index(0.0)]
    for v, level in zip(vs[-2:], (config.gnorm_fraction * g0, config.target_gnorm), strict=True):
        lam = crossing(lambdas, logs, math.log(level)) if level > 0 else math.nan
        out[v] = (lam, math.isnan(lam))
    return out


def _one(config: Config, act: str, lam: float, data: tuple, seed: int) -> dict[str, float]:
    """Train one (activation, lambda) model on ``data`` (train and test tensors); its metrics."""
    xtr, ytr, xte, yte = data
    with seeded(seed):  # torch.manual_seed(seed): the same weights everywhere
        model = build_model(act, config.width)
    res = fit(
        model,
        lambda m, idx: double_backprop_step(m, xtr[idx], ytr[idx], lam),
        # the generator seeded with `seed`: the same batches everywhere
        batches(len(ytr), config.batch_size, seed=seed, steps=config.steps, replacement=True),
        optimizer=torch.optim.Adam(model.parameters(), lr=config.lr),
        backward=False,  # double_backprop_step sets the gradients
    )
    clean, gnorm, fgsm = input_gradient_probe(model, xte, yte, config.fgsm_eps)
    out = {"share": res.mean_log("share"), "ratio": res.mean_log("ratio"), "acc": clean}
    return out | {"fgsm_acc": fgsm, "input_grad_norm": gnorm, "diverged": float(res.diverged)}


def _status(checks: Sequence[Check], floor: float) -> tuple[str, str]:
    """Combined status and qualifier: "small" where supported but some low end <= floor."""
    status = combine([c.status for c in checks])
    small = status == "supported" and not all(c.effect.low > floor for c in checks)
    return status, "small" * small


class DoubleBackprop(Experiment):
    """C3: the lambda each activation needs for the input-gradient penalty to matter."""

    name = "double_backprop"
    title = "Double backpropagation: penalty share of the weight gradient vs lambda (MNIST)"
    claims = ("C3",)
    version: ClassVar[int] = 2  # issue 10: five versions of lambda*, a denser grid
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "n_train": 2000, "n_test": 1000, "steps": 120, "width": 64}
        | {"lambdas": (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)},
        "full": {"seeds": 8},
        "smoke": {"seeds": 2, "n_train": 64, "n_test": 32, "steps": 3, "width": 8}
        | {"batch_size": 16, "lambdas": (0.0, 0.1, 10.0)},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        data = load_mnist_split(seed, config.n_train, config.n_test, context.data_dir)
        lams = [float(v) for v in config.lambdas]
        metrics, rows = {}, []
        todo = list(itertools.product(config.activations, lams))
        for k, (act, lam) in enumerate(todo):
            row = _one(config, act, lam, data, seed)
            metrics |= {key(act, lam, m): v for m, v in row.items()}
            rows.append({"activation": act, "lambda": lam} | row)
            context.progress(k + 1, len(todo))

        def ys(m: str, grid: list[float]) -> dict[str, list[float]]:  # metric m on grid
            return {a: [metrics[key(a, lam, m)] for lam in grid] for a in config.activations}

        share, gnorm = ys("share", lams), ys("input_grad_norm", lams)
        for a in config.activations:
            for v, (lam, out) in lambda_needed(config, lams, share[a], gnorm[a]).items():
                metrics |= {key(a, "lambda", v): lam, key(a, "lambda", v, "outside"): float(out)}
            metrics[key(a, "ratio_at_lambda0")] = metrics[key(a, 0.0, "ratio")]
        pos = [lam for lam in lams if lam > 0]
        series = {c[0]: Series(pos, ys(m, pos), "lambda", c[1], c[2]) for m, c in CURVES.items()}
        return RunResult(metrics=metrics, series=series, tables={"per_lambda": rows})

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, vs, acts = len(results), versions(config), config.activations
        what = f"log10 lambda(ReLU) - log10 lambda(ELU), {vs[0][1]} (paired over seeds)"
        if n == 0 or not {"relu", "elu", "tanh"} <= set(acts):
            reason = "C3 needs runs with relu, elu and tanh"
            return [Verdict.inconclusive("C3", reason, n_seeds=n, effect_name=what)]
        fam, floor = len(OTHERS) * len(vs), math.log10(config.min_ratio)

        def lg(act: str, v: str) -> np.ndarray:  # log10 lambda needed, one per seed
            return np.log10(per_seed(results, act, "lambda", v))

        checks, by_version = [], []
        for v, words in vs:
            for a, name in OTHERS:
                label = f"log10 lambda ReLU/{name} ({words})"
                c = check(label, lg("relu", v), paired=lg(a, v), above=0.0, family=fam)
                note = [c.note, "ratio " + Effect(*(10**x for x in c.effect)).format()]
                low = c.status == "supported" and not c.effect.low > floor
                note += [f"not above the {config.min_ratio:g}x minimum"] * low
                k = sum(
                    int(per_seed(results, b, "lambda", v, "outside").sum()) for b in ("relu", a)
                )
                note += [f"{k} lambda(s) outside the grid"] * (k > 0)
                checks.append(dataclasses.replace(c, note="; ".join(x for x in note if x)))
            status, qual = _status(checks[-len(OTHERS) :], floor)
            by_version.append(f"{words} {status}" + f" ({qual})" * bool(qual))
        need = "; ".join(
            f"{w}: " + ", ".join(f"{a} {10 ** lg(a, v).mean():.3g}" for a in acts) for v, w in vs
        )
        r0 = ", ".join(f"{a} {per_seed(results, a, 'ratio_at_lambda0').mean():.3g}" for a in acts)
        notes = [
            f"Per version: {'; '.join(by_version)}.",
            f"ReLU's f'' is 0 a.e., yet the penalty reaches its weights: |grad R|/|grad L| at "
            f"lambda=0 is {r0}.",
        ]
        head = f"lambda needed (geometric mean over seeds) for {need}. Minimum meaningful "
        head += f"ratio {config.min_ratio:g}x; {fam} checks, Bonferroni-adjusted."
        kw = {"effect_name": what, "preamble": head, "notes": notes}
        return [Verdict.from_checks("C3", checks, qualifier=_status(checks, floor)[1], **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        names = {"share": "penalty share of the weight gradient", "acc": "clean test accuracy",
                 "fgsm": "FGSM test accuracy", "gnorm": "input-gradient norm (test)"}  # fmt: skip
        fig, axes = plots.panels(len(names), ncols=2, width=4.4, height=3.2)
        for i, (ax, (name, title)) in enumerate(zip(axes, names.items(), strict=True)):
            runs = [r.series[name] for r in results]
            ys = {act: [s.ys[act] for s in runs] for act in config.activations}
            plots.curves(ax, runs[0].x, ys, title=title, xlabel="lambda (log)", logx=True,
                         logy=runs[0].logy, legend=i == 1, marker="o", ms=3)  # fmt: skip
            for y in {"share": config.share_targets, "gnorm": (config.target_gnorm,)}.get(name, ()):
                ax.axhline(y, color="gray", ls=":", lw=1)
        caption = (
            "Against lambda (log axis), per activation (line: mean over seeds, band: range): "
            "the share of the weight gradient that comes from the input-gradient penalty "
            f"(dotted: the targets), clean and FGSM (eps {config.fgsm_eps:g}) test accuracy, "
            f"and the mean input-gradient norm (dotted: the target {config.target_gnorm:g})."
        )
        return [Figure(plots.save(fig, Path(out_dir) / "double_backprop_vs_lambda.png"), caption)]
