"""Tests of the C11 (part a) kernel experiment: empirical kernels, Monte Carlo, verdict logic."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from elulab.experiments.elu_kernels import (
    Config,
    EluKernels,
    empirical_kernels,
    exact_kernels,
    kernel_accuracy,
    predicted,
    random_network,
)
from elulab.functional import activation_function
from elulab.lab.api import RunResult
from elulab.lab.verdicts import key
from elulab.theory.kernels import nngp, ntk

WV, BV = 2.0, 0.1


def _inputs(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("act", ["elu", "relu", "gelu"])
def test_empirical_ntk_is_the_jacobian_contraction(act):
    """The per-layer formula equals J J^T with J from torch.func.jacrev over every W and b."""
    x = _inputs(5, 6)
    params = random_network([6, 7, 9, 1], torch.Generator().manual_seed(1))
    f = activation_function(act)

    def out(flat, xi):
        a = xi
        for i in range(0, len(flat), 2):
            h = math.sqrt(WV) * a @ flat[i].T / math.sqrt(a.shape[-1]) + math.sqrt(BV) * flat[i + 1]
            a = f(h) if i + 2 < len(flat) else h
        return a.squeeze(-1)

    flat = [t for wb in params for t in wb]
    jac = torch.func.jacrev(out)(flat, x)  # one (5, *shape) block per parameter
    j = torch.cat([g.reshape(5, -1) for g in jac], dim=1)
    k_emp, t_emp = empirical_kernels(params, x, act, WV, BV)
    torch.testing.assert_close(t_emp, j @ j.T, rtol=1e-12, atol=1e-12)
    # the NNGP estimate is the readout's weight block of the same contraction
    top = j[:, -(9 + 1) :]  # d out / d (W^L, b^L): sqrt(wv/n) f(h^L) and sqrt(bv)
    torch.testing.assert_close(k_emp, top @ top.T, rtol=1e-12, atol=1e-12)


def test_monte_carlo_nngp_is_unbiased_for_one_hidden_layer():
    """E[wv f(h) f(h')^T / n + bv] = K^1 exactly for one hidden layer: the mean over 300
    networks of width 32 lies within 4.5 standard errors of the closed form, every entry."""
    x = _inputs(4, 5, seed=2)
    gen = torch.Generator().manual_seed(3)
    draws = [empirical_kernels(random_network([5, 32, 1], gen), x, "elu", WV, BV)[0].numpy()
             for _ in range(300)]  # fmt: skip
    draws = np.stack(draws)
    se = draws.std(axis=0, ddof=1) / math.sqrt(len(draws))
    z = np.abs(draws.mean(axis=0) - nngp(x.numpy(), depth=1, weight_var=WV, bias_var=BV)) / se
    assert z.max() < 4.5  # 10 distinct entries: P(max |z| > 4.5) ~ 7e-5
    # and it is biased (by O(1/n)) only from two hidden layers on: not tested here


def test_empirical_ntk_of_a_wide_one_hidden_layer_net_matches_the_analytic_one():
    """Theta_n = K0 * wv/n sum_i v_i^2 f'(h_i) f'(h_i') + wv/n sum_i f(h_i) f(h_i') + bv is a
    mean over n i.i.d. units; at n = 2^14 it is within 6 of its measured standard errors of
    ntk(depth=1) at every entry (the error itself is ~1% of the entries, a CLT scale)."""
    n, x = 1 << 14, _inputs(4, 8, seed=4)
    params = random_network([8, n, 1], torch.Generator().manual_seed(5))
    theta = empirical_kernels(params, x, "elu", WV, BV)[1].numpy()
    exact = ntk(x.numpy(), depth=1, weight_var=WV, bias_var=BV)
    (w0, b0), (v, _) = params
    h = math.sqrt(WV) * x @ w0.T / math.sqrt(8) + math.sqrt(BV) * b0
    fh = torch.nn.functional.elu(h)
    dh = torch.where(h > 0, torch.ones_like(h), torch.exp(h))
    k0 = WV * x @ x.T / 8 + BV
    units = WV * (k0[:, :, None] * (v[0] ** 2 * dh)[:, None, :] * dh[None, :, :]
                  + fh[:, None, :] * fh[None, :, :])  # fmt: skip
    np.testing.assert_allclose(units.mean(-1).numpy() + BV, theta, rtol=1e-12)
    se = units.std(-1).numpy() / math.sqrt(n)
    assert np.all(np.abs(theta - exact) < 6 * se)
    assert np.linalg.norm(theta - exact) / np.linalg.norm(exact) < 0.05


def test_exact_kernels_dispatch_and_kernel_regression():
    x = _inputs(6, 3, seed=6).numpy()
    cfg = Config(weight_var=WV, bias_var=BV, gh_nodes=48)
    k, t = exact_kernels(cfg, "elu", x, None, 2)
    np.testing.assert_array_equal(k, nngp(x, depth=2, weight_var=WV, bias_var=BV))
    np.testing.assert_array_equal(t, ntk(x, depth=2, weight_var=WV, bias_var=BV))
    kg, tg = exact_kernels(cfg, "gelu", x, x[:2], 1)  # quadrature, rectangular
    assert kg.shape == tg.shape == (6, 2) and np.all(np.diag(kg[:2]) > 0)
    # a kernel that separates the classes perfectly: accuracy 1; the labels reversed: 0
    y = np.array([0, 1, 2, 0, 1, 2])
    same = (y[:, None] == y[None, :]).astype(float) + 0.1
    assert kernel_accuracy(same, same, y, y, 1e-3) == 1.0
    assert kernel_accuracy(same, same, y, (y + 1) % 3, 1e-3) == 0.0


def test_predicted_trainability_cells():
    """ELU at bias_var 0.05: ratio 0.5 has xi_c = 2.08 (6 xi_c = 12.5); the edge, xi_c = inf."""
    cfg = Config(eoc_ratios=(0.5, 1.0), eoc_depths=(4, 16, 32), boundary=6.0, band=2.0)
    got = predicted(cfg)
    xi = got[0.5, 4][1]
    assert xi == pytest.approx(2.08, abs=0.01)
    assert [got[0.5, d][2] for d in (4, 16, 32)] == ["trainable", "boundary", "untrainable"]
    assert all(got[1.0, d][2] == "trainable" and math.isinf(got[1.0, d][1]) for d in (4, 16, 32))
    assert got[1.0, 4][0] == pytest.approx(2 * got[0.5, 4][0], rel=1e-15)


CFG = Config(widths=(64, 4096), eoc_ratios=(0.5, 1.0), eoc_depths=(4, 16, 32))


def _fakes(n=5, slope=-0.5, ntk_err=0.02, gap=0.0, deep_acc=0.1, jitter=0.01):
    """n seeds of metrics: NNGP slope, NTK error at 4096, kernel accuracy minus the net's,
    accuracy of the ordered nets at depth 32 (predicted untrainable); every other cell 0.8."""
    out = []
    for i in range(n):
        e = jitter * (i - (n - 1) / 2)
        m = {}
        for a in CFG.activations:
            m |= {key("mc", a, "nngp_slope"): slope + e, key("mc", a, "ntk_slope"): -0.5}
            m |= {key("mc", a, 4096, "ntk_err"): ntk_err + e / 10, key("kr", a, "net_acc"): 0.9}
            m |= {key("kr", a, k + "_acc"): 0.9 + gap + e / 5 for k in ("nngp", "ntk")}
        for r, d in itertools.product(CFG.eoc_ratios, CFG.eoc_depths):
            m[key("eoc", r, d, "acc")] = (deep_acc if (r, d) == (0.5, 32) else 0.8) + e
        out.append(RunResult(metrics=m))
    return out


def _v(results):
    return EluKernels().verdict(CFG, results)[0]


def test_verdict_supported():
    v = _v(_fakes())
    # 5 per activation (2 slope, 1 NTK, 2 regression) + 5 depth cells (one on the boundary)
    assert v.status == "supported" and len(v.checks) == 20
    assert all(c.confidence == pytest.approx(1 - 0.05 / 20) for c in v.checks)
    assert v.effect == pytest.approx(-0.5) and v.ci_low < -0.5 < v.ci_high
    assert "By part: elu supported; relu supported; gelu supported; depth supported" in v.summary
    assert "untrainable: 6 xi_c = 12.5" in v.summary


def test_verdict_mixed_when_a_part_fails():
    slow = _v(_fakes(slope=-0.3))  # error falls slower than n^-1/2: slope + 1/2 above 0.1
    assert slow.status == "mixed" and "elu mixed" in slow.summary
    gap = _v(_fakes(gap=-0.08))  # kernels 8 points below the nets: the regression checks fail
    assert gap.status == "mixed" and "regression - net accuracy -0.08" in gap.summary
    deep = _v(_fakes(deep_acc=0.7))  # the predicted-untrainable cell trains
    assert deep.status == "mixed" and "depth mixed" in deep.summary
    big = _v(_fakes(ntk_err=0.3))
    assert big.status == "mixed" and "NTK error at width 4096 0.3" in big.summary


def test_verdict_inconclusive():
    two = _v(_fakes(n=2, jitter=0.2))  # 2 seeds, a 99.75% t-interval: nothing decided
    assert two.status == "inconclusive"
    assert EluKernels().verdict(CFG, [])[0].status == "inconclusive"
