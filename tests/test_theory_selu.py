"""SELU moment map, Jacobian, fixed-point solver and AlphaDropout (elulab.theory.selu).

References: 40-digit mpmath (quadrature for the map, numerical differentiation of the
map for the Jacobian, the textbook closed form iterated for the iterates), the published
constants, torch's AlphaDropout, and the textbook formulas in float64 for the basin.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from elulab.functional import SELU_ALPHA, SELU_LAMBDA
from elulab.theory import (
    alpha_dropout_parameters,
    basin_of_attraction,
    iterate_moment_map,
    moment_map,
    moment_map_flow,
    moment_map_jacobian,
    solve_selu_parameters,
)

DPS = 40


def mp_moment_map(mu, nu, lam, alpha, omega, tau):
    """(E f, Var f), f = lam elu(.; alpha), z ~ N(mu omega, nu tau), by quadrature at 40 digits,
    split at the kink."""
    m = mu * omega
    s = mp.sqrt(nu * tau)

    def dens(z):
        return mp.npdf(z, m, s)

    def f(z):
        return lam * (z if z > 0 else alpha * mp.expm1(z))

    around = [m + d * s for d in (-40, -8, -2, 0, 2, 8, 40)]
    neg = sorted({x for x in around if x < 0} | {mp.mpf(0), -mp.inf})
    pos = sorted({x for x in around if x > 0} | {mp.mpf(0), mp.inf})
    e1 = mp.quad(lambda z: f(z) * dens(z), neg) + mp.quad(lambda z: f(z) * dens(z), pos)
    e2 = mp.quad(lambda z: f(z) ** 2 * dens(z), neg) + mp.quad(lambda z: f(z) ** 2 * dens(z), pos)
    return e1, e2 - e1 * e1


def mp_moment_map_closed(mu, nu, lam, alpha, omega, tau):
    """The textbook closed form, evaluated at 40 digits (its cancellations are harmless
    there); smooth in (mu, nu), so mpmath can differentiate it numerically."""
    m = mu * omega
    v = nu * tau
    s = mp.sqrt(v)
    c = m / s
    cdf, pdf = mp.ncdf(c), mp.npdf(c)
    q1 = mp.exp(m + v / 2) * mp.ncdf(-c - s)
    q2 = mp.exp(2 * m + 2 * v) * mp.ncdf(-c - 2 * s)
    e1 = lam * (m * cdf + s * pdf + alpha * (q1 - mp.ncdf(-c)))
    e2 = lam**2 * ((m * m + v) * cdf + m * s * pdf + alpha**2 * (q2 - 2 * q1 + mp.ncdf(-c)))
    return e1, e2 - e1 * e1


# (mu, nu, lam, alpha, omega, tau)
CASES = [
    (0.0, 1.0, SELU_LAMBDA, SELU_ALPHA, 0.0, 1.0),
    (0.3, 0.7, SELU_LAMBDA, SELU_ALPHA, 1.0, 1.0),
    (-0.1, 2.0, 1.07, 1.98, 1.0, 1.0),
    (1.5, 0.2, 0.9, 0.5, -0.8, 3.0),
    (-2.0, 5.0, 1.2, 2.5, 0.4, 0.3),
]


@pytest.mark.parametrize("case", CASES)
def test_moment_map_against_mpmath_quadrature(case):
    mu, nu, lam, alpha, omega, tau = case
    got = moment_map(mu, nu, lam=lam, alpha=alpha, omega=omega, tau=tau)
    with mp.workdps(DPS):
        want = mp_moment_map(*(mp.mpf(x) for x in case))
        for g, w in zip(got, want, strict=True):
            if abs(w) < 1e-14:  # the mean at an exact fixed point: absolute
                assert abs(g - w) <= 1e-15
            else:  # the accuracy of theory.gaussian (docs/theory.md)
                assert abs(g - w) <= 1e-12 * abs(w)


@pytest.mark.parametrize("case", CASES)
def test_jacobian_against_mpmath_derivatives(case):
    mu, nu, lam, alpha, omega, tau = case
    jac = moment_map_jacobian(mu, nu, lam=lam, alpha=alpha, omega=omega, tau=tau)
    with mp.workdps(DPS):
        args = [mp.mpf(x) for x in case]
        want = np.zeros((2, 2), dtype=object)
        for i in range(2):
            want[i, 0] = mp.diff(lambda x, i=i: mp_moment_map_closed(x, *args[1:])[i], args[0])
            want[i, 1] = mp.diff(
                lambda x, i=i: mp_moment_map_closed(args[0], x, *args[2:])[i], args[1]
            )
        scale = max(abs(w) for w in want.ravel())
        for i in range(2):
            for j in range(2):
                # float64 closed form: relative 1e-12 of the largest entry (an entry is 0
                # when omega = 0; the variance row subtracts 2 E f dE f)
                assert abs(jac[i, j] - want[i, j]) <= 1e-12 * scale, (i, j, jac, want)


def test_jacobian_against_finite_differences_of_the_float_map():
    mu, nu, kw = 0.2, 1.3, {"lam": 1.1, "alpha": 1.4, "omega": 0.9, "tau": 1.2}
    jac = moment_map_jacobian(mu, nu, **kw)
    h = 1e-6
    fd = np.empty((2, 2))
    for j, (dm, dn) in enumerate([(h, 0.0), (0.0, h)]):
        plus = moment_map(mu + dm, nu + dn, **kw)
        minus = moment_map(mu - dm, nu - dn, **kw)
        fd[:, j] = (np.array(plus) - np.array(minus)) / (2 * h)
    # central differences: truncation h^2 ~ 1e-12, rounding 1e-16 / h ~ 1e-10
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-9)


def test_paper_jacobian_and_spectral_norm():
    jac = moment_map_jacobian(0.0, 1.0)
    np.testing.assert_allclose(jac, [[0.0, 0.0888348], [0.0, 0.7826479]], rtol=0, atol=5e-8)
    assert jac[0, 0] == 0.0 and jac[1, 0] == 0.0  # omega = 0: mu does not enter
    p = solve_selu_parameters()
    assert abs(p.spectral_norm - 0.7876734) <= 5e-8
    assert p.spectral_norm == pytest.approx(np.linalg.svd(p.jacobian, compute_uv=False)[0])


@pytest.mark.parametrize("omega, tau", [(0.0, 1.0), (1.0, 1.0)])
def test_standard_constants(omega, tau):
    """Both conventions give lambda_01, alpha_01 at (0, 1), to <= 1e-12 relative."""
    p = solve_selu_parameters(0.0, 1.0, omega=omega, tau=tau)
    lam_exact = mp.mpf("1.0507009873554804934193349852946")
    alpha_exact = mp.mpf("1.6732632423543772848170429916717")
    assert abs(p.lam - lam_exact) / lam_exact <= 1e-12
    assert abs(p.alpha - alpha_exact) / alpha_exact <= 1e-12
    # measured: both within 2 ulp
    assert abs(p.lam - SELU_LAMBDA) <= 4.5e-16 and abs(p.alpha - SELU_ALPHA) <= 4.5e-16


@pytest.mark.parametrize(
    "omega, tau, alpha, lam",
    [
        (1.0, 1.0, 1.97690219542420, 1.07385123961605),  # the SNN notebook's convention
        (0.0, 1.0, 2.32699077881934, 0.98218043379593),  # the paper's
    ],
)
def test_custom_fixed_point(omega, tau, alpha, lam):
    p = solve_selu_parameters(-0.1, 2.0, omega=omega, tau=tau)
    # the reference values carry 15 significant digits
    assert p.alpha == pytest.approx(alpha, rel=1e-13)
    assert p.lam == pytest.approx(lam, rel=1e-13)
    # and the target is a fixed point of the map
    mu_t, nu_t = moment_map(-0.1, 2.0, lam=p.lam, alpha=p.alpha, omega=omega, tau=tau)
    assert mu_t == pytest.approx(-0.1, rel=1e-14)
    assert nu_t == pytest.approx(2.0, rel=1e-14)


@pytest.mark.parametrize(
    "mean, var, omega, tau",
    [(0.5, 1.0, 0.0, 1.0), (-0.4, 0.3, 1.0, 1.0), (0.1, 4.0, 0.5, 2.0), (0.0, 0.05, 0.0, 1.0)],
)
def test_solver_round_trip(mean, var, omega, tau):
    p = solve_selu_parameters(mean, var, omega=omega, tau=tau)
    mu_t, nu_t = moment_map(mean, var, lam=p.lam, alpha=p.alpha, omega=omega, tau=tau)
    assert abs(mu_t - mean) <= 1e-14 * max(1.0, abs(mean))
    assert nu_t == pytest.approx(var, rel=1e-14)
    assert p.lam > 0 and p.alpha > 0


def test_unsolvable_targets():
    with pytest.raises(ValueError, match=r"must lie in \(-0\.69\d+, 0\.68\d+\)"):
        solve_selu_parameters(1.0, 0.01)
    with pytest.raises(ValueError, match="no SELU parameters"):
        solve_selu_parameters(-1.0, 0.01)
    with pytest.raises(ValueError, match="var must be > 0"):
        solve_selu_parameters(0.0, 0.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        solve_selu_parameters(0.0, 1.0, tau=-1.0)
    with pytest.raises(ValueError, match="mean must be finite"):
        solve_selu_parameters(float("nan"), 1.0)


def test_alpha_dropout_paper_values():
    p = alpha_dropout_parameters(0.05)
    assert round(p.a, 5) == 0.95484 and round(p.b, 5) == 0.08394
    assert p.alpha_prime == pytest.approx(-SELU_LAMBDA * SELU_ALPHA, rel=1e-15)
    q = 0.95
    assert p.a == pytest.approx((q + p.alpha_prime**2 * q * (1 - q)) ** -0.5, rel=1e-15)
    assert alpha_dropout_parameters(0.0).a == 1.0 and alpha_dropout_parameters(0.0).b == 0.0


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_matches_torch(rate):
    """torch's alpha_dropout maps a kept x to a x + b and a dropped unit to a alpha' + b."""
    p = alpha_dropout_parameters(rate)
    x = torch.zeros(4000, dtype=torch.float64)
    x[::2] = 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        y = F.alpha_dropout(x, p=rate, training=True)
    values = set(np.round(y.numpy(), 12).tolist())
    want = {round(p.b, 12), round(p.a + p.b, 12), round(p.a * p.alpha_prime + p.b, 12)}
    assert values == want


@pytest.mark.parametrize("mean, var, rate", [(0.3, 2.0, 0.1), (-0.5, 0.5, 0.3)])
def test_alpha_dropout_keeps_a_general_fixed_point(mean, var, rate):
    """Exact enumeration: x = mean +- sqrt(var) with probability 1/2, d ~ Bernoulli(1-rate):
    a (x d + alpha'(1 - d)) + b has mean `mean` and variance `var`."""
    p = alpha_dropout_parameters(rate, mean=mean, var=var)
    q = 1.0 - rate
    outcomes = []
    for x in (mean - math.sqrt(var), mean + math.sqrt(var)):
        outcomes.append((0.5 * q, p.a * x + p.b))
        outcomes.append((0.5 * (1 - q), p.a * p.alpha_prime + p.b))
    m = sum(w * v for w, v in outcomes)
    v = sum(w * (val - m) ** 2 for w, val in outcomes)
    assert m == pytest.approx(mean, abs=1e-15)
    assert v == pytest.approx(var, rel=1e-14)
    solved = solve_selu_parameters(mean, var)
    assert p.alpha_prime == pytest.approx(-solved.lam * solved.alpha, rel=1e-15)


def test_alpha_dropout_bad_input():
    for rate in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            alpha_dropout_parameters(rate)
    with pytest.raises(ValueError, match="both lam and alpha"):
        alpha_dropout_parameters(0.1, lam=1.0)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        alpha_dropout_parameters(0.1, lam=1.0, alpha=0.0)


def test_moment_map_bad_input():
    with pytest.raises(ValueError, match="nu"):
        moment_map(0.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        moment_map(0.0, 1.0, alpha=-1.0)
    with pytest.raises(ValueError, match="tau"):
        moment_map_jacobian(0.0, 1.0, tau=0.0)


def test_moment_map_is_vectorised():
    mu_t, nu_t = moment_map(np.array([0.0, 0.5]), np.array([1.0, 2.0]), omega=1.0)
    for i, (m, n) in enumerate([(0.0, 1.0), (0.5, 2.0)]):
        a, b = moment_map(m, n, omega=1.0)
        assert mu_t[i] == a and nu_t[i] == b


# ---------------------------------------------------------------------------------------
# flow field, iterates, basin of attraction
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_moment_map_flow_against_mpmath_quadrature(case):
    """The displacement g(mu, nu) - (mu, nu): the map's 1e-12 plus the rounding of one
    subtraction (|x| * 2.2e-16); an exact zero (the mean at a fixed point) in absolute."""
    mu, nu, lam, alpha, omega, tau = case
    got = moment_map_flow(mu, nu, lam=lam, alpha=alpha, omega=omega, tau=tau)
    with mp.workdps(DPS):
        want = mp_moment_map(*(mp.mpf(x) for x in case))
        for g, w, x in zip(got, want, (mu, nu), strict=True):
            bound = 1e-12 * abs(w) + 2.2e-16 * abs(x) + 1e-15
            assert abs(g - (w - x)) <= bound, (g, w - x)
    mus, nus = np.meshgrid([-0.5, 0.5], [0.2, 2.0])
    d_mu, d_nu = moment_map_flow(mus, nus)
    assert d_mu.shape == d_nu.shape == (2, 2)
    _, nu_t = moment_map(mus, nus)
    np.testing.assert_array_equal(d_nu, nu_t - nus)


def _mp_iterate(mu, nu, steps, lam=SELU_LAMBDA, alpha=SELU_ALPHA, omega=0.0, tau=1.0):
    """The textbook closed form iterated at 30 digits (an independent implementation)."""
    with mp.workdps(30):
        m, v = mp.mpf(mu), mp.mpf(nu)
        args = [mp.mpf(x) for x in (lam, alpha, omega, tau)]
        for _ in range(steps):
            m, v = mp_moment_map_closed(m, v, *args)
        return m, v


@pytest.mark.parametrize(
    "start, steps, kw",
    [
        ((0.5, 3.0), 40, {}),  # the paper's convention: straight to (0, 1)
        ((-1.0, 0.2), 40, {}),
        ((2.0, 4.0), 60, {"omega": 0.3}),
        ((0.0, 1.0), 200, {"tau": 0.5625}),  # Kaiming's SELU gain: another fixed point
        ((0.3, 0.7), 30, {"lam": 1.07, "alpha": 1.98, "omega": 0.5, "tau": 1.1}),
    ],
)
def test_iterate_moment_map_against_mpmath_iteration(start, steps, kw):
    m, v, alive = iterate_moment_map(*start, steps, **kw)
    assert isinstance(m, float) and isinstance(alive, bool) and alive
    want_m, want_v = _mp_iterate(*start, steps, **kw)
    # each step is good to 1e-12 (theory.gaussian); the map contracts here, so errors
    # do not grow over the steps
    assert abs(m - want_m) <= 1e-12 * max(abs(want_m), 1e-3)
    assert abs(v - want_v) <= 1e-12 * want_v


def test_kaiming_gain_fixed_point():
    """tau = 0.75^2 (kaiming_normal_(nonlinearity="selu")): the statistics settle at a
    fixed point of the 30-digit map far from (0, 1), with a variance near 0.027. (The map
    contracts slowly there, eigenvalue 0.94: 800 steps take it to float64 resolution.)"""
    m, v, _ = iterate_moment_map(0.0, 1.0, 800, tau=0.5625)
    with mp.workdps(30):
        args = [mp.mpf(x) for x in (SELU_LAMBDA, SELU_ALPHA, 0.0, 0.5625)]
        gm_, gv = mp_moment_map_closed(mp.mpf(m), mp.mpf(v), *args)
    # measured: 1e-16 relative (the map is good to 1e-12)
    assert abs(gm_ - m) <= 1e-12 * abs(m) and abs(gv - v) <= 1e-12 * v
    assert -0.03 < m < -0.02 and 0.02 < v < 0.03


def test_iterate_moment_map_stops_points_that_explode_or_vanish():
    m, v, alive = iterate_moment_map([0.0, 0.0], [1.0, 1.0], 500, tau=3.0)
    assert not alive.any() and np.all(v > 1e6) and np.all(np.isfinite(v))
    # stopped at the first step past the bound, so v is at most one step beyond it
    assert np.all(v < 1e6 * 4.0)
    m, v, alive = iterate_moment_map(0.0, 1.0, 500, tau=1e-3)
    assert not alive and v <= 1e-12  # vanishing variance
    m, v, alive = iterate_moment_map(np.array([[0.2, -0.3]]), 1.5, 0)
    assert m.shape == (1, 2) and v.tolist() == [[1.5, 1.5]] and alive.all()
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        iterate_moment_map(0.0, 1.0, -1)
    with pytest.raises(ValueError, match="nu"):
        iterate_moment_map(0.0, -1.0, 3)


def _textbook_basin(mu, nu, steps, omega):
    """The basin by iterating the textbook closed form in float64 (other formulas than
    theory.gaussian's), with the same stopping and arrival rules."""
    from scipy.special import ndtr

    m, v = mu.copy(), nu.copy()
    alive = np.ones(m.shape, dtype=bool)
    lam, alpha = SELU_LAMBDA, SELU_ALPHA
    with np.errstate(all="ignore"):  # exploding points overflow to inf / nan: stopped
        for _ in range(steps):
            z, s2 = m * omega, v
            s = np.sqrt(s2)
            c = z / s
            pdf = np.exp(-c * c / 2) / math.sqrt(2 * math.pi)
            q1 = np.exp(z + s2 / 2) * ndtr(-c - s)
            q2 = np.exp(2 * z + 2 * s2) * ndtr(-c - 2 * s)
            e1 = lam * (z * ndtr(c) + s * pdf + alpha * (q1 - ndtr(-c)))
            e2 = lam**2 * (
                (z * z + s2) * ndtr(c) + z * s * pdf + alpha**2 * (q2 - 2 * q1 + ndtr(-c))
            )
            m, v = np.where(alive, e1, m), np.where(alive, e2 - e1 * e1, v)
            alive &= np.isfinite(m) & np.isfinite(v) & (v > 1e-12) & (v <= 1e6)
    return alive & (np.abs(m) < 1e-6) & (np.abs(v - 1) < 1e-6)


def test_basin_of_attraction():
    # the paper's convention: the mean does not enter, every start point converges
    mus, nus = np.meshgrid(np.linspace(-3, 3, 7), np.linspace(0.02, 6, 7), indexing="ij")
    assert basin_of_attraction(mus, nus).all()
    # omega = 0.8: (0, 1) still attracts (spectral radius 0.93), but large positive means
    # explode and very negative means with small variances collapse: a partial basin,
    # equal point by point to the one of the textbook formulas. 600 steps: 0.93^600 is
    # 1e-19, so no start point is still on its way at the end.
    mus, nus = np.meshgrid(np.linspace(-6, 6, 13), np.linspace(0.25, 20, 9), indexing="ij")
    ok = basin_of_attraction(mus, nus, steps=600, omega=0.8)
    assert 0 < ok.sum() < ok.size
    np.testing.assert_array_equal(ok, _textbook_basin(mus, nus, 600, 0.8))
    # Kaiming's gain: nothing reaches (0, 1), but everything reaches its own fixed point
    m, v, _ = iterate_moment_map(0.0, 1.0, 400, tau=0.5625)
    assert not basin_of_attraction(mus[:3, :3], nus[:3, :3], tau=0.5625).any()
    assert basin_of_attraction(0.5, 2.0, steps=400, tau=0.5625, target=(m, v), tol=1e-9)
    with pytest.raises(ValueError, match="tol must be > 0"):
        basin_of_attraction(0.0, 1.0, tol=0.0)
