r"""Tensor math for the ELU family: activations, closed-form derivatives, inverse, log-det.

The activations are the exponential linear unit (ELU), its continuously differentiable
variant (CELU) and the scaled ELU (SELU):

.. math::
    \mathrm{ELU}(x; \alpha) = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \le 0 \end{cases}
    \qquad
    \mathrm{CELU}(x; \alpha) = \max(0, x) + \min\big(0, \alpha (e^{x/\alpha} - 1)\big)

.. math::
    \mathrm{SELU}(x) = \lambda \, \mathrm{ELU}(x; \alpha_{01}),
    \quad \lambda \approx 1.0507, \ \alpha_{01} \approx 1.6733 .

Forward values are bitwise identical to :func:`torch.nn.functional.elu`, ``celu`` and
``selu`` in every floating dtype (they run the same ATen kernel). One deliberate
difference: :func:`celu` is routed through ``aten::elu`` with a float64 input scale
``1/alpha``, because the autograd formula of ``torch.celu`` rounds ``1/alpha`` to float32
(``derivatives.yaml``: ``elu_backward(grad, alpha, 1, 1.0/alpha.toFloat(), ...)``), which
makes its float64 gradient wrong by up to ~1e-8 relative for alphas that are not powers
of two. Here the gradient is exact to float64 rounding; the forward values are the same.

Like :mod:`torch.nn.functional`, every tensor function here honours ``__torch_function__``:
:func:`torch.fx.symbolic_trace` records it as one call of the graph (so the modules of
:mod:`elulab.nn` trace), and tensor subclasses dispatch as they do for torch's functions.
Anything else that is not a floating tensor still raises a one-line ``TypeError``.

The mathematical documentation of the modules lives on :class:`elulab.nn.ELU`,
:class:`elulab.nn.CELU` and :class:`elulab.nn.SELU`.

References:
    | Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
    | (Clevert, Unterthiner and Hochreiter, 2015)
    | https://arxiv.org/abs/1511.07289

    | Continuously Differentiable Exponential Linear Units (Barron, 2017)
    | https://arxiv.org/abs/1704.07483

    | Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr and Hochreiter, 2017)
    | https://arxiv.org/abs/1706.02515
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import handle_torch_function, has_torch_function_unary

__all__ = [
    "ACTIVATION_NAMES",
    "SECOND_DERIVATIVE_NAMES",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "SMOOTH_ELU_WIDTH",
    "ActivationSpec",
    "activation_derivative",
    "activation_function",
    "activation_second_derivative",
    "activation_spec",
    "celu",
    "celu_derivative",
    "check_alpha",
    "check_width",
    "elu",
    "elu_derivative",
    "elu_inverse",
    "elu_log_abs_det_jacobian",
    "normalize_activation_name",
    "selu",
    "selu_derivative",
    "smooth_elu",
    "smooth_elu_derivative",
]

#: Scale :math:`\lambda` of SELU (Klambauer et al., 2017), the constant torch uses.
SELU_LAMBDA: float = 1.0507009873554804934193349852946
#: Negative saturation :math:`\alpha_{01}` of SELU (Klambauer et al., 2017), as in torch.
SELU_ALPHA: float = 1.6732632423543772848170429916717

# lambda * alpha, the SELU derivative at 0^- (computed once, in float64).
_SELU_LAMBDA_ALPHA: float = SELU_LAMBDA * SELU_ALPHA


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


def check_alpha(alpha: float, name: str = "alpha") -> float:
    r"""Validate a positive, finite real parameter (an ELU/CELU ``alpha``) and return it as float.

    ELU and CELU are defined for :math:`\alpha > 0` only: ``alpha = 0`` makes CELU divide
    by zero and ELU non-invertible, a negative ``alpha`` makes ELU non-monotone.

    Arguments:
        alpha: the value to check (a real number; ``bool`` is refused).
        name: the parameter name used in the error message.

    Returns:
        ``float(alpha)``.

    Raises:
        TypeError: if ``alpha`` is not a real number (or is a ``bool``).
        ValueError: if ``alpha`` is not finite or not positive.

    Example:
        >>> check_alpha(2)
        2.0
    """
    kind = type(alpha)
    # fast path for the common cases (this runs on every activation call); bool is
    # neither float nor int by exact type, so it falls through to the refusal below
    if kind is not float and kind is not int:
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(
                f"{name} must be a real number (int or float), got {kind.__name__} {alpha!r}"
            )
    value = float(alpha)
    if not 0.0 < value < math.inf:  # also false for NaN
        raise ValueError(f"{name} must be a finite number > 0, got {alpha!r}")
    return value


def _check_tensor(x: torch.Tensor, fn: str, arg: str = "input") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{fn}: {arg} must have a real floating dtype (float16, bfloat16, float32, "
            f"float64), got {x.dtype}"
        )


def _check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be an int >= 0, got {type(order).__name__} {order!r}")
    if order < 0:
        raise ValueError(f"order must be an int >= 0, got {order}")
    return int(order)


def _check_inplace(inplace: bool) -> None:
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be a bool, got {type(inplace).__name__} {inplace!r}")


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------


def elu(input: torch.Tensor, alpha: float = 1.0, inplace: bool = False) -> torch.Tensor:
    r"""Exponential linear unit, elementwise; see :class:`elulab.nn.ELU` for the math.

    .. math:: \mathrm{ELU}(x) = x \text{ if } x > 0, \quad \alpha (e^x - 1) \text{ otherwise}.

    Same signature and bitwise the same values as :func:`torch.nn.functional.elu` (it calls
    the same ATen op), with ``alpha`` validated by :func:`check_alpha`.

    References:
        | Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
        | (Clevert, Unterthiner and Hochreiter, 2015), https://arxiv.org/abs/1511.07289

    Arguments:
        input: a floating tensor of any shape.
        alpha: the negative saturation value, :math:`\alpha > 0`.
        inplace: overwrite ``input`` with the result.

    Example:
        >>> elu(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([-0.6321,  0.0000,  2.0000])
    """
    alpha = check_alpha(alpha)
    if has_torch_function_unary(input):  # an fx Proxy or a tensor-like
        return handle_torch_function(elu, (input,), input, alpha=alpha, inplace=inplace)
    _check_tensor(input, "elu")
    _check_inplace(inplace)
    # the bindings F.elu itself calls, without its Python layer (same kernel and values)
    if inplace:
        return torch._C._nn.elu_(input, alpha)
    return torch._C._nn.elu(input, alpha)


def celu(input: torch.Tensor, alpha: float = 1.0, inplace: bool = False) -> torch.Tensor:
    r"""Continuously differentiable ELU, elementwise; see :class:`elulab.nn.CELU`.

    .. math:: \mathrm{CELU}(x) = \max(0, x) + \min\big(0, \alpha (e^{x/\alpha} - 1)\big).

    Bitwise the same values as :func:`torch.nn.functional.celu` in every floating dtype.
    It calls ``aten::elu(input, alpha, scale=1, input_scale=1/alpha)``, the op that
    ``torch.celu`` itself runs, but keeps ``1/alpha`` in float64 in the backward pass,
    where ``torch.celu`` rounds it to float32 (so its float64 gradient is off by up to
    ~1e-8 relative when ``alpha`` is not a power of two).

    References:
        | Continuously Differentiable Exponential Linear Units (Barron, 2017)
        | https://arxiv.org/abs/1704.07483

    Arguments:
        input: a floating tensor of any shape.
        alpha: the negative saturation value and inverse input scale, :math:`\alpha > 0`.
        inplace: overwrite ``input`` with the result.

    Example:
        >>> celu(torch.tensor([-1.0, 0.0, 2.0]), alpha=2.0)
        tensor([-0.7869,  0.0000,  2.0000])
    """
    alpha = check_alpha(alpha)
    if has_torch_function_unary(input):  # an fx Proxy or a tensor-like
        return handle_torch_function(celu, (input,), input, alpha=alpha, inplace=inplace)
    _check_tensor(input, "celu")
    _check_inplace(inplace)
    if inplace:
        return torch._C._nn.elu_(input, alpha, 1.0, 1.0 / alpha)
    return torch._C._nn.elu(input, alpha, 1.0, 1.0 / alpha)


def selu(input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    r"""Scaled ELU, elementwise; see :class:`elulab.nn.SELU`.

    .. math:: \mathrm{SELU}(x) = \lambda x \text{ if } x > 0,
        \quad \lambda \alpha_{01} (e^x - 1) \text{ otherwise},

    with :data:`SELU_LAMBDA` and :data:`SELU_ALPHA`. Same values as
    :func:`torch.nn.functional.selu` (it calls the same ATen op).

    References:
        | Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr and Hochreiter,
        | 2017), https://arxiv.org/abs/1706.02515

    Arguments:
        input: a floating tensor of any shape.
        inplace: overwrite ``input`` with the result.

    Example:
        >>> selu(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([-1.1113,  0.0000,  2.1014])
    """
    if has_torch_function_unary(input):  # an fx Proxy or a tensor-like
        return handle_torch_function(selu, (input,), input, inplace=inplace)
    _check_tensor(input, "selu")
    _check_inplace(inplace)
    # the ops F.selu itself calls, without its Python layer (same kernel and values)
    if inplace:
        return torch.selu_(input)
    return torch.selu(input)


# ---------------------------------------------------------------------------
# closed-form derivatives
# ---------------------------------------------------------------------------
#
# Convention at the kink, chosen to equal torch autograd exactly (checked in the tests):
#   order 1 uses the negative branch for x <= 0 (so ELU'(0) = alpha, CELU'(0) = 1,
#   SELU'(0) = lambda * alpha_01), the positive branch otherwise (torch: also for NaN);
#   orders >= 2 use the negative branch for x < 0 and are 0 elsewhere (0, -0 and NaN
#   included), as torch's elu_double_backward masks with (x < 0).
# exp is taken of min(x, 0), so the unused branch never overflows to inf (which would
# turn into NaN through 0 * inf if the closed forms are themselves differentiated).


def _piecewise(x: torch.Tensor, order: int, neg: torch.Tensor, pos_first: float) -> torch.Tensor:
    if order == 1:
        return torch.where(x <= 0, neg, pos_first)
    return torch.where(x < 0, neg, 0.0)


def elu_derivative(x: torch.Tensor, alpha: float = 1.0, order: int = 1) -> torch.Tensor:
    r"""The ``order``-th derivative of :func:`elu` in closed form, elementwise.

    .. math:: \mathrm{ELU}^{(n)}(x) = \begin{cases} 1 \ (n = 1), \ 0 \ (n \ge 2) & x > 0 \\
        \alpha e^x & x < 0 \end{cases}

    At :math:`x = 0` the value equals torch autograd's: :math:`\alpha` for
    :math:`n = 1`, 0 for :math:`n \ge 2`. ``order=0`` returns :func:`elu` itself.

    Arguments:
        x: a floating tensor.
        alpha: :math:`\alpha > 0`.
        order: the derivative order, an int >= 0.

    Example:
        >>> elu_derivative(torch.tensor([-1.0, 0.0, 1.0]), order=1)
        tensor([0.3679, 1.0000, 1.0000])
    """
    alpha = check_alpha(alpha)
    order = _check_order(order)
    if has_torch_function_unary(x):  # an fx Proxy or a tensor-like
        return handle_torch_function(elu_derivative, (x,), x, alpha=alpha, order=order)
    _check_tensor(x, "elu_derivative", "x")
    if order == 0:
        return elu(x, alpha)
    return _piecewise(x, order, alpha * torch.exp(x.clamp(max=0)), 1.0)


def celu_derivative(x: torch.Tensor, alpha: float = 1.0, order: int = 1) -> torch.Tensor:
    r"""The ``order``-th derivative of :func:`celu` in closed form, elementwise.

    .. math:: \mathrm{CELU}^{(n)}(x) = \begin{cases} 1 \ (n = 1), \ 0 \ (n \ge 2) & x > 0 \\
        \alpha^{1-n} e^{x/\alpha} & x < 0 \end{cases}

    At :math:`x = 0`: 1 for :math:`n = 1` (CELU is :math:`C^1`), 0 for :math:`n \ge 2`,
    as torch autograd gives. ``order=0`` returns :func:`celu` itself.

    Arguments:
        x: a floating tensor.
        alpha: :math:`\alpha > 0`.
        order: the derivative order, an int >= 0.

    Example:
        >>> celu_derivative(torch.tensor([-2.0, 0.0, 1.0]), alpha=2.0, order=2)
        tensor([0.1839, 0.0000, 0.0000])
    """
    alpha = check_alpha(alpha)
    order = _check_order(order)
    if has_torch_function_unary(x):  # an fx Proxy or a tensor-like
        return handle_torch_function(celu_derivative, (x,), x, alpha=alpha, order=order)
    _check_tensor(x, "celu_derivative", "x")
    if order == 0:
        return celu(x, alpha)
    neg = torch.exp(x.clamp(max=0) / alpha)
    if order > 1:
        neg = neg * alpha ** (1 - order)
    return _piecewise(x, order, neg, 1.0)


def selu_derivative(x: torch.Tensor, order: int = 1) -> torch.Tensor:
    r"""The ``order``-th derivative of :func:`selu` in closed form, elementwise.

    .. math:: \mathrm{SELU}^{(n)}(x) = \begin{cases} \lambda \ (n = 1), \ 0 \ (n \ge 2)
        & x > 0 \\ \lambda \alpha_{01} e^x & x < 0 \end{cases}

    At :math:`x = 0`: :math:`\lambda \alpha_{01}` for :math:`n = 1`, 0 for
    :math:`n \ge 2`, as torch autograd gives. ``order=0`` returns :func:`selu` itself.

    Arguments:
        x: a floating tensor.
        order: the derivative order, an int >= 0.

    Example:
        >>> selu_derivative(torch.tensor([-1.0, 1.0]))
        tensor([0.6468, 1.0507])
    """
    order = _check_order(order)
    if has_torch_function_unary(x):  # an fx Proxy or a tensor-like
        return handle_torch_function(selu_derivative, (x,), x, order=order)
    _check_tensor(x, "selu_derivative", "x")
    if order == 0:
        return selu(x)
    return _piecewise(x, order, _SELU_LAMBDA_ALPHA * torch.exp(x.clamp(max=0)), SELU_LAMBDA)


# ---------------------------------------------------------------------------
# inverse and log-determinant (ELU as a bijection R -> (-alpha, inf))
# ---------------------------------------------------------------------------


def elu_inverse(y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    r"""Inverse of :func:`elu`, from :math:`(-\alpha, \infty)` onto :math:`\mathbb{R}`.

    .. math:: \mathrm{ELU}^{-1}(y) = \begin{cases} y & y > 0 \\
        \log(1 + y/\alpha) & -\alpha < y \le 0 \end{cases}

    Evaluated without cancellation: ``log1p(y/alpha)`` for :math:`y > -\alpha/2` and
    ``log((y + alpha)/alpha)`` below, where ``y + alpha`` is exact (Sterbenz), so the
    result keeps full relative precision both near 0 and near the boundary
    :math:`-\alpha`. float16/bfloat16 inputs are computed in float32 and cast back.
    Differentiable by autograd.

    Arguments:
        y: a floating tensor with every element in :math:`(-\alpha, \infty)`.
        alpha: :math:`\alpha > 0`.

    Raises:
        ValueError: if an element is :math:`\le -\alpha` (in the dtype of ``y``) or NaN;
            the message names the domain, the number of offending elements and one of them.

    Example:
        >>> elu_inverse(elu(torch.tensor([-3.0, 0.5])))
        tensor([-3.0000,  0.5000])
    """
    alpha = check_alpha(alpha)
    if has_torch_function_unary(y):  # an fx Proxy or a tensor-like
        return handle_torch_function(elu_inverse, (y,), y, alpha=alpha)
    _check_tensor(y, "elu_inverse", "y")
    work = y.float() if y.dtype in (torch.float16, torch.bfloat16) else y
    a = torch.tensor(alpha, dtype=work.dtype, device=work.device)  # alpha in the working dtype
    bad = ~(work > -a)  # catches NaN as well as y <= -alpha
    if bool(bad.any()):
        offending = y.detach()[bad]
        n_nan = int(torch.isnan(offending).sum())
        example = offending[0].item()
        raise ValueError(
            f"elu_inverse: every element must lie in the domain (-alpha, inf) = "
            f"(-{alpha!r}, inf); {offending.numel()} of {y.numel()} do not "
            f"({n_nan} NaN), e.g. {example!r}"
        )
    # Each branch gets a harmless input where it is not selected, so that no inf/NaN
    # appears in an unused branch and leaks into the gradient as 0 * inf.
    near_boundary = work < -0.5 * a
    far = torch.where(near_boundary, 0.0, work / a)  # in (-1/2, inf): log1p is exact
    near = torch.where(near_boundary, work + a, a)  # y + alpha is exact for y < -alpha/2
    neg = torch.where(near_boundary, torch.log(near / a), torch.log1p(far))
    out = torch.where(work > 0, work, neg)
    return out.to(y.dtype) if out.dtype != y.dtype else out


def elu_log_abs_det_jacobian(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    r"""Elementwise :math:`\log |\mathrm{ELU}'(x)|`, the log-determinant terms of ELU as a flow.

    .. math:: \log \mathrm{ELU}'(x) = \begin{cases} 0 & x > 0 \\
        \log \alpha + x & x \le 0 \end{cases}

    Exact: no logarithm of a small number is taken, so it stays finite and accurate for
    very negative ``x`` where :math:`\alpha e^x` underflows. The value at 0 follows
    torch's :math:`\mathrm{ELU}'(0) = \alpha`. Sum over event dimensions for a
    multivariate flow.

    Arguments:
        x: a floating tensor (the input of ELU, not its output).
        alpha: :math:`\alpha > 0`.

    Example:
        >>> elu_log_abs_det_jacobian(torch.tensor([-800.0, 1.0]))
        tensor([-800.,    0.])
    """
    alpha = check_alpha(alpha)
    if has_torch_function_unary(x):  # an fx Proxy or a tensor-like
        return handle_torch_function(elu_log_abs_det_jacobian, (x,), x, alpha=alpha)
    _check_tensor(x, "elu_log_abs_det_jacobian", "x")
    return torch.where(x <= 0, x + math.log(alpha), 0.0)


# ---------------------------------------------------------------------------
# ELU smoothed at 0: ELU convolved with a narrow Gaussian (a smoothness control)
# ---------------------------------------------------------------------------

#: Default width :math:`s` of the Gaussian that :func:`smooth_elu` convolves ELU with.
SMOOTH_ELU_WIDTH: float = 0.25
_INV_SQRT2 = math.sqrt(0.5)


def check_width(width: float) -> float:
    """Validate the width ``s`` of :func:`smooth_elu`: a real number in (0, 1].

    Wider Gaussians change ELU's shape, not only its smoothness at 0 (and above 1 the
    float32 forms would need more care).

    Example:
        >>> check_width(0.25)
        0.25
    """
    value = check_alpha(width, "width")
    if value > 1.0:
        raise ValueError(f"width must be in (0, 1] (a narrow smoothing of ELU), got {width!r}")
    return value


def _ncdf(z: torch.Tensor) -> torch.Tensor:  # Phi(z) = erfc(-z / sqrt 2) / 2, as ndtr computes it
    return 0.5 * torch.erfc(-_INV_SQRT2 * z)


def _smooth_elu_parts(x: torch.Tensor, width: float) -> tuple[torch.Tensor, ...]:
    """``(t, Phi(t), phi(t), f''(x))`` with ``t = x / s``, without overflow or inf * 0.

    :math:`f'' = e^{x + s^2/2}\\Phi(-t - s)` with ``x`` capped at 40: there
    :math:`\\Phi(-40/s - s)` is 0 even in float64 (``s <= 1``) while :math:`e^{40}` is
    finite in float32, so the cap changes nothing.
    """
    t = x / width
    phi = torch.exp(-0.5 * t * t) * _INV_SQRT_2PI
    xc = x.clamp(max=40.0)
    curv = torch.exp(xc + 0.5 * width * width) * _ncdf(-xc / width - width)
    return t, _ncdf(t), phi, curv


class _SmoothELUSlope(torch.autograd.Function):
    """f'(x); its backward is the closed-form f'' (so nested autograd is exact)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, width: float) -> torch.Tensor:
        _, cdf, _, curv = _smooth_elu_parts(x, width)
        ctx.save_for_backward(x, curv)
        ctx.width = width
        return cdf + curv

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, curv = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: f''' by autograd of the closed form
            curv = _smooth_elu_parts(x, ctx.width)[3]
        return grad * curv, None


class _SmoothELU(torch.autograd.Function):
    """f(x); its backward is the closed-form f' (differentiable, see _SmoothELUSlope)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, width: float) -> torch.Tensor:
        t, cdf, phi, curv = _smooth_elu_parts(x, width)
        ctx.save_for_backward(x, cdf + curv)
        ctx.width = width
        return x * cdf + width * phi + curv - _ncdf(-t)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, slope = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: f'' through _SmoothELUSlope
            slope = _SmoothELUSlope.apply(x, ctx.width)
        return grad * slope, None


def _in_float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def smooth_elu(input: torch.Tensor, width: float = SMOOTH_ELU_WIDTH) -> torch.Tensor:
    r"""ELU (:math:`\alpha = 1`) smoothed at 0 by a Gaussian of width :math:`s`; see
    :class:`elulab.nn.SmoothELU` for the math.

    .. math:: f_s(x) = E\,\mathrm{ELU}(x + sZ) = x\,\Phi(x/s) + s\,\varphi(x/s)
        + e^{x + s^2/2}\,\Phi(-x/s - s) - \Phi(-x/s), \quad Z \sim \mathcal{N}(0, 1).

    :math:`C^\infty`, convex, increasing, :math:`f_s \ge \mathrm{ELU}`; for the default
    :math:`s = 0.25` it differs from ELU by at most 0.0221 (at :math:`x \approx -0.24`).
    Backward passes use the closed forms :func:`smooth_elu_derivative` (first and second
    order exactly, higher by autograd). float16/bfloat16 inputs are computed in float32.

    Arguments:
        input: a floating tensor of any shape.
        width: the Gaussian's standard deviation :math:`0 < s \le 1`.

    Example:
        >>> smooth_elu(torch.tensor([-3.0, 0.0, 3.0]))
        tensor([-0.9486,  0.0138,  3.0000])
    """
    width = check_width(width)
    if has_torch_function_unary(input):  # an fx Proxy or a tensor-like
        return handle_torch_function(smooth_elu, (input,), input, width=width)
    _check_tensor(input, "smooth_elu")
    out = _SmoothELU.apply(_in_float32(input), width)
    return out.to(input.dtype) if out.dtype != input.dtype else out


def smooth_elu_derivative(
    x: torch.Tensor, width: float = SMOOTH_ELU_WIDTH, order: int = 1
) -> torch.Tensor:
    r"""The ``order``-th derivative (0, 1 or 2) of :func:`smooth_elu` in closed form.

    .. math:: f_s'(x) = E\,\mathrm{ELU}'(x + sZ) = \Phi(x/s) + e^{x + s^2/2}\,\Phi(-x/s - s),
        \qquad f_s''(x) = e^{x + s^2/2}\,\Phi(-x/s - s),

    (:math:`\mathrm{ELU}'` is continuous for :math:`\alpha = 1`, so :math:`f_s''` has no
    :math:`\varphi` term). :math:`f_s''` is continuous: it falls from about 1 to 0 over a
    few :math:`s` around 0, where ELU's jumps from 1 to 0.

    Arguments:
        x: a floating tensor.
        width: the Gaussian's standard deviation :math:`0 < s \le 1`.
        order: 0 (the function), 1 or 2.

    Example:
        >>> smooth_elu_derivative(torch.tensor([-3.0, 0.0]), order=2)
        tensor([0.0514, 0.4140])
    """
    width = check_width(width)
    order = _check_order(order)
    if has_torch_function_unary(x):  # an fx Proxy or a tensor-like
        return handle_torch_function(smooth_elu_derivative, (x,), x, width=width, order=order)
    _check_tensor(x, "smooth_elu_derivative", "x")
    if order > 2:
        raise ValueError(f"smooth_elu_derivative: order must be 0, 1 or 2, got {order}")
    if order == 0:
        return smooth_elu(x, width)
    work = _in_float32(x)
    _, cdf, _, curv = _smooth_elu_parts(work, width)
    out = cdf + curv if order == 1 else curv
    return out.to(x.dtype) if out.dtype != x.dtype else out


def _smooth_elu_dd(x: torch.Tensor, width: float = SMOOTH_ELU_WIDTH) -> torch.Tensor:
    return smooth_elu_derivative(x, width, order=2)


# ---------------------------------------------------------------------------
# the activation table (single source of truth for names)
# ---------------------------------------------------------------------------


def _sin(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x)


# Closed-form first derivatives f'(x) of the table's functions, keyword parameters as the
# functions take them. At a kink they equal torch autograd (relu'(0) = 0, leaky_relu'(0)
# = negative_slope, the ELU family as documented above); tested against autograd.
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _relu_d(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).to(x.dtype)


def _leaky_relu_d(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    return torch.where(x > 0, x.new_ones(()), x.new_full((), negative_slope))


def _gelu_d(x: torch.Tensor) -> torch.Tensor:  # Phi(x) + x phi(x), the exact (erf) GELU
    return 0.5 * (1.0 + torch.erf(x * math.sqrt(0.5))) + x * torch.exp(-0.5 * x * x) * _INV_SQRT_2PI


def _silu_d(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _mish_d(x: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(F.softplus(x))
    return t + x * torch.sigmoid(x) * (1.0 - t * t)


def _tanh_d(x: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(x) ** 2


def _sigmoid_d(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 - s)


def _softplus_d(x: torch.Tensor, beta: float = 1.0, threshold: float = 20.0) -> torch.Tensor:
    # torch's softplus is x itself where beta * x > threshold
    return torch.where(x * beta > threshold, 1.0, torch.sigmoid(x * beta))


def _sin_d(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x)


# Closed-form second derivatives f''(x), equal to torch's double backward of the function
# (tested against float64 nested autograd). Kinks: relu/leaky_relu 0 everywhere; the ELU
# family as documented above (0 at x = 0); softplus 0 where beta * x >= threshold, as
# torch's softplus_double_backward masks with (beta * x < threshold).
def _zero_dd(x: torch.Tensor, **_: float) -> torch.Tensor:
    return torch.zeros_like(x)


def _elu_dd(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    return elu_derivative(x, alpha, order=2)


def _celu_dd(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    return celu_derivative(x, alpha, order=2)


def _selu_dd(x: torch.Tensor) -> torch.Tensor:
    return selu_derivative(x, order=2)


def _gelu_dd(x: torch.Tensor) -> torch.Tensor:  # phi(x) (2 - x^2)
    return torch.exp(-0.5 * x * x) * _INV_SQRT_2PI * (2.0 - x * x)


def _silu_dd(x: torch.Tensor) -> torch.Tensor:  # s (1 - s) (2 + x (1 - 2 s))
    s = torch.sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def _tanh_dd(x: torch.Tensor) -> torch.Tensor:  # -2 tanh (1 - tanh^2)
    t = torch.tanh(x)
    return -2.0 * t * (1.0 - t * t)


def _sigmoid_dd(x: torch.Tensor) -> torch.Tensor:  # s (1 - s) (1 - 2 s)
    s = torch.sigmoid(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _softplus_dd(x: torch.Tensor, beta: float = 1.0, threshold: float = 20.0) -> torch.Tensor:
    s = torch.sigmoid(x * beta)
    return torch.where(x * beta < threshold, beta * s * (1.0 - s), 0.0)


def _sin_dd(x: torch.Tensor) -> torch.Tensor:
    return -torch.sin(x)


@dataclass(frozen=True)
class ActivationSpec:
    """One entry of the activation table.

    Arguments:
        name: the canonical name (lower case, ``_`` separated).
        function: the elementwise function with default parameters.
        module: the class name of the matching module, looked up first in
            :mod:`elulab.nn`, then in :mod:`torch.nn` (kept as a string so that this
            tensor-math layer does not import the module layer).
        derivative: the closed-form first derivative ``f'(x, **params)``, taking the
            same keyword parameters as ``function`` (e.g. ``alpha``).
        second: the closed-form second derivative ``f''(x, **params)``, or None where
            none is registered (then Taylor-mode PINNs refuse the activation).
    """

    name: str
    function: Callable[[torch.Tensor], torch.Tensor]
    module: str
    derivative: Callable[..., torch.Tensor]
    second: Callable[..., torch.Tensor] | None = None


# Default parameters: alpha = 1 for elu/celu, negative_slope = 0.01 for leaky_relu,
# the exact erf form for gelu, beta = 1 for softplus.
_TABLE: dict[str, ActivationSpec] = {
    spec.name: spec
    for spec in (
        ActivationSpec("relu", F.relu, "ReLU", _relu_d, _zero_dd),
        ActivationSpec("leaky_relu", F.leaky_relu, "LeakyReLU", _leaky_relu_d, _zero_dd),
        ActivationSpec("elu", elu, "ELU", elu_derivative, _elu_dd),
        ActivationSpec("celu", celu, "CELU", celu_derivative, _celu_dd),
        ActivationSpec("selu", selu, "SELU", selu_derivative, _selu_dd),
        ActivationSpec("gelu", F.gelu, "GELU", _gelu_d, _gelu_dd),
        ActivationSpec("silu", F.silu, "SiLU", _silu_d, _silu_dd),
        ActivationSpec("mish", F.mish, "Mish", _mish_d),
        ActivationSpec("tanh", torch.tanh, "Tanh", _tanh_d, _tanh_dd),
        ActivationSpec("sigmoid", torch.sigmoid, "Sigmoid", _sigmoid_d, _sigmoid_dd),
        ActivationSpec("softplus", F.softplus, "Softplus", _softplus_d, _softplus_dd),
        ActivationSpec("sin", _sin, "Sin", _sin_d, _sin_dd),
        ActivationSpec(
            "smooth_elu", smooth_elu, "SmoothELU", smooth_elu_derivative, _smooth_elu_dd
        ),
    )
}

#: Canonical names of the activations elulab knows, in a fixed order.
ACTIVATION_NAMES: tuple[str, ...] = tuple(_TABLE)


def normalize_activation_name(name: str) -> str:
    """Canonical form of an activation name: stripped, lower case, ``-`` and spaces -> ``_``.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: for an unknown name, listing the allowed ones.

    Example:
        >>> normalize_activation_name("Leaky-ReLU")
        'leaky_relu'
    """
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a str, got {type(name).__name__} {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _TABLE:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATION_NAMES)}")
    return key


def activation_spec(name: str) -> ActivationSpec:
    """The :class:`ActivationSpec` registered as ``name`` (case and ``-``/``_`` insensitive).

    Raises:
        ValueError: for an unknown name, listing the allowed ones.

    Example:
        >>> activation_spec("ELU").module
        'ELU'
    """
    return _TABLE[normalize_activation_name(name)]


def activation_function(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the elementwise function registered as ``name`` (default parameters).

    Raises:
        ValueError: for an unknown name, listing the allowed ones.

    Example:
        >>> activation_function("celu")(torch.tensor([0.0]))
        tensor([0.])
    """
    return activation_spec(name).function


def activation_derivative(name: str) -> Callable[..., torch.Tensor]:
    """Return the closed-form first derivative ``f'(x, **params)`` registered as ``name``.

    It takes the function's keyword parameters (``alpha`` for ``elu``/``celu``,
    ``negative_slope`` for ``leaky_relu``, ``beta``/``threshold`` for ``softplus``) and
    equals torch autograd of the function, kinks included.

    Raises:
        ValueError: for an unknown name, listing the allowed ones.

    Example:
        >>> activation_derivative("relu")(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 1.])
        >>> activation_derivative("elu")(torch.tensor([0.0]), alpha=2.0)
        tensor([2.])
    """
    return activation_spec(name).derivative


def activation_second_derivative(name: str) -> Callable[..., torch.Tensor]:
    """Return the closed-form second derivative ``f''(x, **params)`` registered as ``name``.

    Equal to torch's double backward of the function (nested autograd), kinks included:
    0 at the kink of the ELU family (torch masks its second derivative with ``x < 0``),
    0 everywhere for ``relu`` and ``leaky_relu``, 0 where ``beta * x >= threshold`` for
    ``softplus``. :data:`SECOND_DERIVATIVE_NAMES` lists the activations that have one.

    Raises:
        ValueError: for an unknown name, or one without a registered second derivative
            (naming the ones that have it).

    Example:
        >>> activation_second_derivative("tanh")(torch.tensor([1.0]))
        tensor([-0.6397])
    """
    spec = activation_spec(name)
    if spec.second is None:
        raise ValueError(
            f"activation {name!r} has no closed-form second derivative; allowed: "
            f"{', '.join(SECOND_DERIVATIVE_NAMES)}"
        )
    return spec.second


#: Activations with a registered closed-form second derivative, in table order.
SECOND_DERIVATIVE_NAMES: tuple[str, ...] = tuple(n for n, s in _TABLE.items() if s.second)
