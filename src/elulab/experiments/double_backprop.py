"""C3: double backpropagation. Does ReLU need a larger lambda than ELU or tanh?

The claim: penalising the input-gradient norm needs ``f''``; ReLU's ``f''`` is zero
almost everywhere, so to reach the same regularisation effect ReLU needs a larger
``lambda`` than ELU or tanh.

Training objective (double backpropagation, Drucker & LeCun 1992), on a batch of B
MNIST images with per-sample losses :math:`\\ell_i`:

.. math:: J(\\theta) = L + \\lambda R, \\qquad L = \\frac1B \\sum_i \\ell_i, \\qquad
    R = \\frac1B \\sum_i \\lVert \\nabla_{x_i} \\ell_i \\rVert^2,

with :math:`\\nabla_x \\ell` computed with ``create_graph=True`` so that
:math:`\\nabla_\\theta R` exists. The *penalty share* of the weight gradient at a step is

.. math:: s = \\frac{\\lambda \\lVert \\nabla_\\theta R \\rVert}
    {\\lVert \\nabla_\\theta L \\rVert + \\lambda \\lVert \\nabla_\\theta R \\rVert} \\in [0, 1],

averaged over the training steps. For ReLU, :math:`\\nabla_x \\ell = W_1^\\top D_1 W_2^\\top
D_2 \\cdots (p - y)` with 0/1 diagonal masks D: ``f''`` never appears, yet R depends on
every weight matrix (linearly through each W, and through the softmax p), so
:math:`\\nabla_\\theta R \\neq 0`. The experiment measures this rather than assuming it.

Measured per activation (ReLU, ELU, tanh, GELU) and ``lambda`` of a grid (Adam via
:func:`elulab.train.fit`, step :func:`penalty_step`, batches drawn with replacement; one
seed gives the same weights and batches to all): the penalty share, test accuracy, mean
input-gradient norm on test images, FGSM accuracy at ``fgsm_eps`` (``<act>/<lambda>/...``).
``lambda*``, where ``s`` reaches ``target_share``, is read off by linear interpolation of
``logit(s)`` against ``log lambda`` (:func:`lambda_for_share`; for fixed weights
``logit(s) = log lambda + log(|grad R| / |grad L|)``, slope 1; outside the grid it is
extrapolated with slope 1 and flagged).

Verdict (C3): two checks (:func:`elulab.lab.verdicts.check`, 95% t-intervals paired
over seeds): ``log10 lambda*(ReLU) - log10 lambda*(ELU)`` above 0, and the same against
tanh; combined by :func:`elulab.lab.stats.combine` (both supported: supported, both
contradicted: not supported, one of each: mixed, else inconclusive).

References:
    Improving generalization performance using double backpropagation (Drucker,
    LeCun, 1992), IEEE Trans. Neural Networks 3(6).

    Explaining and Harnessing Adversarial Examples (Goodfellow, Shlens, Szegedy, 2014),
    arXiv:1412.6572 (FGSM).

    Improving the Adversarial Robustness and Interpretability of Deep Neural Networks
    by Regularizing their Input Gradients (Ross, Doshi-Velez, 2017), arXiv:1711.09404.
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

from ..data.mnist import load_mnist_split
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.verdicts import Verdict, check, key, per_seed
from ..train import batches, build_mlp, fit, seeded

__all__ = ["Config", "DoubleBackprop", "build_model", "lambda_for_share", "penalty_step"]

ACTIVATIONS = ("relu", "elu", "tanh", "gelu")
LAMBDAS = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
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
    lambdas: tuple[float, ...] = param(LAMBDAS, "penalty weights lambda", ge=0.0, nonempty=True)
    target_share: float = param(0.25, "penalty share that defines lambda*", gt=0.0, lt=1.0)
    n_train: int = param(6000, "training images (of the 6000 in the split)", ge=1, le=6000)
    n_test: int = param(2000, "test images (of the 2000 in the split)", ge=1, le=2000)
    steps: int = param(600, "Adam steps per (activation, lambda)", ge=1)
    batch_size: int = param(64, "minibatch size (images, drawn with replacement)", ge=1)
    lr: float = param(1e-3, "Adam learning rate", gt=0.0)
    width: int = param(128, "hidden units per layer of the MLP 784-w-w-10", ge=1)
    fgsm_eps: float = param(0.1, "FGSM step (pixels in [0, 1])", ge=0.0)
    seeds: int = param(5, "independent seeds", ge=1)

    def validate(self) -> None:
        if not any(lam > 0 for lam in self.lambdas):
            raise ValueError(f"lambdas must hold at least one value > 0, got {self.lambdas}")


def build_model(activation: str, width: int) -> nn.Sequential:
    """The MLP 784-w-w-10 (Flatten first), PyTorch's default initialisation."""
    mlp = build_mlp(784, 10, depth=2, width=width, activation=activation, init="torch")
    return nn.Sequential(nn.Flatten(), *mlp)


def penalty_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """One double-backprop gradient: sets ``p.grad = grad L + lam * grad R``.

    ``grad L`` and ``grad R`` come from two ``torch.autograd.grad`` calls, so their
    norms can be read (one ``backward`` of ``J`` would sum them unseen); use it as the
    ``loss_fn`` of :func:`elulab.train.fit` with ``backward=False``.

    Returns:
        ``(L, logs)``: the task loss (detached) and the numbers ``penalty`` (R),
        ``grad_task``, ``grad_penalty`` (norms over all parameters), ``share``, ``ratio``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    x = x.detach().requires_grad_(True)
    losses = nn.functional.cross_entropy(model(x), y, reduction="none")
    loss = losses.mean()
    # the sum gives each sample its own gradient d l_i / d x_i
    (gx,) = torch.autograd.grad(losses.sum(), x, create_graph=True)
    penalty = gx.pow(2).flatten(1).sum(1).mean()
    g_task = torch.autograd.grad(loss, params, retain_graph=True)
    g_pen = torch.autograd.grad(penalty, params, allow_unused=True)
    g_pen = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_pen, strict=True)]
    for p, gt, gp in zip(params, g_task, g_pen, strict=True):
        p.grad = gt + lam * gp if lam else gt.clone()
    nt, npen = (math.sqrt(sum(float(g.pow(2).sum()) for g in gs)) for gs in (g_task, g_pen))
    total = nt + lam * npen
    logs = {"penalty": float(penalty.detach()), "grad_task": nt, "grad_penalty": npen}
    logs["share"] = lam * npen / total if total > 0 else 0.0
    logs["ratio"] = npen / nt if nt > 0 else math.nan
    return loss.detach(), logs


def lambda_for_share(
    lambdas: Sequence[float], shares: Sequence[float], target: float
) -> tuple[float, bool]:
    """``lambda`` at which the penalty share reaches ``target``.

    Linear interpolation of ``logit(share)`` in ``log(lambda)`` between the grid points
    that bracket ``target`` (``lambda > 0``, ``0 < share < 1``); outside the grid, a line
    of slope 1 through the nearest point (exact for fixed weights).

    Returns:
        ``(lambda*, extrapolated)``.

    Example:
        >>> lam, extra = lambda_for_share([0.1, 1.0], [0.1, 0.5], 0.5)
        >>> round(lam, 6), extra
        (1.0, False)
    """
    pts = sorted(
        (math.log(lam), math.log(s / (1.0 - s)))  # (log lambda, logit share)
        for lam, s in zip(lambdas, shares, strict=True)
        if lam > 0 and 0.0 < s < 1.0 and math.isfinite(s)
    )
    if not pts:
        return math.nan, True
    t = math.log(target / (1.0 - target))
    for (l0, s0), (l1, s1) in itertools.pairwise(pts):
        if min(s0, s1) <= t <= max(s0, s1) and s1 != s0:
            return math.exp(l0 + (t - s0) * (l1 - l0) / (s1 - s0)), False
    nearest = min(pts, key=lambda p: abs(p[1] - t))
    return math.exp(nearest[0] + (t - nearest[1])), abs(nearest[1] - t) > 1e-12


def _robustness(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float
) -> tuple[float, float, float]:
    """Clean accuracy, mean per-sample ``|grad_x l|`` and FGSM accuracy (pixels in [0, 1])."""
    model.eval()
    xr = x.detach().clone().requires_grad_(True)
    out = model(xr)
    losses = nn.functional.cross_entropy(out, y, reduction="none")
    (gx,) = torch.autograd.grad(losses.sum(), xr)
    clean = float((out.detach().argmax(1) == y).float().mean())
    gnorm = float(gx.flatten(1).norm(dim=1).mean())
    with torch.no_grad():
        adv = (x + eps * gx.sign()).clamp(0.0, 1.0)
        fgsm = float((model(adv).argmax(1) == y).float().mean())
    model.train()
    return clean, gnorm, fgsm


def _one(config: Config, act: str, lam: float, data: tuple, seed: int) -> dict[str, float]:
    """Train one (activation, lambda) model on ``data`` (train and test tensors); its metrics."""
    xtr, ytr, xte, yte = data
    with seeded(seed):  # torch.manual_seed(seed): the same weights everywhere
        model = build_model(act, config.width)
    res = fit(
        model,
        lambda m, idx: penalty_step(m, xtr[idx], ytr[idx], lam),
        # the generator seeded with `seed`: the same batches everywhere
        batches(len(ytr), config.batch_size, seed=seed, steps=config.steps, replacement=True),
        optimizer=torch.optim.Adam(model.parameters(), lr=config.lr),
        backward=False,  # penalty_step sets the gradients
    )
    clean, gnorm, fgsm = _robustness(model, xte, yte, config.fgsm_eps)
    out = {"share": res.mean_log("share"), "ratio": res.mean_log("ratio"), "acc": clean}
    return out | {"fgsm_acc": fgsm, "input_grad_norm": gnorm, "diverged": float(res.diverged)}


class DoubleBackprop(Experiment):
    """C3: the lambda each activation needs for the input-gradient penalty to matter."""

    name = "double_backprop"
    title = "Double backpropagation: penalty share of the weight gradient vs lambda (MNIST)"
    claims = ("C3",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "n_train": 2000, "n_test": 1000, "steps": 120, "width": 64}
        | {"lambdas": (0.0, 0.01, 0.1, 1.0, 10.0)},
        "full": {"seeds": 5},
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
        for act in config.activations:
            shares = [metrics[key(act, lam, "share")] for lam in lams]
            lam_star, extra = lambda_for_share(lams, shares, config.target_share)
            metrics[key(act, "lambda_star")] = lam_star
            metrics[key(act, "lambda_star_extrapolated")] = float(extra)
            # how strongly the penalty reaches the weights without it: |grad R| / |grad L|
            metrics[key(act, "ratio_at_lambda0")] = metrics[key(act, lams[0], "ratio")]
        pos = [lam for lam in lams if lam > 0]

        def ys(m: str) -> dict[str, list[float]]:  # metric m against lambda > 0
            return {a: [metrics[key(a, lam, m)] for lam in pos] for a in config.activations}

        series = {c[0]: Series(pos, ys(m), "lambda", c[1], c[2]) for m, c in CURVES.items()}
        return RunResult(metrics=metrics, series=series, tables={"per_lambda": rows})

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, what = len(results), "log10 lambda*(ReLU) - log10 lambda*(ELU) (paired over seeds)"
        if n == 0 or not {"relu", "elu", "tanh"} <= set(config.activations):
            reason = "C3 needs runs with relu, elu and tanh"
            return [Verdict.inconclusive("C3", reason, n_seeds=n, effect_name=what)]

        def log_star(act: str) -> np.ndarray:  # log10 lambda*, one per seed
            return np.array([math.log10(v) for v in per_seed(results, act, "lambda_star")])

        checks = [
            check(f"log10 lambda* ReLU - {name}", log_star("relu"), paired=log_star(a), above=0.0)
            for a, name in (("elu", "ELU"), ("tanh", "tanh"))
        ]
        acts = config.activations
        star = ", ".join(f"{a} {10 ** log_star(a).mean():.3g}" for a in acts)
        r0 = {a: per_seed(results, a, "ratio_at_lambda0").mean() for a in acts}
        ratio0 = ", ".join(f"{a} {v:.3g}" for a, v in r0.items())
        extra = any(per_seed(results, a, "lambda_star_extrapolated").any() for a in acts)
        notes = [
            f"ReLU's f'' is 0 a.e., yet the penalty reaches its weights: |grad R|/|grad L| at "
            f"lambda=0 is {ratio0}." + (" Some lambda* were extrapolated beyond the grid." * extra)
        ]
        head = f"lambda reaching a penalty share of {config.target_share:g} (geometric mean "
        head += f"over seeds): {star}."
        return [Verdict.from_checks("C3", checks, effect_name=what, preamble=head, notes=notes)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        names = ("share", "acc", "fgsm", "gnorm")
        fig, axes = plots.panels(len(names), ncols=len(names), width=4.0, height=3.5)
        for ax, name in zip(axes, names, strict=True):
            runs = [r.series[name] for r in results]
            for act in config.activations:
                plots.band(ax, runs[0].x, [s.ys[act] for s in runs], act, marker="o", ms=3)
            ax.set(xscale="log", yscale="log" if runs[0].logy else "linear")
            ax.set(xlabel="lambda", ylabel=runs[0].ylabel)
            if name == "share":
                ax.axhline(config.target_share, color="gray", ls=":", lw=1)
        axes[0].legend(fontsize=7)
        caption = (
            "Against lambda, per activation (line: mean over seeds, band: range): the share of "
            "the weight gradient that comes from the input-gradient penalty (dotted: the "
            f"target {config.target_share:g}), clean and FGSM (eps {config.fgsm_eps:g}) test "
            "accuracy, and the mean input-gradient norm."
        )
        return [Figure(plots.save(fig, Path(out_dir) / "double_backprop_vs_lambda.png"), caption)]
