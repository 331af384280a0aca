"""AdaptiveELU and its alpha rule (elulab.nn._adaptive) against independent references.

* the closed-form alpha against a root-finder: ``scipy.optimize.brentq`` on
  E f'(z)^2 computed by ``scipy.integrate.quad`` (no closed form inside), and against
  30-digit mpmath quadrature; and E f'^2 at the solved alpha by
  :func:`elulab.theory.gaussian_moments` equals the target;
* the gradient with respect to the input equals ELU's derivative at the current alpha
  (float64 autograd of ``torch.nn.functional.elu``), and the Jacobian is diagonal: no
  term flows through the batch statistics;
* running statistics: BatchNorm's update rule, eval mode frozen, state_dict round trip;
* one ValueError per bad argument.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, optimize

from elulab.functional import elu_derivative
from elulab.nn import AdaptiveELU, adaptive_alpha
from elulab.theory import gaussian_moments

# (mean, var, target): centred, shifted both ways, narrow and wide, targets around 1
CASES = [
    (0.0, 1.0, 1.0),
    (0.0, 0.01, 1.0),
    (0.0, 9.0, 1.0),
    (-1.5, 0.5, 1.0),
    (2.0, 1.0, 1.0),
    (0.3, 2.0, 0.8),
    (-0.5, 0.2, 1.7),
    (0.0, 1.0, 3.0),
]


def _slope_sq_quad(alpha: float, m: float, s: float) -> float:
    """E f'(z)^2 by adaptive quadrature of the two sides, f' written out (no closed form)."""
    dens = lambda z: math.exp(-0.5 * ((z - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))  # noqa: E731
    neg, _ = integrate.quad(lambda z: (alpha * math.exp(z)) ** 2 * dens(z), -np.inf, 0.0,
                            epsabs=0, epsrel=1e-13, limit=200)  # fmt: skip
    pos, _ = integrate.quad(dens, 0.0, np.inf, epsabs=0, epsrel=1e-13, limit=200)
    return neg + pos


@pytest.mark.parametrize(("m", "v", "t"), CASES)
def test_alpha_equals_brentq_on_quadrature(m, v, t):
    s = math.sqrt(v)
    ref = optimize.brentq(lambda a: _slope_sq_quad(a, m, s) - t, 1e-6, 1e3, xtol=1e-15, rtol=1e-15)
    got = float(adaptive_alpha(m, v, t))
    assert got == pytest.approx(ref, rel=1e-11)
    # and the closed-form moments of elulab.theory agree that the target is met
    slope_sq = gaussian_moments("elu", m, s, alpha=got).mean_slope_sq
    assert slope_sq == pytest.approx(t, rel=1e-13)


@pytest.mark.parametrize(("m", "v", "t"), CASES[:4])
def test_alpha_against_mpmath(m, v, t):
    """30 digits: alpha^2 = (t - P(z > 0)) / E[e^{2z} 1{z <= 0}], both by mpmath.quad."""
    with mp.workdps(30):
        mm, s = mp.mpf(m), mp.sqrt(mp.mpf(v))
        dens = lambda z: mp.npdf(z, mm, s)  # noqa: E731
        q2 = mp.quad(lambda z: mp.exp(2 * z) * dens(z), [-mp.inf, mm - 10 * s, 0])
        p = mp.quad(dens, [0, mp.inf])
        ref = float(mp.sqrt((t - p) / q2))
    assert float(adaptive_alpha(m, v, t)) == pytest.approx(ref, rel=1e-13)


def test_alpha_limits_and_no_solution():
    # t = 1: alpha^2 = 1 / E[e^{2z} | z <= 0] > 1; as var -> 0 at m = 0, alpha -> 1
    # at m = 0, s = 1e-4: alpha^2 = (1 - 1/2) / (e^{2 s^2} Phi(-2 s)), = 1 + sqrt(2/pi) s + O(s^2)
    s = 1e-4
    exact = math.sqrt(0.5 / (math.exp(2 * s * s) * 0.5 * math.erfc(2 * s / math.sqrt(2))))
    assert float(adaptive_alpha(0.0, s * s)) == pytest.approx(exact, rel=1e-12)
    assert exact - 1 == pytest.approx(math.sqrt(2 / math.pi) * s, rel=1e-3)
    # an input far above 0: z | z <= 0 hugs 0, E[e^{2z} | z <= 0] ~ c / (c + 2)
    assert float(adaptive_alpha(50.0, 1.0)) == pytest.approx(math.sqrt(1 + 2 / 50), rel=2e-3)
    # target below P(z > 0): no alpha reaches it; the rule returns the infimum 0
    assert float(adaptive_alpha(3.0, 1.0, target=0.5)) == 0.0
    a = adaptive_alpha(torch.tensor([0.0, -2.0]), torch.tensor([1.0, 4.0]))
    assert a.dtype == np.float64 and a.shape == (2,)


def test_rule_meets_target_on_gaussian_samples():
    """The layer's own alpha makes the empirical mean of f'(x)^2 equal to the target."""
    gen = torch.Generator().manual_seed(1)
    x = (0.4 + 1.3 * torch.randn(400_000, generator=gen, dtype=torch.float64)).requires_grad_()
    m = AdaptiveELU(momentum=1.0)
    (g,) = torch.autograd.grad(m(x).sum(), x)
    sq = g**2
    # 5 standard errors of the sample mean of f'^2
    assert float(sq.mean()) == pytest.approx(1.0, abs=5 * float(sq.std()) / math.sqrt(x.numel()))


def test_gradient_is_elu_derivative_at_current_alpha():
    x = torch.linspace(-6, 4, 41, dtype=torch.float64).reshape(-1, 1).repeat(1, 3)
    x = (x + 0.01 * torch.randn_like(x)).requires_grad_()
    m = AdaptiveELU(momentum=0.5).double()
    m(x.detach() * 2 - 1)  # move the running statistics off their defaults
    y = m(x)
    alpha = float(m.alpha)
    assert alpha != pytest.approx(float(adaptive_alpha(0.0, 1.0)))
    ref_x = x.detach().clone().requires_grad_()
    w = torch.randn_like(x)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    (g_ref,) = torch.autograd.grad((F.elu(ref_x, alpha=alpha) * w).sum(), ref_x)
    torch.testing.assert_close(y, F.elu(ref_x, alpha=alpha).detach(), rtol=1e-15, atol=0)
    torch.testing.assert_close(g, g_ref, rtol=1e-15, atol=0)
    torch.testing.assert_close(g, w * elu_derivative(x.detach(), alpha), rtol=1e-15, atol=0)


def test_jacobian_is_diagonal_alpha_is_detached():
    """In training mode alpha depends on the batch, but not through autograd."""
    m = AdaptiveELU(momentum=1.0).double()
    x = torch.randn(6, dtype=torch.float64) - 0.5
    jac = torch.autograd.functional.jacobian(m, x)  # each call updates the statistics
    assert m.num_batches_tracked.item() >= 1
    off = jac - torch.diag(torch.diagonal(jac))
    assert torch.count_nonzero(off) == 0
    torch.testing.assert_close(torch.diagonal(jac), elu_derivative(x, float(m.alpha)))
    assert not list(m.parameters()) and not m.alpha.requires_grad


def test_running_statistics_follow_batchnorm_rule():
    m = AdaptiveELU(momentum=0.25)
    a, b = torch.randn(50) + 1.0, 2.0 * torch.randn(30) - 0.5
    m(a)  # the first batch sets the statistics
    assert float(m.running_mean) == pytest.approx(float(a.double().mean()), rel=1e-12)
    assert float(m.running_var) == pytest.approx(float(a.double().var()), rel=1e-12)
    m(b)
    mean = 0.75 * a.double().mean() + 0.25 * b.double().mean()
    var = 0.75 * a.double().var() + 0.25 * b.double().var()
    assert float(m.running_mean) == pytest.approx(float(mean), rel=1e-12)
    assert float(m.running_var) == pytest.approx(float(var), rel=1e-12)
    assert float(m.alpha) == pytest.approx(float(adaptive_alpha(mean, var + m.eps)), rel=1e-12)
    assert int(m.num_batches_tracked) == 2
    # eval mode: nothing moves
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.eval()(torch.randn(10) * 5)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_state_dict_round_trip_and_clip():
    m = AdaptiveELU(momentum=1.0, alpha_max=3.0)
    m(torch.randn(100) - 2.5)  # far below 0: the rule asks for alpha ~ e^2.5, clipped
    assert float(m.alpha) == 3.0
    assert set(m.state_dict()) == {"running_mean", "running_var", "alpha", "num_batches_tracked"}
    fresh = AdaptiveELU(alpha_max=3.0)
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(20)
    torch.testing.assert_close(fresh.eval()(x), m.eval()(x), rtol=0, atol=0)


def test_no_overflow_in_backward_for_large_inputs():
    x = torch.tensor([-200.0, 0.0, 100.0, 1e4], requires_grad=True)
    m = AdaptiveELU()
    (g,) = torch.autograd.grad(m(x).sum(), x)
    assert torch.isfinite(g).all() and g[2:].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"momentum": 0.0}, "momentum must be in (0, 1]"),
        ({"momentum": 1.5}, "momentum must be in (0, 1]"),
        ({"momentum": float("nan")}, "momentum must be finite"),
        ({"target": 0.0}, "target (the mean squared slope E[f'(z)^2]) must be > 0"),
        ({"target": -1.0}, "must be > 0"),
        ({"target": True}, "target must be a real number"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"alpha_min": 2.0, "alpha_max": 1.0}, "0 < alpha_min <= alpha_max"),
    ],
)
def test_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=None) as err:
        AdaptiveELU(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_rule_input_and_single_element():
    for var in (0.0, [1.0, -1.0]):
        with pytest.raises(ValueError, match="var finite and > 0"):
            adaptive_alpha(0.0, var)
    with pytest.raises(ValueError, match="target"):
        adaptive_alpha(0.0, 1.0, target=0.0)
    with pytest.raises(ValueError, match="at least 2 input elements"):
        AdaptiveELU()(torch.tensor([1.0]))


def test_scalar_and_array_paths_agree():
    ms, vs = np.array([-3.0, -0.2, 0.0, 0.7, 4.0]), np.array([0.05, 1.0, 2.5, 0.3, 1.0])
    for t in (0.6, 1.0, 2.0):
        arr = adaptive_alpha(ms, vs, t)
        one = [adaptive_alpha(float(m), float(v), t) for m, v in zip(ms, vs, strict=True)]
        np.testing.assert_allclose(arr, one, rtol=1e-15, atol=0)
