"""Tests of the RNN gradient probe (elulab.diagnostics: probe_gradient, fit_log_gain,
gain_probe): known truths, an independent autograd reference, the predictions' closed
forms and their guard against values that went wrong."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import erfcx, ndtr

from elulab.diagnostics import GAIN_PREDICTIONS, _rnn, fit_log_gain, gain_probe, probe_gradient
from elulab.diagnostics._rnn import _slope_moments
from elulab.functional import activation_function
from elulab.nn import orthogonal

LINEAR = {"activation": "leaky_relu", "negative_slope": 1.0}  # f(x) = x exactly, f' = 1


def _rnn_inputs(seed: int, b: int = 6, t: int = 12, n: int = 16, d: int = 5, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=gen, dtype=torch.float64)
    u = torch.randn(n, d, generator=gen, dtype=torch.float64) * scale / math.sqrt(d)
    q = orthogonal(n, gen)
    return x, q, u, gen


@pytest.mark.parametrize("g", [0.7, 1.0, 1.3])
def test_linear_gain_is_the_spectral_norm(g: float) -> None:
    # Known truth: with f' = 1 and W = g Q (Q orthogonal), ||W^T u|| = g ||u|| exactly,
    # so every step multiplies the norm by g; float64 rounding over 12 steps ~1e-15.
    x, q, u, gen = _rnn_inputs(0)
    log_norms, _ = probe_gradient(x, g * q, u, generator=gen, **LINEAR)
    expected = np.broadcast_to(np.log(g) * np.arange(13.0), log_norms.shape)
    np.testing.assert_allclose(log_norms, expected, rtol=0, atol=1e-12)
    assert fit_log_gain(log_norms.mean(0)) == pytest.approx(math.log(g), abs=1e-12)


def test_linear_predictions_are_exact() -> None:
    # f' = 1: every prediction is g, exactly (the constant-slope path, no quadrature)
    x, q, u, gen = _rnn_inputs(4)
    p = gain_probe(x, 1.3 * q, u, generator=gen, **LINEAR)
    assert p.norm == pytest.approx(1.3, rel=1e-14)  # the spectral norm of W, measured
    for kind, _ in GAIN_PREDICTIONS:
        assert math.exp(p.predicted[kind]) == pytest.approx(1.3, rel=1e-13), kind
    assert p.gain == pytest.approx(1.3, rel=1e-12)


def test_tanh_at_tiny_inputs_has_gain_g() -> None:
    # tanh'(z) = 1 - z^2 + O(z^4): with |z| ~ 1e-4 the slope is 1 to ~1e-8, so the measured
    # gain must be g to within 1e-6 (the state stays tiny because g < 1).
    x, q, u, gen = _rnn_inputs(1, scale=1e-4)
    log_norms, zs = probe_gradient(x, 0.9 * q, u, "tanh", generator=gen)
    assert float(zs.abs().max()) < 1e-3
    assert math.exp(fit_log_gain(log_norms.mean(0))) == pytest.approx(0.9, rel=1e-6)


@pytest.mark.parametrize(
    "act, params", [("relu", {}), ("tanh", {}), ("elu", {"alpha": 0.7}), ("selu", {})]
)
def test_probe_matches_autograd(act: str, params: dict[str, float]) -> None:
    # The hand-written backward recursion must equal the vector-Jacobian product of
    # torch autograd, v^T dh_T / dh_{T-k}, for every lag k (float64, ~1e-13 relative).
    x, q, u, _ = _rnn_inputs(2, b=3, t=7, n=10)
    w, b = 1.3 * q, torch.linspace(-0.5, 0.5, 10, dtype=torch.float64)
    f = activation_function(act)
    log_norms, zs = probe_gradient(
        x, w, u, act, generator=torch.Generator().manual_seed(5), bias=b, **params
    )
    v = torch.randn(3, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    hs = [torch.zeros(3, 10, dtype=torch.float64, requires_grad=True)]
    for t in range(7):
        hs.append(f(hs[-1] @ w.T + x[:, t] @ u.T + b, **params))
    grads = torch.autograd.grad(hs[-1], hs, grad_outputs=v, allow_unused=True)
    for k in range(1, 8):
        ref = torch.log(grads[7 - k].norm(dim=1)).numpy()
        np.testing.assert_allclose(log_norms[:, k], ref, rtol=1e-10, atol=1e-12)
    assert zs.shape == (7, 3, 10) and torch.equal(zs[0], x[:, 0] @ u.T + b)


def test_fit_log_gain_recovers_slope_with_offset_and_nan() -> None:
    y = 0.3 - 0.25 * np.arange(20.0)
    assert fit_log_gain(y) == pytest.approx(-0.25, abs=1e-12)
    assert math.isnan(fit_log_gain(np.array([0.0, -1.0, -np.inf])))
    with pytest.raises(ValueError, match="1-d curve of >= 2 lags"):
        fit_log_gain(np.zeros((2, 3)))


def test_gain_probe_predictions_under_n01() -> None:
    # the N(0,1) kinds are constants per step: g E[f'] and g sqrt(E[f'^2]) of the claim
    x, q, u, gen = _rnn_inputs(3)
    elu_slope = 0.5 + math.exp(0.5) * stats.norm.cdf(-1.0)
    elu_sq = 0.5 + math.exp(2.0) * stats.norm.cdf(-2.0)  # E[e^{2z} 1{z<0}] = e^2 Phi(-2)
    for act, s, sq in (("relu", 0.5, 0.5), ("elu", elu_slope, elu_sq)):
        p = gain_probe(x, 1.2 * q, u, act, norm=1.2, generator=gen)
        assert math.exp(p.predicted["slope_n01"]) == pytest.approx(1.2 * s, rel=1e-12)
        assert math.exp(p.predicted["rms_n01"]) == pytest.approx(1.2 * math.sqrt(sq), rel=1e-12)
        nums = p.summary()
        assert nums["measured_gain"] == p.gain
        for kind, _ in GAIN_PREDICTIONS:
            assert nums[f"logratio_{kind}"] == p.measured - p.predicted[kind]
            assert p.curves[kind].shape == p.curve.shape == (13,)


def test_probe_gradient_rejects_bad_shapes() -> None:
    x, q, u, _ = _rnn_inputs(0)
    with pytest.raises(ValueError, match="need x"):
        probe_gradient(x, q, u[:, :3], "relu")


@pytest.mark.parametrize("sigma", [1.0, 30.0, 1e5, 1e9, 2e11, 1e16])
def test_fitted_slopes_are_correct_or_unavailable(sigma: float) -> None:
    # A state that explodes forward gives a huge sigma; the probe must pass on either a
    # correct E[f'] or NaN ("unavailable"), never a wrong number. Reference: the stable form
    # E[f'] = Phi(c) + (1/2) e^{-c^2/2} erfcx((c + s)/sqrt 2), c = mu/s (ELU, alpha = 1),
    # and E[f'^2] with 2s in place of s.
    mu = -0.1 * sigma
    slope, slope_sq = _slope_moments("elu", np.array([mu]), np.array([sigma]), alpha=1.0)
    c = mu / sigma
    ref = ndtr(c) + 0.5 * math.exp(-c * c / 2) * erfcx((c + sigma) / math.sqrt(2))
    ref_sq = ndtr(c) + 0.5 * math.exp(-c * c / 2) * erfcx((c + 2 * sigma) / math.sqrt(2))
    for got, want in ((slope[0], ref), (slope_sq[0], ref_sq)):
        assert math.isnan(got) or got == pytest.approx(want, rel=1e-6)


def test_slope_guard_marks_impossible_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # Any correct (E[f'], E[f'^2]) obeys lo <= E[f'] <= hi and E[f']^2 <= E[f'^2] <= hi^2,
    # [lo, hi] the range of f' (relu: [0, 1]; ELU with alpha = 2: (0, 2]). Wrong values
    # from the closed form (simulated here) must come back as NaN, correct ones unchanged.
    slope = np.array([0.5, 1.5, -0.1, 0.9, 1.5])
    slope_sq = np.array([0.3, 1.0, 0.1, 0.5, 2.5])
    fake = SimpleNamespace(mean_slope=slope, mean_slope_sq=slope_sq)
    monkeypatch.setattr(_rnn, "gaussian_moments", lambda *a, **k: fake)
    s, sq = _slope_moments("relu", np.zeros(5), np.ones(5))
    np.testing.assert_array_equal(s, [0.5, np.nan, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(sq, [0.3, np.nan, np.nan, np.nan, np.nan])
    s, _ = _slope_moments("elu", np.zeros(5), np.ones(5), alpha=2.0)
    np.testing.assert_array_equal(s, [0.5, np.nan, np.nan, np.nan, 1.5])  # 2nd: Jensen
