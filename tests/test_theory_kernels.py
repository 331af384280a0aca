"""Closed-form NNGP/NTK kernels (elulab.theory.kernels) against independent references.

References:
- 30-digit mpmath quadrature (tests/kernel_reference.py: the inner variable integrated
  analytically, the outer one by Gauss-Legendre panels at 40 digits), cached in
  tests/data/kernel_references.json for 563 covariances: variances 1e-3..1e2 (pairs of
  equal and of very different sizes), correlations -0.999..0.999 and exactly +-1, alpha
  0.1..3 (a grid and 80 random points), plus CELU and SELU evaluated directly. Two cached
  values are recomputed here, and one is checked against mpmath's tanh-sinh quadrature.
  Tolerance: relative error <= 1e-12 (measured worst: see docs/kernels.md).
- Monte Carlo through a finite random network (width 20000, torch autograd for the NTK):
  the one-hidden-layer empirical kernels are averages of i.i.d. per-unit terms, so
  |empirical - exact| <= 5 standard errors (estimated from the units) holds with
  probability > 1 - 6e-7 per entry.
- ReLU against the arc-cosine formula of Cho and Saul (2009) written independently here.
- Price's theorem dK/ds12 = N (a central finite difference), rho -> +-1 continuity with
  Lipschitz/square-root bounds, Cauchy-Schwarz bounds and symmetry (hypothesis).
"""

from __future__ import annotations

import json
import math

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr, owens_t
from scipy.stats import multivariate_normal

import kernel_reference as kref
from elulab.functional import SELU_ALPHA, SELU_LAMBDA
from elulab.theory import (
    bivariate_normal_cdf,
    celu_nngp_step,
    celu_ntk_step,
    elu_nngp_step,
    elu_ntk_step,
    gaussian_moments,
    kernel_summary,
    nngp,
    nngp_step,
    ntk,
    ntk_step,
    relu_nngp_step,
    relu_ntk_step,
    selu_nngp_step,
    selu_ntk_step,
)
from elulab.theory import kernels as K

REL = 1e-12


def _load() -> list[dict]:
    return json.loads(kref.PATH.read_text())["rows"]


ROWS = _load()


def _ours(kind: str, s11, s12, s22, alpha):
    if kind == "elu":
        return elu_nngp_step(s11, s12, s22, alpha), elu_ntk_step(s11, s12, s22, alpha)
    if kind == "celu":
        return celu_nngp_step(s11, s12, s22, alpha), celu_ntk_step(s11, s12, s22, alpha)
    return selu_nngp_step(s11, s12, s22), selu_ntk_step(s11, s12, s22)


# ---------------------------------------------------------------------------------------
# against the 30-digit references
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["elu", "celu", "selu"])
def test_matches_mpmath_references(kind):
    rows = [r for r in ROWS if r["kind"] == kind]
    assert rows
    worst = {"nngp": (0.0, None), "ntk": (0.0, None)}
    for alpha in sorted({r["alpha"] for r in rows}, key=str):
        sub = [r for r in rows if r["alpha"] == alpha]
        cols = [np.array([r[c] for r in sub]) for c in ("s11", "s12", "s22")]
        got = dict(zip(("nngp", "ntk"), _ours(kind, *cols, alpha), strict=True))
        for field in ("nngp", "ntk"):
            for r, v in zip(sub, got[field], strict=True):
                ref = mp.mpf(r[field])
                err = float(abs((mp.mpf(float(v)) - ref) / ref))
                if err > worst[field][0]:
                    worst[field] = (err, r)
    for field, (err, row) in worst.items():
        assert err <= REL, f"{kind} {field}: relative error {err:.2e} at {row}"


def test_reference_cache_is_reproducible():
    # the most delicate rows: tiny variances at a correlation near -1, and a mixed pair
    for pick in (
        {"kind": "elu", "s11": 1e-3, "s22": 1e-3, "rho": -0.999, "alpha": 3.0},
        {"kind": "elu", "s11": 1e-3, "s22": 100.0, "rho": 0.3, "alpha": 0.1},
    ):
        row = next(r for r in ROWS if all(r[k] == v for k, v in pick.items()))
        fresh = kref.compute(pick)
        for field in ("nngp", "ntk"):
            assert abs(mp.mpf(fresh[field]) / mp.mpf(row[field]) - 1) < mp.mpf("1e-30")


def test_reference_agrees_with_other_quadratures():
    """The cached reference integrates over v; here over u (its mirror), and by tanh-sinh."""
    s11, s22, rho, alpha = 0.7, 2.0, -0.6, 1.7
    s12 = rho * math.sqrt(s11 * s22)
    k_ref, n_ref = kref.kernels(s11, s12, s22, alpha)
    k_mirror, n_mirror = kref.kernels(s22, s12, s11, alpha)
    assert abs(k_mirror / k_ref - 1) < 1e-32
    assert abs(n_mirror / n_ref - 1) < 1e-32
    with mp.workdps(20):  # tanh-sinh over v of the same conditional expectations
        a, s2 = mp.mpf(alpha), mp.sqrt(s22)
        beta, tau = s12 / mp.mpf(s22), mp.sqrt(s11 - mp.mpf(s12) ** 2 / s22)

        def integrand(z):
            v = s2 * z
            q = beta * v / tau
            e = mp.exp(beta * v + tau**2 / 2) * mp.ncdf(-q - tau)
            fu = beta * v * mp.ncdf(q) + tau * mp.npdf(q) + a * (e - mp.ncdf(-q))
            fv = v if v > 0 else a * mp.expm1(v)
            return fv * fu * mp.npdf(z)

        k_ts = mp.quad(integrand, [-mp.inf, -1, 0, 1, mp.inf])
    assert abs(k_ts / k_ref - 1) < 1e-17


# ---------------------------------------------------------------------------------------
# Monte Carlo through a finite random network
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("activation", "alpha"), [("elu", 1.0), ("elu", 2.5), ("celu", 0.5)])
def test_monte_carlo_one_hidden_layer(activation, alpha):
    width, wv, bv = 20000, 1.7, 0.2
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    x[3] = x[0] * 0.5  # a pair of parallel inputs (correlation 1 at the first layer)
    d = x.shape[1]
    fn = torch.nn.functional.elu if activation == "elu" else torch.nn.functional.celu
    # NTK parameterisation: h = s_w W x / sqrt(d) + s_b b, out = s_w v . f(h) / sqrt(n) + s_b c
    w0 = torch.randn(width, d, generator=gen, dtype=torch.float64, requires_grad=True)
    b0 = torch.randn(width, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(width, generator=gen, dtype=torch.float64, requires_grad=True)
    c = torch.randn((), generator=gen, dtype=torch.float64, requires_grad=True)
    sw, sb = math.sqrt(wv), math.sqrt(bv)
    h = sw * x @ w0.T / math.sqrt(d) + sb * b0
    act = fn(h, alpha)
    out = sw * act @ v / math.sqrt(width) + sb * c
    jac = []
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(out[i], (w0, b0, v, c), retain_graph=True)
        jac.append(torch.cat([g.reshape(-1) for g in grads]))
    jac = torch.stack(jac)
    ntk_emp = (jac @ jac.T).numpy()
    # per-unit terms (i.i.d. over units): the same two kernels, for the standard errors
    a = act.detach().numpy()
    da = torch.autograd.grad(act.sum(), h)[0].numpy()
    k0 = (wv * (x @ x.T) / d + bv).numpy()
    vv = v.detach().numpy() ** 2
    unit_k = wv * a[:, None, :] * a[None, :, :]  # (4, 4, width)
    unit_t = unit_k + wv * vv * da[:, None, :] * da[None, :, :] * k0[:, :, None]
    nngp_emp = unit_k.mean(axis=2) + bv
    assert np.allclose(unit_t.mean(axis=2) + bv, ntk_emp, rtol=1e-10, atol=1e-12)
    se_k = unit_k.std(axis=2, ddof=1) / math.sqrt(width)
    se_t = unit_t.std(axis=2, ddof=1) / math.sqrt(width)
    xs = x.numpy()
    kw = {"depth": 1, "activation": activation, "alpha": alpha, "weight_var": wv, "bias_var": bv}
    exact_k = nngp(xs, **kw)
    exact_t = ntk(xs, **kw)
    assert np.all(np.abs(nngp_emp - exact_k) <= 5 * se_k + 1e-12)
    assert np.all(np.abs(ntk_emp - exact_t) <= 5 * se_t + 1e-12)


# ---------------------------------------------------------------------------------------
# ReLU, identities, limits
# ---------------------------------------------------------------------------------------


def test_relu_is_the_arc_cosine_kernel():
    rng = np.random.default_rng(3)
    s11 = 10 ** rng.uniform(-3, 2, 200)
    s22 = 10 ** rng.uniform(-3, 2, 200)
    rho = np.concatenate([rng.uniform(-1, 1, 196), [-1.0, 1.0, 0.0, 0.999999]])
    s12 = rho * np.sqrt(s11 * s22)
    k1, k0 = [], []
    with mp.workdps(60):  # from the float inputs exactly (acos near -1 needs the digits)
        for a, b, c in zip(s11, s12, s22, strict=True):
            cos = mp.mpf(b) / mp.sqrt(mp.mpf(a) * c)
            th = mp.acos(max(min(cos, 1), -1))
            k1.append(
                float(mp.sqrt(mp.mpf(a) * c) / (2 * mp.pi) * (mp.sin(th) + (mp.pi - th) * cos))
            )
            k0.append(float((mp.pi - th) / (2 * mp.pi)))
    np.testing.assert_allclose(relu_nngp_step(s11, s12, s22), k1, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(relu_ntk_step(s11, s12, s22), k0, rtol=1e-14, atol=1e-300)


def test_elu_tends_to_relu_as_alpha_vanishes():
    s11, s12, s22 = 0.8, -0.3, 1.9
    assert abs(elu_nngp_step(s11, s12, s22, 1e-9) / relu_nngp_step(s11, s12, s22) - 1) < 1e-8
    assert abs(elu_ntk_step(s11, s12, s22, 1e-9) / relu_ntk_step(s11, s12, s22) - 1) < 1e-8


def test_celu_and_selu_identities():
    s11, s12, s22 = np.array([0.3, 4.0]), np.array([0.1, -3.9]), np.array([0.5, 4.0])
    for a in (0.3, 2.0):
        np.testing.assert_allclose(
            celu_nngp_step(s11, s12, s22, a),
            a * a * elu_nngp_step(s11 / a**2, s12 / a**2, s22 / a**2, 1.0),
            rtol=1e-15,
        )
        np.testing.assert_allclose(
            celu_ntk_step(s11, s12, s22, a),
            elu_ntk_step(s11 / a**2, s12 / a**2, s22 / a**2),
            rtol=1e-15,
        )
    lam2 = SELU_LAMBDA**2
    np.testing.assert_allclose(
        selu_nngp_step(s11, s12, s22), lam2 * elu_nngp_step(s11, s12, s22, SELU_ALPHA), rtol=1e-15
    )
    np.testing.assert_allclose(
        selu_ntk_step(s11, s12, s22), lam2 * elu_ntk_step(s11, s12, s22, SELU_ALPHA), rtol=1e-15
    )


@pytest.mark.parametrize("alpha", [0.1, 1.0, 3.0])
@pytest.mark.parametrize(("s11", "s22"), [(1e-3, 1e-3), (0.4, 2.5), (100.0, 30.0), (1e-3, 50.0)])
def test_price_theorem(alpha, s11, s22):
    """dE[f(u)f(v)]/ds12 = E[f'(u)f'(v)], by a central difference (error O(h^2))."""
    for rho in (-0.9, -0.2, 0.0, 0.5, 0.95):
        s12 = rho * math.sqrt(s11 * s22)
        h = 1e-4 * math.sqrt(s11 * s22)
        fd = (elu_nngp_step(s11, s12 + h, s22, alpha) - elu_nngp_step(s11, s12 - h, s22, alpha)) / (
            2 * h
        )
        assert abs(fd / elu_ntk_step(s11, s12, s22, alpha) - 1) < 1e-6


@pytest.mark.parametrize("alpha", [0.1, 1.0, 3.0])
@pytest.mark.parametrize(("s11", "s22"), [(2.0**-10, 2.0**-10), (0.25, 4.0), (16.0, 100.0)])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_limits_at_correlation_one_are_continuous(alpha, s11, s22, sign):
    s1s2 = math.sqrt(s11) * math.sqrt(s22)
    k_end = elu_nngp_step(s11, sign * s1s2, s22, alpha)
    n_end = elu_ntk_step(s11, sign * s1s2, s22, alpha)
    row = next(
        r
        for r in ROWS
        if r["kind"] == "elu"
        and (r["s11"], r["s22"], r["rho"], r["alpha"]) == (s11, s22, sign, alpha)
    )
    assert abs(k_end / float(mp.mpf(row["nngp"])) - 1) <= REL
    assert abs(n_end / float(mp.mpf(row["ntk"])) - 1) <= REL
    amax = max(1.0, alpha) ** 2
    for k in range(2, 16):
        delta = 10.0**-k
        s12 = sign * (1.0 - delta) * s1s2
        # |dK/drho| = s1 s2 N <= s1 s2 max(1, alpha)^2 (Price); N has a sqrt singularity:
        # |N(rho) - N(+-1)| <= (1 + alpha)^2 sqrt(delta) (generous constant)
        kv = elu_nngp_step(s11, s12, s22, alpha)
        nv = elu_ntk_step(s11, s12, s22, alpha)
        assert abs(kv - k_end) <= s1s2 * amax * delta * (1 + 1e-9) + 1e-13 * abs(k_end)
        assert abs(nv - n_end) <= (1 + alpha) ** 2 * math.sqrt(delta) + 1e-13 * n_end


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-3, 2),
    st.floats(-3, 2),
    st.floats(-1, 1),
    st.floats(-1, math.log10(3)),
)
def test_symmetry_and_cauchy_schwarz(l11, l22, rho, la):
    s11, s22, alpha = 10.0**l11, 10.0**l22, 10.0**la
    s12 = rho * math.sqrt(s11 * s22)
    k = elu_nngp_step(s11, s12, s22, alpha)
    n = elu_ntk_step(s11, s12, s22, alpha)
    # each side is within 1.4e-13 of the truth (the worst case: one small and one large
    # variance, alpha ~ 1, rho ~ 0, where K is a small difference of larger terms)
    assert k == pytest.approx(elu_nngp_step(s22, s12, s11, alpha), rel=3e-13, abs=1e-300)
    assert n == pytest.approx(elu_ntk_step(s22, s12, s11, alpha), rel=1e-14)
    m1 = gaussian_moments("elu", 0.0, math.sqrt(s11), alpha=alpha)
    m2 = gaussian_moments("elu", 0.0, math.sqrt(s22), alpha=alpha)
    assert abs(k) <= math.sqrt(m1.second_moment * m2.second_moment) * (1 + 1e-12)
    assert 0 < n <= math.sqrt(m1.mean_slope_sq * m2.mean_slope_sq) * (1 + 1e-12)
    # rho = 0: the product of the means
    if rho == 0.0:
        assert k == pytest.approx(m1.mean * m2.mean, rel=1e-11, abs=1e-300)


# ---------------------------------------------------------------------------------------
# deep networks
# ---------------------------------------------------------------------------------------


def test_network_recursion_and_conventions():
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    wv, bv, depth = 1.6, 0.3, 3
    kw = {"depth": depth, "activation": "elu", "alpha": 0.7, "weight_var": wv, "bias_var": bv}
    k12, t12 = nngp(x1, x2, **kw), ntk(x1, x2, **kw)
    assert k12.shape == t12.shape == (5, 4)
    # the recursion spelled out with the step functions
    k = wv * x1 @ x2.T / 3 + bv
    d1 = wv * np.sum(x1 * x1, axis=1) / 3 + bv
    d2 = wv * np.sum(x2 * x2, axis=1) / 3 + bv
    t = k.copy()
    for _ in range(depth):
        s11, s22 = d1[:, None] + 0 * k, d2[None, :] + 0 * k
        ff = elu_nngp_step(s11, k, s22, 0.7)
        dd = elu_ntk_step(s11, k, s22, 0.7)
        k = wv * ff + bv
        t = k + wv * dd * t
        d1 = wv * elu_nngp_step(d1, d1, d1, 0.7) + bv
        d2 = wv * elu_nngp_step(d2, d2, d2, 0.7) + bv
    np.testing.assert_allclose(k12, k, rtol=1e-14)
    np.testing.assert_allclose(t12, t, rtol=1e-14)
    # x2 = None is x1 against itself, symmetric, with the exact diagonal
    both = np.vstack([x1, x2])
    kk = nngp(both, **kw)
    np.testing.assert_array_equal(kk, kk.T)
    np.testing.assert_allclose(kk[:5, 5:], k12, rtol=1e-13)
    assert np.linalg.eigvalsh(kk).min() > -1e-12 * np.abs(kk).max()
    np.testing.assert_allclose(ntk(both, **kw)[:5, 5:], t12, rtol=1e-13)
    # depth 0 is the input kernel, and torch tensors are accepted
    np.testing.assert_allclose(
        nngp(torch.as_tensor(x1), depth=0, bias_var=0.5), x1 @ x1.T / 3 + 0.5
    )


def test_deep_relu_matches_arc_cosine_iteration():
    x = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.2]])
    depth = 6
    k = x @ x.T  # weight_var 2, d 2: 2 x.x / 2
    t = k.copy()
    for _ in range(depth):
        d = np.sqrt(np.outer(np.diag(k), np.diag(k)))
        th = np.arccos(np.clip(k / d, -1, 1))
        k_new = d / np.pi * (np.sin(th) + (np.pi - th) * np.cos(th))
        t = k_new + 2 * (np.pi - th) / (2 * np.pi) * t
        k = k_new
    np.testing.assert_allclose(
        nngp(x, depth=depth, activation="relu", weight_var=2.0), k, rtol=1e-13
    )
    np.testing.assert_allclose(
        ntk(x, depth=depth, activation="relu", weight_var=2.0), t, rtol=1e-13
    )


# ---------------------------------------------------------------------------------------
# bivariate normal cdf and the canonical wedge
# ---------------------------------------------------------------------------------------


def _phi2_owen_mp(h, k, rho):
    """Owen's formula in mpmath, at enough digits to absorb its cancellation."""
    d2 = (h * h - 2 * rho * h * k + k * k) / (1 - rho * rho)
    with mp.workdps(40 + int(max(0.0, d2 - min(h * h, k * k)) / 4.6)):
        h, k, rho = mp.mpf(h), mp.mpf(k), mp.mpf(rho)
        r = mp.sqrt(1 - rho * rho)

        def t(x, a):
            return mp.quad(lambda y: mp.exp(-x * x * (1 + y * y) / 2) / (1 + y * y), [0, a]) / (
                2 * mp.pi
            )

        beta = 0 if h * k > 0 else mp.mpf(1) / 2
        return (
            mp.ncdf(h) / 2
            + mp.ncdf(k) / 2
            - t(h, (k - rho * h) / (h * r))
            - t(k, (h - rho * k) / (k * r))
            - beta
        )


@pytest.mark.parametrize(
    ("h", "k", "rho", "tol"),
    [
        (-1.3, -0.4, 0.5, 1e-14),
        (-7.8, -14.6, 0.72, 1e-13),  # deep lower tail: Owen's formula in float64 is noise here
        (-1.0, -11.4, -0.5, 1e-13),
        # exp(-D^2/2) with D^2 = 275 whose partial derivative in h is ~350 (r = 0.045): the
        # problem's own condition number is ~2000, so ~2000 ulp is the best float64 can do
        (5.2, -5.9, -0.999, 1e-12),
        (-3.7, 2.2, -0.9, 1e-13),
        (0.3, 2.0, 0.999, 1e-14),
        (2.5, 1.5, -0.3, 1e-14),
    ],
)
def test_bivariate_normal_cdf(h, k, rho, tol):
    ref = _phi2_owen_mp(h, k, rho)
    assert abs(bivariate_normal_cdf(h, k, rho) / ref - 1) < tol


def test_bivariate_normal_cdf_bulk_and_edges():
    rng = np.random.default_rng(5)
    h, k, rho = rng.uniform(-3, 3, 40), rng.uniform(-3, 3, 40), rng.uniform(-0.95, 0.95, 40)
    ours = bivariate_normal_cdf(h, k, rho)
    for i in range(40):
        cov = [[1, rho[i]], [rho[i], 1]]
        ref = multivariate_normal(cov=cov).cdf([h[i], k[i]])
        assert abs(ours[i] - ref) < 1e-7  # scipy's own (Genz) accuracy
    assert bivariate_normal_cdf(0.0, 0.0, 0.3) == pytest.approx(
        0.25 + math.asin(0.3) / (2 * math.pi), rel=1e-15
    )
    assert bivariate_normal_cdf(1.0, 2.0, 1.0) == ndtr(1.0)
    assert bivariate_normal_cdf(1.0, -0.5, -1.0) == pytest.approx(ndtr(1.0) - ndtr(0.5), rel=1e-15)
    assert bivariate_normal_cdf(-1.0, 0.5, -1.0) == 0.0


def test_canonical_wedge():
    """C(p, q) = (1/2pi) int_0^atan(q/p) g(D cos t) dt, g(t) = 1 - t R(t) (mpmath), and the
    closed form e^{D^2/2} [Phi(-q)/2 - T(q, p/q)] (Owen's T), accurate in float64 only for
    small p: the wedge is evaluated as the integral instead (module docstring)."""
    p = np.array([1e-3, 0.05, 0.2, 1.0, 3.0, 20.0, 0.5, 3.0, 20.0, 100.0])
    q = np.array([5e-4, 0.05, 0.1, 1e-6, 2.9, 7.0, 2.0, 7.0, 40.0, 1.0])
    ours = K._wedge(p, q)
    with mp.workdps(30):
        for pi, qi, oi in zip(p, q, ours, strict=True):
            d = mp.sqrt(mp.mpf(pi) ** 2 + mp.mpf(qi) ** 2)

            def g(t):
                return 1 - t * mp.sqrt(mp.pi / 2) * mp.erfc(t / mp.sqrt(2)) * mp.exp(t * t / 2)

            ref = mp.quad(lambda th, d=d: g(d * mp.cos(th)), [0, mp.atan2(qi, pi)]) / (2 * mp.pi)
            assert abs(oi / ref - 1) < 2e-15
    ps, qs = p[p <= 0.2], q[p <= 0.2]
    owen = np.exp(0.5 * (ps * ps + qs * qs)) * (0.5 * ndtr(-qs) - owens_t(qs, ps / qs))
    np.testing.assert_allclose(ours[p <= 0.2], owen, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# the command-line helper and bad input
# ---------------------------------------------------------------------------------------


def test_kernel_summary():
    out = kernel_summary("ELU", 2.0, 1.0, 0.5, 2.0)
    assert out["activation"] == "elu"
    assert out["alpha"] == 2.0
    assert out["correlation"] == pytest.approx(0.5 / math.sqrt(2.0), rel=1e-15)
    assert out["nngp_step"] == elu_nngp_step(1.0, 0.5, 2.0, 2.0)
    assert out["ntk_step"] == elu_ntk_step(1.0, 0.5, 2.0, 2.0)
    assert kernel_summary("selu", None, 1.0, 1.0, 1.0)["nngp_step"] == pytest.approx(1.0, rel=1e-12)
    assert kernel_summary("relu", None, 1.0, 0.0, 1.0)["alpha"] is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kernel_summary("elu", None, 1.0, 2.0, 1.0), "positive semi-definite"),
        (lambda: kernel_summary("elu", None, 0.0, 0.0, 1.0), "s11 must be > 0"),
        (lambda: kernel_summary("elu", None, 1.0, 0.0, -1.0), "s22 must be > 0"),
        (lambda: kernel_summary("elu", None, 1.0, math.nan, 1.0), "s12 must be finite"),
        (lambda: kernel_summary("gelu", None, 1.0, 0.0, 1.0), "no closed-form kernel"),
        (lambda: kernel_summary("foo", None, 1.0, 0.0, 1.0), "unknown activation"),
        (lambda: kernel_summary("elu", -1.0, 1.0, 0.0, 1.0), "alpha must be"),
        (lambda: kernel_summary("relu", 1.0, 1.0, 0.0, 1.0), "alpha applies to"),
        (lambda: nngp_step("elu", [1.0, 1.0], [0.0, 0.0, 0.0], 1.0), "broadcast"),
        (lambda: ntk_step("elu", 1.0, 1.0 + 1e-9, 1.0), "positive semi-definite"),
        (lambda: nngp(np.ones(3)), "2-D array"),
        (lambda: nngp(np.ones((2, 3)), np.ones((2, 4))), "same number of features"),
        (lambda: nngp(np.zeros((2, 3))), "bias_var > 0"),
        (lambda: nngp(np.ones((2, 3)), depth=-1), "depth must be"),
        (lambda: nngp(np.ones((2, 3)), depth=True), "depth must be"),
        (lambda: ntk(np.ones((2, 3)), weight_var=0.0), "weight_var must be > 0"),
        (lambda: ntk(np.ones((2, 3)), bias_var=-1.0), "bias_var must be >= 0"),
        (lambda: bivariate_normal_cdf(0.0, 0.0, 1.5), "rho must lie"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_rounding_at_correlation_one_is_accepted():
    s = 0.3
    s12 = math.sqrt(s) * math.sqrt(s) * (1 + 2e-16)
    assert elu_nngp_step(s, s12, s, 1.0) == pytest.approx(elu_nngp_step(s, s, s, 1.0), rel=1e-14)
