"""C6: does the smoother GELU give deep FFN stacks a steadier layer-to-layer gradient?

The claim (CLAIMS.md C6): GELU is C-infinity, ELU (alpha = 1) only C1 (f'' jumps at 0);
in deep feed-forward stacks the smoother GELU gives a more stable layer-to-layer
gradient variance.

Protocol, on tiny Shakespeare (:func:`elulab.data.load_tinyshakespeare`, the standard
90/10 split). Two pre-LN architectures of every depth in ``depths``: a deep residual FFN
stack on a window of characters (:class:`elulab.nn.CharFFN`) and a causal Transformer
(:class:`elulab.nn.CharTransformer`), with each FFN activation of ``activations``,
among them the control :class:`elulab.nn.SmoothELU` (ELU convolved with N(0, 0.25^2):
ELU's shape, max |difference| 0.022, but C-infinity). One seed gives every activation
the same weights and batches. Per block l, v_l is the variance of the entries of the
gradient of the loss on a fixed validation batch w.r.t. its FFN input weight W1; the
spread is the coefficient of variation CV = std_l(v_l) / mean_l(v_l), at initialisation
("init") and averaged over probes every ``probe_every`` steps of Adam ("train"). Then
a character LM of about 1M parameters (5 blocks, width 128) per activation, the same
budget each (``lm_steps`` AdamW steps of ``lm_batch`` x ``lm_context`` characters,
warm-up then cosine): validation loss in nats per character on the whole validation
split.

Verdict (per setting = architecture x phase, at the deepest depth, paired over seeds,
t-intervals, Bonferroni over every check): (A) GELU steadier, log CV(ELU) - log
CV(GELU) > ``cv_margin``; (B, where A holds) smoothness is the cause, the control closes
more than ``attribution_share`` of that gap: [log CV(ELU) - log CV(control)] -
share [log CV(ELU) - log CV(GELU)] > 0. The status combines A (and B where A holds):
GELU steadier everywhere and the control explains it, supported; steadier but not from
smoothness, mixed; GELU nowhere steadier by the margin, not supported. The LM losses
(ELU - GELU, ELU - control) are reported with intervals; they do not enter the status.

References:
    Gaussian Error Linear Units (GELUs) (Hendrycks, Gimpel, 2016), arXiv:1606.08415.
    Fast and Accurate Deep Network Learning by Exponential Linear Units (Clevert,
    Unterthiner, Hochreiter, 2015), arXiv:1511.07289.
    On Layer Normalization in the Transformer Architecture (Xiong et al., 2020),
    arXiv:2002.04745.
"""

from __future__ import annotations

import itertools
import math
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..data.tinyshakespeare import load_tinyshakespeare, windows
from ..diagnostics import gradient_cv, layer_gradient_variance
from ..lab import plots
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.stats import combine
from ..lab.verdicts import Verdict, check, key, per_seed
from ..nn import ACTIVATIONS, CharFFN, CharTransformer
from ..train import batches, fit, generator, seeded

__all__ = ["Config", "FFNSmoothness"]

ACTS = ("elu", "smooth_elu", "gelu", "relu", "silu")
ARCHS = ("ffn", "transformer")
PHASES = ("init", "train")
CONTROL = "smooth_elu"


@dataclass(frozen=True)
class Config:
    """Settings of the FFN-smoothness experiment (see the module docstring)."""

    activations: tuple[str, ...] = param(ACTS, "activations", choices=ACTIVATIONS, nonempty=True)
    archs: tuple[str, ...] = param(ARCHS, "architectures scanned", choices=ARCHS, nonempty=True)
    depths: tuple[int, ...] = param((6, 12, 24, 48), "blocks per scanned net (last decides)", ge=2)
    width: int = param(64, "width d of the scanned nets (FFN hidden 4d)", ge=4)
    heads: int = param(4, "attention heads (scanned Transformers and the LM)", ge=1)
    ffn_context: int = param(16, "characters in the FFN stack's input window", ge=1)
    tf_context: int = param(32, "characters per sequence of the scanned Transformers", ge=2)
    scan_batch: int = param(256, "predictions per scan training batch", ge=1)
    probe_batch: int = param(512, "predictions in the fixed validation probe batch", ge=2)
    scan_steps: int = param(80, "Adam steps of each scanned net", ge=1)
    scan_lr: float = param(1e-3, "Adam learning rate of the scanned nets", gt=0.0)
    probe_every: int = param(20, "steps between gradient probes in training", ge=1)
    lm_width: int = param(128, "LM width (5 blocks of 128: 1.02M parameters)", ge=4)
    lm_blocks: int = param(5, "LM blocks", ge=1)
    lm_context: int = param(64, "LM characters per training sequence", ge=2)
    lm_batch: int = param(32, "LM sequences per step", ge=1)
    lm_steps: int = param(500, "LM AdamW steps, the same for every activation", ge=1)
    lm_lr: float = param(3e-3, "LM peak learning rate (warm-up, cosine decay to 0)", gt=0.0)
    lm_warmup: int = param(50, "LM warm-up steps (linear)", ge=0)
    lm_eval_every: int = param(100, "LM steps between validation-curve points", ge=1)
    cv_margin: float = param(
        0.05, "A: log CV(ELU)/CV(GELU) above this (a 5% lower CV: less is negligible)", ge=0.0
    )
    attribution_share: float = param(
        0.5, "B: the control must close more than this share of A's gap ('the cause')", gt=0, lt=1
    )
    seeds: int = param(6, "independent seeds (paired across activations)", ge=1)

    def validate(self) -> None:
        if not {"elu", "gelu", CONTROL} <= set(self.activations):
            raise ValueError(f"activations must include elu, gelu and {CONTROL}")
        if min(self.scan_batch, self.probe_batch) < self.tf_context:
            raise ValueError("scan_batch and probe_batch must be >= tf_context")
        if self.width % self.heads or self.lm_width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width and lm_width")


def _cv_probe(model: torch.nn.Module, probe: tuple) -> np.ndarray:
    """v_l of every block's FFN input weight W1 on the probe batch, input to output."""
    weights = [b.ffn.fc1.weight for b in model.blocks]
    return layer_gradient_variance(_loss(model, probe), weights)


def _task(arch: str, config: Config, codes: torch.Tensor, starts: torch.Tensor) -> tuple:
    """Inputs and targets at window ``starts``: the next character (FFN) or every one."""
    if arch == "ffn":
        x, y = windows(codes, starts, config.ffn_context)
        return x, y[:, -1]
    return windows(codes, starts[:: config.tf_context], config.tf_context)


def _loss(model: torch.nn.Module, xy: tuple) -> torch.Tensor:
    return F.cross_entropy(model(xy[0]).flatten(0, -2), xy[1].flatten())


def _scan(config: Config, arch: str, depth: int, act: str, data: Any, seed: int) -> dict:
    """One scanned net: v_l at init, CV at init and over training, final training loss."""
    with seeded(seed, "init", arch, depth):  # the same weights for every activation
        ffn = arch == "ffn"
        model = (CharFFN(65, config.ffn_context, config.width, depth, act) if ffn else
                 CharTransformer(65, config.tf_context, config.width, depth, config.heads, act))  # fmt: skip
    probe = _task(arch, config, data.val, data.probe)
    v0 = _cv_probe(model, probe)
    cvs: list[float] = []

    def on_step(state: Any) -> None:
        if state.step % config.probe_every == 0:
            cvs.append(gradient_cv(_cv_probe(model, probe)))

    n = len(data.train) - max(config.ffn_context, config.tf_context) - 1
    gen = generator(seed, "batches", arch, depth)
    res = fit(model, lambda m, s: _loss(m, _task(arch, config, data.train, s)),
              batches(n, config.scan_batch, generator=gen, steps=config.scan_steps, replacement=True),
              optimizer=torch.optim.Adam(model.parameters(), lr=config.scan_lr),
              on_step=on_step)  # fmt: skip
    train = float(np.mean(cvs)) if cvs and not res.diverged else math.nan
    return {"v0": v0, "init": gradient_cv(v0), "train": train, "loss": res.final_loss}


def _lm(config: Config, act: str, data: Any, seed: int) -> tuple[float, list[float]]:
    """Train the ~1M-parameter LM; (validation nats/char on the whole split, curve)."""
    t, steps = config.lm_context, config.lm_steps
    with seeded(seed, "lm_init"):
        model = CharTransformer(65, t, config.lm_width, config.lm_blocks, config.heads, act)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lm_lr, weight_decay=0.0)
    warm = max(config.lm_warmup, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, cosine to 0 at the last step
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    whole = torch.arange(0, len(data.val) - t - 1, t)  # non-overlapping windows
    curve_at = whole[:: max(1, len(whole) // 256)][:256]

    @torch.no_grad()
    def val_loss(m: torch.nn.Module, starts: torch.Tensor) -> float:  # the mean over windows
        return float(np.mean([float(_loss(m, windows(data.val, s, t))) for s in starts.split(64)]))

    gen = generator(seed, "lm_batches")
    res = fit(model, lambda m, s: _loss(m, windows(data.train, s, t)),
              batches(len(data.train) - t - 1, config.lm_batch, generator=gen, steps=steps,
                      replacement=True),
              optimizer=opt, clip_grad_norm=1.0, on_step=lambda state: sched.step(),
              evaluate=lambda m: val_loss(m, curve_at), eval_every=config.lm_eval_every,
              best="min")  # fmt: skip
    curve = (res.eval_scores + [math.nan] * steps)[: len(_grid(config))]  # nan-padded
    return (math.nan if res.diverged else val_loss(model, whole)), curve


def _grid(config: Config) -> list[float]:
    """The LM steps evaluated: every ``lm_eval_every`` and the last (as :func:`fit` does)."""
    every, steps = config.lm_eval_every, config.lm_steps
    return [float(s) for s in range(every, steps + 1, every)] + [float(steps)] * (steps % every > 0)


class FFNSmoothness(Experiment):
    """C6: gradient-variance spread across layers, ELU vs GELU vs a smoothed-ELU control."""

    name = "ffn_smoothness"
    title = "Smoothness at 0 and the layer-to-layer gradient variance (tiny Shakespeare)"
    claims = ("C6",)
    version: ClassVar[int] = 1
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "depths": (6, 24), "width": 32, "scan_steps": 20, "probe_every": 10}
        | {"lm_width": 64, "lm_blocks": 2, "lm_steps": 60, "lm_eval_every": 30, "lm_batch": 16},
        "full": {"seeds": 6},
        "smoke": {"seeds": 2, "depths": (2, 3), "width": 8, "heads": 2, "scan_steps": 2}
        | {"probe_every": 1, "probe_batch": 64, "scan_batch": 16, "tf_context": 8}
        | {"lm_width": 8, "lm_blocks": 1, "lm_steps": 2, "lm_eval_every": 1, "lm_batch": 2}
        | {"lm_context": 8, "lm_warmup": 1},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        corpus = load_tinyshakespeare(context.data_dir)
        span = len(corpus.val) - max(config.ffn_context, config.tf_context) - 1
        probe = torch.linspace(0, span, config.probe_batch).long()  # fixed, spread out
        data = types.SimpleNamespace(train=corpus.train, val=corpus.val, probe=probe)
        metrics: dict[str, float] = {}
        series: dict[str, Series] = {}
        todo = list(itertools.product(config.archs, config.depths, config.activations))
        for k, (arch, depth, act) in enumerate(todo):
            row = _scan(config, arch, depth, act, data, seed)
            metrics |= {key(arch, act, depth, p): row[p] for p in (*PHASES, "loss")}
            if depth == max(config.depths):
                series.setdefault(f"profile_{arch}", Series(
                    list(range(1, depth + 1)), {}, "block", "gradient variance of W1 (init)", True
                )).ys[act] = row["v0"].tolist()  # fmt: skip
            context.progress(k + 1, len(todo) + len(config.activations))
        for arch, phase in itertools.product(config.archs, PHASES):
            ys = {a: [metrics[key(arch, a, d, phase)] for d in config.depths]
                  for a in config.activations}  # fmt: skip
            series[f"cv_{arch}_{phase}"] = Series(list(config.depths), ys, "blocks", "CV", True)
        curves = {}
        for j, act in enumerate(config.activations):
            metrics[key("lm", act, "val_loss")], curves[act] = _lm(config, act, corpus, seed)
            context.progress(len(todo) + j + 1, len(todo) + len(config.activations))
        series["lm_val"] = Series(_grid(config), curves, "step", "validation nats/char (subset)")
        return RunResult(metrics=metrics, series=series)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n, deep = len(results), max(config.depths)
        what = f"log CV(ELU) - log CV(GELU), {config.archs[0]} init, {deep} blocks"
        if n == 0:
            return [Verdict.inconclusive("C6", "no runs", effect_name=what)]
        settings = list(itertools.product(config.archs, PHASES))
        fam = 2 * len(settings) + 2

        def lcv(arch: str, act: str, phase: str) -> np.ndarray:
            return np.log(per_seed(results, arch, act, deep, phase))

        checks, decided, parts = [], [], []
        for arch, phase in settings:
            gap = lcv(arch, "elu", phase) - lcv(arch, "gelu", phase)
            closed = lcv(arch, "elu", phase) - lcv(arch, CONTROL, phase)
            a = check(f"{arch} {phase}: log CV ELU/GELU", gap, above=config.cv_margin, family=fam)
            b = check(f"{arch} {phase}: control's log CV gain - {config.attribution_share:g} x gap",
                      closed - config.attribution_share * gap, above=0.0, family=fam)  # fmt: skip
            checks += [a, b]
            decided += [a, b] if a.status == "supported" else [a]
            parts.append(f"{arch} {phase}: A {a.status}, B {b.status}")
        lm = [
            check(f"LM val nats/char ELU - {o}", per_seed(results, "lm", "elu", "val_loss"),
                  paired=per_seed(results, "lm", o, "val_loss"), above=0.0, family=fam)
            for o in ("gelu", CONTROL)
        ]  # fmt: skip
        status = combine([c.status for c in decided])
        losses = ", ".join(f"{a} {per_seed(results, 'lm', a, 'val_loss').mean():.3f}"
                           for a in config.activations)  # fmt: skip
        pre = (f"At {deep} blocks, A: GELU steadier by more than {config.cv_margin:g} in log CV; B "
               f"(where A holds): the smoothed-ELU control closes more than "
               f"{config.attribution_share:g} of that gap. {fam} checks, Bonferroni.")  # fmt: skip
        notes = [
            f"Per setting: {'; '.join(parts)}.",
            f"LM mean validation nats/char after {config.lm_steps} steps: {losses} "
            "(reported, not part of the status).",
        ]
        return [Verdict.from_checks("C6", checks + lm, status=status, effect=checks[0],
                                    effect_name=what, preamble=pre, notes=notes)]  # fmt: skip

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        if not results:
            return []
        acts, out = config.activations, []
        names = [f"cv_{a}_{p}" for a, p in itertools.product(config.archs, PHASES)]
        fig, axes = plots.panels(len(names), ncols=2, width=4.4, height=3.2)
        for i, (ax, name) in enumerate(zip(axes, names, strict=True)):
            ys = {a: [r.series[name].ys[a] for r in results] for a in acts}
            plots.curves(ax, config.depths, ys, title=name[3:].replace("_", ", "), xlabel="blocks",
                         ylabel="CV of per-layer grad variance", integer_x=True, logy=True,
                         legend=i == 1, marker="o", ms=3)  # fmt: skip
        cap = ("Coefficient of variation across blocks of the per-block gradient variance of "
               "W1 vs depth, at init and averaged over training (mean over seeds, band: range).")  # fmt: skip
        out.append(Figure(plots.save(fig, Path(out_dir) / "ffn_smoothness_cv.png"), cap))
        fig, axes = plots.panels(len(config.archs) + 1, ncols=3, width=4.2, height=3.2)
        for i, arch in enumerate(config.archs):
            s = results[0].series[f"profile_{arch}"]
            ys = {a: [r.series[f"profile_{arch}"].ys[a] for r in results] for a in acts}
            plots.curves(axes[i], s.x, ys, title=f"{arch}, {len(s.x)} blocks, init",
                         xlabel="block", ylabel=s.ylabel, logy=True, legend=False)  # fmt: skip
        s = results[0].series["lm_val"]
        ys = {a: [r.series["lm_val"].ys[a] for r in results] for a in acts}
        plots.curves(axes[-1], s.x, ys, title=f"char LM, {config.lm_blocks} x {config.lm_width}",
                     xlabel="step", ylabel=s.ylabel)  # fmt: skip
        cap = ("Per-block gradient variance of W1 at init in the deepest nets, and the LM's "
               "validation loss (nats/char, fixed subset) during training.")  # fmt: skip
        out.append(Figure(plots.save(fig, Path(out_dir) / "ffn_smoothness_profiles.png"), cap))
        return out
