"""C11 (part a): the exact infinite-width ELU kernels against finite networks.

The claim (C11, the source's section on theory): at infinite width a network is described
by a deterministic kernel (NNGP, NTK) that depends on the activation; ELU's can be derived
and explains learning and trainability. The kernels of :mod:`elulab.theory.kernels` meet
finite networks on MNIST images scaled to ``|x|^2 = d``, per activation (ELU, ReLU: closed
form; GELU: :func:`~elulab.theory.kernels.gauss_hermite_nngp_and_ntk`).

(i) Random MLPs (``depth`` hidden layers, width n, NTK parameterisation ``h = sigma_w W a /
sqrt(n_in) + sigma_b b``, W, b standard normal): the relative Frobenius error (RMS over
``draws``) of the empirical NNGP ``sigma_w^2 f(h_L) f(h_L)^T / n + sigma_b^2`` against
:func:`~elulab.theory.kernels.nngp` falls as ``n^-1/2`` (central limit theorem); the log-log
slope on width is fitted per seed. (ii) The empirical NTK ``J J^T`` of the same networks
(:func:`empirical_kernels`) against :func:`~elulab.theory.kernels.ntk`. (iii) neural-tangents:
``benchmarks/bench_kernels.py``. (iv) NNGP and NTK kernel regression on ``n_train`` images
against finite MLPs of the same depth and prior (Adam, cross-entropy).
(v) ELU MLPs with weight variance ``ratio`` x the edge of chaos, after ``eoc_steps`` of SGD:
Schoenholz et al. (2017) predict training up to about ``6 xi_c`` layers.

Verdict (Config thresholds, one Bonferroni family), per activation: NNGP slope within
``slope_margin`` of -1/2 (two one-sided checks); NTK error at the largest width below
``ntk_tol``; NNGP and NTK regression accuracy minus the net's above ``-gap_margin``
(paired). Per ELU depth cell: depth <= ``6 xi_c / band`` trains (accuracy above
``trainable_acc``), depth >= ``6 xi_c band`` does not (between: reported). All checks
supported: supported; some supported and some not: mixed; otherwise inconclusive.

References:
    Lee et al., Deep Neural Networks as Gaussian Processes, ICLR 2018, arXiv:1711.00165;
    Jacot et al., Neural Tangent Kernel, NeurIPS 2018, arXiv:1806.07572; Arora et al., On
    Exact Computation with an Infinitely Wide Neural Net, NeurIPS 2019, arXiv:1904.11955;
    Schoenholz et al., Deep Information Propagation, ICLR 2017, arXiv:1611.01232.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import torch
from torch import nn
from torch.optim import SGD, Adam

from ..data.mnist import load_mnist_split
from ..functional import activation_function
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import combine, mean_ci
from ..lab.verdicts import Verdict, check, key, per_seed, seed_mean, within
from ..nn import get_activation
from ..theory.kernels import KERNEL_ACTIVATIONS, gauss_hermite_nngp_and_ntk, nngp_and_ntk
from ..theory.meanfield import edge_of_chaos, mean_field
from ..train import accuracy, batches, fit, generator, seeded

__all__ = ["Config", "EluKernels", "empirical_kernels", "kernel_accuracy", "predicted"]

ACTIVATIONS = ("elu", "relu", "gelu")
KINDS = ("nngp", "ntk")
KR = {"nngp": "kernel NNGP", "ntk": "kernel NTK", "net": "trained net"}  # arms: plot labels
TITLES = {"kr": "kernel regression vs finite nets", "eoc": "deep ELU nets, weight_var / edge"}


@dataclass(frozen=True)
class Config:
    """Settings of the kernel experiment (see the module docstring)."""

    activations: tuple[str, ...] = param(ACTIVATIONS, "activations", choices=ACTIVATIONS)
    weight_var: float = param(2.0, "sigma_w^2 of the networks and kernels of (i)-(iv)", gt=0)
    bias_var: float = param(0.1, "sigma_b^2 of (i)-(iv) (> 0: the bias terms count)", ge=0)
    depth: int = param(2, "hidden layers of the random networks of (i), (ii)", ge=1)
    widths: tuple[int, ...] = param((64, 128, 256, 512, 1024, 2048, 4096), "widths", ge=2)
    draws: int = param(4, "random networks per width and seed (RMS error over them)", ge=1)
    n_points: int = param(16, "images the kernels of (i), (ii) are compared on", ge=2)
    gh_nodes: int = param(32, "Gauss-Hermite nodes per dimension, GELU (rel. error < 1e-5)", ge=4)
    slope_margin: float = param(
        0.1, "allowed |slope + 1/2| (a 1.5x error ratio over 64..4096)", gt=0
    )
    ntk_tol: float = param(0.1, "bound on the NTK error at the largest width (10%)", gt=0)
    n_train: int = param(1000, "training images of (iv), (v) (of 6000)", ge=10, le=6000)
    n_test: int = param(1000, "test images of (iv), (v) (of 2000)", ge=10, le=2000)
    kr_depth: int = param(1, "hidden layers of the kernels and networks of (iv)", ge=1)
    kr_width: int = param(512, "hidden width of the finite networks of (iv)", ge=1)
    kr_steps: int = param(600, "Adam steps of the networks of (iv) (batch 64)", ge=1)
    kr_lr: float = param(1e-3, "Adam learning rate of (iv)", gt=0)
    ridge: float = param(1e-3, "kernel ridge, x the mean diagonal (near-interpolation)", gt=0)
    gap_margin: float = param(0.03, "kernel accuracy may trail the net's by this", gt=0, lt=1)
    eoc_bias_var: float = param(0.05, "sigma_b^2 of the deep ELU nets of (v)", gt=0)
    eoc_ratios: tuple[float, ...] = param((0.5, 0.7, 0.85, 1.0, 1.2), "sigma_w^2 / edge", gt=0)
    eoc_depths: tuple[int, ...] = param((4, 8, 16, 32, 64), "depths of the nets of (v)", ge=1)
    eoc_width: int = param(64, "hidden width of the nets of (v)", ge=1)
    eoc_steps: int = param(400, "SGD steps of (v) (batch 64, momentum 0.9, clip 1)", ge=1)
    eoc_lr: float = param(1e-2, "SGD learning rate of (v)", gt=0)
    boundary: float = param(6.0, "trainable depth / xi_c (Schoenholz et al.: 6)", gt=0)
    band: float = param(2.0, "cells within this factor of the boundary: not checked", ge=1)
    trainable_acc: float = param(0.2, "accuracy that counts as trained (chance 0.1)", gt=0, lt=1)
    seeds: int = param(6, "independent seeds (MNIST split, networks, batches)", ge=1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows flattened to float64 and scaled to ``|x|^2 = d`` (one kernel diagonal for all)."""
    return nn.functional.normalize(x.flatten(1).double(), dim=1) * math.sqrt(x[0].numel())


def exact_kernels(c: Config, act: str, x1: Any, x2: Any, depth: int) -> tuple[np.ndarray, ...]:
    """``(NNGP, NTK)`` of the infinite network: closed form where there is one, else quadrature."""
    wv, bv = c.weight_var, c.bias_var
    if act in KERNEL_ACTIVATIONS:
        return nngp_and_ntk(x1, x2, depth, act, weight_var=wv, bias_var=bv)
    return gauss_hermite_nngp_and_ntk(x1, x2, depth, act, wv, bv, nodes=c.gh_nodes)


def random_network(sizes: Sequence[int], gen: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
    """Standard normal float64 ``(W, b)`` per layer of an MLP with layer sizes ``sizes``."""
    draw = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    return [(draw(m, n), draw(m)) for n, m in itertools.pairwise(sizes)]


def empirical_kernels(
    params: list[tuple[torch.Tensor, ...]], x: torch.Tensor, act: str, wv: float, bv: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Empirical ``(NNGP, NTK)`` of the scalar MLP ``params`` in NTK parameterisation: NNGP
    ``wv a_L a_L^T / n_L + bv`` (output covariance given the hidden layers), NTK ``sum_l (wv
    a_l a_l^T / n_l + bv) * (d_l d_l^T)``, ``a_0 = x``, ``d_l = df/dh_{l+1}`` by one backward
    pass: ``J J^T`` over all weights and biases (tested against ``torch.func.jacrev``)."""
    f, feats, pres = activation_function(act), [], []
    with torch.enable_grad():
        a = x
        for i, (w, b) in enumerate(params):
            h = math.sqrt(wv) * a @ w.T / math.sqrt(a.shape[1]) + math.sqrt(bv) * b
            pres.append(h.detach().requires_grad_() if i == 0 else h)
            feats.append(a.detach())
            a = f(pres[-1])
        grads = torch.autograd.grad(pres[-1].sum(), pres[:-1])
    deltas = [*grads, torch.ones_like(pres[-1])]
    gram = [wv * u @ u.T / u.shape[1] + bv for u in feats]
    return gram[-1], sum(g * (d @ d.T) for g, d in zip(gram, deltas, strict=True))


def mlp(d: int, depth: int, width: int, act: str, wv: float, bv: float) -> nn.Sequential:
    """``depth`` x (Linear, act), Linear(width, 10); weights N(0, wv / n_in), biases N(0, bv)."""
    lins = [nn.Linear(n, m) for n, m in itertools.pairwise([d] + [width] * depth + [10])]
    for lin in lins:
        nn.init.normal_(lin.weight, std=math.sqrt(wv / lin.in_features))
        nn.init.normal_(lin.bias, std=math.sqrt(bv))
    return nn.Sequential(*(x for lin in lins[:-1] for x in (lin, get_activation(act))), lins[-1])


def _train(net: nn.Module, data: tuple, gen: Any, steps: int, opt: Any, **kw: Any) -> float:
    """Train ``net`` by ``opt(**kw)`` on cross-entropy (batch 64, SGD clipped at norm 1)."""
    (xtr, ytr, xte, yte), clip = data, 1.0 if opt is SGD else None
    idx = batches(len(ytr), 64, generator=gen, steps=steps, replacement=True)
    fit(net, lambda m, i: nn.functional.cross_entropy(m(xtr[i]), ytr[i]), idx,
        optimizer=opt(net.parameters(), **kw), clip_grad_norm=clip)  # fmt: skip
    return accuracy(net, xte, yte)


def kernel_accuracy(ktr: np.ndarray, kte: np.ndarray, ytr: Any, yte: Any, ridge: float) -> float:
    """Test accuracy of the kernel ridge predictor ``K_* (K + ridge mean(diag K) I)^-1 Y``,
    ``Y`` the one-hot training labels minus 1/10."""
    reg = ridge * float(np.mean(np.diag(ktr))) * np.eye(len(ytr))
    coef = scipy.linalg.solve(ktr + reg, np.eye(10)[ytr] - 0.1, assume_a="pos")
    return float(np.mean(np.argmax(kte @ coef, axis=1) == np.asarray(yte)))


def predicted(c: Config) -> dict[tuple[float, int], tuple[float, float, str]]:
    """Per (ratio, depth) of (v): ``(weight_var, xi_c, trainable | untrainable | boundary)``."""
    wv0, out = float(edge_of_chaos("elu", c.eoc_bias_var).weight_var), {}
    for r in c.eoc_ratios:
        # the input length is wv |x|^2/d + bv = wv + bv for the scaled images
        xi = mean_field("elu", r * wv0, c.eoc_bias_var, q0=r * wv0 + c.eoc_bias_var).xi_c
        for d in c.eoc_depths:
            cls = "untrainable" if d >= c.boundary * xi * c.band else "boundary"
            out[r, d] = (r * wv0, xi, "trainable" if d <= c.boundary * xi / c.band else cls)
    return out


class EluKernels(Experiment):
    """C11 (a): exact NNGP/NTK vs finite networks; mean-field trainable depth of ELU nets."""

    name = "elu_kernels"
    title = "Exact ELU kernels vs finite networks (Monte Carlo, empirical NTK, MNIST) and depth"
    claims = ("C11",)
    version: ClassVar[int] = 1
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "widths": (64, 256, 1024), "draws": 2, "n_train": 300}
        | {"n_test": 500, "kr_width": 256, "kr_steps": 300, "eoc_steps": 200}
        | {"eoc_ratios": (0.5, 1.0), "eoc_depths": (4, 40)},
        "full": {"seeds": 6},
        "smoke": {"seeds": 2, "widths": (16, 32), "draws": 1, "n_points": 4, "n_train": 20}
        | {"n_test": 20, "kr_width": 8, "kr_steps": 3, "eoc_ratios": (0.5, 1.0)}
        | {"eoc_depths": (2, 40), "eoc_width": 8, "eoc_steps": 2, "gh_nodes": 8},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        c, acts, m = config, config.activations, {}
        xtr, ytr, xte, yte = load_mnist_split(seed, c.n_train, c.n_test, context.data_dir)
        xtr, xte = normalise(xtr), normalise(xte)
        pts = xtr[: c.n_points]
        exact = {a: exact_kernels(c, a, pts.numpy(), None, c.depth) for a in acts}
        err = {(a, w, k): [] for a, w, k in itertools.product(acts, c.widths, KINDS)}
        gen = generator(seed, "mc")
        for w, _ in itertools.product(c.widths, range(c.draws)):
            params = random_network([pts.shape[1]] + [w] * c.depth + [1], gen)
            for a in acts:
                for k, emp, ex in zip(KINDS, empirical_kernels(params, pts, a, c.weight_var,
                                      c.bias_var), exact[a], strict=True):  # fmt: skip
                    err[a, w, k].append(np.linalg.norm(emp.numpy() - ex) / np.linalg.norm(ex))
        series = {}
        for a, k in itertools.product(acts, KINDS):
            rms = [math.sqrt(np.mean(np.square(err[a, w, k]))) for w in c.widths]
            m |= {key("mc", a, w, k + "_err"): e for w, e in zip(c.widths, rms, strict=True)}
            m[key("mc", a, k + "_slope")] = float(np.polyfit(np.log(c.widths), np.log(rms), 1)[0])
            series.setdefault(k, Series(list(c.widths), {}, "width", "error", True)).ys[a] = rms
        data = (xtr.float(), ytr, xte.float(), yte)
        for a in acts:
            ktt = exact_kernels(c, a, xtr.numpy(), None, c.kr_depth)
            kst = exact_kernels(c, a, xte.numpy(), xtr.numpy(), c.kr_depth)
            for i, k in enumerate(KINDS):
                m[key("kr", a, k + "_acc")] = kernel_accuracy(ktt[i], kst[i], ytr, yte, c.ridge)
            with seeded(seed, "init", a):
                net = mlp(xtr.shape[1], c.kr_depth, c.kr_width, a, c.weight_var, c.bias_var)
            g = generator(seed, "kr", a)
            m[key("kr", a, "net_acc")] = _train(net, data, g, c.kr_steps, Adam, lr=c.kr_lr)
        kr = {n: [m[key("kr", a, v + "_acc")] for a in acts] for v, n in KR.items()}
        series["kr"] = Series(list(range(len(acts))), kr, "activation", "MNIST test accuracy")
        ys: dict[str, list[float]] = {}
        for (r, depth), (wv, xi, _) in predicted(c).items():
            with seeded(seed, "init", "eoc", f"{r:g}", depth):
                net = mlp(xtr.shape[1], depth, c.eoc_width, "elu", wv, c.eoc_bias_var)
            g = generator(seed, "eoc")  # the same batches in every cell
            acc = _train(net, data, g, c.eoc_steps, SGD, lr=c.eoc_lr, momentum=0.9)
            m |= {key("eoc", r, depth, "acc"): acc, key("eoc", r, "xi_c"): xi}
            ys.setdefault(f"{r:g} x edge", []).append(acc)
        series["eoc"] = Series([float(d) for d in c.eoc_depths], ys, "depth", "test accuracy")
        return RunResult(metrics=m, series=series)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        c, acts = config, config.activations
        what = f"{acts[0]}: log-log slope of the NNGP Monte Carlo error on width (theory -1/2)"
        if not results:
            return [Verdict.inconclusive("C11", "no runs", effect_name=what)]
        cells = {rd: p for rd, p in predicted(c).items() if p[2] != "boundary"}
        fam, big, groups = 5 * len(acts) + len(cells), max(c.widths), {}
        for a in acts:
            slope = per_seed(results, "mc", a, "nngp_slope")
            g = within(f"{a} NNGP error slope + 1/2", slope + 0.5, c.slope_margin, family=fam)
            ntk = per_seed(results, "mc", a, big, "ntk_err")
            g.append(check(f"{a} NTK error at width {big}", ntk, below=c.ntk_tol, family=fam))
            net = per_seed(results, "kr", a, "net_acc")
            for k in KINDS:
                acc = per_seed(results, "kr", a, k + "_acc")
                lab = f"{a} {k.upper()} regression - net accuracy"
                g.append(check(lab, acc, paired=net, above=-c.gap_margin, family=fam))
            groups[a] = g
        for (r, d), (_, xi, cls) in cells.items():
            side = {"above" if cls == "trainable" else "below": c.trainable_acc}
            lab = f"ELU x{r:g} depth {d} accuracy ({cls}: 6 xi_c = {c.boundary * xi:.3g})"
            acc = per_seed(results, "eoc", r, d, "acc")
            groups.setdefault("depth", []).append(check(lab, acc, family=fam, **side))
        checks = [x for g in groups.values() for x in g]
        where = "; ".join(f"{a} {combine([x.status for x in g])}" for a, g in groups.items())
        mean = lambda *p: f"{seed_mean(results, *p):.3g}"  # noqa: E731
        accs = "; ".join(a + "".join(f" {k} {mean('kr', a, k + '_acc')}" for k in KR) for a in acts)
        notes = [f"By part: {where}.", f"MNIST test accuracy (mean over seeds): {accs}."]
        eff = mean_ci(per_seed(results, "mc", acts[0], "nngp_slope"), 1 - 0.05 / fam)
        kw = {"effect": eff, "effect_name": what, "notes": notes}
        return [Verdict.from_checks("C11", checks, preamble=f"{fam} checks, Bonferroni.", **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        c = config
        fig, axes = plots.panels(4, ncols=2, width=4.4, height=3.2)
        for ax, k in zip(axes, (*KINDS, "kr", "eoc"), strict=True):
            runs = [r.series[k] for r in results]
            ys = {a: [s.ys[a] for s in runs] for a in runs[0].ys}
            plots.curves(ax, runs[0].x, ys, title=TITLES.get(k, f"empirical {k.upper()} vs exact"),
                         xlabel=runs[0].xlabel, ylabel=runs[0].ylabel, logx=k in KINDS,
                         logy=runs[0].logy, marker="o", ms=3)  # fmt: skip
        for ax in axes[:2]:
            ref = axes[0].lines[0].get_ydata()[0] * np.sqrt(c.widths[0] / np.asarray(c.widths))
            ax.plot(c.widths, ref, color="gray", ls=":", lw=1)
        axes[2].set(xticks=range(len(c.activations)), xticklabels=c.activations)
        axes[3].axhline(c.trainable_acc, color="gray", ls=":", lw=1)
        caption = (
            "Top: relative Frobenius error of the empirical NNGP and NTK of random MLPs against "
            "the exact kernels (mean over seeds, band: range; dotted: slope -1/2). Bottom: MNIST "
            "test accuracy of kernel regression and finite nets per activation; of deep ELU nets "
            f"after short SGD per weight variance / edge of chaos (dotted: {c.trainable_acc:g})."
        )
        return [Figure(plots.save(fig, Path(out_dir) / "elu_kernels.png"), caption)]
