"""C11 (b): do ELU's exponential pieces buy lower approximation error than ReLU's lines?

The claim (C11, the source's section on theory): ELU, linear for x > 0 and exponential
for x < 0, is good at approximating functions with such pieces, "beyond ReLU, which can
only compose (convex) piecewise linear functions". The exact part holds (and is tested):
one ELU unit is ``alpha (e^x - 1)`` on x < 0, two are our ``mixed`` target exactly, and a
ReLU MLP of width n, depth L has at most (n + 1)^L linear pieces ("convex" is wrong: output
weights of both signs give any continuous piecewise linear function). We test whether
this gives lower error at a fixed size and training budget on targets with exponential
pieces, and NOT on piecewise linear ones, where ReLU should be at least as good.

Targets (:data:`PROFILES`, :class:`elulab.theory.piecewise.Piecewise` profiles g):
``linear``, a zig-zag with 4 kinks; ``exp``, e^(zig-zag), exponential on every piece;
``mixed``, ``ELU_2(x + 0.5) + 0.7 ELU_1.5(0.8 - x)`` (``ELU_k(z) = ELU(kz)/k``), linear
on one side of each kink and exponential on the other (C1, as ELU nets with alpha 1 are;
``linear`` and ``exp`` have kinks). In 1-D f = g on [-2, 2] (train: uniform draws; test:
a midpoint grid); in d dimensions f(x) = sum_r g(w_r . x), ``ridges`` fixed unit
directions, x ~ N(0, I_d). Nets: MLPs of depth L, the width whose parameter count is
nearest each budget, the same for ReLU, ELU, GELU and tanh, from the same initial
weights (PyTorch's default) and batches; Adam with cosine decay for ``steps`` steps
(:func:`elulab.train.fit_regressors`), MSE on the standardised target; per activation
the lr of ``lrs`` with the lowest validation error. Metric: the relative L2 test error
``|f_hat - f| / |f - mean f|``.

The ReLU floor (1-D): :func:`elulab.theory.piecewise.relu_floor` with (n + 1)^L pieces, a
rigorous lower bound for ANY ReLU net of that shape (computed where (n + 1)^L <=
floor_grid / 20). ReLU below it would be a bug: the verdict is then inconclusive.

Verdict (C11): per family and setting (d, L, budget), log(err ELU / err ReLU) paired over
seeds, t-intervals Bonferroni-adjusted over the family's settings. ``exp``, ``mixed``:
supported where the interval lies below 0, "small" unless also below log
``meaningful_ratio``; ``linear``: supported where it lies above log ``pl_margin`` (ReLU at
least as good, up to the margin). A family combines its settings (disagreeing: mixed);
the claim combines the families.

References:
    Fast and Accurate Deep Network Learning by Exponential Linear Units (Clevert,
    Unterthiner, Hochreiter, 2016), ICLR, arXiv:1511.07289.

    On the Number of Linear Regions of Deep Neural Networks (Montufar et al., 2014).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import Effect, combine, mean_ci
from ..lab.verdicts import Verdict, check, key, per_seed
from ..nn import ACTIVATIONS
from ..theory.piecewise import Piecewise, relu_floor, relu_pieces
from ..train import build_mlp, fit_regressors, generator, relative_errors, seeded

__all__ = ["PROFILES", "Config", "EluExpressivity", "n_params", "relu_floor_rel", "width_for"]

FAMILIES = ("linear", "exp", "mixed")
PROFILES: dict[str, Piecewise] = {  # the 1-D profiles g (d > 1: sums of ridges g(w . x))
    "linear": Piecewise.linear((-1.2, -0.4, 0.4, 1.2), (0.5, -1.5, 1.5, -1.0, 0.8)),
    "exp": Piecewise.exp_linear((-1.0, 0.0, 0.9), (1.5, -1.0, 1.2, -1.5)),
    "mixed": Piecewise.elu_sum([(1.0, 2.0, -0.5, 1), (0.7, 1.5, 0.8, -1)]),
}


@dataclass(frozen=True)
class Config:
    """Settings of the ELU expressivity experiment (see the module docstring)."""

    families: tuple[str, ...] = param(FAMILIES, "target families", choices=FAMILIES, nonempty=True)
    dims: tuple[int, ...] = param((1, 4), "input dimensions d (1: the line, with the floor)", ge=1)
    depths: tuple[int, ...] = param((1, 2), "hidden layers L", ge=1)
    budgets: tuple[int, ...] = param((32, 128, 512), "parameter counts (width: nearest)", ge=4)
    activations: tuple[str, ...] = param(
        ("relu", "elu", "gelu", "tanh"), "activations (relu and elu decide)", choices=ACTIVATIONS
    )
    ridges: int = param(3, "ridge functions summed in d > 1 (fixed directions)", ge=1)
    domain: float = param(2.0, "1-D interval [-domain, domain]", gt=0.0)
    lrs: tuple[float, ...] = param((0.01, 0.03, 0.1, 0.3), "Adam lrs; best on validation", gt=0.0)
    steps: int = param(3000, "Adam steps, cosine decay to 0 (same for all)", ge=1)
    batch_size: int = param(256, "minibatch size (draws with replacement)", ge=1)
    n_train: int = param(4096, "training points", ge=2)
    n_val: int = param(1024, "validation points (lr choice only)", ge=2)
    n_test: int = param(4096, "test points (1-D: a midpoint grid)", ge=2)
    meaningful_ratio: float = param(
        0.5, "ELU/ReLU error ratio that counts as large: ReLU's gain from 1.41x pieces", gt=0, lt=1
    )  # a free-knot piecewise linear L2 error falls as pieces^-2: 0.5 = sqrt(2) x pieces
    pl_margin: float = param(
        0.8, "linear targets: ELU/ReLU ratio above this = ReLU at least as good", gt=0, le=1
    )  # 20%: a 1.12x width step for ReLU (pieces^-2), smaller than our budget steps (4x)
    floor_grid: int = param(1000, "cells of the ReLU-floor dynamic programme", ge=10)
    seeds: int = param(6, "independent seeds (data, init, batches; paired over activations)", ge=1)

    def validate(self) -> None:
        if not {"relu", "elu"} <= set(self.activations):
            raise ValueError(f"activations must include relu and elu, got {self.activations}")


def n_params(d: int, depth: int, width: int) -> int:
    """Parameters of the MLP d-width-...-width-1 (``depth`` hidden layers)."""
    return (d + 1) * width + (depth - 1) * (width + 1) * width + width + 1


def width_for(d: int, depth: int, budget: int) -> int:
    """The width whose parameter count is nearest ``budget`` (ties: the smaller)."""
    return min(range(1, budget + 1), key=lambda w: (abs(n_params(d, depth, w) - budget), w))


def _tag(d: int, fam: str, depth: int, budget: int) -> tuple[str, ...]:
    return (f"d{d}", fam, f"L{depth}", f"P{budget}")


def _target(config: Config, fam: str, x: torch.Tensor) -> torch.Tensor:
    """f(x) in float64: the profile (1-D) or a sum of ridges with fixed directions."""
    g = PROFILES[fam]
    if x.shape[1] == 1:
        return torch.from_numpy(g(x[:, 0].numpy()))
    w = torch.randn(x.shape[1], config.ridges, generator=generator(0, "ridges"), dtype=x.dtype)
    return torch.from_numpy(g((x @ (w / w.norm(dim=0))).numpy()).sum(1))


def _inputs(config: Config, d: int, n: int, seed: int, part: str) -> torch.Tensor:
    """1-D: uniform draws on [-domain, domain] (test: the midpoint grid); else N(0, I_d)."""
    gen = generator(seed, "data", part, d)
    if d > 1:
        return torch.randn(n, d, generator=gen, dtype=torch.float64)
    grid = (torch.arange(n, dtype=torch.float64)[:, None] + 0.5) / n
    u = grid if part == "test" else torch.rand(n, 1, generator=gen, dtype=torch.float64)
    return (2 * u - 1) * config.domain


@functools.lru_cache(maxsize=256)
def relu_floor_rel(fam: str, pieces: int, domain: float, grid: int) -> float:
    """The ReLU floor as a relative L2 error on [-domain, domain] (NaN if too many pieces)."""
    if pieces > grid // 20:
        return math.nan
    g = PROFILES[fam]
    sq = relu_floor(g, pieces, -domain, domain, grid) / (2 * domain)
    return math.sqrt(max(sq, 0.0) / g.moments(-domain, domain)[1])


class EluExpressivity(Experiment):
    """C11 (b): approximation error of ReLU, ELU, GELU, tanh MLPs on piecewise targets."""

    name = "elu_expressivity"
    title = "ELU expressivity: approximation error on piecewise linear / exponential targets"
    claims = ("C11",)
    version: ClassVar[int] = 1
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "budgets": (32, 128), "steps": 400, "lrs": (0.03,)}
        | {"n_train": 2048, "n_val": 512, "n_test": 2048},
        "full": {"seeds": 6},
        "smoke": {"seeds": 2, "dims": (1, 2), "depths": (1,), "budgets": (16,), "steps": 5}
        | {"activations": ("relu", "elu", "tanh"), "lrs": (0.01, 0.1), "floor_grid": 200}
        | {"n_train": 64, "n_val": 32, "n_test": 64, "batch_size": 16},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        metrics, series = {}, {}
        todo = list(itertools.product(config.dims, config.families))
        for done, (d, fam) in enumerate(todo, 1):
            parts = [_inputs(config, d, n, seed, p) for p, n in
                     (("train", config.n_train), ("val", config.n_val), ("test", config.n_test))]  # fmt: skip
            ys = [_target(config, fam, x) for x in parts]
            mu, sd = float(ys[0].mean()), float(ys[0].std())
            data = [(x.float(), ((y - mu) / sd).float()) for x, y in zip(parts, ys, strict=True)]
            fits = {}
            for depth, budget in itertools.product(config.depths, config.budgets):
                tag, width = _tag(d, fam, depth, budget), width_for(d, depth, budget)
                shape = {"width": width, "params": n_params(d, depth, width)}
                if d == 1:  # the floor of any ReLU net of this shape: (width + 1)^depth pieces
                    pc, grid = relu_pieces(width, depth), config.floor_grid
                    shape["relu_floor"] = relu_floor_rel(fam, pc, config.domain, grid)
                metrics |= {key(*tag, k): v for k, v in shape.items()}
                with seeded(seed, "init", *tag):  # the same initial weights for every slot
                    mlp = build_mlp(d, 1, depth=depth, width=width, init="torch")
                gen = generator(seed, "batches", *tag)  # the same batches for every slot
                nets = fit_regressors(mlp, config.activations, config.lrs, *data[0], generator=gen,
                                      steps=config.steps, batch_size=config.batch_size)  # fmt: skip
                val, test = relative_errors(nets, *data[1]), relative_errors(nets, *data[2])
                for a, act in enumerate(config.activations):
                    i = int(np.argmin(val[:, a]))  # the lr with the best validation error
                    err = float(test[i, a]) if np.isfinite(val[i, a]) else math.nan
                    metrics |= {key(*tag, act, "err"): err, key(*tag, act, "lr"): config.lrs[i]}
                    if d == 1 and depth == config.depths[0] and budget == config.budgets[0]:
                        fits[act] = nets[i].member(a)
            if fits:
                x, y = data[2]
                idx = torch.linspace(0, len(y) - 1, min(201, len(y))).long()
                with torch.no_grad():
                    curves = {a: (m(x[idx])[:, 0] * sd + mu).tolist() for a, m in fits.items()}
                series[f"fit_{fam}"] = Series(x[idx, 0].tolist(), {"target": ys[2][idx].tolist()}
                                              | curves, "x", "f(x)")  # fmt: skip
            context.progress(done, len(todo))
        return RunResult(metrics=metrics, series=series)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, what = len(results), "log(err ELU / err ReLU), exp family, mean over its settings"
        if n == 0:
            return [Verdict.inconclusive("C11", "no runs", effect_name=what)]
        sets, lg = list(itertools.product(config.dims, config.depths, config.budgets)), math.log
        checks, by_family, notes, bug = [], [], [], []

        def lr(fam: str, act: str, other: str = "relu") -> np.ndarray:  # (settings, seeds)
            return np.array([np.log(per_seed(results, *_tag(d, fam, L, P), act, "err"))
                             - np.log(per_seed(results, *_tag(d, fam, L, P), other, "err"))
                             for d, L, P in sets])  # fmt: skip

        for fam in config.families:
            fc, ratios = [], lr(fam, "elu")
            for (d, depth, budget), r in zip(sets, ratios, strict=True):
                label = f"{fam} d={d} L={depth} P={budget} log err ELU/ReLU"
                side = {"above": lg(config.pl_margin)} if fam == "linear" else {"below": 0.0}
                fc.append(check(label, r, family=len(sets), **side))
                if d == 1:
                    tag = _tag(d, fam, depth, budget)
                    fl = float(per_seed(results, *tag, "relu_floor")[0])
                    bug += [label] * bool(
                        np.any(per_seed(results, *tag, "relu", "err") < fl * 0.999)
                    )
                    if np.all(per_seed(results, *tag, "elu", "err") < fl):
                        notes.append(f"{fam} d=1 L={depth} P={budget}: every ELU seed is below "
                                     f"the floor of any ReLU net of its shape, {fl:.3g}.")  # fmt: skip
            status = combine([c.status for c in fc])
            small = fam != "linear" and status == "supported"
            small = small and not all(c.effect.high < lg(config.meaningful_ratio) for c in fc)
            held = sum(c.status == "supported" for c in fc)
            by_family.append((status, f"{fam} {status}{' (small)' * small} ({held}/{len(fc)})"))
            checks += fc
            others = [a for a in config.activations if a not in ("relu", "elu")]
            notes += [f"{fam}: err ELU/{a} {math.exp(lr(fam, 'elu', a).mean()):.3g} (geometric "
                      "mean over settings and seeds)." for a in others]  # fmt: skip
        status = combine([s for s, _ in by_family])
        if bug:
            status = "inconclusive"
            notes.insert(0, f"ReLU error below its exact floor (a bug): {', '.join(bug)}.")
        small = status == "supported" and any("(small)" in w for _, w in by_family)
        per = lr("exp", "elu").mean(0) if "exp" in config.families else np.array([math.nan])
        head = mean_ci(per) if np.all(np.isfinite(per)) else Effect(math.nan, math.nan, math.nan)
        pre = (f"Per family: {'; '.join(w for _, w in by_family)}. Checks per family Bonferroni "
               f"over {len(sets)} settings; linear: ratio > {config.pl_margin:g}.")  # fmt: skip
        return [Verdict.from_checks("C11", checks, effect=head, effect_name=what, preamble=pre,
                                    notes=notes, status=status, qualifier="small" * small)]  # fmt: skip

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        cells, one = list(itertools.product(config.dims, config.families)), results[:1]
        fig, axes = plots.panels(len(cells), width=4.0, height=3.1)
        for ax, (d, fam) in zip(axes, cells, strict=True):
            for depth, ls in zip(config.depths, ("-", "--", ":", "-."), strict=False):
                tags = [_tag(d, fam, depth, b) for b in config.budgets]
                x = [per_seed(one, *t, "params")[0] for t in tags]
                for act in config.activations:
                    ys = np.array([per_seed(results, *t, act, "err") for t in tags]).T
                    plots.band(ax, x, ys, f"{act} L{depth}", colour_of=act, ls=ls, marker="o", ms=3)
                if d == 1:
                    fl = [per_seed(one, *t, "relu_floor")[0] for t in tags]
                    grey = {"color": "#777777", "lw": 2.5, "alpha": 0.5, "marker": "s"}
                    ax.plot(x, fl, ls=ls, label=f"ReLU floor L{depth}", **grey)
            ax.set(xscale="log", yscale="log", title=f"{fam}, d={d}", xlabel="parameters (budget)",
                   ylabel="relative L2 test error")  # fmt: skip
            ax.set_xticks(config.budgets, [str(b) for b in config.budgets], minor=False)
            ax.xaxis.set_minor_formatter("")
        plots.legend_outside(axes[min(2, len(axes) - 1)])
        cap = ("Relative L2 test error against parameter count (log-log), per target family and "
               "input dimension; line: mean over seeds, band: range; solid: depth 1, dashed: "
               "depth 2; grey: the exact floor of any ReLU net of that shape (1-D; 0 on linear).")  # fmt: skip
        out = [Figure(plots.save(fig, Path(out_dir) / "elu_expressivity_error.png"), cap)]
        fits = [f for f in config.families if f"fit_{f}" in results[0].series]
        if fits:
            fig, axes = plots.panels(len(fits), width=4.0, height=3.1)
            for ax, fam in zip(axes, fits, strict=True):
                s = results[0].series[f"fit_{fam}"]
                for lab, ys in s.ys.items():
                    c = "#BBBBBB" if lab == "target" else plots.colour(lab)
                    ax.plot(s.x, ys, label=lab, lw=3 if lab == "target" else 1.2, color=c)
                ax.set(title=f"{fam}, d=1, L={config.depths[0]}, P={config.budgets[0]}", xlabel="x")
            plots.legend_outside(axes[-1])
            cap = "The 1-D targets (grey) and the nets fitted to them (seed 0, the smallest size)."
            out.append(Figure(plots.save(fig, Path(out_dir) / "elu_expressivity_fits.png"), cap))
        return out
