r"""C5, the analytic half: SELU's fixed point, its stability, and what deep random nets do.

The claim: SELU (:math:`\lambda x` for :math:`x>0`, :math:`\lambda\alpha(e^x-1)` otherwise)
with LeCun-normal weights (variance :math:`1/n`) and AlphaDropout drives the activations
of every layer to mean 0 and variance 1 with no normalisation layer; the constants
:math:`\lambda, \alpha` follow from exact Gaussian moments of ELU.

Protocol: the constants, their error against the published digits, the spectral norm of
the moment map's Jacobian at (0, 1), its flow field and basin; standardised MNIST images
through deep random nets (the :data:`SETUPS` without and with dropout, ELU + LeCun): each
layer's activation mean and variance over units and images, and for SELU/ELU their
prediction and spread over random nets (:func:`elulab.theory.random_net_statistics`).

Verdict: a band is ``z`` predicted sds, Bonferroni over layers ``burn_in..depth``, the two
statistics and the seeds at ``false_alarm``. Supported (2 or more seeds) if the constants
match to ``1e-12``, the spectral norm is below 1, SELU + LeCun with and without
AlphaDropout stays in its band around (0, 1), and every control (:data:`CONTROLS`) in its
band around its *predicted* trajectory, far from (0, 1), at every such layer in every
seed; mixed if only a control fails (the band's derivation is then in doubt). Effect:
SELU + LeCun's largest :math:`|\nu - 1|` there.

References: Klambauer, Unterthiner, Mayr, Hochreiter, Self-Normalizing Neural Networks
(2017), arXiv:1706.02515.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import norm

from .. import theory
from ..data.mnist import load_mnist
from ..diagnostics import layer_statistics
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.plots import band, panels, save
from ..lab.stats import Effect, mean_ci
from ..lab.verdicts import Check, Verdict, key, per_seed
from ..train import generator

__all__ = ["CONTROLS", "PUBLISHED_ALPHA", "PUBLISHED_LAMBDA", "SETUPS", "SnnFixedPoint"]

# The digits printed in the SNN paper's code (bioinf-jku/SNNs, selu.py) and in PyTorch.
PUBLISHED_LAMBDA = "1.0507009873554804934193349852946"
PUBLISHED_ALPHA = "1.6732632423543772848170429916717"

# set-up -> (activation, weight gain); weights ~ N(0, gain^2 / fan_in), zero biases
SETUPS: dict[str, tuple[str, float]] = {
    "selu_lecun": ("selu", 1.0),
    "selu_kaiming_selu": ("selu", 0.75),  # torch.nn.init.calculate_gain("selu") == 3/4
    "elu_he": ("elu", math.sqrt(2.0)),
    "relu_he": ("relu", math.sqrt(2.0)),
    "tanh_xavier": ("tanh", 5.0 / 3.0),  # torch.nn.init.calculate_gain("tanh")
}
SELU_LECUN = ("selu_lecun", "selu_lecun+alphadropout")
# predictions the measurement could contradict: each lies far outside SELU's (0, 1) band
CONTROLS = (
    "selu_kaiming_selu",
    "selu_kaiming_selu+alphadropout",
    "selu_lecun+standard_dropout",
    "elu_lecun",
)
_SELU = {"lam": theory.SELU_LAMBDA, "alpha": theory.SELU_ALPHA}
ELU_FAMILY = {"selu": _SELU, "elu": {"lam": 1.0, "alpha": 1.0}}  # lam * elu(x; alpha)


@dataclass(frozen=True)
class Config:
    """Settings of :class:`SnnFixedPoint`."""

    seeds: int = param(1, "independent random networks (and input subsets)", ge=1)
    depth: int = param(64, "layers of each random network", ge=2)
    width: int = param(256, "units per layer", ge=2)
    n_inputs: int = param(512, "MNIST images pushed through each network", ge=2)
    dropout: float = param(0.1, "dropout rate of the 'with dropout' runs", gt=0.0, lt=1.0)
    false_alarm: float = param(0.01, "chance a net on its prediction leaves its band", gt=0, lt=1)
    burn_in: int = param(16, "first band layer (<= depth), after the images' transient", ge=1)
    pair_inputs: int = param(128, "images whose pair correlations the spread follows", ge=2)
    grid: int = param(15, "flow field: points per axis", ge=2)
    basin_grid: int = param(40, "basin of attraction: points per axis", ge=2)
    basin_iters: int = param(200, "moment-map iterations from each start point", ge=2)

    def validate(self) -> None:
        if self.burn_in > self.depth:
            raise ValueError(f"burn_in must be in 1 .. depth ({self.depth}), got {self.burn_in}")


def _variants() -> list[tuple[str, str, float, str]]:
    """(label, activation, gain, dropout kind) for every measured set-up."""
    out = []
    for name, (act, gain) in SETUPS.items():
        kind = "alpha" if act == "selu" else "standard"
        label = f"{name}+{'alpha' if kind == 'alpha' else ''}dropout"
        out += [(name, act, gain, "none"), (label, act, gain, kind)]
    extra = [("selu_lecun+standard_dropout", "selu", 1.0, "standard")]
    return [*out, *extra, ("elu_lecun", "elu", 1.0, "none")]


def _mnist_inputs(n: int, seed: int, root: Path | None) -> torch.Tensor:
    """``n`` MNIST images, each pixel standardised over all 10,000 (constant pixels: 0)."""
    x = load_mnist(root)[0].flatten(1).double()
    mu, sd = x.mean(0), x.std(0)
    z = torch.where(sd > 0, (x - mu) / torch.where(sd > 0, sd, 1.0), 0.0)
    z = z / z.std()  # the input's pooled variance is 1 (constant border pixels count as 0)
    return z[torch.randperm(len(z), generator=generator(seed))[:n]].float()


def _table(**columns: Any) -> list[dict[str, Any]]:
    """Rows ``{name: value}`` from equally shaped arrays (JSON-able Python scalars)."""
    values = [np.ravel(c).tolist() for c in columns.values()]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _theory(config: Config) -> tuple[dict[str, float], dict[str, list[dict]]]:
    """Constants, Jacobian, AlphaDropout, flow field, basin, the Kaiming-gain fixed point."""
    p = theory.solve_selu_parameters(mean=0.0, var=1.0)  # with the Jacobian at (0, 1)
    sel = {"lam": float(p.lam), "alpha": float(p.alpha)}
    metrics = {
        "lambda": sel["lam"],
        "alpha": sel["alpha"],
        # exact rational arithmetic: the float64 result against the printed digits
        "lambda_abs_error": float(abs(Fraction(p.lam) - Fraction(PUBLISHED_LAMBDA))),
        "alpha_abs_error": float(abs(Fraction(p.alpha) - Fraction(PUBLISHED_ALPHA))),
        "jacobian_spectral_norm": float(p.spectral_norm),
        "jacobian_spectral_radius": float(np.max(np.abs(np.linalg.eigvals(p.jacobian)))),
    }
    for q in (0.05, 0.1):
        ad = theory.alpha_dropout_parameters(q, mean=0.0, var=1.0, **sel)
        metrics |= {key(f"alpha_dropout_{c}", q): float(getattr(ad, c)) for c in "ab"}
    g, steps = config.grid, config.basin_iters
    mu, nu = np.meshgrid(np.linspace(-1.0, 1.0, g), np.linspace(0.1, 3.0, g), indexing="ij")
    dmu, dnu = theory.moment_map_flow(mu, nu, **sel)
    g = config.basin_grid
    bmu, bnu = np.meshgrid(np.linspace(-3.0, 3.0, g), np.linspace(0.02, 6.0, g), indexing="ij")
    ok = theory.basin_of_attraction(bmu, bnu, steps=steps, **sel)
    metrics["basin_fraction"] = float(np.mean(ok))
    # where the statistics go with PyTorch's Kaiming gain for SELU (tau = 0.75^2), with
    # normalised weights (the paper's omega = 0) and with random ones (the nets here)
    for name, rand in (("", False), ("random_weights_", True)):
        it = theory.iterate_moment_map(0.0, 1.0, steps, tau=0.5625, random_weights=rand, **sel)
        metrics[f"kaiming_selu_{name}fixed_point_mean"] = float(it[0])
        metrics[f"kaiming_selu_{name}fixed_point_var"] = float(it[1])
    flow = _table(mu=mu, nu=nu, dmu=dmu, dnu=dnu)
    return metrics, {"flow": flow, "basin": _table(mu=bmu, nu=bnu, to_fixed_point=ok)}


def _rule(label: str, value: float, n: int, threshold: float, note: str = "") -> Check:
    """A sub-claim decided by a fixed rule (no t-test): supported if ``value < threshold``."""
    status = "supported" if value < threshold else "not supported"
    return Check(label, status, Effect(value, math.nan, math.nan), n, threshold, "less", note=note)


def _lines(ax: Any, results: Sequence[RunResult], name: str, keep: Any) -> None:
    """Series ``name`` of the set-ups ``keep(label)`` picks; dashed: Kaiming, dotted: plain drop."""
    for label, act, *_ in [v for v in _variants() if keep(v[0])]:
        ls = "--" if "kaiming" in label else ":" if "standard" in label else "-"
        ls, lw = ("-." if label == "elu_lecun" else ls), 1 + (label in SETUPS) * (act == "selu")
        ys = [r.series[name].ys[label] for r in results]
        band(ax, results[0].series[name].x, ys, label, colour_of=act, ls=ls, lw=lw)


def band_z(config: Config, n_seeds: int) -> float:
    """Every band's half-width in predicted sds: Bonferroni over layers, 2 stats, seeds, 2 sides."""
    tests = 4 * (config.depth - config.burn_in + 1) * max(n_seeds, 1)
    return float(norm.isf(config.false_alarm / tests))


class SnnFixedPoint(Experiment):
    """SELU's fixed point (0, 1): constants, stability, and per-layer statistics at depth."""

    name = "snn_fixed_point"
    title = "Self-normalising networks: the SELU fixed point at depth"
    claims = ("C5",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2},
        "full": dict(seeds=5, depth=128, width=512, n_inputs=2000, grid=21, basin_grid=80),
        "smoke": dict(seeds=2, depth=4, width=16, n_inputs=32, burn_in=2, grid=3, basin_grid=3),
    }
    version: ClassVar[int] = 2  # 2: bands derived from the finite-width spread, controls

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        metrics, tables = _theory(config)
        x = _mnist_inputs(config.n_inputs, seed, context.data_dir)
        xd = x.double().numpy()
        series: dict[str, dict[str, list[float]]] = {}
        variants, b, depth = _variants(), config.burn_in - 1, config.depth
        size = {"depth": depth, "width": config.width, "rate": config.dropout}
        for k, (label, act, gain, drop) in enumerate(variants):
            args = {"activation": act, "gain": gain, "dropout": drop, "seed": seed * 1000 + k}
            m, v = (np.asarray(s) for s in layer_statistics(x, **args, **size))
            curves = {"mean": m, "var": v}
            metrics[key("max_abs_mean", label)] = float(np.max(np.abs(m[b:])))
            metrics[key("max_abs_var_dev", label)] = float(np.max(np.abs(v[b:] - 1)))
            metrics[key("final_mean", label)], metrics[key("final_var", label)] = m[-1], v[-1]
            if label in SELU_LECUN + CONTROLS:  # the prediction, and where the band sits
                kw = {**ELU_FAMILY[act], "gain": gain, "dropout": drop, **size}
                p = theory.random_net_statistics(xd, pair_inputs=config.pair_inputs, **kw)
                for stat, pred, sd in (("mean", p.mean, p.sd_mean), ("var", p.var, p.sd_var)):
                    fixed = {"mean": 0.0, "var": 1.0}[stat] if label in SELU_LECUN else pred
                    zs, err = (curves[stat] - fixed) / sd, (curves[stat] - pred) / sd
                    metrics[key(f"max_z_{stat}", label)] = float(np.max(np.abs(zs[b:])))
                    metrics[key(f"rms_z_{stat}", label)] = float(np.sqrt(np.mean(err[b:] ** 2)))
                    metrics[key(f"pred_final_{stat}", label)] = float(pred[-1])
                    metrics[key(f"sd_final_{stat}", label)] = float(sd[-1])
                    curves |= {f"pred_{stat}": pred, f"sd_{stat}": sd, f"z_{stat}": zs}
            for name, ys in curves.items():
                series.setdefault(name, {})[label] = [float(y) for y in ys]
            context.progress(k + 1, len(variants))
        layers = [float(i) for i in range(1, depth + 1)]
        out = {n: Series(layers, ys, "layer", n.replace("_", " ")) for n, ys in series.items()}
        return RunResult(metrics=metrics, series=out, tables=tables)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        what = f"largest |var - 1|, SELU+LeCun (either), layers {config.burn_in}..{config.depth}"
        if not results:
            return [Verdict.inconclusive("C5", "no runs", effect_name=what)]
        n, r0, z = len(results), results[0].metrics, band_z(config, len(results))

        def banded(label: str, where: str) -> Check:  # inside at every layer, in every seed
            worst = np.max([per_seed(results, f"max_z_{s}", label) for s in ("mean", "var")], 0)
            rms = np.mean([per_seed(results, f"rms_z_{s}", label) for s in ("mean", "var")])
            note = f"rms deviation from the prediction {rms:.2f} sd"
            return _rule(f"{label}: largest |z| from {where}", float(worst.max()), n, z, note)

        err, rho = max(r0["lambda_abs_error"], r0["alpha_abs_error"]), r0["jacobian_spectral_norm"]
        selu = [banded(lab, "(0, 1)") for lab in SELU_LECUN]
        controls = [banded(lab, "its predicted trajectory") for lab in CONTROLS]
        c1 = _rule("error of lambda, alpha vs the published digits", err, 1, 1e-12)
        c2 = _rule("spectral norm of the moment map's Jacobian at (0, 1)", rho, 1, 1.0)
        checks = [c1, c2, *selu, *controls]
        held = [c.status == "supported" for c in checks]
        status = ("supported" if n >= 2 else "inconclusive") if all(held) else "mixed"
        status = status if all(held[:4]) else "not supported"
        worst = np.max([per_seed(results, "max_abs_var_dev", lab) for lab in SELU_LECUN], axis=0)
        half = z * np.mean(per_seed(results, "sd_final_var", "selu_lecun"))
        pre = (
            f"{config.depth} x {config.width} nets, {config.n_inputs} MNIST images; bands of z = "
            f"{z:.2f} predicted sds (SELU+LeCun's at layer {config.depth}: |var - 1| < {half:.3g}):"
        )
        rule = "Supported when all hold (2+ seeds); mixed when only controls fail."
        kw = {"effect_name": what, "n_seeds": n, "preamble": pre, "notes": [rule]}
        return [Verdict.from_checks("C5", checks, status=status, effect=mean_ci(worst), **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        r0, basin, out = results[0], results[0].tables["basin"], Path(out_dir)
        fig, (ax,) = panels(1, width=6.0, height=5.0)
        bm, bn = sorted({b["mu"] for b in basin}), sorted({b["nu"] for b in basin})
        grid = np.array([[float(b["to_fixed_point"]) for b in basin if b["mu"] == m] for m in bm])
        ax.pcolormesh(bm, bn, grid.T, cmap="Greens", vmin=0, vmax=2.5, shading="nearest")
        arrows = ([row[k] for row in r0.tables["flow"]] for k in ("mu", "nu", "dmu", "dnu"))
        ax.quiver(*arrows, angles="xy", scale_units="xy", scale=2, width=0.003)
        ax.plot([0], [1], "r*", ms=14, label="fixed point (0, 1)")
        ax.set(xlim=(-1.05, 1.05), ylim=(0.0, 3.1), xlabel=r"mean $\mu$", ylabel=r"variance $\nu$")
        norm2, frac = r0.metrics["jacobian_spectral_norm"], r0.metrics["basin_fraction"]
        ax.set_title(f"SELU moment map ($\\omega=0, \\tau=1$); spectral norm {norm2:.3f}", size=9)
        ax.legend(loc="upper right", fontsize=8)
        caption = (
            f"Arrows: one step of the SELU moment map (LeCun weights); green: start points "
            f"that reach (0, 1) ({100 * frac:.0f}% of mu in [-3, 3], nu in (0, 6])."
        )
        figs = [Figure(save(fig, out / "snn_flow_field.png", dpi=120), caption)]
        z, x = band_z(config, len(results)), np.asarray(r0.series["mean"].x)
        dims = f"{config.depth} x {config.width} nets on MNIST, {len(results)} seed(s): mean, range"
        for name, what in (("var", "variance"), ("mean", "mean")):
            fig, axes = panels(2, ncols=2, width=5.5, height=4.0)
            axes[1].sharey(axes[0])
            for ax, drop in zip(axes, (False, True), strict=True):
                _lines(ax, results, name, lambda lab, d=drop: ("dropout" in lab) == d)
                ax.set(yscale="log" if name == "var" else "linear", xlabel="layer")
                ax.set_title("with dropout" if drop else "without dropout", fontsize=9)
                ax.legend(fontsize=7)
            axes[0].set_ylabel(f"activation {what}")
            caption = f"Activation {what} per layer, {dims}."
            figs.append(Figure(save(fig, out / f"snn_layer_{name}.png", dpi=120), caption))
        fig, axes = panels(2, ncols=2, width=5.5, height=4.0)
        for ax, (name, what) in zip(axes, (("var", "variance"), ("mean", "mean")), strict=True):
            _lines(ax, results, f"z_{name}", lambda lab: lab in SELU_LECUN + CONTROLS)
            ax.fill_between(x, -z, z, where=x >= config.burn_in, color="grey", alpha=0.15, lw=0)
            ax.set(ylim=(-z - 0.5, z + 3.0), xlabel="layer", title=f"activation {what}")
            ax.legend(fontsize=7, ncol=2, loc="upper center")
        axes[0].set_ylabel("(measured - band centre) / predicted sd")
        caption = (
            f"Deviation from the band centre ((0, 1) for SELU+LeCun, the predicted trajectory for "
            f"the controls) in predicted sds, {dims}; grey: the band, layers {config.burn_in}+."
        )
        figs.append(Figure(save(fig, out / "snn_band_z.png", dpi=120), caption))
        return figs
