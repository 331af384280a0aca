r"""C5, the analytic half: SELU's fixed point, its stability, and what deep random nets do.

The claim: SELU (:math:`\lambda x` for :math:`x>0`, :math:`\lambda\alpha(e^x-1)`
otherwise) with LeCun-normal weights (variance :math:`1/n`) and AlphaDropout drives the
activations of every layer to mean 0 and variance 1 with no normalisation layer; the
constants :math:`\lambda, \alpha` follow from exact Gaussian moments of ELU.

What this experiment does:

1. Derives :math:`(\lambda, \alpha)` from the fixed-point equations with
   :func:`elulab.theory.selu.solve_selu_parameters` and reports the error against the
   published digits; gives the spectral norm of the moment map's Jacobian at the fixed
   point (< 1 means the fixed point attracts).
2. Evaluates the moment map :math:`(\mu, \nu) \mapsto (\tilde\mu, \tilde\nu)`
   (:math:`\omega = 0, \tau = 1`) on a grid (the flow field) and iterates it from every
   grid point: the points that end at (0, 1) are the basin of attraction.
3. Feeds real standardised inputs (MNIST images, each pixel standardised over the
   images) through deep random networks (``depth`` layers of width ``width``) and
   measures each layer's activation mean and variance (pooled over units and inputs),
   for SELU + LeCun, SELU + ``kaiming_normal_(nonlinearity="selu")`` (gain 3/4, the
   common PyTorch mistake), ELU + He, ReLU + He and tanh + Xavier (gain 5/3), each
   without and with dropout (AlphaDropout for SELU; standard dropout for the others and,
   as a second mistake, for SELU).

The verdict: supported if the constants match to ``1e-12``, the spectral norm is below
1, and SELU + LeCun's per-layer statistics stay inside the band
(:math:`|\mu| \le` ``band_mean``, :math:`|\nu - 1| \le` ``band_var``) at every layer from
``burn_in`` to ``depth``, with and without AlphaDropout, in every seed, while the
other set-ups leave it. The effect is the largest :math:`|\nu - 1|` of SELU + LeCun,
with or without AlphaDropout, over those layers (mean over seeds, t-interval).

References:
    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, Verdict
from ._plotting import pyplot, save_figure

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


@dataclass(frozen=True)
class Config:
    """Settings of :class:`SnnFixedPoint`.

    Args:
        seeds: independent random networks (and input subsets).
        depth, width: the random networks' size.
        n_inputs: MNIST images pushed through each network.
        dropout: the dropout rate of the "with dropout" runs.
        band_mean, band_var: the band around (0, 1) the verdict checks.
        burn_in: the first layer the band applies to (layers count from 1).
        grid: the flow field's resolution (points per axis).
        basin_grid: the basin map's resolution.
        basin_iters: moment-map iterations when classifying a start point.
    """

    seeds: int = 1
    depth: int = 64
    width: int = 256
    n_inputs: int = 512
    dropout: float = 0.1
    band_mean: float = 0.1
    band_var: float = 0.1
    burn_in: int = 8
    grid: int = 15
    basin_grid: int = 40
    basin_iters: int = 200

    def validate(self) -> None:
        for name in ("depth", "width", "n_inputs", "grid", "basin_grid", "basin_iters"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2")
        if not 0.0 < self.dropout < 1.0:
            raise ValueError(f"dropout must be in (0, 1), got {self.dropout}")
        if not 1 <= self.burn_in <= self.depth:
            raise ValueError(f"burn_in must be in 1 .. depth ({self.depth}), got {self.burn_in}")
        if self.band_mean <= 0 or self.band_var <= 0:
            raise ValueError("band_mean and band_var must be positive")


def _variants() -> list[tuple[str, str, float, str]]:
    """(label, activation, gain, dropout kind) for every measured set-up."""
    out = []
    for name, (act, gain) in SETUPS.items():
        out.append((name, act, gain, "none"))
        out.append((f"{name}+{'alpha' if act == 'selu' else ''}dropout", act, gain,
                    "alpha" if act == "selu" else "standard"))  # fmt: skip
    out.append(("selu_lecun+standard_dropout", "selu", 1.0, "standard"))
    return out


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

    Layer ``l`` computes ``h_l = drop(act(W_l h_{l-1}))`` with
    ``W_l ~ N(0, gain^2 / n)`` (:func:`elulab.nn.lecun_normal_` with ``gain``) and zero
    biases; mean and variance are pooled over all units and inputs.

    Arguments:
        x: inputs ``(N, D)``.
        activation: a name :func:`elulab.nn.get_activation` knows.
        depth, width: layers and units per layer.
        gain: weight standard deviation times ``sqrt(fan_in)``.
        dropout: ``"none"``, ``"alpha"`` (:class:`elulab.nn.AlphaDropout`) or
            ``"standard"`` (``torch.nn.Dropout``), applied after every activation.
        rate: the dropout rate.
        seed: seeds the weights and the dropout masks.

    Returns:
        ``(means, variances)``, one value per layer.

    Example:
        >>> m, v = layer_statistics(torch.randn(256, 32), activation="selu", depth=4,
        ...                         width=64)
        >>> len(m), len(v)
        (4, 4)
    """
    from ..nn import AlphaDropout, get_activation, lecun_normal_

    if dropout not in ("none", "alpha", "standard"):
        raise ValueError(f"dropout must be 'none', 'alpha' or 'standard', got {dropout!r}")
    gen = torch.Generator().manual_seed(int(seed))
    act = get_activation(activation)
    drop: torch.nn.Module | None = None
    if dropout == "alpha":
        drop = AlphaDropout(rate)
    elif dropout == "standard":
        drop = torch.nn.Dropout(rate)
    state = torch.random.get_rng_state()
    torch.manual_seed(int(seed) + 1)  # dropout masks; global state restored below
    means, variances = [], []
    try:
        h = x.to(torch.float32)
        for _ in range(depth):
            w = torch.empty(width, h.shape[1])
            lecun_normal_(w, gain=gain, generator=gen)
            h = act(h @ w.T)
            if drop is not None:
                h = drop.train()(h)
            means.append(float(h.mean()))
            variances.append(float(h.var()))
    finally:
        torch.random.set_rng_state(state)
    return means, variances


def _mnist_inputs(n: int, seed: int, root: Path | None) -> torch.Tensor:
    """``n`` MNIST images, each pixel standardised over all 10,000 (constant pixels: 0)."""
    from ..data.mnist import load_mnist

    images, _ = load_mnist(root)
    x = images.reshape(len(images), -1).double()
    mu, sd = x.mean(0), x.std(0)
    z = torch.where(sd > 0, (x - mu) / torch.where(sd > 0, sd, 1.0), 0.0)
    # rescale so the input's pooled variance is 1 (constant border pixels count as 0)
    z = z / z.std()
    idx = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:n]
    return z[idx].float()


def _theory(config: Config) -> tuple[dict[str, float], dict[str, list[dict]]]:
    from fractions import Fraction

    from ..theory.selu import (
        alpha_dropout_parameters,
        moment_map,
        moment_map_jacobian,
        solve_selu_parameters,
    )

    p = solve_selu_parameters(mean=0.0, var=1.0)
    lam, alpha = float(p.lam), float(p.alpha)
    metrics = {
        "lambda": lam,
        "alpha": alpha,
        # exact rational arithmetic: the float64 result against the printed digits
        "lambda_abs_error": float(abs(Fraction(p.lam) - Fraction(PUBLISHED_LAMBDA))),
        "alpha_abs_error": float(abs(Fraction(p.alpha) - Fraction(PUBLISHED_ALPHA))),
    }
    jac = np.asarray(moment_map_jacobian(0.0, 1.0, lam=lam, alpha=alpha), dtype=np.float64)
    metrics["jacobian_spectral_norm"] = float(np.linalg.norm(jac, 2))
    metrics["jacobian_spectral_radius"] = float(np.max(np.abs(np.linalg.eigvals(jac))))
    for q in (0.05, 0.1):
        ad = alpha_dropout_parameters(q, mean=0.0, var=1.0, lam=lam, alpha=alpha)
        metrics[f"alpha_dropout_a/{q}"] = float(ad.a)
        metrics[f"alpha_dropout_b/{q}"] = float(ad.b)

    mus = np.linspace(-1.0, 1.0, config.grid)
    nus = np.linspace(0.1, 3.0, config.grid)
    M, N = np.meshgrid(mus, nus, indexing="ij")
    m1, v1 = moment_map(M, N, lam=lam, alpha=alpha)
    flow = [
        {"mu": float(a), "nu": float(b), "dmu": float(c - a), "dnu": float(d - b)}
        for a, b, c, d in zip(M.ravel(), N.ravel(), np.ravel(m1), np.ravel(v1), strict=False)
    ]
    # the basin: iterate the map from every grid point (vectorised); a start point
    # belongs to it if it reaches (0, 1) within 1e-6 in basin_iters steps
    BM, BN = np.meshgrid(
        np.linspace(-3.0, 3.0, config.basin_grid),
        np.linspace(0.02, 6.0, config.basin_grid),
        indexing="ij",
    )
    m, v = BM.ravel().copy(), BN.ravel().copy()
    alive = np.ones(m.shape, dtype=bool)
    for _ in range(config.basin_iters):
        nm, nv = moment_map(m[alive], v[alive], lam=lam, alpha=alpha)
        m[alive], v[alive] = nm, nv
        bad = ~np.isfinite(m) | ~np.isfinite(v) | (v <= 1e-12) | (v > 1e6)
        alive &= ~bad
    ok = alive & (np.abs(m) < 1e-6) & (np.abs(v - 1) < 1e-6)
    basin = [
        {"mu": float(a), "nu": float(b), "to_fixed_point": bool(c)}
        for a, b, c in zip(BM.ravel(), BN.ravel(), ok, strict=False)
    ]
    # where the statistics go with PyTorch's Kaiming gain for SELU (tau = 0.75^2)
    m, v = 0.0, 1.0
    for _ in range(config.basin_iters):
        m, v = moment_map(m, v, lam=lam, alpha=alpha, tau=0.5625)
    metrics["kaiming_selu_fixed_point_mean"] = float(m)
    metrics["kaiming_selu_fixed_point_var"] = float(v)
    metrics["basin_fraction"] = float(np.mean([b["to_fixed_point"] for b in basin]))
    return metrics, {"flow": flow, "basin": basin}


class SnnFixedPoint(Experiment):
    """SELU's fixed point (0, 1): constants, stability, and per-layer statistics at depth."""

    name = "snn_fixed_point"
    title = "Self-normalising networks: the SELU fixed point at depth"
    claims = ("C5",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2},
        "full": {
            "seeds": 5,
            "depth": 128,
            "width": 512,
            "n_inputs": 2000,
            "grid": 21,
            "basin_grid": 80,
        },
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        metrics, tables = _theory(config)
        x = _mnist_inputs(config.n_inputs, seed, context.data_dir)
        layers = [float(i) for i in range(1, config.depth + 1)]
        means: dict[str, list[float]] = {}
        variances: dict[str, list[float]] = {}
        variants = _variants()
        for k, (label, act, gain, drop) in enumerate(variants):
            m, v = layer_statistics(
                x, activation=act, depth=config.depth, width=config.width, gain=gain,
                dropout=drop, rate=config.dropout, seed=seed * 1000 + k,
            )  # fmt: skip
            means[label], variances[label] = m, v
            b = config.burn_in - 1
            metrics[f"max_abs_mean/{label}"] = float(np.max(np.abs(m[b:])))
            metrics[f"max_abs_var_dev/{label}"] = float(np.max(np.abs(np.asarray(v[b:]) - 1)))
            metrics[f"final_mean/{label}"] = m[-1]
            metrics[f"final_var/{label}"] = v[-1]
            context.progress(k + 1, len(variants))
        series = {
            "mean": Series(layers, means, "layer", "activation mean"),
            "var": Series(layers, variances, "layer", "activation variance", logy=True),
        }
        return RunResult(metrics=metrics, series=series, tables=tables)

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        from ..lab.stats import mean_ci

        n = len(results)

        def inside(label: str, r: RunResult) -> bool:
            return (
                r.metrics[f"max_abs_mean/{label}"] <= config.band_mean
                and r.metrics[f"max_abs_var_dev/{label}"] <= config.band_var
            )

        r0 = results[0].metrics
        const_ok = max(r0["lambda_abs_error"], r0["alpha_abs_error"]) <= 1e-12
        stable = r0["jacobian_spectral_norm"] < 1.0
        selu_ok = {lab: all(inside(lab, r) for r in results)
                   for lab in ("selu_lecun", "selu_lecun+alphadropout")}  # fmt: skip
        others = [lab for lab, *_ in _variants() if lab not in selu_ok]
        drifting = {lab: not all(inside(lab, r) for r in results) for lab in others}
        eff, lo, hi = mean_ci(
            [max(r.metrics[f"max_abs_var_dev/{lab}"] for lab in selu_ok) for r in results]
        )
        stay = [lab for lab, d in drifting.items() if not d]
        if not (const_ok and stable):
            status = "not supported"
        elif all(selu_ok.values()) and not stay:
            status = "supported" if n >= 2 else "inconclusive"
        elif all(selu_ok.values()):
            status = "mixed"
        else:
            status = "not supported"
        band = f"|mean| <= {config.band_mean}, |var - 1| <= {config.band_var}"
        summary = (
            f"lambda, alpha derived to within {max(r0['lambda_abs_error'], r0['alpha_abs_error']):.1e} "
            f"of the published digits; Jacobian spectral norm at (0, 1) "
            f"{r0['jacobian_spectral_norm']:.4f}. Through {config.depth} layers of width "
            f"{config.width} on standardised MNIST ({n} seed(s)), SELU+LeCun "
            f"{'stays' if selu_ok['selu_lecun'] else 'does not stay'} and with AlphaDropout "
            f"{'stays' if selu_ok['selu_lecun+alphadropout'] else 'does not stay'} within "
            f"{band} from layer {config.burn_in}; "
            + (
                f"also inside the band: {', '.join(stay)}."
                if stay
                else "every other set-up leaves it."
            )
        )
        return [
            Verdict(
                "C5",
                status,
                eff,
                lo,
                hi,
                n,
                summary,
                "largest |variance - 1| of SELU+LeCun (with or without AlphaDropout) over layers "
                f"{config.burn_in}..{config.depth}",
            )
        ]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        plt = pyplot()

        out_dir = Path(out_dir)
        figs: list[Figure] = []
        r0 = results[0]
        flow = r0.tables["flow"]
        basin = r0.tables["basin"]
        fig, ax = plt.subplots(figsize=(6, 5))
        bm = sorted({b["mu"] for b in basin})
        bn = sorted({b["nu"] for b in basin})
        grid = np.array([[float(b["to_fixed_point"]) for b in basin if b["mu"] == m] for m in bm])
        ax.pcolormesh(bm, bn, grid.T, cmap="Greens", vmin=0, vmax=2.5, shading="nearest")
        mu = np.array([f["mu"] for f in flow])
        nu = np.array([f["nu"] for f in flow])
        dmu = np.array([f["dmu"] for f in flow])
        dnu = np.array([f["dnu"] for f in flow])
        ax.quiver(mu, nu, dmu, dnu, angles="xy", scale_units="xy", scale=2, width=0.003)
        ax.plot([0], [1], "r*", ms=14, label="fixed point (0, 1)")
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(0.0, 3.1)
        ax.set_xlabel(r"mean $\mu$")
        ax.set_ylabel(r"variance $\nu$")
        frac = r0.metrics["basin_fraction"]
        ax.set_title(
            f"SELU moment map ($\\omega=0, \\tau=1$); spectral norm {r0.metrics['jacobian_spectral_norm']:.3f}",
            fontsize=9,
        )
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        p = out_dir / "snn_flow_field.png"
        save_figure(fig, p, dpi=120)
        figs.append(
            Figure(
                p,
                "Arrows: one step of the moment map (mu, nu) -> (mu', nu') for SELU with "
                "LeCun weights; green: start points that converge to the fixed point (0, 1) "
                f"({100 * frac:.0f}% of mu in [-3, 3], nu in (0, 6]).",
            )
        )
        for key, ylabel in (("var", "variance"), ("mean", "mean")):
            fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
            for ax, with_drop in zip(axes, (False, True), strict=False):
                s = r0.series[key]
                for label, _ys in s.ys.items():
                    if ("dropout" in label) != with_drop:
                        continue
                    vals = np.array([r.series[key].ys[label] for r in results])
                    ax.plot(s.x, vals.mean(0), label=label, lw=2 if "selu_lecun" in label else 1)
                if key == "var":
                    ax.set_yscale("log")
                    ax.axhspan(1 - config.band_var, 1 + config.band_var, color="green", alpha=0.15)
                else:
                    ax.axhspan(-config.band_mean, config.band_mean, color="green", alpha=0.15)
                ax.set_xlabel("layer")
                ax.set_title("with dropout" if with_drop else "without dropout", fontsize=9)
                ax.legend(fontsize=7)
            axes[0].set_ylabel(f"activation {ylabel}")
            fig.tight_layout()
            p = out_dir / f"snn_layer_{key}.png"
            save_figure(fig, p, dpi=120)
            figs.append(
                Figure(
                    p,
                    f"Per-layer activation {ylabel} in {config.depth}-layer random networks of "
                    f"width {config.width} on standardised MNIST (mean over {len(results)} "
                    "seed(s)); the green band is the verdict's band around the fixed point.",
                )
            )
        return figs
