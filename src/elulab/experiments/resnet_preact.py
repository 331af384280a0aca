"""C4: pre- vs post-activation ResNets. Does the identity path keep the gradient?

The claim (C4): pre-activation blocks (BN -> ELU -> conv ...; nothing after the
addition) keep the identity gradient path, :math:`\\partial L/\\partial x_l = \\partial L/
\\partial x_{l+1}(I + \\partial F/\\partial x_l)`; post-activation blocks,
:math:`x_{l+1} = f(x_l + F(x_l))`, multiply that path by :math:`f'(\\cdot) < 1` on
negatives, so gradients decay with depth; pre-activation keeps deep nets trainable.

At initialisation (MLP ResNets, :class:`elulab.nn.ResNet`, on a batch of standardised
MNIST training images, batch norm in train mode): per depth D (blocks), the gain
:math:`g_D = |\\partial L/\\partial x_0| / |G|` of the trunk for :math:`L = \\langle G, x_D
\\rangle`, :math:`G \\sim N(0, I)`, in log10, for pre/post, ELU/ReLU, BN/none (without BN
the branch is scaled by :math:`1/\\sqrt D`); and the identity-path gain (branch
detached, :func:`elulab.nn.identity_path_only`): 1 for pre, :math:`|\\prod_l \\mathrm{diag}
f'(z_l) G|/|G|` for post. Two predictions of the latter: *mean field*
:math:`\\prod_l E[f'(z_l)^2]^{1/2}`, each :math:`z_l` Gaussian with the mean and variance
of :math:`x_l + sF(x_l)` propagated by :func:`elulab.theory.gaussian_moments` (layers
independent); *chain*: one unit at infinite width, :math:`z_l = x_l + s e_l`,
:math:`x_{l+1} = f(z_l)`, :math:`e_l \\sim N(0, v_F)` (:math:`v_F = 1` with BN), where
:math:`f'` of a unit stays correlated along depth, :math:`E[\\prod_l f'(z_l)^2]^{1/2}` by
Monte Carlo. Trainability: conv ResNets of 6n+2 layers with BN (``train_depths``) on MNIST
(the 10,000 images split 60/20/20 per seed: train, validation (curves), test), SGD with
momentum, the same batches and budget for every arm: test accuracy and loss curves.

Verdict, per setting, t-intervals over seeds, Bonferroni over all checks. Per
(activation, norm): (a) pre keeps the path: log10 :math:`g_{pre}(D_{max})` above log10
``keep_floor``; (b) post decays with depth: log10 :math:`g_{post}(D_{max}) - \\log_{10}
g_{post}(D_{min})` below :math:`-\\log_{10}` ``decay_factor``; (c) the mechanism, its
identity path decays: log10 identity-path gain at :math:`D_{max}` below the same. Per
activation: (d) test accuracy pre - post of the deepest net above ``acc_margin`` points.

References:
    Identity Mappings in Deep Residual Networks (He, Zhang, Ren, Sun, 2016),
    arXiv:1603.05027. Deep Residual Networks with Exponential Linear Unit (Shah et al.,
    2016), arXiv:1604.04112.
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
import torch.nn.functional as F

from ..data.mnist import load_mnist, split_indices
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import combine
from ..lab.verdicts import Check, Verdict, check, key, per_seed
from ..nn import ACTIVATIONS, ResNet, trunk_gain
from ..theory.residual import post_path_chain, post_path_meanfield
from ..train import batches, fit, generator, seeded

__all__ = ["Config", "ResNetPreact", "scan_one", "train_one"]

KINDS, NORMS = ("pre", "post"), ("batch", "none")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # pixel mean and std of MNIST: standardised inputs
CURVES = {"pre": ("pre", "gain"), "post": ("post", "gain"), "post: identity path only": ("post", "identity"),
          "mean-field prediction": ("post", "mf"), "chain prediction": ("post", "chain")}  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Settings of the residual-gradient experiment (see the module docstring)."""

    activations: tuple[str, ...] = param(
        ("elu", "relu"), "activations f", choices=ACTIVATIONS, nonempty=True
    )
    norms: tuple[str, ...] = param(NORMS, "branch norms at init", choices=NORMS, nonempty=True)
    scan_depths: tuple[int, ...] = param(
        (1, 2, 5, 10, 20, 50, 100, 200), "blocks D at init (smallest D_min, largest D_max)", ge=1
    )
    scan_width: int = param(256, "units per block of the MLP ResNets at init", ge=1)
    scan_batch: int = param(128, "MNIST training images in the init batch", ge=2)
    chains: int = param(20000, "Monte Carlo units of the chain prediction", ge=100)
    keep_floor: float = param(
        0.5,
        "pre keeps the path: gain at D_max above this (its identity path alone gives exactly "
        "1: losing half would be a loss of the path)",
        gt=0.0,
        lt=1.0,
    )
    decay_factor: float = param(
        2.0,
        "decays: by more than this factor over the depths (a factor 2 halves an SGD step; the "
        "seed spread at init is a few percent)",
        gt=1.0,
    )
    train_depths: tuple[int, ...] = param(
        (20, 56, 110), "layers 6n+2 of the trained conv ResNets with BN (largest: deepest)", ge=8
    )
    channels: tuple[int, ...] = param(
        (8, 16, 32), "channels of the 3 stages (CIFAR ResNet: 16/32/64, halved for 2 cores)", ge=1
    )
    n_train: int = param(6000, "training images (of the 6000 in the split)", ge=1, le=6000)
    n_val: int = param(500, "validation images for the loss curves (of 2000)", ge=1, le=2000)
    epochs: int = param(3, "training epochs", ge=1)
    batch_size: int = param(128, "minibatch size", ge=1)
    lr: float = param(0.05, "SGD learning rate (momentum 0.9), the same for every arm", gt=0.0)
    eval_every: int = param(20, "steps between validation losses (and train-loss windows)", ge=1)
    acc_margin: float = param(
        0.0,
        "pre - post test accuracy (points) of the deepest net above this: pre trains better "
        "(He et al. 2016b: 0.24 points at 110 layers on CIFAR-10, 2.7 at 1001)",
    )
    seeds: int = param(6, "independent seeds (split, weights, batches; paired across arms)", ge=1)

    def validate(self) -> None:
        if any((d - 2) % 6 for d in self.train_depths) or len(self.channels) != 3:
            raise ValueError(f"train_depths must be 6n+2 with 3 channels, got {self.train_depths}")


def scan_one(config: Config, act: str, norm: str, depth: int, images: torch.Tensor, seed: int) -> dict[str, float]:  # fmt: skip
    """At init, one depth: log10 gains (full, identity path) of pre and post, and predictions."""
    out: dict[str, float] = {}
    head = torch.randn(len(images), config.scan_width, generator=generator(seed, "head"))
    for kind in KINDS:
        with seeded(seed, "init", act, norm, kind, depth):
            net = ResNet(depth, width=config.scan_width, kind=kind, activation=act, norm=norm)
        x0 = net.stem(images).detach()
        out[key(kind, "gain")] = trunk_gain(net, x0, head)
        out[key(kind, "identity")] = trunk_gain(net, x0, head, identity=True)
    s = net.blocks[0].branch_scale  # x0, s: of the post net
    out["post/mf"] = float(post_path_meanfield(act, norm, depth, x0.mean(), x0.var(), s)[-1])
    pick = torch.randint(x0.numel(), (config.chains,), generator=generator(seed, "pick"))
    chain = post_path_chain(act, norm, depth, x0.flatten()[pick], s, generator(seed, "chain"))
    return out | {"post/chain": float(chain[-1])}


def train_one(config: Config, act: str, kind: str, layers: int, data: tuple, seed: int) -> dict:
    """Train one conv ResNet with BN on MNIST; test accuracy and loss, the loss curves."""
    xtr, ytr, xva, yva, xte, yte = data
    with seeded(seed, "init", act, kind, layers):
        net = ResNet((layers - 2) // 2, channels=config.channels, layer="conv", kind=kind,
                     activation=act, stem_stride=2)  # fmt: skip
    val: list[float] = []

    def evaluate(m: torch.nn.Module) -> float:
        m.eval()
        with torch.no_grad():
            val.append(float(F.cross_entropy(m(xva), yva)))
        return -val[-1]

    batch_iter = batches(
        len(ytr), config.batch_size, generator=generator(seed, "batches"), epochs=config.epochs
    )
    res = fit(
        net,
        lambda m, idx: F.cross_entropy(m(xtr[idx]), ytr[idx]),
        batch_iter,
        optimizer=torch.optim.SGD(net.parameters(), lr=config.lr, momentum=0.9),
        evaluate=evaluate,
        eval_every=config.eval_every,
    )
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(xb) for xb in xte.split(500)])
    w = config.eval_every
    loss = [float(np.mean(res.losses[i : i + w])) for i in range(0, len(res.losses), w)]
    acc = math.nan if res.diverged else float((logits.argmax(1) == yte).float().mean())
    return {"test_acc": acc, "test_loss": float(F.cross_entropy(logits, yte)),
            "diverged": float(res.diverged), "loss": loss, "val": val}  # fmt: skip


def _pad(curves: dict[str, list[float]]) -> dict[str, list[float]]:
    n = max(len(v) for v in curves.values())  # a diverged run stops early: NaN after it
    return {k: v + [math.nan] * (n - len(v)) for k, v in curves.items()}


class ResNetPreact(Experiment):
    """C4: gradient at the input vs depth, pre vs post activation, and deep-net training."""

    name = "resnet_preact"
    title = "Residual nets: pre- vs post-activation gradient path and trainability (MNIST)"
    claims = ("C4",)
    version: ClassVar[int] = 1
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "scan_depths": (1, 10, 50, 200), "scan_width": 64, "scan_batch": 64}
        | {"chains": 4000, "train_depths": (8, 20), "channels": (4, 8, 16), "n_train": 2000}
        | {"n_val": 200, "epochs": 2, "batch_size": 64, "eval_every": 6},
        "full": {"seeds": 6},  # 6 seeds: three rounds of 2 workers, as long as 5
        "smoke": {"seeds": 2, "scan_depths": (1, 3), "scan_width": 8, "scan_batch": 8}
        | {"chains": 100, "train_depths": (8,), "channels": (2, 2, 2), "n_train": 64}
        | {"n_val": 16, "epochs": 1, "batch_size": 32, "eval_every": 1},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        x, y = load_mnist(context.data_dir)
        x = (x - MNIST_MEAN) / MNIST_STD
        tr, va, te = split_indices(len(y), seed)
        tr, va = tr[: config.n_train], va[: config.n_val]
        scan = list(itertools.product(config.activations, config.norms, config.scan_depths))
        train = list(itertools.product(config.activations, config.train_depths))
        metrics, series, done = {}, {}, 0
        for act, norm, d in scan:
            row = scan_one(config, act, norm, d, x[tr[: config.scan_batch]], seed)
            metrics |= {key("init", act, norm, k.split("/")[0], d, k.split("/")[1]): v for k, v in row.items()}  # fmt: skip
            done += 1
            context.progress(done, len(scan) + len(train))
        data = (x[tr], y[tr], x[va], y[va], x[te], y[te])
        for act, layers in train:
            rows = {kind: train_one(config, act, kind, layers, data, seed) for kind in KINDS}
            for kind, r in rows.items():
                metrics |= {key("train", act, kind, layers, m): r[m] for m in ("test_acc", "test_loss", "diverged")}  # fmt: skip
            for s, label in (("loss", "train loss"), ("val", "validation loss")):
                ys = _pad({kind: r[s] for kind, r in rows.items()})
                steps = [config.eval_every * (i + 1) for i in range(len(ys["pre"]))]
                series[key(s, act, layers)] = Series(steps, ys, "step", label, logy=True)
            done += 1
            context.progress(done, len(scan) + len(train))
        return RunResult(metrics=metrics, series=series)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, dmin, dmax = len(results), min(config.scan_depths), max(config.scan_depths)
        deep, acts, norms = max(config.train_depths), config.activations, config.norms
        what = f"log10 gain post D={dmax} - D={dmin} ({acts[0]}, {norms[0]})"
        if n < 2 or dmin == dmax:
            reason = "C4 needs 2 seeds and at least two scan depths"
            return [Verdict.inconclusive("C4", reason, n_seeds=n, effect_name=what)]
        fam, lim = 3 * len(acts) * len(norms) + len(acts), -math.log10(config.decay_factor)
        groups: dict[str, list[Check]] = {}
        notes = []
        for act, norm in itertools.product(acts, norms):
            at = f"({act}, {norm})"

            def g(kind: str, d: int, m: str = "gain", a: str = act, b: str = norm) -> np.ndarray:
                return per_seed(results, "init", a, b, kind, d, m)

            groups[f"init {act}/{norm}"] = [
                check(f"log10 gain pre D={dmax} {at}", g("pre", dmax),
                      above=math.log10(config.keep_floor), family=fam),
                check(f"log10 gain post D={dmax} - D={dmin} {at}", g("post", dmax),
                      paired=g("post", dmin), below=lim, family=fam),
                check(f"log10 identity-path gain post D={dmax} {at}", g("post", dmax, "identity"),
                      below=lim, family=fam),
            ]  # fmt: skip
            m = {k: g("post", dmax, k).mean() for k in ("identity", "mf", "chain")}
            diff = (g("pre", dmax) - g("post", dmax)).mean()
            notes.append(f"{act}/{norm}, D={dmax}: post identity path log10 {m['identity']:.3g}, "
                         f"predicted: mean field {m['mf']:.3g}, chain {m['chain']:.3g}; "
                         f"pre - post log10 gain {diff:.3g}.")  # fmt: skip
        for act in acts:

            def a(kind: str, d: int = deep, f: str = act) -> np.ndarray:
                return 100 * per_seed(results, "train", f, kind, d, "test_acc")

            label = f"test accuracy pre - post, {deep} layers ({act}), points"
            c = check(label, a("pre"), paired=a("post"), above=config.acc_margin, family=fam)
            groups[f"training {act}"] = [c]
            accs = "; ".join(f"{d}: pre {a('pre', d).mean():.2f}, post {a('post', d).mean():.2f}"
                             for d in config.train_depths)  # fmt: skip
            notes.append(f"Test accuracy % ({act}) by layers: {accs}.")
        sentence = "; ".join(f"{g} {combine([c.status for c in cs])}" for g, cs in groups.items())
        checks = [c for cs in groups.values() for c in cs]
        kw = {"effect": checks[1], "effect_name": what, "notes": notes}
        pre = f"Per setting: {sentence}. {fam} checks, Bonferroni-adjusted."
        return [Verdict.from_checks("C4", checks, preamble=pre, **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        settings = list(itertools.product(config.activations, config.norms))
        fig, axes = plots.panels(len(settings), ncols=2, width=4.4, height=3.2)
        for i, (ax, (act, norm)) in enumerate(zip(axes, settings, strict=True)):
            ys = {lab: [[r.metrics[key("init", act, norm, k, d, m)] for d in config.scan_depths]
                        for r in results] for lab, (k, m) in CURVES.items()}  # fmt: skip
            plots.curves(ax, config.scan_depths, ys, title=f"{act}, norm {norm}", xlabel="blocks D",
                         ylabel="log10 |dL/dx_0| / |dL/dx_D|", logx=True, legend=i == 1,
                         marker="o", ms=3)  # fmt: skip
            ax.axhline(0.0, color="gray", ls=":", lw=1)
        cap = ("Gradient gain of the residual trunk at initialisation against depth (mean over "
               "seeds, band: range): pre and post (full backward), post through the identity "
               "path alone, and the two predictions of the latter.")  # fmt: skip
        out = [Figure(plots.save(fig, Path(out_dir) / "resnet_preact_gain_vs_depth.png"), cap)]
        deep, acts = max(config.train_depths), config.activations
        fig, axes = plots.panels(3 * len(acts), ncols=3, width=4.0, height=3.0)
        for i, act in enumerate(acts):
            ys = {k: [[100 * r.metrics[key("train", act, k, d, "test_acc")]
                       for d in config.train_depths] for r in results] for k in KINDS}  # fmt: skip
            plots.curves(axes[3 * i], config.train_depths, ys, title=f"{act}: test accuracy",
                         xlabel="layers", ylabel="%", legend=False, marker="o")  # fmt: skip
            for ax, s in zip(axes[3 * i + 1 : 3 * i + 3], ("loss", "val"), strict=True):
                runs = [r.series[key(s, act, deep)] for r in results]
                ys = {k: [run.ys[k] for run in runs] for k in KINDS}
                plots.curves(ax, runs[0].x, ys, title=f"{act}, {deep} layers", xlabel="step",
                             ylabel=runs[0].ylabel, logy=True, legend=s == "val")  # fmt: skip
        cap = (f"Conv ResNets with BN trained on MNIST, pre vs post activation: test accuracy "
               f"against depth, and train and validation loss of the {deep}-layer nets (mean "
               f"over seeds, band: range).")  # fmt: skip
        out.append(Figure(plots.save(fig, Path(out_dir) / "resnet_preact_training.png"), cap))
        return out
