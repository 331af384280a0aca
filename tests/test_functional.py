"""Tests for elulab.functional: torch-identical values, closed-form derivatives against
float64 autograd and mpmath, inverse and log-det properties, input validation."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

import elulab.functional as ef
from elulab.functional import (
    ACTIVATION_NAMES,
    SELU_ALPHA,
    SELU_LAMBDA,
    celu,
    celu_derivative,
    check_alpha,
    elu,
    elu_derivative,
    elu_inverse,
    elu_log_abs_det_jacobian,
    selu,
    selu_derivative,
)

EPS64 = torch.finfo(torch.float64).eps  # 2.22e-16
TINY = 2.0**-1074  # the smallest subnormal float64: the absolute rounding below 2.2e-308
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
ALPHAS = [0.1, 0.7, 1.0, 1.5, 4.0]
# Points for derivative checks: exactly 0 and -0, tiny, moderate and large |x| (exp(-700)
# is still a normal float64, so the negative branch is non-zero there).
POINTS = [-700.0, -50.0, -20.0, -3.0, -1.0, -1e-8, -0.0, 0.0, 1e-8, 0.5, 3.0, 50.0, 1e4]


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bit patterns, so that equality also sees -0.0 and NaN payloads."""
    itype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(itype)


def _inputs(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    body = torch.randn(4096, generator=g, dtype=torch.float64) * 6
    body[0] = -math.inf
    special = torch.tensor(
        [0.0, -0.0, 1e-30, -1e-30, -1e-5, 1e-5, 60.0, -60.0, -1e4, 1e4, math.inf, math.nan]
    )
    return torch.cat([body, special.double()]).to(dtype)


def _autograd_derivatives(f, x: torch.Tensor, max_order: int) -> list[torch.Tensor]:
    """d^n/dx^n of an elementwise f by nested autograd (create_graph at every level)."""
    x = x.detach().clone().requires_grad_(True)
    out, value = [], f(x)
    for _ in range(max_order):
        (value,) = torch.autograd.grad(value.sum(), x, create_graph=True)
        out.append(value.detach())
    return out


# ---------------------------------------------------------------------------
# forward values: bitwise equal to torch
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_elu_celu_bitwise_equal_torch(dtype: torch.dtype, alpha: float) -> None:
    x = _inputs(dtype)
    assert torch.equal(_bits(elu(x, alpha)), _bits(F.elu(x, alpha)))
    assert torch.equal(_bits(celu(x, alpha)), _bits(F.celu(x, alpha)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_selu_bitwise_equal_torch(dtype: torch.dtype) -> None:
    x = _inputs(dtype)
    assert torch.equal(_bits(selu(x)), _bits(F.selu(x)))
    assert torch.equal(_bits(elu(x)), _bits(F.elu(x)))  # default alpha
    assert torch.equal(_bits(celu(x)), _bits(F.celu(x)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["elu", "celu", "selu"])
def test_inplace_matches_torch_and_overwrites(dtype: torch.dtype, name: str) -> None:
    ours = {"elu": lambda t: elu(t, 0.7, inplace=True), "celu": lambda t: celu(t, 0.7, True)}
    ours["selu"] = lambda t: selu(t, inplace=True)
    ref = {"elu": lambda t: F.elu(t, 0.7, True), "celu": lambda t: F.celu(t, 0.7, True)}
    ref["selu"] = lambda t: F.selu(t, True)
    x = _inputs(dtype)
    a, b = x.clone(), x.clone()
    out = ours[name](a)
    assert out.data_ptr() == a.data_ptr()
    assert torch.equal(_bits(a), _bits(ref[name](b)))


def test_selu_constants_are_torchs() -> None:
    x = torch.tensor([1.0, -math.inf], dtype=torch.float64)
    # SELU(1) = lambda and SELU(-inf) = -lambda * alpha, exactly, in float64.
    assert F.selu(x).tolist() == [SELU_LAMBDA, -SELU_LAMBDA * SELU_ALPHA]
    assert mpmath.mpf(SELU_LAMBDA) == mpmath.mpf("1.0507009873554804934193349852946")
    assert mpmath.mpf(SELU_ALPHA) == mpmath.mpf("1.6732632423543772848170429916717")


@pytest.mark.parametrize("alpha", ALPHAS)
def test_forward_float64_against_mpmath(alpha: float) -> None:
    xs = [-30.0, -2.5, -1.0, -1e-3, -1e-12, 0.0, 2.0]
    x = torch.tensor(xs, dtype=torch.float64)
    got = {"elu": elu(x, alpha), "celu": celu(x, alpha), "selu": selu(x)}
    for i, v in enumerate(xs):
        v = mpmath.mpf(v)
        exact = {
            "elu": v if v > 0 else alpha * mpmath.expm1(v),
            "celu": v if v > 0 else alpha * mpmath.expm1(v / alpha),
            "selu": SELU_LAMBDA * (v if v > 0 else SELU_ALPHA * mpmath.expm1(v)),
        }
        for name, ref in exact.items():
            # torch uses expm1 (not exp - 1), so the relative error stays at a few ulp
            # even for tiny |x|; 8 eps covers expm1 (1 ulp) and two products.
            assert abs(got[name][i].item() - ref) <= 8 * EPS64 * abs(ref), (name, v)


# ---------------------------------------------------------------------------
# closed-form derivatives against float64 autograd and mpmath
# ---------------------------------------------------------------------------


# Closed form alpha * exp(x) vs torch's grad * 1 * alpha * exp(x * 1): both are one exp
# (<= 1 ulp, possibly different code paths) and one or two products, so 4 eps relative.
# CELU has one more product and a division (x / alpha vs x * (1/alpha), the latter
# amplified by |x / alpha| in exp), hence the extra |x / alpha| term.
def _assert_close_rel(got: torch.Tensor, ref: torch.Tensor, rtol: torch.Tensor) -> None:
    both_nan = torch.isnan(got) & torch.isnan(ref)
    err = (got - ref).abs()
    ok = (err <= rtol * ref.abs()) | both_nan | (got == ref)
    assert bool(ok.all()), f"got {got[~ok]}, expected {ref[~ok]}"


@pytest.mark.parametrize("alpha", ALPHAS)
def test_elu_derivatives_match_autograd(alpha: float) -> None:
    x = torch.tensor([*POINTS, math.nan], dtype=torch.float64)
    ref = _autograd_derivatives(lambda t: F.elu(t, alpha), x, 4)
    ours_ref = _autograd_derivatives(lambda t: elu(t, alpha), x, 4)
    for n in range(1, 5):
        got = elu_derivative(x, alpha, order=n)
        _assert_close_rel(got, ref[n - 1], torch.tensor(4 * EPS64))
        assert torch.equal(ours_ref[n - 1].nan_to_num(), ref[n - 1].nan_to_num())


@pytest.mark.parametrize("alpha", ALPHAS)
def test_celu_derivatives_match_autograd(alpha: float) -> None:
    x = torch.tensor([*POINTS, math.nan], dtype=torch.float64)
    ref = _autograd_derivatives(lambda t: celu(t, alpha), x, 4)
    rtol = 8 * EPS64 * (1 + x.abs().clamp(max=1e4) / alpha)
    for n in range(1, 5):
        _assert_close_rel(celu_derivative(x, alpha, order=n), ref[n - 1], rtol)


def test_selu_derivatives_match_autograd() -> None:
    x = torch.tensor([*POINTS, math.nan], dtype=torch.float64)
    ref = _autograd_derivatives(F.selu, x, 4)
    for n in range(1, 5):
        _assert_close_rel(selu_derivative(x, order=n), ref[n - 1], torch.tensor(4 * EPS64))


@pytest.mark.parametrize("alpha", [0.7, 1.0, 2.0])
def test_convention_at_zero_equals_torch(alpha: float) -> None:
    zero = torch.tensor([0.0, -0.0], dtype=torch.float64)
    # order 1 takes the x <= 0 branch, orders >= 2 the x < 0 branch (torch's masks).
    assert elu_derivative(zero, alpha, 1).tolist() == [alpha, alpha]
    assert selu_derivative(zero, 1).tolist() == [SELU_LAMBDA * SELU_ALPHA] * 2
    assert celu_derivative(zero, alpha, 1).tolist() == [1.0, 1.0]
    for n in (2, 3):
        assert elu_derivative(zero, alpha, n).tolist() == [0.0, 0.0]
        assert celu_derivative(zero, alpha, n).tolist() == [0.0, 0.0]
        assert selu_derivative(zero, n).tolist() == [0.0, 0.0]
    ref = _autograd_derivatives(lambda t: F.elu(t, alpha), zero, 3)
    assert [r.tolist() for r in ref] == [[alpha, alpha], [0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("alpha", [0.3, 0.7, 1.0, 2.5])
def test_derivatives_against_mpmath_numerical_differentiation(alpha: float) -> None:
    # mpmath.diff differentiates the smooth negative branch numerically at 40 digits: a
    # reference independent of both the closed form and autograd (x < 0 off the kink).
    # The constant -alpha of the branch is dropped: it does not change derivatives of
    # order >= 1, and alpha (e^t - 1) would round to -alpha at 40 digits for t << 0.
    mpmath.mp.dps = 40
    xs = [-40.0, -3.0, -0.4, -1e-3]
    x = torch.tensor(xs, dtype=torch.float64)
    for n in (1, 2, 3):
        e, c = elu_derivative(x, alpha, n), celu_derivative(x, alpha, n)
        s = selu_derivative(x, n)
        for i, v in enumerate(xs):
            v = mpmath.mpf(v)
            ref_e = mpmath.diff(lambda t: alpha * mpmath.exp(t), v, n)
            ref_c = mpmath.diff(lambda t: alpha * mpmath.exp(t / alpha), v, n)
            ref_s = mpmath.diff(lambda t: SELU_LAMBDA * SELU_ALPHA * mpmath.exp(t), v, n)
            # one exp (1 ulp) and up to two products, with exp's argument error
            # |x/alpha| * eps amplified into a relative error of the same size.
            tol = 8 * EPS64 * (1 + abs(v) / alpha)
            assert abs(e[i].item() - ref_e) <= tol * abs(ref_e)
            assert abs(c[i].item() - ref_c) <= tol * abs(ref_c)
            assert abs(s[i].item() - ref_s) <= tol * abs(ref_s)


@pytest.mark.parametrize("alpha", [0.1, 0.7, 1.5])
def test_celu_gradient_is_float64_exact(alpha: float) -> None:
    # torch.celu's backward rounds 1/alpha to float32 (relative error ~1e-8 for these
    # alphas); elulab's celu keeps it in float64, so autograd agrees with mpmath to
    # a few ulp.
    mpmath.mp.dps = 40
    xs = [-3.0, -0.5, -1e-6, 0.0]
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(celu(x, alpha).sum(), x)
    for i, v in enumerate(xs):
        ref = mpmath.exp(mpmath.mpf(v) / alpha)
        assert abs(g[i].item() - ref) <= 8 * EPS64 * (1 + abs(v) / alpha) * ref


def test_order_zero_is_the_function() -> None:
    x = _inputs(torch.float64)
    assert torch.equal(_bits(elu_derivative(x, 0.7, 0)), _bits(elu(x, 0.7)))
    assert torch.equal(_bits(celu_derivative(x, 0.7, 0)), _bits(celu(x, 0.7)))
    assert torch.equal(_bits(selu_derivative(x, 0)), _bits(selu(x)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_derivatives_keep_dtype_and_shape(dtype: torch.dtype) -> None:
    x = torch.linspace(-3, 3, 24, dtype=dtype).reshape(2, 3, 4)
    for out in (elu_derivative(x, 0.5, 2), celu_derivative(x, 2.0, 3), selu_derivative(x)):
        assert out.dtype == dtype and out.shape == x.shape
    ref = elu_derivative(x.double(), 0.5, 1)
    # low-precision results are the float64 ones rounded (one exp, one product, in dtype)
    tol = 4 * torch.finfo(dtype).eps
    torch.testing.assert_close(elu_derivative(x, 0.5, 1).double(), ref, rtol=tol, atol=0)


def test_closed_forms_are_differentiable_without_nan() -> None:
    # The unused branch of where() must not overflow: exp(1e4) = inf would give 0 * inf.
    x = torch.tensor([-5.0, 0.5, 1e4], dtype=torch.float64, requires_grad=True)
    total = elu_derivative(x, 0.5) + celu_derivative(x, 0.5) + selu_derivative(x)
    (g,) = torch.autograd.grad(total.sum(), x)
    assert torch.isfinite(g).all()
    expected = elu_derivative(x, 0.5, 2) + celu_derivative(x, 0.5, 2) + selu_derivative(x, 2)
    torch.testing.assert_close(g, expected, rtol=8 * EPS64, atol=0)


# ---------------------------------------------------------------------------
# autograd: gradcheck, gradgradcheck, double backward
# ---------------------------------------------------------------------------


def _away_from_kink(n: int, seed: int) -> torch.Tensor:
    # finite differences (eps 1e-6) straddling the kink at 0 are not derivatives there
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3
    x = torch.where(x.abs() < 1e-3, x.sign() * 1e-3 + x, x)
    return x.requires_grad_(True)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.5])
def test_gradcheck_and_gradgradcheck(alpha: float) -> None:
    x = _away_from_kink(20, seed=1)
    for f in (lambda t: elu(t, alpha), lambda t: celu(t, alpha), selu):
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))
    # the inverse on y = elu(x) with x in [-3, 3]: closer to -alpha its slope 1/(y + alpha)
    # is too steep for finite differences with step 1e-6
    y = elu(x.detach().clamp(-3, 3), alpha).requires_grad_(True)
    assert gradcheck(lambda t: elu_inverse(t, alpha), (y,))
    assert gradgradcheck(lambda t: elu_inverse(t, alpha), (y,))
    assert gradcheck(lambda t: elu_log_abs_det_jacobian(t, alpha), (x,))


@pytest.mark.parametrize("name", ["elu", "celu", "selu"])
def test_double_backward_like_a_gradient_penalty(name: str) -> None:
    # loss = sum(f'(x)^2) through create_graph=True, then backward: the gradient is
    # 2 f'(x) f''(x), to be compared with the closed forms.
    alpha = 0.7
    f = {"elu": lambda t: elu(t, alpha), "celu": lambda t: celu(t, alpha), "selu": selu}[name]
    d = {
        "elu": lambda t, n: elu_derivative(t, alpha, n),
        "celu": lambda t, n: celu_derivative(t, alpha, n),
        "selu": lambda t, n: selu_derivative(t, n),
    }[name]
    x = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    expected = 2 * d(x.detach(), 1) * d(x.detach(), 2)
    rtol = 16 * EPS64 * (1 + x.detach().abs().clamp(max=1e4) / alpha)
    _assert_close_rel(x.grad, expected, rtol)


@pytest.mark.parametrize("name", ["elu", "celu", "selu"])
def test_same_autograd_graph_as_torch(name: str) -> None:
    # The speed claim "double backward costs what torch's F.elu double backward costs"
    # rests on running the same autograd nodes (timings: benchmarks/bench_ops.py).
    # torch.celu records CeluBackward0, which runs the same aten::elu_backward kernel.
    ours = {"elu": lambda t: elu(t, 0.7), "celu": lambda t: celu(t, 0.7), "selu": selu}[name]
    theirs = {"elu": lambda t: F.elu(t, 0.7), "celu": lambda t: F.celu(t, 0.7)}
    theirs["selu"] = F.selu
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    names = []
    for f in (ours, theirs[name]):
        y = f(x)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        names.append((y.grad_fn.name(), g.grad_fn.name()))
    assert names[0] == ("EluBackward0", "EluBackwardBackward0")
    assert names[1][1] == "EluBackwardBackward0"
    assert names[1][0] == ("CeluBackward0" if name == "celu" else "EluBackward0")


# ---------------------------------------------------------------------------
# inverse and log-det
# ---------------------------------------------------------------------------

_alphas = st.floats(min_value=0.05, max_value=20.0)


@settings(max_examples=300, deadline=None)
@given(x=st.floats(min_value=-745.0, max_value=1e6, allow_nan=False), alpha=_alphas)
def test_inverse_round_trip_from_x(x: float, alpha: float) -> None:
    xt = torch.tensor([x], dtype=torch.float64)
    y = elu(xt, alpha)
    assume(y.item() > -alpha)  # elu saturates to exactly -alpha for x < ~ -37
    back = elu_inverse(y, alpha).item()
    # y carries <= 1 ulp of rounding, which the inverse amplifies by 1 / f'(x); the
    # inverse itself adds a few ulp of x.
    slope = 1.0 if x > 0 else alpha * math.exp(x)
    # subnormal numbers (|v| < 2.2e-308) carry an absolute rounding of 2**-1074 instead
    tol = 4 * EPS64 * (abs(y.item()) / slope + abs(x)) + 4 * TINY * (1 + 1 / slope)
    assert abs(back - x) <= tol


@settings(max_examples=300, deadline=None)
@given(u=st.floats(min_value=0.0, max_value=1.0, exclude_min=True), alpha=_alphas)
def test_inverse_round_trip_from_y_on_the_negative_branch(u: float, alpha: float) -> None:
    y = -alpha * u  # (-alpha, 0), including values a few ulp above -alpha
    yt = torch.tensor([y], dtype=torch.float64)
    assume(yt.item() > -alpha)
    x = elu_inverse(yt, alpha)
    assert torch.isfinite(x).all()
    # the inverse is accurate to a few ulp of x, which elu turns into alpha e^x |x| eps
    # (below 2.2e-308, y / alpha rounds to an absolute 2**-1074, which elu scales by alpha)
    tol = 4 * EPS64 * (abs(y) + alpha * math.exp(x.item()) * abs(x.item()))
    tol += 4 * TINY * (1 + alpha)
    assert abs(elu(x, alpha).item() - y) <= tol


@settings(max_examples=100, deadline=None)
@given(y=st.floats(min_value=0.0, max_value=1e300), alpha=_alphas)
def test_inverse_is_identity_on_positive_branch(y: float, alpha: float) -> None:
    yt = torch.tensor([y], dtype=torch.float64)
    assert elu_inverse(yt, alpha).item() == y


@pytest.mark.parametrize("alpha", [0.1, 1.0, 3.0])
def test_inverse_precise_near_minus_alpha_and_zero(alpha: float) -> None:
    mpmath.mp.dps = 50
    a = torch.tensor(alpha, dtype=torch.float64).item()
    ys = [-a + a * 2.0**-k for k in (1, 2, 10, 30, 52)] + [-a * 2.0**-k for k in (1, 20, 60, 900)]
    got = elu_inverse(torch.tensor(ys, dtype=torch.float64), alpha)
    for y, g in zip(ys, got.tolist(), strict=True):
        ref = mpmath.log1p(mpmath.mpf(y) / mpmath.mpf(alpha))
        # one division/addition (exact or 0.5 ulp) and one log: 4 eps relative
        assert abs(g - ref) <= 4 * EPS64 * abs(ref), y


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_inverse_low_precision(dtype: torch.dtype) -> None:
    x = torch.linspace(-3, 3, 61, dtype=dtype)
    y = elu(x, 1.0)
    back = elu_inverse(y, 1.0)
    assert back.dtype == dtype
    ref = elu_inverse(y.double(), 1.0)
    # computed in float32 and rounded once to dtype: within one ulp of the dtype
    torch.testing.assert_close(back.double(), ref, rtol=torch.finfo(dtype).eps, atol=0)


@settings(max_examples=100, deadline=None)
@given(
    xs=st.lists(st.floats(min_value=-700.0, max_value=700.0), min_size=1, max_size=6),
    alpha=_alphas,
)
def test_log_abs_det_jacobian_against_autograd_jacobian(xs: list[float], alpha: float) -> None:
    x = torch.tensor(xs, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: elu(t, alpha), x)
    diag = torch.diagonal(jac)
    assume(bool((diag > 0).all()))  # alpha e^x underflows to 0 only below ~ -745
    assert torch.equal(jac, torch.diag(diag))  # elementwise: the Jacobian is diagonal
    got = elu_log_abs_det_jacobian(x, alpha)
    # log of the autograd diagonal (a few ulp) vs log(alpha) + x (rounding of the sum)
    tol = 4 * EPS64 * (1 + x.abs() + abs(math.log(alpha)))
    assert bool(((got - diag.log()).abs() <= tol).all())
    _sign, logabsdet = torch.linalg.slogdet(jac)
    assert abs(got.sum().item() - logabsdet.item()) <= tol.sum().item() * 2


def test_log_abs_det_jacobian_exact_where_the_derivative_underflows() -> None:
    x = torch.tensor([-1e4, -800.0, 0.0, 5.0], dtype=torch.float64)
    got = elu_log_abs_det_jacobian(x, 2.0)
    assert got.tolist() == [-1e4 + math.log(2.0), -800.0 + math.log(2.0), math.log(2.0), 0.0]
    assert torch.isfinite(got).all()


def test_log_abs_det_equals_log_of_derivative() -> None:
    x = _inputs(torch.float64)
    x = x[torch.isfinite(x) & (x > -700)]
    ld = elu_log_abs_det_jacobian(x, 0.7)
    torch.testing.assert_close(ld, elu_derivative(x, 0.7).log(), rtol=4 * EPS64, atol=1e-15)


@pytest.mark.parametrize("alpha", [1.0, 0.7, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inverse_domain_errors(alpha: float, dtype: torch.dtype) -> None:
    bad_values = [-alpha, -alpha - 1.0, -math.inf, math.nan, -1e30]
    for bad in bad_values:
        y = torch.tensor([0.5, bad, -0.01], dtype=dtype)
        with pytest.raises(ValueError, match=r"\(-alpha, inf\)") as info:
            elu_inverse(y, alpha)
        assert "1 of 3" in str(info.value)
    y = torch.tensor([math.nan, -alpha, 0.0, math.nan], dtype=dtype)
    with pytest.raises(ValueError, match=r"3 of 4 do not \(2 NaN\)"):
        elu_inverse(y, alpha)


def test_inverse_gradient_finite_next_to_the_boundary() -> None:
    y = torch.tensor([-1.0 + EPS64, -0.5, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(elu_inverse(y).sum(), y)
    assert torch.isfinite(g).all()
    # d/dy ELU^{-1}(y) = 1 / (y + alpha) on the negative branch; y + 1 is exact here
    expected = torch.where(y > 0, 1.0, 1 / (y.detach() + 1))
    torch.testing.assert_close(g, expected, rtol=4 * EPS64, atol=0)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

ALPHA_USERS = {
    "elu": lambda a: elu(torch.zeros(2), a),
    "celu": lambda a: celu(torch.zeros(2), a),
    "elu_derivative": lambda a: elu_derivative(torch.zeros(2), a),
    "celu_derivative": lambda a: celu_derivative(torch.zeros(2), a),
    "elu_inverse": lambda a: elu_inverse(torch.zeros(2), a),
    "elu_log_abs_det_jacobian": lambda a: elu_log_abs_det_jacobian(torch.zeros(2), a),
}


@pytest.mark.parametrize("user", sorted(ALPHA_USERS))
@pytest.mark.parametrize("alpha", [0.0, -0.0, -1.0, math.inf, -math.inf, math.nan])
def test_bad_alpha_value(user: str, alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        ALPHA_USERS[user](alpha)


@pytest.mark.parametrize("user", sorted(ALPHA_USERS))
@pytest.mark.parametrize("alpha", [True, "1.0", None, 1j, torch.tensor(1.0), [1.0]], ids=repr)
def test_bad_alpha_type(user: str, alpha: object) -> None:
    with pytest.raises(TypeError, match="alpha must be a real number"):
        ALPHA_USERS[user](alpha)


def test_check_alpha_accepts_reals_and_names_the_parameter() -> None:
    assert check_alpha(2) == 2.0 and isinstance(check_alpha(2), float)
    assert check_alpha(np.float32(0.5)) == 0.5
    assert check_alpha(1e-300) == 1e-300
    with pytest.raises(ValueError, match=r"^scale must be"):
        check_alpha(-2.0, name="scale")


@pytest.mark.parametrize(
    "call",
    [
        lambda: elu(torch.arange(3)),
        lambda: celu(torch.arange(3)),
        lambda: selu(torch.zeros(2, dtype=torch.complex64)),
        lambda: elu([1.0, 2.0]),
        lambda: elu_inverse(torch.arange(3)),
        lambda: elu_derivative(1.0),
        lambda: elu(torch.zeros(2), inplace=1),
        lambda: elu_derivative(torch.zeros(2), order=1.0),
        lambda: selu_derivative(torch.zeros(2), order=True),
    ],
)
def test_bad_input_types(call) -> None:
    with pytest.raises(TypeError):
        call()


def test_negative_order() -> None:
    with pytest.raises(ValueError, match="order must be an int >= 0"):
        celu_derivative(torch.zeros(2), order=-1)


# ---------------------------------------------------------------------------
# the activation table
# ---------------------------------------------------------------------------


def test_activation_table_names_and_lookup() -> None:
    expected = ("relu", "leaky_relu", "elu", "celu", "selu", "gelu", "silu", "mish", "tanh")
    assert ACTIVATION_NAMES == (*expected, "sigmoid", "softplus", "sin", "smooth_elu")
    x = _inputs(torch.float64)
    assert torch.equal(_bits(ef.activation_function(" Leaky-ReLU ")(x)), _bits(F.leaky_relu(x)))
    assert ef.activation_function("CELU") is celu
    for name in ACTIVATION_NAMES:
        spec = ef.activation_spec(name.upper().replace("_", "-"))
        assert spec.name == name and callable(spec.function) and spec.module
    with pytest.raises(ValueError, match="allowed: relu, leaky_relu, elu"):
        ef.activation_function("swish")
    with pytest.raises(TypeError, match="must be a str"):
        ef.activation_function(None)


# the registry's closed-form f' against float64 autograd of f, with non-default parameters
DERIVATIVE_PARAMS = {
    "leaky_relu": {"negative_slope": 0.2},
    "elu": {"alpha": 0.7},
    "celu": {"alpha": 1.5},
    "softplus": {"beta": 2.0, "threshold": 10.0},
    "smooth_elu": {"width": 0.6},
}


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("defaults", [True, False], ids=["default", "params"])
def test_activation_derivative_equals_autograd(name: str, defaults: bool) -> None:
    params = {} if defaults else DERIVATIVE_PARAMS.get(name, {})
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.tensor(POINTS[1:-1], dtype=torch.float64),  # no exp overflow
                   torch.randn(500, generator=g, dtype=torch.float64) * 6])  # fmt: skip
    xr = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(ef.activation_function(name)(xr, **params).sum(), xr)
    got = ef.activation_derivative(name)(x, **params)
    assert got.dtype == x.dtype and got.shape == x.shape
    # a few ulp of the slope's scale (1): the formulas round differently from autograd's
    torch.testing.assert_close(got, want, rtol=1e-12, atol=16 * EPS64)
    kinks = x.abs() < 1e-300  # 0 and -0: the branch autograd takes, exactly
    assert torch.equal(got[kinks], want[kinks])
    assert ef.activation_derivative(name)(x.float(), **params).dtype == torch.float32
