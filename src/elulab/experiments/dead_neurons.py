"""C1: dead neurons. On pre-activations biased negative, how many units stop learning?

The claim: on data that push pre-activations negative, ReLU leaves a large fraction of
units with zero gradient ("dead"); ELU (and Mish) bring that fraction to about zero.

What is measured, on MNIST (the 10,000 shared images split 60/20/20 per seed):

* **mechanism** (documented and checked): after the usual PyTorch initialisation,
  every hidden layer's bias is set, layer by layer on a calibration batch of training
  images, so that each unit's pre-activation has mean ``-shift * std`` (its own std
  over the batch): a data-dependent negative bias. With ``shift = 3`` a unit is
  positive on about ``Phi(-3) = 0.13%`` of the samples (if Gaussian). The check is the measured
  share of negative pre-activations at initialisation (metric ``*_neg_preact_init``),
  which must be at least ``Phi(shift) - 0.05``. Training then uses plain SGD with
  momentum (lr 0.05);
* **dead fraction**: with :class:`elulab.diagnostics.Diagnostics`, a pass over the
  whole training split (gradients, no update) at initialisation and after every
  epoch: a hidden unit is dead when the gradient of the loss at its pre-activation is
  exactly zero for *every* training sample ("over a whole epoch"). Units of conv
  layers are channels. Also the *saturated* fraction (not dead, but ``|f'| < 0.01`` on
  every sample: ELU's plateau);
* the final test accuracy;
* for an MLP and a CNN, with ReLU, LeakyReLU, ELU, SELU, GELU and Mish; the same seed
  gives the same weights, split and batches to every activation (paired design).

Verdict (C1): three sub-claims over seeds (95% t-intervals, :mod:`elulab.lab.stats`),
each on the final dead fraction averaged over the two architectures: ReLU's is large
(interval above ``large_threshold``), ELU's and Mish's are about zero (interval below
``zero_threshold``). All three supported: supported; all three contradicted: not
supported; mixed when some are supported and some contradicted; otherwise inconclusive. The effect
reported is ReLU's minus ELU's dead fraction (paired interval).

References:
    Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
    (Clevert, Unterthiner, Hochreiter, 2015), arXiv:1511.07289.

    Dying ReLU and Initialization: Theory and Numerical Examples (Lu, Shin, Su,
    Karniadakis, 2019), arXiv:1903.06733.

    Mish: A Self Regularized Non-Monotonic Activation Function (Misra, 2019),
    arXiv:1908.08681.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, Verdict
from ..lab.stats import combine, decide, mean_ci, paired_ci
from ._plotting import pyplot, save_figure

__all__ = ["Config", "DeadNeurons", "build_model", "calibrate_negative_bias"]

ARCHS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "mish")


@dataclass(frozen=True)
class Config:
    """Settings of the dead-neuron experiment (see the module docstring)."""

    archs: tuple[str, ...] = ARCHS
    activations: tuple[str, ...] = ACTIVATIONS
    n_train: int = 6000  # training images used (at most the 60% split, 6000)
    n_test: int = 2000
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    shift: float = 3.0  # bias: pre-activation mean = -shift * std at init
    calib_size: int = 512
    mlp_width: int = 256
    eps: float = 0.01  # slope threshold of "saturated"
    large_threshold: float = 0.10  # "a large fraction" of dead ReLU units
    zero_threshold: float = 0.01  # "about zero"
    seeds: int = 5

    def validate(self) -> None:
        for a in self.archs:
            if a not in ARCHS:
                raise ValueError(f"unknown arch {a!r}; allowed: {', '.join(ARCHS)}")
        for a in self.activations:
            if a not in ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; allowed: {', '.join(ACTIVATIONS)}")
        if not self.archs or not self.activations:
            raise ValueError("archs and activations must not be empty")
        if not 1 <= self.n_train <= 6000 or not 1 <= self.n_test <= 2000:
            raise ValueError("n_train must be in 1..6000 and n_test in 1..2000")
        if self.epochs < 1 or self.batch_size < 1 or self.calib_size < 2:
            raise ValueError("epochs and batch_size must be >= 1, calib_size >= 2")
        if not (self.lr > 0 and 0 <= self.momentum < 1 and 0 < self.eps < 1):
            raise ValueError("need lr > 0, 0 <= momentum < 1 and 0 < eps < 1")


def _act(name: str) -> nn.Module:
    from ..nn import get_activation

    return get_activation(name)


def build_model(arch: str, activation: str, mlp_width: int = 256) -> nn.Sequential:
    """The MLP (784-w-w-10) or CNN (two conv blocks, one hidden Linear) of the experiment."""
    if arch == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, mlp_width),
            _act(activation),
            nn.Linear(mlp_width, mlp_width),
            _act(activation),
            nn.Linear(mlp_width, 10),
        )
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            _act(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            _act(activation),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 64),
            _act(activation),
            nn.Linear(64, 10),
        )
    raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(ARCHS)}")


def _is_layer(m: nn.Module) -> bool:
    return isinstance(m, (nn.Linear, nn.Conv2d))


@torch.no_grad()
def calibrate_negative_bias(model: nn.Sequential, x: torch.Tensor, shift: float) -> float:
    """Set each hidden layer's bias so its pre-activations have mean ``-shift * std``.

    Layer by layer in forward order on the batch ``x`` (each layer sees the already
    shifted outputs of the previous ones); the output layer is left alone.

    Returns:
        the share of hidden pre-activations below zero on ``x`` after calibration.
    """
    mods = list(model)
    h = x
    neg = total = 0
    for i, m in enumerate(mods):
        hidden = _is_layer(m) and i + 1 < len(mods) and not _is_layer(mods[i + 1])
        hidden = hidden and any(_is_layer(n) for n in mods[i + 1 :])
        if hidden:
            z = m(h)
            dims = (0,) if z.ndim == 2 else (0, 2, 3)
            mean, std = z.mean(dim=dims), z.std(dim=dims)
            m.bias -= mean + shift * std
            z = m(h)
            neg += int((z < 0).sum())
            total += z.numel()
        h = m(h)
    return neg / max(total, 1)


def _dead_pass(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, chunk: int = 500
) -> tuple[float, float]:
    """Dead and saturated fractions of the activation units over the whole of ``x``."""
    from ..diagnostics import Diagnostics

    was = model.training
    model.eval()
    with Diagnostics(model, eps=eps, layers=(), keep_history=False) as diag:
        for i in range(0, len(y), chunk):
            model.zero_grad(set_to_none=True)
            # sum over samples: each sample's own gradient enters unscaled
            nn.functional.cross_entropy(
                model(x[i : i + chunk]), y[i : i + chunk], reduction="sum"
            ).backward()
            diag.step()
        stats = diag.window()
    model.zero_grad(set_to_none=True)
    model.train(was)
    units = sum(s.units for s in stats)
    dead = sum(s.dead_fraction * s.units for s in stats) / units
    sat = sum(s.saturated_fraction * s.units for s in stats) / units
    return dead, sat


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was = model.training
    model.eval()
    correct = sum(
        int((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum())
        for i in range(0, len(y), 1000)
    )
    model.train(was)
    return correct / len(y)


class DeadNeurons(Experiment):
    """C1: dead-unit fraction over training, ReLU vs LeakyReLU/ELU/SELU/GELU/Mish."""

    name = "dead_neurons"
    title = "Dead neurons on negatively biased pre-activations (MNIST, MLP and CNN)"
    claims = ("C1",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "n_train": 1500, "n_test": 1000, "epochs": 2, "mlp_width": 128},
        "full": {"seeds": 5},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        from ..data.mnist import load_mnist, split_indices

        images, labels = load_mnist(context.data_dir)
        tr, _, te = split_indices(len(labels), seed, (0.6, 0.2, 0.2))
        xtr, ytr = images[tr[: config.n_train]], labels[tr[: config.n_train]]
        xte, yte = images[te[: config.n_test]], labels[te[: config.n_test]]
        metrics: dict[str, float] = {}
        series: dict[str, Series] = {}
        rows: list[dict[str, Any]] = []
        todo = [(a, act) for a in config.archs for act in config.activations]
        for k, (arch, act) in enumerate(todo):
            torch.manual_seed(seed)  # same weights for every activation
            model = build_model(arch, act, config.mlp_width)
            neg = calibrate_negative_bias(model, xtr[: config.calib_size], config.shift)
            opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
            gen = torch.Generator().manual_seed(seed)  # same batches for every activation
            dead, sat = _dead_pass(model, xtr, ytr, config.eps)
            dead_curve, sat_curve, diverged = [dead], [sat], False
            for _epoch in range(config.epochs):
                perm = torch.randperm(len(ytr), generator=gen)
                for i in range(0, len(perm), config.batch_size):
                    idx = perm[i : i + config.batch_size]
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                    if not torch.isfinite(loss):
                        diverged = True
                        break
                    loss.backward()
                    opt.step()
                if diverged:
                    break
                dead, sat = _dead_pass(model, xtr, ytr, config.eps)
                dead_curve.append(dead)
                sat_curve.append(sat)
            acc = _accuracy(model, xte, yte) if not diverged else 0.1
            key = f"{arch}_{act}"
            metrics.update(
                {
                    f"{key}_dead_init": dead_curve[0],
                    f"{key}_dead_final": dead_curve[-1],
                    f"{key}_saturated_final": sat_curve[-1],
                    f"{key}_acc": acc,
                    f"{key}_neg_preact_init": neg,
                    f"{key}_diverged": float(diverged),
                }
            )
            for name, curve in (("dead", dead_curve), ("saturated", sat_curve)):
                s = series.setdefault(
                    f"{name}_{arch}",
                    Series(
                        x=[float(e) for e in range(config.epochs + 1)],
                        ys={},
                        xlabel="epoch",
                        ylabel=f"{name} fraction (whole training split)",
                    ),
                )
                s.ys[act] = curve + [math.nan] * (config.epochs + 1 - len(curve))
            rows.append(
                {
                    "arch": arch,
                    "activation": act,
                    "neg_preact_init": round(neg, 4),
                    "dead_init": round(dead_curve[0], 4),
                    "dead_final": round(dead_curve[-1], 4),
                    "saturated_final": round(sat_curve[-1], 4),
                    "test_acc": round(acc, 4),
                    "diverged": diverged,
                }
            )
            context.progress(k + 1, len(todo))
        return RunResult(metrics=metrics, series=series, tables={"per_model": rows})

    # -- verdict ------------------------------------------------------------------------
    @staticmethod
    def _per_seed(config: Config, results: Sequence[RunResult], act: str, what: str) -> list[float]:
        """``what`` for ``act`` averaged over the architectures, one value per seed."""
        return [
            float(np.mean([r.metrics[f"{a}_{act}_{what}"] for a in config.archs])) for r in results
        ]

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n = len(results)
        needed = {"relu", "elu", "mish"}
        if n == 0 or not needed <= set(config.activations):
            return [
                Verdict(
                    "C1",
                    "inconclusive",
                    math.nan,
                    math.nan,
                    math.nan,
                    n,
                    "C1 needs runs with relu, elu and mish",
                    "ReLU minus ELU dead fraction",
                )
            ]
        relu = self._per_seed(config, results, "relu", "dead_final")
        elu = self._per_seed(config, results, "elu", "dead_final")
        mish = self._per_seed(config, results, "mish", "dead_final")
        _, r_lo, r_hi = mean_ci(relu)
        _, e_lo, e_hi = mean_ci(elu)
        _, m_lo, m_hi = mean_ci(mish)
        sub = [
            decide(r_lo, r_hi, threshold=config.large_threshold, direction="greater", n_seeds=n),
            decide(e_lo, e_hi, threshold=config.zero_threshold, direction="less", n_seeds=n),
            decide(m_lo, m_hi, threshold=config.zero_threshold, direction="less", n_seeds=n),
        ]
        status = combine(sub)
        eff, lo, hi = paired_ci(relu, elu) if n > 1 else (relu[0] - elu[0], math.nan, math.nan)
        neg = min(
            r.metrics[f"{a}_{act}_neg_preact_init"]
            for r in results
            for a in config.archs
            for act in config.activations
        )
        mech_ok = neg >= 0.5 * (1 + math.erf(config.shift / math.sqrt(2))) - 0.05
        sat = self._per_seed(config, results, "elu", "saturated_final")
        accs = {
            act: float(np.mean(self._per_seed(config, results, act, "acc")))
            for act in config.activations
        }
        others = {
            act: float(np.mean(self._per_seed(config, results, act, "dead_final")))
            for act in config.activations
        }

        def ci(lo_: float, hi_: float) -> str:
            return f"[{lo_:.3f}, {hi_:.3f}]"

        summary = (
            f"Final dead fraction over the whole training split (mean of MLP and CNN): ReLU "
            f"{np.mean(relu):.3f} {ci(r_lo, r_hi)} (claim: > {config.large_threshold}: {sub[0]}), "
            f"ELU {np.mean(elu):.3f} {ci(e_lo, e_hi)} and Mish {np.mean(mish):.3f} "
            f"{ci(m_lo, m_hi)} (claim: < {config.zero_threshold}: {sub[1]}, {sub[2]}); "
            f"ELU units on the plateau (not dead): {np.mean(sat):.3f}. All activations: "
            + ", ".join(f"{a} {others[a]:.3f} (acc {accs[a]:.3f})" for a in config.activations)
            + f". Mechanism check (negative bias, shift {config.shift}): at least "
            f"{neg:.3f} of pre-activations negative at init "
            f"({'as intended' if mech_ok else 'LESS than intended: the mechanism failed'})."
        )
        if not mech_ok:
            status = "inconclusive"
        return [
            Verdict(
                "C1",
                status,
                eff,
                lo,
                hi,
                n,
                summary,
                "ReLU minus ELU final dead-unit fraction (paired over seeds)",
            )
        ]

    # -- figures ------------------------------------------------------------------------
    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        plt = pyplot()

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        figs: list[Figure] = []
        if not results:
            return figs
        archs = [a for a in config.archs if all(f"dead_{a}" in r.series for r in results)]
        if archs:
            fig, axes = plt.subplots(1, len(archs), figsize=(4.6 * len(archs), 3.6), squeeze=False)
            for ax, arch in zip(axes[0], archs, strict=True):
                x = results[0].series[f"dead_{arch}"].x
                for act in config.activations:
                    ys = np.array([r.series[f"dead_{arch}"].ys[act] for r in results], dtype=float)
                    line = ax.plot(x, np.nanmean(ys, 0), marker="o", ms=3, label=act)[0]
                    ax.fill_between(
                        x, np.nanmin(ys, 0), np.nanmax(ys, 0), color=line.get_color(), alpha=0.15
                    )
                ax.set_title(arch.upper())
                ax.set_xlabel("epoch")
                ax.set_ylabel("dead fraction (zero gradient on every sample)")
                ax.set_ylim(-0.02, 1.0)
            axes[0][0].legend(fontsize=7)
            fig.tight_layout()
            path = out_dir / "dead_neurons_over_training.png"
            save_figure(fig, path, dpi=110)
            figs.append(
                Figure(
                    path,
                    "Share of hidden units whose gradient is exactly zero over the whole "
                    "training split, after each epoch (line: mean over seeds, band: range), "
                    f"with biases set so that pre-activations start at mean -{config.shift} std.",
                    "C1",
                )
            )
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        for arch, marker in zip(config.archs, ("o", "s"), strict=False):
            for act in config.activations:
                d = [r.metrics[f"{arch}_{act}_dead_final"] for r in results]
                s = [r.metrics[f"{arch}_{act}_saturated_final"] for r in results]
                a = [r.metrics[f"{arch}_{act}_acc"] for r in results]
                ax.scatter(np.mean(d), np.mean(a), marker=marker, label=f"{arch} {act}")
                if np.mean(s) > 0.005:
                    ax.annotate(f"sat {np.mean(s):.2f}", (np.mean(d), np.mean(a)), fontsize=6)
        ax.set_xlabel("final dead fraction")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        path = out_dir / "dead_neurons_accuracy.png"
        save_figure(fig, path, dpi=110)
        figs.append(
            Figure(
                path,
                "Test accuracy against the final dead fraction, per architecture and "
                "activation (mean over seeds); 'sat' marks the share of units on a flat "
                "region (|f'| < eps) that are not dead.",
                "C1",
            )
        )
        return figs
