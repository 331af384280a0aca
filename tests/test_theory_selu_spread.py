"""theory.selu.random_net_statistics: the predicted per-layer statistics of deep random nets
and their finite-width spread, against Monte Carlo nets (plain float64 torch, written here
independently of elulab.nn) and against the exact moment maps at infinite width."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elulab.theory import SELU_ALPHA, SELU_LAMBDA, alpha_dropout_parameters, gaussian_moments
from elulab.theory.selu import (
    iterate_moment_map,
    moment_map,
    moment_map_jacobian,
    random_net_statistics,
)

PARAMS = {"selu": (SELU_LAMBDA, SELU_ALPHA), "elu": (1.0, 1.0)}


def _inputs(n: int = 128, d: int = 64, seed: int = 0) -> np.ndarray:
    """Correlated inputs (three shared factors plus noise; pair correlations up to about
    +-0.5, as between MNIST digits), pooled variance 1, unequal norms."""
    rng = np.random.default_rng(seed)
    x = 0.4 * rng.standard_normal((n, 3)) @ rng.standard_normal((3, d))
    x = x + rng.standard_normal((n, d)) * rng.uniform(0.7, 1.3, (n, 1))
    return x / x.std()


def _monte_carlo(
    x: np.ndarray, act: str, gain: float, dropout: str, *, depth: int, width: int, nets: int
) -> np.ndarray:
    """``(2, nets, depth)``: pooled mean and variance of each layer of ``nets`` random nets."""
    lam, alpha = PARAMS[act]
    rate, ad = 0.1, alpha_dropout_parameters(0.1)
    g = torch.Generator().manual_seed(1234)
    out = np.empty((2, nets, depth))
    for r in range(nets):
        h = torch.as_tensor(x, dtype=torch.float64)
        for layer in range(depth):
            w = torch.randn(width, h.shape[1], generator=g, dtype=torch.float64)
            z = h @ (w.T * gain / math.sqrt(h.shape[1]))
            h = lam * torch.where(z > 0, z, alpha * torch.expm1(torch.clamp(z, max=0.0)))
            if dropout != "none":
                keep = torch.rand(h.shape, generator=g, dtype=torch.float64) >= rate
                if dropout == "standard":
                    h = torch.where(keep, h / (1 - rate), 0.0)
                else:
                    h = torch.where(keep, h, ad.alpha_prime) * ad.a + ad.b
            out[0, r, layer], out[1, r, layer] = float(h.mean()), float(h.var())
    return out


@pytest.mark.parametrize(
    "act, gain, dropout",
    [
        ("selu", 1.0, "none"),  # the fixed point (0, 1)
        ("selu", 1.0, "alpha"),  # AlphaDropout: (0, 1), decorrelated inputs, smaller spread
        ("selu", 1.0, "standard"),  # plain dropout: variance about 1.6
        ("selu", 0.75, "none"),  # Kaiming's SELU gain: the fixed point near (-0.03, 0.04)
        ("elu", 1.0, "none"),  # ELU + LeCun: the variance decays towards 0
    ],
)
def test_spread_matches_monte_carlo(act: str, gain: float, dropout: str) -> None:
    """Width 64, 128 inputs, 24 layers, 250 nets. From layer 8 on, the Monte Carlo's standard
    deviation over nets over the predicted one, averaged over layers, is within 12% of 1
    (its own error is about 2.5%, 4.5% per layer; the model's was 5% or less at width 64 to
    256 and up to 8% at width 32); every layer's within 30%; and the mean over nets sits
    within 0.3 predicted sds of the predicted mean on average over layers (the mean over
    250 nets has an error of 0.06 sd; the model's second-order bias was <= 0.2 sd)."""
    x, depth, width = _inputs(), 24, 64
    lam, alpha = PARAMS[act]
    p = random_net_statistics(x, depth, width, lam=lam, alpha=alpha, gain=gain, dropout=dropout)
    mc = _monte_carlo(x, act, gain, dropout, depth=depth, width=width, nets=250)
    for k, (pred, sd) in enumerate(((p.mean, p.sd_mean), (p.var, p.sd_var))):
        ratio = mc[k].std(axis=0, ddof=1)[8:] / sd[8:]
        assert abs(ratio.mean() - 1) < 0.12, (k, ratio.mean())
        assert np.all(np.abs(ratio - 1) < 0.3), (k, ratio)
        bias = (mc[k].mean(axis=0)[8:] - pred[8:]) / sd[8:]
        assert abs(bias.mean()) < 0.3, (k, bias.mean())


def test_the_naive_band_is_far_too_narrow() -> None:
    """The spread is not sqrt(Var y^2 / (n w) / (1 - J^2)) (independent inputs and units):
    the inputs' correlations pick up O(1/w) of variance per layer and, the correlation map
    being almost marginal for SELU (slope E[f']^2 = 0.97), keep it: the Monte Carlo spread
    of the variance is more than twice the naive one, and the prediction follows it."""
    x, depth, width = _inputs(), 24, 64
    p = random_net_statistics(x, depth, width)
    mc = _monte_carlo(x, "selu", 1.0, "none", depth=depth, width=width, nets=100)
    u, wu = np.polynomial.hermite_e.hermegauss(200)
    f = SELU_LAMBDA * np.where(u > 0, u, SELU_ALPHA * np.expm1(np.minimum(u, 0)))
    var_y2 = float(wu @ f**4 / wu.sum()) - 1.0  # E y^4 - (E y^2)^2 at the fixed point
    naive = math.sqrt(var_y2 / (len(x) * width) / (1 - p.contraction[-1] ** 2))
    sd_mc = mc[1].std(axis=0, ddof=1)[12:].mean()
    assert sd_mc > 2 * naive
    assert p.sd_var[12:].mean() > 2 * naive


@pytest.mark.parametrize("act, gain", [("selu", 1.0), ("selu", 0.75), ("elu", 1.0), ("elu", 1.2)])
def test_infinite_width_is_the_random_weight_moment_map(act: str, gain: float) -> None:
    """Inputs of equal norm, width 1e12: the prediction is the moment map with random
    weights, z ~ N(0, gain^2 (nu + mu^2)), iterated (iterate_moment_map), to 1e-9; the
    spread vanishes like 1/sqrt(width)."""
    x = _inputs(64, 32)
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(x.shape[1])  # K_aa = 1
    lam, alpha = PARAMS[act]
    p = random_net_statistics(x, 12, 10**12, lam=lam, alpha=alpha, gain=gain)
    for layer in range(1, 13):
        kw = {"lam": lam, "alpha": alpha, "tau": gain**2, "random_weights": True}
        m, v, _ = iterate_moment_map(0.0, 1.0, layer, **kw)
        assert p.mean[layer - 1] == pytest.approx(m, abs=1e-9)
        assert p.var[layer - 1] == pytest.approx(v, abs=1e-9)
    assert np.all(p.sd_var < 1e-5) and np.all(p.sd_mean < 1e-5)
    if (act, gain) == ("selu", 1.0):  # the AR(1) coefficient: the Jacobian's at (0, 1)
        assert p.contraction == pytest.approx(moment_map_jacobian(0.0, 1.0)[1, 1], abs=1e-9)


def test_infinite_width_dropout() -> None:
    """AlphaDropout keeps (0, 1) exactly; plain dropout scales the second moment by 1/q."""
    x = _inputs(64, 32)
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(x.shape[1])
    p = random_net_statistics(x, 6, 10**12, dropout="alpha", rate=0.1)
    np.testing.assert_allclose(p.mean, 0.0, atol=1e-9)
    np.testing.assert_allclose(p.var, 1.0, atol=1e-9)
    p = random_net_statistics(x, 1, 10**12, dropout="standard", rate=0.1)
    mu, nu = moment_map(0.0, 1.0)
    assert p.mean[0] == pytest.approx(mu, abs=1e-9)
    assert p.var[0] == pytest.approx((nu + mu**2) / 0.9 - mu**2, abs=1e-9)


def test_random_weights_moment_map() -> None:
    """With random weights the input's mean enters the pre-activation variance squared."""
    m = gaussian_moments("elu", 0.0, math.sqrt(0.5 * (0.3 + 0.2**2)), alpha=1.0, scale=1.0)
    got = moment_map(0.2, 0.3, lam=1.0, alpha=1.0, tau=0.5, random_weights=True)
    assert got == pytest.approx((m.mean, m.variance), rel=1e-15)
    assert moment_map(0.0, 0.7, random_weights=True) == moment_map(0.0, 0.7)
    with pytest.raises(ValueError, match="random_weights needs omega = 0"):
        moment_map(0.0, 1.0, omega=1.0, random_weights=True)


def test_inputs_are_checked() -> None:
    x = _inputs(16, 8)
    with pytest.raises(ValueError, match="x must be"):
        random_net_statistics(x[0], 4, 8)
    with pytest.raises(ValueError, match="depth must be"):
        random_net_statistics(x, 0, 8)
    with pytest.raises(ValueError, match="dropout must be"):
        random_net_statistics(x, 4, 8, dropout="gaussian")
    with pytest.raises(ValueError, match="rate must be"):
        random_net_statistics(x, 4, 8, dropout="alpha", rate=0.0)
    with pytest.raises(ValueError, match="pair_inputs must be an integer >= 2"):
        random_net_statistics(x, 4, 8, pair_inputs=1)
