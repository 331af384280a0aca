r"""C5, the analytic half: SELU's fixed point, its stability, and what deep random nets do.

The claim: SELU (:math:`\lambda x` for :math:`x>0`, :math:`\lambda\alpha(e^x-1)` otherwise)
with LeCun-normal weights (variance :math:`1/n`) and AlphaDropout drives the activations
of every layer to mean 0 and variance 1 with no normalisation layer; the constants
:math:`\lambda, \alpha` follow from exact Gaussian moments of ELU.

Protocol: (1) derive :math:`(\lambda, \alpha)`, their error against the published digits,
and the spectral norm of the moment map's Jacobian at (0, 1) (< 1: it attracts); (2) the
moment map's flow field and basin of attraction on grids (:math:`\omega = 0, \tau = 1`;
:mod:`elulab.theory.selu`); (3) standardised MNIST images through deep random networks,
each layer's activation mean and variance pooled over units and images, for the
:data:`SETUPS` (SELU + LeCun; SELU + ``kaiming_normal_(nonlinearity="selu")``, gain 3/4,
the common PyTorch mistake; ELU / ReLU + He; tanh + Xavier), each without and with dropout
(AlphaDropout for SELU, standard dropout for the others and, a second mistake, for SELU).

Verdict: supported (2 or more seeds) if the constants match to ``1e-12``, the spectral
norm is below 1, SELU + LeCun, with and without AlphaDropout, stays inside the band
(:math:`|\mu| \le` ``band_mean``, :math:`|\nu - 1| \le` ``band_var``) at every layer from
``burn_in`` on in every seed, and every other set-up leaves it; mixed if another stays
too. Effect: SELU + LeCun's largest :math:`|\nu - 1|` there (mean over seeds, t-interval).

References: Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter,
2017), arXiv:1706.02515.
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

from .. import theory
from ..data.mnist import load_mnist
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, param
from ..lab.plots import band, panels, save
from ..lab.stats import Effect, mean_ci
from ..lab.verdicts import Check, Verdict, key, per_seed
from ..nn import AlphaDropout, get_activation, lecun_normal_
from ..train import generator, seeded

__all__ = ["PUBLISHED_ALPHA", "PUBLISHED_LAMBDA", "SETUPS", "SnnFixedPoint", "layer_statistics"]

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


@dataclass(frozen=True)
class Config:
    """Settings of :class:`SnnFixedPoint`."""

    seeds: int = param(1, "independent random networks (and input subsets)", ge=1)
    depth: int = param(64, "layers of each random network", ge=2)
    width: int = param(256, "units per layer", ge=2)
    n_inputs: int = param(512, "MNIST images pushed through each network", ge=2)
    dropout: float = param(0.1, "dropout rate of the 'with dropout' runs", gt=0.0, lt=1.0)
    band_mean: float = param(0.1, "the verdict's band: largest |activation mean|", gt=0.0)
    band_var: float = param(0.1, "the verdict's band: largest |activation variance - 1|", gt=0.0)
    burn_in: int = param(8, "first layer (counted from 1) the band applies to, <= depth", ge=1)
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
    return [*out, ("selu_lecun+standard_dropout", "selu", 1.0, "standard")]


@torch.no_grad()
def layer_statistics(
    x: torch.Tensor,
    *,
    activation: str,
    depth: int,
    width: int,
    gain: float = 1.0,
    dropout: str = "none",
    rate: float = 0.1,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """Mean and variance of each layer's activations in a deep random MLP (train mode).

    ``h_l = drop(act(W_l h_{l-1}))``, ``W_l ~ N(0, gain^2 / n)`` from
    :func:`elulab.train.generator` ``(seed)``, zero biases; ``drop``: ``"none"``, ``"alpha"``
    (:class:`elulab.nn.AlphaDropout`) or ``"standard"`` (``nn.Dropout``) at ``rate``, masks
    from :func:`elulab.train.seeded` ``(seed + 1)``; pooled over units and inputs.

    Example:
        >>> m, v = layer_statistics(torch.randn(256, 32), activation="selu", depth=4,
        ...                         width=64)
        >>> len(m), len(v)
        (4, 4)
    """
    drops = {"none": None, "alpha": AlphaDropout, "standard": torch.nn.Dropout}
    if dropout not in drops:
        raise ValueError(f"dropout must be 'none', 'alpha' or 'standard', got {dropout!r}")
    gen, act = generator(seed), get_activation(activation)
    drop = None if drops[dropout] is None else drops[dropout](rate).train()
    means, variances = [], []
    with seeded(seed + 1):
        h = x.to(torch.float32)
        for _ in range(depth):
            w = lecun_normal_(torch.empty(width, h.shape[1]), gain=gain, generator=gen)
            h = act(h @ w.T)
            h = h if drop is None else drop(h)
            means.append(float(h.mean()))
            variances.append(float(h.var()))
    return means, variances


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
        metrics[key("alpha_dropout_a", q)] = float(ad.a)
        metrics[key("alpha_dropout_b", q)] = float(ad.b)
    g = config.grid
    mu, nu = np.meshgrid(np.linspace(-1.0, 1.0, g), np.linspace(0.1, 3.0, g), indexing="ij")
    dmu, dnu = theory.moment_map_flow(mu, nu, **sel)
    g = config.basin_grid
    bmu, bnu = np.meshgrid(np.linspace(-3.0, 3.0, g), np.linspace(0.02, 6.0, g), indexing="ij")
    ok = theory.basin_of_attraction(bmu, bnu, steps=config.basin_iters, **sel)
    # where the statistics go with PyTorch's Kaiming gain for SELU (tau = 0.75^2)
    m, v, _ = theory.iterate_moment_map(0.0, 1.0, config.basin_iters, tau=0.5625, **sel)
    metrics["kaiming_selu_fixed_point_mean"] = float(m)
    metrics["kaiming_selu_fixed_point_var"] = float(v)
    metrics["basin_fraction"] = float(np.mean(ok))
    flow = _table(mu=mu, nu=nu, dmu=dmu, dnu=dnu)
    return metrics, {"flow": flow, "basin": _table(mu=bmu, nu=bnu, to_fixed_point=ok)}


def _rule(label: str, ok: bool, effect: Any, n: int, threshold: float, note: str = "") -> Check:
    """A sub-claim decided by a fixed rule (no t-test): ``effect`` below ``threshold``."""
    eff = effect if isinstance(effect, Effect) else Effect(float(effect), math.nan, math.nan)
    kw = {"effect": eff, "n": n, "threshold": threshold, "direction": "less", "note": note}
    return Check(label=label, status="supported" if ok else "not supported", **kw)


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

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        metrics, tables = _theory(config)
        x = _mnist_inputs(config.n_inputs, seed, context.data_dir)
        means, variances, variants, b = {}, {}, _variants(), config.burn_in - 1
        size = {"depth": config.depth, "width": config.width, "rate": config.dropout}
        for k, (label, act, gain, drop) in enumerate(variants):
            stats = layer_statistics(
                x, activation=act, gain=gain, dropout=drop, seed=seed * 1000 + k, **size
            )
            m, v = means[label], variances[label] = stats
            metrics[key("max_abs_mean", label)] = float(np.max(np.abs(m[b:])))
            metrics[key("max_abs_var_dev", label)] = float(np.max(np.abs(np.asarray(v[b:]) - 1)))
            metrics[key("final_mean", label)] = m[-1]
            metrics[key("final_var", label)] = v[-1]
            context.progress(k + 1, len(variants))
        layers = [float(i) for i in range(1, config.depth + 1)]
        mean = Series(layers, means, "layer", "activation mean")
        var = Series(layers, variances, "layer", "activation variance", logy=True)
        return RunResult(metrics=metrics, series={"mean": mean, "var": var}, tables=tables)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        span = f"layers {config.burn_in}..{config.depth}"
        what = f"largest |variance - 1| of SELU+LeCun (with or without AlphaDropout) over {span}"
        if not results:
            return [Verdict.inconclusive("C5", "no runs", effect_name=what)]
        n, r0 = len(results), results[0].metrics

        def inside(label: str) -> bool:  # in the band at every layer, in every seed
            mean, var = (per_seed(results, q, label) for q in ("max_abs_mean", "max_abs_var_dev"))
            return bool(np.all(mean <= config.band_mean) and np.all(var <= config.band_var))

        err, norm = max(r0["lambda_abs_error"], r0["alpha_abs_error"]), r0["jacobian_spectral_norm"]
        selu_ok = all(inside(lab) for lab in SELU_LECUN)
        stay = [lab for lab, *_ in _variants() if lab not in SELU_LECUN and inside(lab)]
        worst = np.max([per_seed(results, "max_abs_var_dev", lab) for lab in SELU_LECUN], axis=0)
        band = f"|mean| <= {config.band_mean}, |var - 1| <= {config.band_var}"
        note = f"{band} at every layer in every seed: {'yes' if selu_ok else 'no'}"
        selu = _rule(what, selu_ok, mean_ci(worst), n, config.band_var, note)
        checks = [
            _rule("error of lambda, alpha vs the published digits", err <= 1e-12, err, 1, 1e-12),
            _rule("spectral norm of the moment map's Jacobian at (0, 1)", norm < 1.0, norm, 1, 1.0),
            selu,
            _rule("other set-ups inside the band", not stay, len(stay), 1, 1, ", ".join(stay)),
        ]
        status = "mixed" if stay else "supported" if n >= 2 else "inconclusive"
        status = status if err <= 1e-12 and norm < 1.0 and selu_ok else "not supported"
        pre = f"{config.depth} layers of width {config.width}, standardised MNIST:"
        rule = "Supported when all four hold, with 2 or more seeds; mixed when only the last fails."
        kw = {"effect": selu, "effect_name": what, "n_seeds": n, "preamble": pre, "notes": [rule]}
        return [Verdict.from_checks("C5", checks, status=status, **kw)]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        r0, basin = results[0], results[0].tables["basin"]
        fig, (ax,) = panels(1, width=6.0, height=5.0)
        bm, bn = sorted({b["mu"] for b in basin}), sorted({b["nu"] for b in basin})
        grid = np.array([[float(b["to_fixed_point"]) for b in basin if b["mu"] == m] for m in bm])
        ax.pcolormesh(bm, bn, grid.T, cmap="Greens", vmin=0, vmax=2.5, shading="nearest")
        arrows = ([row[k] for row in r0.tables["flow"]] for k in ("mu", "nu", "dmu", "dnu"))
        ax.quiver(*arrows, angles="xy", scale_units="xy", scale=2, width=0.003)
        ax.plot([0], [1], "r*", ms=14, label="fixed point (0, 1)")
        ax.set(xlim=(-1.05, 1.05), ylim=(0.0, 3.1), xlabel=r"mean $\mu$", ylabel=r"variance $\nu$")
        norm, frac = r0.metrics["jacobian_spectral_norm"], r0.metrics["basin_fraction"]
        ax.set_title(f"SELU moment map ($\\omega=0, \\tau=1$); spectral norm {norm:.3f}", size=9)
        ax.legend(loc="upper right", fontsize=8)
        caption = (
            f"Arrows: one step of the SELU moment map (LeCun weights); green: start points "
            f"that reach (0, 1) ({100 * frac:.0f}% of mu in [-3, 3], nu in (0, 6])."
        )
        figs = [Figure(save(fig, Path(out_dir) / "snn_flow_field.png", dpi=120), caption)]
        for name, what in (("var", "variance"), ("mean", "mean")):
            fig, axes = panels(2, ncols=2, width=5.5, height=4.0)
            axes[1].sharey(axes[0])
            mid, half = (1.0, config.band_var) if name == "var" else (0.0, config.band_mean)
            for ax, with_drop in zip(axes, (False, True), strict=True):
                for label, act, _, _ in _variants():
                    if ("dropout" in label) == with_drop:
                        ys = [r.series[name].ys[label] for r in results]
                        ls = "--" if "kaiming" in label else ":" if "standard" in label else "-"
                        lw = 2 if "selu_lecun" in label else 1
                        band(ax, r0.series[name].x, ys, label, colour_of=act, lw=lw, ls=ls)
                ax.axhspan(mid - half, mid + half, color="green", alpha=0.15)
                ax.set(yscale="log" if name == "var" else "linear", xlabel="layer")
                ax.set_title("with dropout" if with_drop else "without dropout", fontsize=9)
                ax.legend(fontsize=7)
            axes[0].set_ylabel(f"activation {what}")
            caption = (
                f"Activation {what} per layer, {config.depth} x {config.width} random nets, "
                f"MNIST ({len(results)} seed(s): mean, range); green: the verdict's band."
            )
            path = save(fig, Path(out_dir) / f"snn_layer_{name}.png", dpi=120)
            figs.append(Figure(path, caption))
        return figs
