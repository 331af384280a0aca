r"""ELU whose alpha is set from the running statistics of its input: :class:`AdaptiveELU`.

The rule (:func:`adaptive_alpha`) solves the mean-field gradient gain of the layer for
``alpha`` in closed form; the module keeps BatchNorm-style running statistics of its
input and recomputes ``alpha`` from them on every training forward.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import log_ndtr, ndtr
from torch import nn
from torch.nn import functional as F

__all__ = ["AdaptiveELU", "adaptive_alpha"]


def _real(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _check_target(target: float) -> float:
    t = _real(target, "target")
    if not t > 0.0:
        raise ValueError(f"target (the mean squared slope E[f'(z)^2]) must be > 0, got {target!r}")
    return t


def adaptive_alpha(mean: ArrayLike, var: ArrayLike, target: float = 1.0) -> float | np.ndarray:
    r"""The ELU ``alpha`` whose mean squared slope is ``target`` for :math:`z \sim N(m, s^2)`.

    With :math:`f(x) = x` for :math:`x > 0`, :math:`\alpha(e^x - 1)` otherwise,
    :math:`f'(z)^2 = 1` above 0 and :math:`\alpha^2 e^{2z}` below, so

    .. math::
        \mathbb E f'(z)^2 = \Phi(c) + \alpha^2\, e^{2m + 2s^2}\,\Phi(-c - 2s), \qquad c = m/s

    (completing the square, :math:`e^{2z}\varphi(\tfrac{z-m}{s}) =
    e^{2m+2s^2}\varphi(\tfrac{z-m-2s^2}{s})`), and :math:`\mathbb E f'^2 = t` is solved by

    .. math::
        \alpha = \sqrt{\frac{t - \Phi(c)}{e^{2m + 2s^2}\,\Phi(-c - 2s)}},

    evaluated in log space (``scipy.special.log_ndtr``) in float64. For ``t = 1`` this is
    :math:`\alpha = \mathbb E[e^{2z} \mid z \le 0]^{-1/2}`: the negative side's mean
    squared slope equals the positive side's, 1. Where :math:`t \le \Phi(c)` no
    :math:`\alpha > 0` reaches the target (the positive side alone exceeds it); the
    result is then 0, the infimum of :math:`\mathbb E f'^2` over :math:`\alpha`.

    References:
        Deep Information Propagation (Schoenholz, Gilmer, Ganguli, Sohl-Dickstein,
        2017), arXiv:1611.01232 (the gain :math:`\chi_1 = \sigma_w^2 \mathbb E f'^2`).

    Arguments:
        mean: :math:`m`, a number or an array (broadcast against ``var``).
        var: :math:`s^2 > 0`.
        target: :math:`t > 0`.

    Returns:
        a float for scalar input, else a float64 array of the broadcast shape.

    Example:
        >>> round(adaptive_alpha(0.0, 1.0), 12)
        1.724640419967
    """
    t = _check_target(target)
    if isinstance(mean, float) and isinstance(var, float):  # the module's path: no arrays
        if not (math.isfinite(mean) and math.isfinite(var) and var > 0):
            raise ValueError(f"mean must be finite and var finite and > 0, got {mean!r}, {var!r}")
        return _alpha_scalar(mean, var, t)
    m = np.asarray(mean, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    if not (np.isfinite(m).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError(f"mean must be finite and var finite and > 0, got {mean!r}, {var!r}")
    s = np.sqrt(v)
    c = m / s
    log_q2 = 2.0 * m + 2.0 * v + log_ndtr(-c - 2.0 * s)
    if t == 1.0:
        log_gap = log_ndtr(-c)  # 1 - Phi(c) = Phi(-c), no cancellation
    elif t > 1.0:  # t - Phi(c) = (t - 1) + Phi(-c), a sum of non-negative terms
        log_gap = np.logaddexp(log_ndtr(-c), math.log(t - 1.0))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # no solution: log(<= 0)
            gap = t - ndtr(c)
            log_gap = np.where(gap > 0, np.log(gap), -np.inf)
    a = np.exp(0.5 * (log_gap - log_q2))
    return float(a) if a.ndim == 0 else a


def _alpha_scalar(m: float, v: float, t: float) -> float:
    """:func:`adaptive_alpha` for Python floats (the same formula, ~50x faster)."""
    s = math.sqrt(v)
    c = m / s
    log_q2 = 2.0 * m + 2.0 * v + float(log_ndtr(-c - 2.0 * s))
    if t >= 1.0:
        lg = float(log_ndtr(-c))
        log_gap = lg if t == 1.0 else float(np.logaddexp(lg, math.log(t - 1.0)))
    else:
        gap = t - float(ndtr(c))
        log_gap = math.log(gap) if gap > 0 else -math.inf
    return math.exp(min(0.5 * (log_gap - log_q2), 709.0))  # beyond: overflow, clipped anyway


class AdaptiveELU(nn.Module):
    r"""ELU whose :math:`\alpha` follows the running mean and variance of its input.

    .. math:: f(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^x - 1) & x \le 0 \end{cases},
        \qquad \alpha = \operatorname{clip}\big(\alpha^\*(\hat m, \hat s^2 + \epsilon;\,
        t),\ \alpha_{\min}, \alpha_{\max}\big)

    :math:`\alpha^\*` is :func:`adaptive_alpha`: the value that makes the mean squared
    slope :math:`\mathbb E f'(z)^2` equal to ``target`` :math:`t` for
    :math:`z \sim N(\hat m, \hat s^2)`, the Gaussian (mean-field) model of the layer's
    input with the running statistics over all its elements (one ``alpha`` per layer:
    the mean-field gain is a per-layer quantity). In a network whose weights have
    variance :math:`\sigma_w^2/\text{fan-in}`, the mean-field backward gain of a layer
    is :math:`\chi = \sigma_w^2\,\mathbb E f'^2 = \sigma_w^2 t`: with LeCun-normal
    weights (:func:`elulab.nn.lecun_normal_`, :math:`\sigma_w^2 = 1`) and ``target=1``
    the backpropagated squared gradient norm is kept from layer to layer (:math:`\chi =
    1`); for weight variance :math:`\sigma_w^2/n` use ``target`` :math:`= 1/\sigma_w^2`.
    The target is the gradient gain, not an output moment, because the gain is what
    gradient flow depends on and one parameter can fix only one of them (SELU's extra
    scale is what fixes the forward moments too).

    Running statistics, as in :class:`torch.nn.BatchNorm1d` with one channel: in
    training mode each forward computes the batch mean and (unbiased) variance over all
    elements, updates :math:`\hat m \leftarrow (1-\mu)\hat m + \mu\,\bar x` (the very
    first batch sets them: ``num_batches_tracked == 0``), recomputes ``alpha``, then
    applies it; in eval mode nothing is updated and the stored ``alpha`` is used.
    ``running_mean``, ``running_var``, ``alpha`` and ``num_batches_tracked`` are buffers
    (in ``state_dict``), not parameters. Non-finite statistics (a diverging network)
    leave ``alpha`` as it was.

    Gradient: ``alpha`` is computed from the statistics under ``torch.no_grad`` (as
    BatchNorm's running statistics are) and handed to :func:`torch.nn.functional.elu` as
    a Python float, so it is a constant for autograd: the gradient with respect to the
    input is the ELU derivative at the current ``alpha``, :math:`f'(x) = 1` for
    :math:`x > 0` and :math:`\alpha e^x` for :math:`x \le 0`, with no term through the
    batch statistics (the Jacobian is diagonal). Reading ``alpha`` into Python costs one
    host synchronisation per forward on a GPU.

    References:
        Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
        (Clevert, Unterthiner, Hochreiter, 2015), arXiv:1511.07289.

        Deep Information Propagation (Schoenholz et al., 2017), arXiv:1611.01232.

    Arguments:
        target: :math:`t = \mathbb E f'(z)^2 > 0` (default 1, for LeCun-normal weights).
        momentum: :math:`\mu \in (0, 1]` of the running statistics (1: the last batch).
        eps: added to the running variance before the solve (> 0).
        alpha_min, alpha_max: the clip of ``alpha`` (``0 < alpha_min <= alpha_max``;
            defaults 0.05 and 10): an input far below 0 needs :math:`\alpha \approx
            e^{-\hat m}`, one far above 0 with ``target < 1`` has no solution (0).

    Shape:
        Input :math:`(*)` (at least 2 elements in training mode), output the same.

    Example:
        >>> m = AdaptiveELU(momentum=1.0)
        >>> y = m(torch.tensor([-1.0, 0.0, 1.0, 2.0]))
        >>> round(float(m.running_mean), 4), round(float(m.alpha), 4)
        (0.5, 1.7525)
        >>> round(m.eval()(torch.tensor([-1.0])).item(), 4)  # alpha (e^-1 - 1)
        -1.1078
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    alpha: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(
        self,
        target: float = 1.0,
        momentum: float = 0.1,
        eps: float = 1e-5,
        alpha_min: float = 0.05,
        alpha_max: float = 10.0,
    ) -> None:
        super().__init__()
        self.target = _check_target(target)
        self.momentum = _real(momentum, "momentum")
        if not 0.0 < self.momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        self.eps = _real(eps, "eps")
        if not self.eps > 0.0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.alpha_min, self.alpha_max = (
            _real(alpha_min, "alpha_min"),
            _real(alpha_max, "alpha_max"),
        )
        if not 0.0 < self.alpha_min <= self.alpha_max:
            raise ValueError(
                f"alpha bounds must satisfy 0 < alpha_min <= alpha_max, got {alpha_min!r}, "
                f"{alpha_max!r}"
            )
        f64 = torch.float64
        self.register_buffer("running_mean", torch.zeros((), dtype=f64))
        self.register_buffer("running_var", torch.ones((), dtype=f64))
        self.register_buffer("alpha", torch.zeros((), dtype=f64))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
        self._solve()

    @torch.no_grad()
    def _solve(self) -> None:
        m, v = float(self.running_mean), float(self.running_var) + self.eps
        if math.isfinite(m) and math.isfinite(v):  # else the input was not finite: keep alpha
            a = _alpha_scalar(m, v, self.target)
            self.alpha.fill_(min(max(a, self.alpha_min), self.alpha_max))

    @torch.no_grad()
    def _update(self, x: torch.Tensor) -> None:
        if x.numel() < 2:
            raise ValueError(
                f"AdaptiveELU needs at least 2 input elements in training mode, got {x.numel()}"
            )
        xd = x.detach().double()
        mean = xd.mean()  # torch.var_mean is several times slower on CPU
        bm, bv = float(mean), float((xd - mean).square().sum()) / (xd.numel() - 1)
        mu = 1.0 if int(self.num_batches_tracked) == 0 else self.momentum
        self.running_mean.fill_((1.0 - mu) * float(self.running_mean) + mu * bm)
        self.running_var.fill_((1.0 - mu) * float(self.running_var) + mu * bv)
        self.num_batches_tracked.add_(1)
        self._solve()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._update(input)
        # torch's ELU at the current alpha: its values, and its backward alpha * e^x
        return F.elu(input, alpha=float(self.alpha))

    def extra_repr(self) -> str:
        return (
            f"target={self.target:g}, momentum={self.momentum:g}, eps={self.eps:g}, "
            f"alpha=[{self.alpha_min:g}, {self.alpha_max:g}]"
        )
