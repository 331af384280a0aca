"""Mean-field signal propagation (elulab.theory.meanfield) against independent references.

- mpmath quadrature (30 digits) of the one-dimensional Gaussian expectations;
- the fixed points against the limit of iterating the maps themselves, and the depth
  scales against the measured geometric decay of those iterates;
- the length-map slope against a central finite difference of the map;
- Monte Carlo through random deep networks (width 4000, depth 12, 64 independent networks):
  the mean over the networks is within 5 standard errors (estimated from the 64; two-sided
  p ~ 1e-6 per check) plus a finite-width bias allowance of 2 depth / width times the
  mean-field value (the bias is O(depth / width)).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from elulab.functional import activation_function
from elulab.theory import (
    KERNEL_ACTIVATIONS,
    chi_1,
    correlation_fixed_point,
    correlation_map,
    edge_of_chaos,
    length_fixed_point,
    length_map,
    length_map_slope,
    mean_field,
    nngp_step,
)

CASES = [  # (activation, params, weight_var, bias_var): ordered and chaotic phases
    ("elu", {}, 1.5, 0.1),
    ("elu", {}, 1.5, 0.0),
    ("elu", {"alpha": 2.0}, 1.2, 0.3),
    ("celu", {"alpha": 0.5}, 1.8, 0.05),
    ("selu", {}, 1.0, 0.0),
    ("tanh", {}, 2.5, 0.05),
    ("tanh", {}, 1.5, 0.05),
    ("relu", {}, 1.8, 0.2),
    ("leaky_relu", {"negative_slope": 0.2}, 1.5, 0.1),
    ("gelu", {}, 2.0, 0.1),
]


def _mp_f(name, params):
    a = mp.mpf(params.get("alpha", 1.6732632423543772848170429916717 if name == "selu" else 1))
    lam = mp.mpf("1.0507009873554804934193349852946") if name == "selu" else mp.mpf(1)
    if name in ("elu", "selu"):
        return (
            lambda x: lam * (x if x > 0 else a * mp.expm1(x)),
            lambda x: lam * (1 if x > 0 else a * mp.exp(x)),
        )
    if name == "celu":
        return (
            lambda x: x if x > 0 else a * mp.expm1(x / a),
            lambda x: 1 if x > 0 else mp.exp(x / a),
        )
    if name == "tanh":
        return mp.tanh, lambda x: 1 - mp.tanh(x) ** 2
    if name == "relu":
        return lambda x: max(x, 0), lambda x: 1 if x > 0 else 0
    if name == "leaky_relu":
        s = mp.mpf(params["negative_slope"])
        return lambda x: x if x > 0 else s * x, lambda x: 1 if x > 0 else s
    if name == "gelu":
        return lambda x: x * mp.ncdf(x), lambda x: mp.ncdf(x) + x * mp.npdf(x)
    raise AssertionError(name)


def _mp_expect(g, q):
    s = mp.sqrt(mp.mpf(q))
    return mp.quad(lambda z: g(s * z) * mp.npdf(z), [-mp.inf, 0, mp.inf])


@pytest.mark.parametrize(("name", "params", "wv", "bv"), CASES)
def test_fixed_point_and_chi_1_against_mpmath(name, params, wv, bv):
    q = length_fixed_point(name, wv, bv, **params)
    f, df = _mp_f(name, params)
    with mp.workdps(30):
        v = wv * _mp_expect(lambda x: f(x) ** 2, q) + bv
        c1 = wv * _mp_expect(lambda x: df(x) ** 2, q)
    tol = 1e-12 if name in ("elu", "celu", "selu", "relu", "leaky_relu") else 1e-10
    assert abs(v / q - 1) < tol
    assert abs(chi_1(name, wv, bv, **params) / c1 - 1) < tol


CLOSED_CASES = [c for c in CASES if c[0] not in ("tanh", "gelu")] + [CASES[5]]


@pytest.mark.parametrize(("name", "params", "wv", "bv"), CLOSED_CASES)
def test_fixed_point_is_the_limit_of_the_iteration(name, params, wv, bv):
    q = 1.0
    for _ in range(400 if name != "tanh" else 120):  # V'(q*) <= 0.9 (tanh: 0.43) here
        q = length_map(q, name, wv, bv, **params)
    assert length_fixed_point(name, wv, bv, **params) == pytest.approx(q, rel=1e-12)


@pytest.mark.parametrize(("name", "params", "wv", "bv"), CASES)
def test_length_map_slope_is_its_derivative(name, params, wv, bv):
    for q in (0.05, 0.7, 4.0):
        h = 1e-4 * q
        fd = (
            length_map(q + h, name, wv, bv, **params) - length_map(q - h, name, wv, bv, **params)
        ) / (2 * h)
        assert length_map_slope(q, name, wv, bv, **params) == pytest.approx(fd, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize(("name", "params", "wv", "bv"), CASES)
def test_correlation_fixed_point_and_depth_scales(name, params, wv, bv):
    m = mean_field(name, wv, bv, **params)
    assert m.phase == ("chaotic" if m.chi_1 > 1 else "ordered")
    q = m.q_star
    # c* is the limit of iterating the correlation map; |c_l - c*| decays like chi_c^l
    c, gaps = 0.3, []
    for _ in range(200):
        c = correlation_map(c, name, wv, bv, q, **params)
        gaps.append(abs(c - m.c_star))
    assert gaps[-1] <= 10 * m.chi_c**200 + 1e-12
    # chi_c is the slope of the map at c* (one-sided at c* = 1)
    h = 1e-5
    if m.c_star < 1:
        up = correlation_map(m.c_star + h, name, wv, bv, q, **params)
        down = correlation_map(m.c_star - h, name, wv, bv, q, **params)
        assert (up - down) / (2 * h) == pytest.approx(m.chi_c, rel=1e-7)
    else:  # 1 - C(1 - h) = chi_1 h + O(h^{3/2}) (the kink of f)
        slope = (1 - correlation_map(1 - h, name, wv, bv, q, **params)) / h
        assert slope == pytest.approx(m.chi_c, rel=1e-2)
    if m.c_star < 1:
        assert correlation_fixed_point(name, wv, bv, **params) == m.c_star
    # |q_l - q*| decays like V'(q*)^l
    ql, prev = q * 1.001, None
    for _ in range(12):
        new = length_map(ql, name, wv, bv, **params)
        prev, ql = ql, new
    ratio = (ql - q) / (prev - q)
    assert ratio == pytest.approx(m.length_slope, rel=1e-3)
    assert m.xi_q == pytest.approx(-1 / math.log(m.length_slope), rel=1e-14)


@pytest.mark.parametrize(
    ("name", "params"), [("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("tanh", {})]
)
def test_edge_of_chaos(name, params):
    biases = np.array([0.01, 0.1, 0.4])
    e = edge_of_chaos(name, biases, **params)
    f, df = _mp_f(name, params)
    for bv, wv, q in zip(e.bias_var, e.weight_var, e.q_star, strict=True):
        with mp.workdps(30):
            assert abs(wv * _mp_expect(lambda x: df(x) ** 2, q) - 1) < 1e-10
            assert abs((wv * _mp_expect(lambda x: f(x) ** 2, q) + bv) / q - 1) < 1e-10
        m = mean_field(name, float(wv), float(bv), q0=float(q), **params)
        assert m.chi_1 == pytest.approx(1.0, abs=1e-10)
    # along the edge weight_var grows with bias_var (Schoenholz et al. 2017, Fig. 1)
    assert np.all(np.diff(e.weight_var) > 0)


def test_relu_edge_of_chaos_is_a_point():
    assert float(edge_of_chaos("relu", 0.0).weight_var) == 2.0
    with pytest.raises(ValueError, match="no edge-of-chaos point of relu"):
        edge_of_chaos("relu", 0.1)


def _deep_net_stats(name, params, wv, bv, depth, width, gen, x):
    """Empirical length of input 0 and correlation of inputs 0, 1 at every layer.

    A fresh weight matrix W is used by each layer on these two inputs only, so, given the
    layer's input, the pairs (h_k(x0), h_k(x1)) over units k are i.i.d. Gaussian with
    covariance wv F F^T / n + bv (F the two activation vectors): sampling them that way is
    exactly a random network, at O(width) cost per layer.
    """
    fn = (
        activation_function(name)
        if not params
        else (lambda t: torch.nn.functional.elu(t, params["alpha"]))
    )
    d = x.shape[1]
    cov = wv * (x @ x.T) / d + bv
    qs, cs = [], []
    h = torch.linalg.cholesky(cov) @ torch.randn(2, width, generator=gen, dtype=torch.float64)
    for _ in range(depth):
        f = fn(h)
        cov = wv * (f @ f.T) / width + bv
        h = torch.linalg.cholesky(cov) @ torch.randn(2, width, generator=gen, dtype=torch.float64)
        q0, q1 = (h * h).mean(dim=1)
        qs.append(float(q0))
        cs.append(float((h[0] * h[1]).mean() / torch.sqrt(q0 * q1)))
    return np.array(qs), np.array(cs)


@pytest.mark.parametrize(
    ("name", "params", "wv", "bv"), [("elu", {}, 1.5, 0.0), ("tanh", {}, 2.5, 0.05)]
)
def test_monte_carlo_deep_networks(name, params, wv, bv):
    depth, width, reps = 12, 4000, 64
    x = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, math.sqrt(0.5)]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    stats = [_deep_net_stats(name, params, wv, bv, depth, width, gen, x) for _ in range(reps)]
    qs = np.array([s[0] for s in stats])
    cs = np.array([s[1] for s in stats])
    # the mean-field recursion of this input pair (both of squared norm 1, d = 3)
    q, k12 = wv / 3 + bv, wv * float(x[0] @ x[1]) / 3 + bv
    q_theory, c_theory = [], []
    for _ in range(depth):
        if name in KERNEL_ACTIVATIONS:
            k12 = wv * nngp_step(name, q, k12, q, **params) + bv
        else:  # (weight_var E[f f] + bias_var) / q, times q
            k12 = correlation_map(k12 / q, name, wv, bv, q, **params) * q
        q = length_map(q, name, wv, bv, **params)
        q_theory.append(q)
        c_theory.append(k12 / q)
    for emp, theory in ((qs, np.array(q_theory)), (cs, np.array(c_theory))):
        mean = emp.mean(axis=0)
        se = emp.std(axis=0, ddof=1) / math.sqrt(reps)
        allowance = 2 * np.arange(1, depth + 1) / width * np.abs(theory)
        assert np.all(np.abs(mean - theory) <= 5 * se + allowance), (mean, theory, se)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: length_map(-1.0, "elu", 1.0, 0.0), "q must be finite and > 0"),
        (lambda: length_map(1.0, "elu", 0.0, 0.0), "weight_var must be > 0"),
        (lambda: length_map(1.0, "elu", 1.0, -0.1), "bias_var must be >= 0"),
        (lambda: length_map(1.0, "tanh", 1.0, 0.0, alpha=1.0), "do not apply to 'tanh'"),
        (lambda: length_map(1.0, "foo", 1.0, 0.0), "unknown activation"),
        (lambda: length_fixed_point("elu", 3.0, 0.1), "grows without bound"),
        (lambda: correlation_map(1.5, "elu", 1.0, 0.0, 1.0), "c must be a correlation"),
        (lambda: edge_of_chaos("elu", -0.1), "bias_var must be finite and >= 0"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_vanishing_length_returns_zero():
    # ELU with weight_var < 1 and no bias: q_l -> 0
    assert length_fixed_point("elu", 0.5, 0.0) == 0.0
