"""Tests of C11 (b), ELU expressivity: the targets, the exact ReLU floor, the verdict rule."""

from __future__ import annotations

import itertools
import math

import mpmath as mp
import numpy as np
import pytest
import torch
from scipy import optimize

from elulab.experiments.elu_expressivity import (
    PROFILES,
    Config,
    EluExpressivity,
    n_params,
    relu_floor_rel,
    width_for,
)
from elulab.lab.api import ConfigError, RunResult
from elulab.lab.verdicts import key
from elulab.theory.piecewise import (
    Piecewise,
    exp_line_residual,
    line_residual_R,
    relu_floor,
    relu_pieces,
)
from elulab.train import build_mlp


@pytest.fixture(autouse=True)
def _forty_digits():
    with mp.workdps(40):
        yield


def _R_mp(u: float) -> mp.mpf:
    u = mp.mpf(u)
    return (
        mp.sinh(2 * u) / u
        - 2 * mp.sinh(u) ** 2 / u**2
        - 6 * (u * mp.cosh(u) - mp.sinh(u)) ** 2 / u**4
    )


@pytest.mark.parametrize("u", [1e-4, 0.1, 0.5, 0.999, 1.0, 1.7, 3.0, -0.8])
def test_line_residual_R_against_mpmath(u):
    """Series (|u| < 1) and closed form (|u| >= 1) against 40-digit mpmath."""
    ref = _R_mp(abs(u))
    assert float(line_residual_R(u)) == pytest.approx(float(ref), rel=1e-13, abs=0)


@pytest.mark.parametrize(
    "amp,rate,a,b", [(1.0, 1.0, -2.0, 2.0), (0.3, -1.5, 0.2, 0.25), (2.0, 2.5, -1, 0.5)]
)
def test_exp_line_residual_is_the_least_squares_residual(amp, rate, a, b):
    """min_l int (A e^{kx} - l)^2 from the 2x2 normal equations, integrals in 40 digits."""
    f = lambda x: amp * mp.exp(rate * x)  # noqa: E731
    a, b = mp.mpf(a), mp.mpf(b)
    g = mp.matrix([[b - a, (b**2 - a**2) / 2], [(b**2 - a**2) / 2, (b**3 - a**3) / 3]])
    r = mp.matrix([mp.quad(f, [a, b]), mp.quad(lambda x: x * f(x), [a, b])])
    coef = mp.lu_solve(g, r)
    ref = mp.quad(lambda x: (f(x) - coef[0] - coef[1] * x) ** 2, [a, b])
    got = float(exp_line_residual(amp, rate, float(a), float(b)))
    assert got == pytest.approx(float(ref), rel=1e-10)


def _best_split(f: Piecewise, lo: float, hi: float, m: int) -> float:
    """Brute force: the best discontinuous m-piece linear fit (m = 2, 3), knots by scan + refine."""

    def cost(knots):
        edges = [lo, *sorted(np.clip(knots, lo, hi)), hi]
        total = 0.0
        for s, e in itertools.pairwise(edges):
            for a, b, j in f.bounds(s, e):  # a split at a kink of f only lowers it: not here
                total += float(exp_line_residual(f.pieces[j][2], f.pieces[j][3], a, b))
        return total

    grid = np.linspace(lo, hi, 81)[1:-1]
    starts = itertools.combinations(grid, m - 1)
    best = min(starts, key=cost)
    return optimize.minimize(
        cost, best, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-16}
    ).fun


def _best_continuous(f: Piecewise, lo: float, hi: float, m: int) -> float:
    """Brute force: the best continuous m-piece linear fit (a ReLU net of m - 1 units)."""
    x = np.linspace(lo, hi, 4001)
    y = f(x)

    def cost(knots):
        k = np.sort(np.clip(knots, lo, hi))
        basis = np.stack([np.ones_like(x), x, *(np.maximum(x - t, 0) for t in k)], 1)
        c, *_ = np.linalg.lstsq(basis, y, rcond=None)
        return float(np.mean((basis @ c - y) ** 2) * (hi - lo))

    grid = np.linspace(lo, hi, 21)[1:-1]
    best = min(itertools.combinations(grid, m - 1), key=cost)
    return optimize.minimize(cost, best, method="Nelder-Mead").fun


@pytest.mark.parametrize("m", [2, 3])
def test_relu_floor_against_brute_force(m):
    """floor <= best discontinuous fit <= best continuous fit, and the floor is tight."""
    f = Piecewise((), ((0.0, 0.0, 1.0, 1.0),))  # e^x on [0, 2]
    floor = relu_floor(f, m, 0.0, 2.0, grid=400)
    split, cont = _best_split(f, 0.0, 2.0, m), _best_continuous(f, 0.0, 2.0, m)
    assert floor <= split <= cont * (1 + 1e-3)  # the continuous optimum, to quadrature error
    assert floor > 0.97 * split  # the grid loses ~ 8 m / grid of the squared error
    assert relu_floor(f, m, 0.0, 2.0, grid=100) <= relu_floor(f, m, 0.0, 2.0, grid=400) <= split


def test_relu_floor_on_a_kinked_target_and_the_mixed_floor():
    f = PROFILES["mixed"]
    floor = relu_floor(f, 2, -2.0, 2.0, grid=400)
    assert 0 < floor <= _best_continuous(f, -2.0, 2.0, 2)
    # the linear target is 5 linear pieces: a 4-unit ReLU net is exact, a 3-unit one is not
    assert relu_floor(PROFILES["linear"], 5, -2.0, 2.0, grid=100) == 0.0
    # ELU is exact on `mixed` with 2 units; ReLU with 2 units (3 pieces) is not
    assert relu_floor_rel("mixed", relu_pieces(2, 1), 2.0, 400) > 0.01
    assert math.isnan(relu_floor_rel("mixed", 30, 2.0, 400))  # > grid / 20 pieces: not computed


def test_profiles_follow_their_formulas():
    x = np.linspace(-2.5, 2.5, 1001)
    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
    zig = 0.5 * x + sum(
        (s1 - s0) * relu(x - b)
        for b, s0, s1 in zip(
            (-1.2, -0.4, 0.4, 1.2), (0.5, -1.5, 1.5, -1.0), (-1.5, 1.5, -1.0, 0.8), strict=True
        )
    )
    np.testing.assert_allclose(PROFILES["linear"](x), zig, atol=1e-14)
    logz = 1.5 * x + sum(
        (s1 - s0) * relu(x - b)
        for b, s0, s1 in zip((-1.0, 0.0, 0.9), (1.5, -1.0, 1.2), (-1.0, 1.2, -1.5), strict=True)
    )
    np.testing.assert_allclose(PROFILES["exp"](x), np.exp(logz), rtol=1e-14)
    t = torch.from_numpy(x)
    elu = torch.nn.functional.elu
    ref = elu(2.0 * (t + 0.5)) / 2.0 + 0.7 * elu(1.5 * (0.8 - t)) / 1.5
    np.testing.assert_allclose(PROFILES["mixed"](x), ref.numpy(), atol=1e-14)
    with pytest.raises(ValueError, match="exponential sides overlap"):
        Piecewise.elu_sum([(1.0, 1.0, 0.0, 1), (1.0, 1.0, 1.0, 1)])


def test_elu_nets_represent_exponential_pieces_exactly():
    """One ELU unit is alpha (e^x - 1) on x < 0; two units are the `mixed` target."""
    alpha = 1.7
    x = torch.linspace(-3, 0, 301, dtype=torch.float64)[:, None]
    one = torch.nn.ELU(alpha)(x)
    np.testing.assert_allclose(one[:, 0].numpy(), alpha * np.expm1(x[:, 0].numpy()), rtol=1e-15)
    net = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ELU(), torch.nn.Linear(2, 1)).double()
    with torch.no_grad():  # ELU(2 (x + 0.5)) / 2 + 0.7 ELU(1.5 (0.8 - x)) / 1.5
        net[0].weight.copy_(torch.tensor([[2.0], [-1.5]]))
        net[0].bias.copy_(torch.tensor([1.0, 1.2]))
        net[2].weight.copy_(torch.tensor([[0.5, 0.7 / 1.5]]))
        net[2].bias.zero_()
    xs = torch.linspace(-2, 2, 401, dtype=torch.float64)[:, None]
    np.testing.assert_allclose(
        net(xs)[:, 0].detach().numpy(), PROFILES["mixed"](xs[:, 0].numpy()), atol=1e-14
    )


@pytest.mark.parametrize("width,depth", [(3, 1), (6, 1), (3, 2), (4, 2)])
def test_relu_nets_have_at_most_n_plus_1_to_the_L_pieces(width, depth):
    """Pieces <= activation-pattern changes along the line + 1 <= (n + 1)^L."""
    for seed in range(5):
        torch.manual_seed(seed)
        net = build_mlp(1, 1, depth=depth, width=width, init="torch").double()
        x = torch.linspace(-20, 20, 40001, dtype=torch.float64)[:, None]
        h, pattern = x, []
        for layer in net:
            h = layer(h)
            if isinstance(layer, torch.nn.ReLU):
                pattern.append(h > 0)
        pat = torch.cat(pattern, 1)
        changes = int((pat[1:] != pat[:-1]).any(1).sum())
        assert changes + 1 <= relu_pieces(width, depth)


def test_widths_match_the_parameter_budget():
    for d, depth, budget in itertools.product((1, 4), (1, 2), (32, 128, 512)):
        w = width_for(d, depth, budget)
        net = build_mlp(d, 1, depth=depth, width=w)
        assert n_params(d, depth, w) == sum(p.numel() for p in net.parameters())
        assert abs(n_params(d, depth, w) - budget) <= abs(n_params(d, depth, w + 1) - budget)
    assert width_for(1, 1, 128) == 42 and width_for(4, 2, 512) == 19


def test_config_needs_relu_and_elu():
    with pytest.raises(ConfigError, match="activations must include relu and elu"):
        EluExpressivity().resolve_config("quick", {"activations": "elu,tanh"})


# -- the verdict on synthetic results -------------------------------------------------------

CFG = Config(dims=(1, 4), depths=(1, 2), budgets=(32, 128))


def _fakes(ratio, n: int = 5, relu_err: float = 0.1, floor: float = 0.01) -> list[RunResult]:
    """``ratio(fam, d) -> err ELU / err ReLU`` (ELU jittered by seed); GELU, tanh = ReLU."""
    out = []
    for i in range(n):
        m = {}
        for fam, d, depth, budget in itertools.product(
            CFG.families, CFG.dims, CFG.depths, CFG.budgets
        ):
            tag = (f"d{d}", fam, f"L{depth}", f"P{budget}")
            errs = {"relu": relu_err, "gelu": relu_err, "tanh": relu_err}
            errs["elu"] = relu_err * ratio(fam, d) * (1 + 0.03 * (i - n // 2))
            m |= {key(*tag, a, "err"): e for a, e in errs.items()}
            m[key(*tag, "params")] = float(budget)
            if d == 1:
                m[key(*tag, "relu_floor")] = floor
        out.append(RunResult(metrics=m))
    return out


def _v(results):
    return EluExpressivity().verdict(CFG, results)[0]


def test_verdict_supported_and_small():
    v = _v(_fakes(lambda fam, d: 1.5 if fam == "linear" else 0.2))
    assert (v.status, v.qualifier) == ("supported", "")
    assert len(v.checks) == 24 and all(
        c.confidence == pytest.approx(1 - 0.05 / 8) for c in v.checks
    )
    assert "exp supported (8/8)" in v.summary and "linear supported (8/8)" in v.summary
    assert v.effect == pytest.approx(math.log(0.2), abs=0.01) and v.ci_high < 0
    small = _v(_fakes(lambda fam, d: 1.0 if fam == "linear" else 0.8))  # ratio 0.8 > 0.5
    assert (small.status, small.qualifier) == ("supported", "small")
    assert "mixed supported (small)" in small.summary


def test_verdict_not_supported_mixed_inconclusive():
    v = _v(_fakes(lambda fam, d: 0.3 if fam == "linear" else 2.0))
    assert v.status == "not supported" and "exp not supported (0/8)" in v.summary
    # the settings of a family disagree (1-D: ELU better, 4-D: worse): the family is mixed
    v = _v(_fakes(lambda fam, d: 1.5 if fam == "linear" else (0.3 if d == 1 else 3.0)))
    assert v.status == "mixed" and "exp mixed (4/8)" in v.summary
    # the linear family contradicts (ELU much better there too): mixed overall
    v = _v(_fakes(lambda fam, d: 0.3))
    assert v.status == "mixed" and "linear not supported" in v.summary
    v = _v(_fakes(lambda fam, d: 1.0))  # no difference: exp/mixed straddle 0
    assert v.status == "inconclusive" and "exp inconclusive (0/8)" in v.summary
    one = _v(_fakes(lambda fam, d: 0.2, n=1))
    assert one.status == "inconclusive" and math.isnan(one.ci_low)


def test_verdict_floor_anchor_and_bug_guard():
    v = _v(_fakes(lambda fam, d: 1.5 if fam == "linear" else 0.05))  # ELU at 0.005 < floor 0.01
    assert (
        v.status == "supported"
        and "every ELU seed is below the floor of any ReLU net of its shape, 0.01" in v.summary
    )
    bug = _v(_fakes(lambda fam, d: 0.2, relu_err=0.005))  # ReLU below its exact floor
    assert (
        bug.status == "inconclusive" and "ReLU error below its exact floor (a bug)" in bug.summary
    )
