"""Tests of the Gauss-Hermite kernels (elulab.theory.kernels.gauss_hermite_*) against closed
forms (ELU, ReLU, sin), an independent quadrature (GELU) and Price's theorem."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elulab.theory.kernels import (
    gauss_hermite_nngp_and_ntk,
    gauss_hermite_steps,
    nngp_and_ntk,
    nngp_step,
    ntk_step,
)
from elulab.theory.meanfield import correlation_map


def _grid(n: int = 100):
    """Variances 0.1..10, correlations in (-0.999, 0.999) and +-1."""
    rng = np.random.default_rng(0)
    s11, s22 = 10 ** rng.uniform(-1, 1, n), 10 ** rng.uniform(-1, 1, n)
    rho = np.r_[rng.uniform(-0.999, 0.999, n - 2), 1.0, -1.0]
    return s11, rho * np.sqrt(s11 * s22), s22


# max |quadrature - closed form| / sqrt(K(s11) K(s22)) over the grid, measured at 64 nodes:
# ReLU 4.1e-3 / 5.3e-2, ELU 3.1e-4 / 2.2e-2 (NNGP / NTK): at a kink Gauss-Hermite converges
# only algebraically (the NTK's f' jumps: slowest), which is why the closed forms exist
TOL = {"relu": (5e-3, 6e-2), "elu": (4e-4, 2.5e-2)}


@pytest.mark.parametrize("act", ["relu", "elu"])
def test_against_the_closed_forms(act):
    s11, s12, s22 = _grid()
    exact = (nngp_step(act, s11, s12, s22), ntk_step(act, s11, s12, s22))
    scale = [
        np.sqrt(step(act, s11, s11, s11) * step(act, s22, s22, s22))
        for step in (nngp_step, ntk_step)
    ]
    errs = {}
    for nodes in (16, 64):
        got = gauss_hermite_steps(act, s11, s12, s22, nodes=nodes)
        errs[nodes] = [
            float(np.max(np.abs(g - e) / s)) for g, e, s in zip(got, exact, scale, strict=True)
        ]
    assert errs[64][0] < TOL[act][0] and errs[64][1] < TOL[act][1]
    assert errs[64][0] < errs[16][0] / 3 and errs[64][1] < errs[16][1]  # it converges


@pytest.mark.parametrize("q", [0.5, 1.0, 2.1])
def test_gelu_against_composite_gauss_legendre(q):
    """GELU, equal variances: mean-field's product Gauss-Legendre rule on [-9, 9]^2 (an
    independent quadrature). Measured at 64 nodes: <= 2.4e-11 relative for q <= 2.1 (the
    largest variance of the experiment); at 32 nodes 5e-10 (q = 1) to 7e-6 (q = 2.1)."""
    c = np.linspace(-0.999, 0.999, 21)
    ref = correlation_map(c, "gelu", 1.0, 0.0, q) * q
    k, _ = gauss_hermite_steps("gelu", np.full(21, q), q * c, np.full(21, q), nodes=64)
    np.testing.assert_allclose(k, ref, rtol=1e-10)


def test_gelu_ntk_step_is_the_derivative_of_the_nngp_step():
    """Price's theorem: E[f'(u) f'(v)] = d E[f(u) f(v)] / d s12 (central difference, h = 1e-5:
    truncation ~h^2, rounding ~1e-16 / h, both below 1e-8)."""
    s11, s22, h = 1.2, 0.8, 1e-5
    for s12 in (-0.7, 0.0, 0.5, 0.95):
        up = gauss_hermite_steps("gelu", s11, s12 + h, s22, nodes=64)[0]
        down = gauss_hermite_steps("gelu", s11, s12 - h, s22, nodes=64)[0]
        n = gauss_hermite_steps("gelu", s11, s12, s22, nodes=64)[1]
        assert n == pytest.approx((up - down) / (2 * h), rel=1e-8)


def test_sin_is_exact():
    """E[sin u sin v] = e^{-(s11+s22)/2} sinh(s12), E[cos u cos v] = e^{-(s11+s22)/2} cosh(s12)."""
    s11, s12, s22 = _grid(20)
    s11, s12, s22 = s11 / 5, s12 / 5, s22 / 5  # variances <= 2: 32 nodes resolve sin
    k, n = gauss_hermite_steps("sin", s11, s12, s22)
    e = np.exp(-(s11 + s22) / 2)
    np.testing.assert_allclose(k, e * np.sinh(s12), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(n, e * np.cosh(s12), rtol=1e-12)


def test_network_recursion_matches_the_closed_form_one():
    x = np.random.default_rng(1).normal(size=(5, 3))
    kw = {"weight_var": 2.0, "bias_var": 0.1}
    k, t = gauss_hermite_nngp_and_ntk(x, None, 2, "elu", nodes=64, **kw)
    kk, tt = nngp_and_ntk(x, None, 2, "elu", **kw)
    # measured 3.0e-4 / 1.2e-2 (the ELU steps' quadrature error, see TOL)
    assert np.max(np.abs(k - kk)) / np.max(kk) < 5e-4
    assert np.max(np.abs(t - tt)) / np.max(tt) < 1.5e-2
    # x2 = None computes the upper triangle; the rule is not symmetric in (u, v), so the
    # two agree to the quadrature error: ~1e-13 for GELU at these variances
    k, t = gauss_hermite_nngp_and_ntk(x, None, 2, "gelu", nodes=64, **kw)
    k2, t2 = gauss_hermite_nngp_and_ntk(x, x, 2, "gelu", nodes=64, **kw)
    np.testing.assert_allclose(k2, k, rtol=1e-11)
    np.testing.assert_allclose(t2, t, rtol=1e-11)
    k0, t0 = gauss_hermite_nngp_and_ntk(x, x[:2], 0, "gelu", **kw)
    np.testing.assert_allclose(k0, 2.0 * x @ x[:2].T / 3 + 0.1, rtol=1e-14)
    np.testing.assert_array_equal(k0, t0)


def test_bad_input():
    with pytest.raises(ValueError, match="nodes must be an int >= 2"):
        gauss_hermite_steps("gelu", 1.0, 0.0, 1.0, nodes=1)
    with pytest.raises(ValueError, match="unknown activation"):
        gauss_hermite_steps("nope", 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        gauss_hermite_steps("gelu", 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="depth must be an int"):
        gauss_hermite_nngp_and_ntk(np.ones((2, 2)), depth=-1)
    with pytest.raises(ValueError, match="zero"):
        gauss_hermite_nngp_and_ntk(np.zeros((2, 2)))
    assert math.isfinite(gauss_hermite_steps("tanh", 1.0, 1.0, 1.0)[0])
