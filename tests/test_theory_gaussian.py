"""Gaussian moments (elulab.theory.gaussian) against 40-digit mpmath quadrature.

Reference: each side of the kink (z > 0, z <= 0) is integrated separately in mpmath at
40 digits, in the variable t = |z| / sigma, with Gauss-Legendre panels placed on the
Gaussian's own scale (around mu / sigma, or at the kink with width 1/(|mu|/sigma + 1)).
That reference is itself checked against ``mpmath.quad`` (tanh-sinh) below.

Tolerances: relative error <= 1e-12 for every quantity. Two exceptions, both
stated where used:
- a value that underflows float64 (|ref| < 1e-290, e.g. P(z > 0) for mu = -10,
  sigma = 1e-3, which is exp(-5e7)) is compared in absolute terms;
- a quantity that changes sign (the mean of ELU / LeakyReLU, the slope of a LeakyReLU with
  negative slope) has a relative condition number that is unbounded near its zero, so
  no float64 method can meet a relative bound there: the bound is
  1e-12 |ref| + 1e-14 (|mu| |dref/dmu| + sigma |dref/dsigma|), i.e. about 100 ulp of the
  problem's own sensitivity to its inputs.
"""

from __future__ import annotations

import functools
import itertools
import math

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath.calculus.quadrature import GaussLegendre

from elulab.functional import ACTIVATION_NAMES, SELU_ALPHA, SELU_LAMBDA
from elulab.theory import CLOSED_FORM_ACTIVATIONS, GaussianMoments, expected_slope
from elulab.theory import gaussian_moments as gm

DPS = 40
REL = 1e-12
COND = 1e-14
UNDERFLOW = 1e-290
FIELDS = ("mean", "second_moment", "variance", "mean_slope", "mean_slope_sq")

# ---------------------------------------------------------------------------------------
# the 40-digit reference
# ---------------------------------------------------------------------------------------

_GL_CACHE: dict[tuple[int, int], list] = {}


def _gl_nodes(degree: int) -> list:
    key = (degree, mp.mp.prec)
    if key not in _GL_CACHE:
        _GL_CACHE[key] = GaussLegendre(mp.mp).calc_nodes(degree, mp.mp.prec)
    return _GL_CACHE[key]


def _breakpoints(ys) -> list:
    """Panels in t >= 0 for weights exp(-(t + y)^2 / 2), one y per exponential rate."""
    pts = {0.0}
    for y in ys:
        y = float(y)
        if y < 0:  # peak at t = -y, unit width
            pts.update(-y + d for d in (-12, -4, -1.5, 0, 1.5, 4, 12) if -y + d > 0)
        scale = 1.0 / (abs(y) + 1.0)  # decay from the kink
        pts.update(d * scale for d in (0.5, 2, 6, 16, 40, 100))
    return sorted(pts)


def _side_integrals(funcs, c, s, sign, ys, degree=5):
    """[E[g(z) 1{sign z > 0}] for g in funcs], z = sign * s * t, z ~ N(c s, s^2)."""
    pts = [mp.mpf(p) for p in _breakpoints(ys)]
    acc = [mp.mpf(0)] * len(funcs)
    for a, b in itertools.pairwise(pts):
        half, mid = (b - a) / 2, (a + b) / 2
        for x, w in _gl_nodes(degree):
            t = mid + half * x
            wt = w * half * mp.npdf(t - sign * c)
            z = sign * s * t
            for i, g in enumerate(funcs):
                acc[i] += wt * g(z)
    return acc


@functools.cache
def _integrals(mu: float, sigma: float):
    with mp.workdps(DPS):
        m, s = mp.mpf(mu), mp.mpf(sigma)
        c = m / s
        pos = _side_integrals([lambda z: 1, lambda z: z, lambda z: z * z], c, s, 1, [-c])
        neg = _side_integrals(
            [
                lambda z: 1,
                lambda z: z,
                lambda z: z * z,
                mp.expm1,
                lambda z: mp.expm1(z) ** 2,
                mp.exp,
                lambda z: mp.exp(2 * z),
            ],
            c,
            s,
            -1,
            [c, c + s, c + 2 * s],
        )
    return tuple(pos), tuple(neg)


def reference(name: str, mu: float, sigma: float, alpha=1.0, scale=1.0, slope=0.01):
    """(values dict, condition scales dict) at 40 digits for elu / relu / leaky_relu."""
    (p0, p1, p2), (m0, m1, m2, n1, n2, q1, q2) = _integrals(float(mu), float(sigma))
    with mp.workdps(DPS):
        s = mp.mpf(sigma)
        pdf_c = mp.npdf(mp.mpf(mu) / s)
        if name == "elu":
            a, lam = mp.mpf(alpha), mp.mpf(scale)
            mean = lam * (p1 + a * n1)
            second = lam**2 * (p2 + a**2 * n2)
            slope1 = lam * (p0 + a * q1)
            slope2 = lam**2 * (p0 + a**2 * q2)
            # d mean / d sigma = sigma E[f''] (Stein); f'' has mass (1 - a) at the kink
            dmean_ds = lam * ((1 - a) * pdf_c + a * s * q1)
            cond = {"mean": abs(mu) * abs(slope1) + sigma * abs(dmean_ds)}
        else:
            a = mp.mpf(slope) if name == "leaky_relu" else mp.mpf(0)
            mean = p1 + a * m1
            second = p2 + a * a * m2
            slope1 = p0 + a * m0
            slope2 = p0 + a * a * m0
            c = abs(mp.mpf(mu) / s)
            cond = {
                "mean": abs(mu) * abs(slope1) + (1 - a) * pdf_c * sigma,
                "mean_slope": 2 * abs(1 - a) * pdf_c * c,
            }
        values = {
            "mean": mean,
            "second_moment": second,
            "variance": second - mean**2,  # exact enough at 40 digits
            "mean_slope": slope1,
            "mean_slope_sq": slope2,
        }
    return values, cond


def rel_error(got: float, ref) -> float:
    with mp.workdps(DPS):
        return float(abs(mp.mpf(got) - ref) / abs(ref))


def assert_matches(got: GaussianMoments, name, mu, sigma, **params) -> float:
    """Check every field at the module's tolerance; return the largest relative error."""
    kw = {"alpha": params.get("alpha", 1.0), "scale": params.get("scale", 1.0)}
    kw["slope"] = params.get("negative_slope", 0.01)
    values, cond = reference(name, mu, sigma, **kw)
    worst = 0.0
    for field in FIELDS:
        g, r = getattr(got, field), values[field]
        assert math.isfinite(g), (field, mu, sigma, params)
        with mp.workdps(DPS):
            err = abs(mp.mpf(g) - r)
            if abs(r) < UNDERFLOW:
                assert err <= UNDERFLOW, (field, mu, sigma, params, g, r)
                continue
            bound = REL * abs(r) + COND * cond.get(field, 0)
            assert err <= bound, (field, mu, sigma, params, g, mp.nstr(r, 20), float(err / abs(r)))
            if field not in cond:
                worst = max(worst, float(err / abs(r)))
    return worst


# ---------------------------------------------------------------------------------------
# the reference itself
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 7.0)])
def test_reference_agrees_with_mpmath_quad(mu, sigma):
    """The panel quadrature used as reference equals mpmath.quad (tanh-sinh), split at 0."""
    (_p0, p1, p2), (_, _, _, n1, n2, q1, q2) = _integrals(mu, sigma)
    with mp.workdps(DPS):
        m, s = mp.mpf(mu), mp.mpf(sigma)

        def dens(z):
            return mp.npdf(z, m, s)

        around = [m + d * s for d in (-40, -8, -2, 0, 2, 8, 40)] + [-mp.inf, mp.inf]
        neg_pts = sorted({x for x in around if x <= 0} | {mp.mpf(0)})
        pos_pts = sorted({x for x in around if x >= 0} | {mp.mpf(0)})
        checks = [
            (p1, mp.quad(lambda z: z * dens(z), pos_pts)),
            (p2, mp.quad(lambda z: z * z * dens(z), pos_pts)),
            (n1, mp.quad(lambda z: mp.expm1(z) * dens(z), neg_pts)),
            (n2, mp.quad(lambda z: mp.expm1(z) ** 2 * dens(z), neg_pts)),
            (q1, mp.quad(lambda z: mp.exp(z) * dens(z), neg_pts)),
            (q2, mp.quad(lambda z: mp.exp(2 * z) * dens(z), neg_pts)),
        ]
        for ours, theirs in checks:
            assert abs(ours - theirs) <= mp.mpf(10) ** -30 * abs(theirs)


@pytest.mark.parametrize(
    "mu, sigma", [(0.0, 1.0), (-3.0, 0.01), (10.0, 1e-3), (-10.0, 10.0), (0.05, 0.01)]
)
def test_reference_agrees_with_textbook_formulas(mu, sigma):
    """The reference equals the textbook closed forms evaluated at 80 digits (where their
    cancellations are harmless), also deep in the tails where tanh-sinh is unreliable."""
    (p0, p1, p2), (_, _, _, n1, n2, q1, q2) = _integrals(mu, sigma)
    with mp.workdps(80):
        m, s = mp.mpf(mu), mp.mpf(sigma)
        c = m / s
        cdf, pdf = mp.ncdf(c), mp.npdf(c)
        e1 = mp.exp(m + s * s / 2) * mp.ncdf(-c - s)
        e2 = mp.exp(2 * m + 2 * s * s) * mp.ncdf(-c - 2 * s)
        formulas = [
            (p0, cdf),
            (p1, m * cdf + s * pdf),
            (p2, (m * m + s * s) * cdf + m * s * pdf),
            (q1, e1),
            (q2, e2),
            (n1, e1 - mp.ncdf(-c)),
            (n2, e2 - 2 * e1 + mp.ncdf(-c)),
        ]
        for ours, exact in formulas:
            assert abs(ours - exact) <= mp.mpf(10) ** -30 * abs(exact)


# ---------------------------------------------------------------------------------------
# known values
# ---------------------------------------------------------------------------------------


def test_known_expected_slopes():
    # E[ELU'(z)], alpha = 1, z ~ N(0, 1) = 1/2 + e^(1/2) Phi(-1) = 0.7615782918651233717...
    exact = 0.5 + math.exp(0.5) * 0.5 * math.erfc(1.0 / math.sqrt(2.0))
    # within 2 ulp (1 ulp = 1.1e-16 here)
    assert abs(expected_slope("elu") - 0.761578291865123371681843836845648) <= 2.3e-16
    assert abs(expected_slope("elu") - exact) <= 2.3e-16
    assert expected_slope("relu") == 0.5
    m = gm("relu", 0.0, 1.0)
    assert abs(m.mean - 1.0 / math.sqrt(2.0 * math.pi)) <= 1e-16
    assert abs(m.second_moment - 0.5) <= 1e-16
    assert abs(m.variance - (0.5 - 1.0 / (2.0 * math.pi))) <= 1e-16
    assert m.method == "closed form"


def test_selu_is_a_fixed_point_of_the_standard_normal():
    """With the SELU constants, z ~ N(0, 1) gives mean 0 and variance 1."""
    m = gm("selu", 0.0, 1.0)
    assert abs(m.mean) <= 1e-15  # exact 0 is not representable: absolute
    assert abs(m.variance - 1.0) <= 1e-15


# ---------------------------------------------------------------------------------------
# closed forms against the reference
# ---------------------------------------------------------------------------------------

MUS = (-10.0, -3.0, -1.0, -0.1, -1e-3, 0.0, 1e-3, 0.1, 1.0, 3.0, 10.0)
SIGMAS = (1e-3, 1e-2, 0.1, 0.5, 1.0, 3.0, 10.0)
VARIANTS = [
    ("elu", {}),
    ("elu", {"alpha": SELU_ALPHA, "scale": SELU_LAMBDA}),
    ("elu", {"alpha": 0.3, "scale": -2.0}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": -0.5}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, params", VARIANTS, ids=lambda v: str(v))
def test_closed_form_grid(name, params):
    grid_mu, grid_sigma = np.meshgrid(MUS, SIGMAS)
    got = gm(name, grid_mu, grid_sigma, **params)
    assert got.method == "closed form"
    for idx in np.ndindex(grid_mu.shape):
        one = GaussianMoments(*(float(getattr(got, f)[idx]) for f in FIELDS), got.method)
        assert_matches(one, name, grid_mu[idx], grid_sigma[idx], **params)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    mu=st.floats(-10, 10),
    log_sigma=st.floats(-3, 1),
    near_kink=st.booleans(),
    ratio=st.floats(-4, 4),
    log_alpha=st.floats(-1.5, 0.7),
)
def test_elu_property(mu, log_sigma, near_kink, ratio, log_alpha):
    sigma = 10.0**log_sigma
    if near_kink:  # put mu within a few sigma of the kink, where the cancellations are
        mu = ratio * sigma
    alpha = 10.0**log_alpha
    assert_matches(gm("elu", mu, sigma, alpha=alpha), "elu", mu, sigma, alpha=alpha)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
@pytest.mark.parametrize("mu, sigma", [(-1.0, 0.3), (0.2, 2.0), (4.0, 1e-2)])
def test_celu_is_alpha_times_elu_of_x_over_alpha(alpha, mu, sigma):
    """celu(x; a) = a elu(x / a; 1): moments of N(mu/a, (sigma/a)^2), checked at 40 digits."""
    got = gm("celu", mu, sigma, alpha=alpha)
    values, _ = reference("elu", mu / alpha, sigma / alpha)
    for field, factor in zip(FIELDS, (alpha, alpha**2, alpha**2, 1.0, 1.0), strict=True):
        # mu / alpha and sigma / alpha are rounded in float64: a few ulp of conditioning
        assert rel_error(getattr(got, field), factor * values[field]) <= 1e-13


def test_selu_defaults_are_scaled_elu():
    a = gm("selu", [-1.0, 0.5], 0.7)
    b = gm("elu", [-1.0, 0.5], 0.7, alpha=SELU_ALPHA, scale=SELU_LAMBDA)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    c = gm("celu", [-1.0, 0.5], 0.7)
    d = gm("elu", [-1.0, 0.5], 0.7)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(c, f), getattr(d, f))


def test_no_overflow_in_the_tails():
    """Naive forms overflow (e^{2 sigma^2}) or cancel to 0; these stay finite and exact."""
    for mu, sigma in [(-10.0, 10.0), (10.0, 10.0), (-10.0, 1e-3), (10.0, 1e-3), (0.0, 10.0)]:
        assert_matches(gm("elu", mu, sigma), "elu", mu, sigma)
    big = gm("elu", [-1e3, 1e3, 0.0], [30.0, 30.0, 1e-9])
    for f in FIELDS:
        assert np.all(np.isfinite(getattr(big, f)))
    # sigma = 30: e^{2 sigma^2} = e^{1800} overflows, the product does not
    assert 0.0 < big.mean_slope_sq[0] < 1.0


# ---------------------------------------------------------------------------------------
# shapes and types
# ---------------------------------------------------------------------------------------


def test_vectorised_broadcasting_matches_scalar_calls():
    mu = np.array([[-2.0], [0.0], [1.5]])
    sigma = np.array([0.01, 1.0, 4.0, 9.0])
    out = gm("elu", mu, sigma, alpha=1.3)
    assert out.mean.shape == (3, 4) and out.mean.dtype == np.float64
    for i in range(3):
        for j in range(4):
            one = gm("elu", float(mu[i, 0]), float(sigma[j]), alpha=1.3)
            assert isinstance(one.mean, float)
            for f in FIELDS:
                assert getattr(out, f)[i, j] == getattr(one, f)


def test_accepts_lists_and_tensors():
    a = gm("leaky_relu", [0.1, -0.2], [1.0, 2.0])
    b = gm("leaky_relu", torch.tensor([0.1, -0.2], dtype=torch.float64), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(a.variance, b.variance)


# ---------------------------------------------------------------------------------------
# quadrature fallback
# ---------------------------------------------------------------------------------------
#
# Reference: the textbook f and f' (below) in mpmath at 32 digits, integrated by
# Gauss-Legendre (12 nodes per panel) in xi = (z - mu) / sigma over [-14, 14], widened
# toward 0 by min(|mu|/sigma, 50) standard deviations (where the tails of gelu, silu, ...
# peak), on panels at most one standard deviation and at most 1 in z wide; the variance
# as E[(d - E d)^2] with d = f(z) - f(mu) at 32 digits. That reference is checked against
# mpmath.quad (tanh-sinh) and against closed forms (E[z Phi(z)], the moments of sin).
#
# Tolerance, every quadrature activation, mu in [-8, 8], sigma in [1e-3, 10]:
#   |err| <= QUAD_REL |ref|                                   second_moment, variance,
#                                                             mean_slope_sq
#   |err| <= QUAD_REL |ref| + QUAD_FLOOR sqrt(E[g^2])          mean (g = f), mean_slope (g = f')
# QUAD_REL = 1e-12: the largest relative error measured on this grid is 4.3e-14 (gelu at
# mu = -0.75, next to the zero of gelu' at -0.7518, where the problem's own relative
# condition number in mu is ~1e3); elsewhere <= 1.5e-15. QUAD_FLOOR = 1e-15 (4.5 ulp of
# the integrand's size): a mean or slope that changes sign (E tanh z at mu = 0,
# E sin z = sin(mu) e^{-sigma^2/2} = 5e-23 at sigma = 10) is a sum of terms of size
# sqrt(E g^2) and cannot be resolved below their rounding; measured <= 5.1e-16.
QUAD_REL = 1e-12
QUAD_FLOOR = 1e-15
QUAD_DPS = 32


def _mp_sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def _mp_softplus(x):
    return mp.log1p(mp.exp(x)) if x < 30 else x + mp.log1p(mp.exp(-x))


def _mp_smooth_elu_parts(x):
    """Phi(4x), phi(4x) / 4, e^{x + 1/32} Phi(-4x - 1/4): E elu(x + Z/4) = x Phi + phi/4
    + e^{..} Phi(..) - Phi(-4x), integrated by hand (cached: f and f' share the nodes)."""
    return _mp_smooth_elu_cached(x, mp.mp.dps)


@functools.lru_cache(maxsize=4096)
def _mp_smooth_elu_cached(x, dps):
    return mp.ncdf(4 * x), mp.npdf(4 * x) / 4, mp.exp(x + mp.mpf(1) / 32) * mp.ncdf(-4 * x - 0.25)


# name -> (f, f') in mpmath, written from the textbook definitions
MP_FUNCTIONS = {
    "gelu": (lambda x: x * mp.ncdf(x), lambda x: mp.ncdf(x) + x * mp.npdf(x)),
    "silu": (
        lambda x: x * _mp_sigmoid(x),
        lambda x: _mp_sigmoid(x) * (1 + x * (1 - _mp_sigmoid(x))),
    ),
    "mish": (
        lambda x: x * mp.tanh(_mp_softplus(x)),
        lambda x: mp.tanh(_mp_softplus(x)) + x * mp.sech(_mp_softplus(x)) ** 2 * _mp_sigmoid(x),
    ),
    "tanh": (mp.tanh, lambda x: mp.sech(x) ** 2),
    "sigmoid": (_mp_sigmoid, lambda x: _mp_sigmoid(x) * (1 - _mp_sigmoid(x))),
    "softplus": (_mp_softplus, _mp_sigmoid),
    "sin": (mp.sin, mp.cos),
    "smooth_elu": (  # E elu(x + Z / 4), Z ~ N(0, 1)
        lambda x: (lambda p, d, t: x * p + d + t - mp.ncdf(-4 * x))(*_mp_smooth_elu_parts(x)),
        lambda x: (lambda p, d, t: p + t)(*_mp_smooth_elu_parts(x)),
    ),
    "linear": (lambda x: x, lambda x: mp.mpf(1)),  # not in the registry today
}
QUAD_NAMES = [n for n in ACTIVATION_NAMES if n not in CLOSED_FORM_ACTIVATIONS]
QUAD_MUS = (-8.0, -4.85, -2.0, -0.75, 0.0, 0.3, 1.5, 4.0, 8.0)
QUAD_SIGMAS = (1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0)


def test_every_registry_name_has_a_method():
    for name in ACTIVATION_NAMES:
        assert name in CLOSED_FORM_ACTIVATIONS or name in MP_FUNCTIONS, (
            f"add an mpmath reference for {name!r} to MP_FUNCTIONS"
        )


@functools.cache
def _mp_smooth_moments(name, mu, sigma, dps=QUAD_DPS):
    """{field: (value, E[g^2])} at ``dps`` digits (see the comment above)."""
    f, df = MP_FUNCTIONS[name]
    with mp.workdps(dps):
        m, s = mp.mpf(mu), mp.mpf(sigma)
        ext = min(abs(mu) / sigma, 50.0)
        lo = -14.0 - (ext if mu > 0 else 0.0)
        hi = 14.0 + (ext if mu < 0 else 0.0)
        n = math.ceil((hi - lo) * max(1.0, sigma))
        pts = [mp.mpf(lo) + (mp.mpf(hi) - lo) * k / n for k in range(n + 1)]
        f_mu = f(m)
        e1 = e2 = d1 = d2 = mp.mpf(0)
        for a, b in itertools.pairwise(pts):
            half, mid = (b - a) / 2, (a + b) / 2
            for x, w in _gl_nodes(3):
                xi = mid + half * x
                wt = w * half * mp.npdf(xi)
                z = m + s * xi
                d, dz = f(z) - f_mu, df(z)
                e1 += wt * d
                e2 += wt * d * d
                d1 += wt * dz
                d2 += wt * dz * dz
        mean, var = f_mu + e1, e2 - e1 * e1
        second = var + mean**2
        return {
            "mean": (mean, second),
            "second_moment": (second, None),
            "variance": (var, None),
            "mean_slope": (d1, d2),
            "mean_slope_sq": (d2, None),
        }


def _quad_errors(got: GaussianMoments, i, name, mu, sigma, dps=QUAD_DPS) -> dict[str, float]:
    """Check each field at the tolerance above; return err / |ref| per field."""
    ref = _mp_smooth_moments(name, mu, sigma, dps)
    out = {}
    with mp.workdps(dps):
        for field in FIELDS:
            value, sq = ref[field]
            err = abs(mp.mpf(float(np.ravel(getattr(got, field))[i])) - value)
            bound = QUAD_REL * abs(value) + (0 if sq is None else QUAD_FLOOR * mp.sqrt(sq))
            assert err <= bound, (name, field, mu, sigma, float(err), mp.nstr(value, 17))
            out[field] = float(err / abs(value)) if value else 0.0
    return out


@pytest.mark.parametrize("name, mu, sigma", [("tanh", 0.3, 1.0), ("gelu", -4.85, 0.5)])
def test_quadrature_reference_agrees_with_mpmath_quad(name, mu, sigma):
    """The panel reference equals mpmath.quad (tanh-sinh) on mu + [-14, 14] sigma to 1e-16
    relative: its own error (1e-19 to 3e-17, largest for tanh'^2, whose poles at
    +-i pi/2 are the nearest) is 1e4 below the tolerances it is used for."""
    f, df = MP_FUNCTIONS[name]
    ref = _mp_smooth_moments(name, mu, sigma)
    with mp.workdps(QUAD_DPS):
        m, s = mp.mpf(mu), mp.mpf(sigma)
        pts = [m + k * s for k in range(-14, 15, 2)] + [0]
        pts = sorted(set(pts))
        pts = [p for p in pts if m - 14 * s <= p <= m + 14 * s]

        def quad(g):
            return mp.quad(lambda z: g(z) * mp.npdf(z, m, s), pts)

        mean = quad(f)
        var = quad(lambda z: (f(z) - mean) ** 2)
        for field, want in [
            ("mean", mean),
            ("variance", var),
            ("mean_slope", quad(df)),
            ("mean_slope_sq", quad(lambda z: df(z) ** 2)),
        ]:
            assert abs(ref[field][0] - want) <= mp.mpf(10) ** -16 * abs(want), field


@pytest.mark.parametrize("name", ["gelu", "silu", "mish", "tanh", "sigmoid", "softplus", "sin"])
def test_quadrature_integrands_are_the_registry_functions(name):
    """The float64 forms integrated are the functions of elulab.functional: equal to
    torch's float64 values on [-5, 5] to 1e-14 relative or 2.5e-16 absolute (about one
    ulp of 1: torch's 1 + erf and 1 - tanh^2 carry that absolute error); and to the
    textbook mpmath ones to 4 ulp on [-40, 40], tails included."""
    from elulab.functional import activation_function
    from elulab.theory.gaussian import _INTEGRANDS

    f, df = _INTEGRANDS[name]
    x = np.linspace(-5.0, 5.0, 401)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ft = activation_function(name)(xt)
    (dt,) = torch.autograd.grad(ft.sum(), xt)
    np.testing.assert_allclose(f(x), ft.detach().numpy(), rtol=1e-14, atol=2.5e-16)
    np.testing.assert_allclose(df(x), dt.numpy(), rtol=1e-14, atol=2.5e-16)
    mf, mdf = MP_FUNCTIONS[name]
    with mp.workdps(60):  # s (1 - s) and sech(x)^2 lose ~17 digits at x = 40
        for v in np.linspace(-40.0, 40.0, 161):
            # gelu: erfc's argument x / sqrt 2 is rounded, and erfc's relative condition
            # number there is x^2 (1300 at x = -36)
            ulps = 4 * (1 + v * v if name == "gelu" else 1)
            for ours, exact in ((f(v), mf(mp.mpf(v))), (df(v), mdf(mp.mpf(v)))):
                assert abs(ours - exact) <= ulps * 2.2e-16 * abs(exact) + 1e-300, (name, v)


@pytest.mark.slow
@pytest.mark.parametrize("name", QUAD_NAMES)
def test_quadrature_grid(name):
    mus, sigmas = np.meshgrid(QUAD_MUS, QUAD_SIGMAS)
    got = gm(name, mus, sigmas)
    assert got.method.startswith("quadrature (")
    for i, (mu, sigma) in enumerate(zip(mus.ravel(), sigmas.ravel(), strict=True)):
        _quad_errors(got, i, name, float(mu), float(sigma))


@pytest.mark.parametrize(
    "name, mu, sigma",
    [("gelu", -20.0, 0.7), ("gelu", -12.0, 1.0), ("silu", -30.0, 2.0), ("tanh", 20.0, 1.0)],
)
def test_quadrature_tails_beyond_the_grid(name, mu, sigma):
    """Where the integrand peaks more than 12 standard deviations from mu (toward 0), the
    window follows it: GELU's E f^2 at mu = -20, sigma = 0.7 peaks 14 sigma away. (60
    digits: tanh(20) - tanh(z) needs them.)"""
    _quad_errors(gm(name, mu, sigma), 0, name, mu, sigma, dps=60)


def test_quadrature_sin_against_its_closed_form():
    """E sin z = sin(mu) e^{-s^2/2}, E sin^2 z = (1 - cos(2mu) e^{-2 s^2}) / 2, same for cos."""
    mu = np.array([0.3, -2.0, 7.0, 0.0, 1.0])
    sigma = np.array([1e-3, 0.5, 2.0, 10.0, 4.0])
    got = gm("sin", mu, sigma)
    e1, e2 = np.exp(-0.5 * sigma**2), np.exp(-2.0 * sigma**2)
    want = {
        "mean": np.sin(mu) * e1,
        "second_moment": 0.5 * (1 - np.cos(2 * mu) * e2),
        "mean_slope": np.cos(mu) * e1,
        "mean_slope_sq": 0.5 * (1 + np.cos(2 * mu) * e2),
    }
    want["variance"] = want["second_moment"] - want["mean"] ** 2
    for f in FIELDS:
        # the closed forms in float64 carry ~1e-16 of absolute rounding (E sin z is
        # e^{-50} sin(mu) at sigma = 10, below any relative resolution)
        np.testing.assert_allclose(getattr(got, f), want[f], rtol=1e-13, atol=1e-15)


def test_quadrature_gelu_mean_against_closed_form():
    """E[z Phi(z)] = mu Phi(mu/r) + sigma^2/r phi(mu/r), r = sqrt(1 + sigma^2), here at
    40 digits; deep in the lower tail as well (mu = -8, sigma = 1e-3: -5e-15)."""
    mu = np.array([-8.0, -6.0, -3.0, 0.0, 0.7, 5.0])
    sigma = np.array([1e-3, 0.3, 0.2, 1.0, 3.0, 8.0])
    got = gm("gelu", mu, sigma).mean
    with mp.workdps(40):
        for g, m, s in zip(got, mu, sigma, strict=True):
            r = mp.sqrt(1 + mp.mpf(s) ** 2)
            x = mp.mpf(m) / r
            want = m * mp.ncdf(x) + mp.mpf(s) ** 2 / r * mp.npdf(x)
            assert abs(g - want) <= 1e-13 * abs(want), (m, s, g, want)


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------


def test_unknown_activation_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: relu, leaky_relu, elu"):
        gm("swish2", 0.0, 1.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf"), [1.0, 0.0]])
def test_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        gm("elu", 0.0, sigma)


def test_bad_mu():
    with pytest.raises(ValueError, match="mu must be finite"):
        gm("elu", [0.0, float("nan")], 1.0)
    with pytest.raises(TypeError, match="mu"):
        gm("elu", "zero", 1.0)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        gm("elu", 0.0, 1.0, alpha=alpha)


def test_parameters_the_activation_does_not_take():
    with pytest.raises(ValueError, match="alpha applies to elu, celu and selu only"):
        gm("relu", 0.0, 1.0, alpha=2.0)
    with pytest.raises(ValueError, match="negative_slope applies to leaky_relu only"):
        gm("elu", 0.0, 1.0, negative_slope=0.1)
    with pytest.raises(ValueError, match="scale applies"):
        gm("tanh", 0.0, 1.0, scale=2.0)
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        gm("leaky_relu", 0.0, 1.0, negative_slope=float("inf"))


def test_results_that_overflow_float64_are_errors():
    with pytest.raises(ValueError, match="second_moment of elu is not representable"):
        gm("elu", 1e300, 1.0)
    with pytest.raises(ValueError, match="not representable in float64"):
        gm("relu", 0.0, 1e200)


def test_quadrature_sigma_limit():
    with pytest.raises(ValueError, match="sigma must be <= 1000 for 'gelu'"):
        gm("gelu", 0.0, 2e3)


def test_extreme_but_representable_inputs_are_finite():
    mu = np.array([-1e150, -1e6, -40.0, 0.0, 1e-300, 40.0, 1e6, 1e150])
    sigma = np.array([[1e-300], [1e-12], [1.0], [30.0], [1e4]])
    for name in CLOSED_FORM_ACTIVATIONS:
        out = gm(name, mu, sigma)
        for f in FIELDS:
            assert np.all(np.isfinite(getattr(out, f))), (name, f)
        assert np.all(out.variance >= 0.0)
