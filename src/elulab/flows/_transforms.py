r"""Bijections built on ELU, as :class:`torch.distributions.Transform` objects.

ELU is strictly increasing, so it is a bijection, but from :math:`\mathbb{R}` onto
:math:`(-\alpha, \infty)`, not onto :math:`\mathbb{R}`. That restricted image is the
central design fact of this module:

* :class:`ELUTransform` is ELU itself, with the true codomain
  ``constraints.greater_than(-alpha)``. Inverting a value at or below :math:`-\alpha`
  raises a ``ValueError`` that names the bound (or, opt-in, clamps it with a counted
  :class:`ELUClampWarning`). It never returns NaN or inf silently.
* :class:`LinearTailELUTransform` (exact, closed-form inverse) and
  :class:`LinearELUTransform` (ELU plus a small linear term, inverse by Newton's method)
  map :math:`\mathbb{R}` onto :math:`\mathbb{R}`, so they can sit anywhere in a flow.
* :class:`LeakyReLUTransform` and :class:`LeakySoftplusTransform` are the baselines the
  ``elu_flows`` experiment compares with.
* :class:`LULinearTransform` and :class:`AffineCouplingTransform` are the multivariate
  layers (event dimension 1) the flow models in :mod:`elulab.flows` are made of.

Which to use when: ELU itself where the values its inverse sees are bounded below by
construction (data with a known lower bound, or right after the base distribution when
only sampling is needed); an R -> R variant inside a flow trained on real-valued data.

References:
    Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
    (Clevert, Unterthiner, Hochreiter, 2015), arXiv:1511.07289.
    Normalizing Flows for Probabilistic Modeling and Inference (Papamakarios, Nalisnick,
    Rezende, Mohamed, Lakshminarayanan, 2019), arXiv:1912.02762.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.distributions import Transform, constraints

from ..functional import check_alpha, elu, elu_inverse, elu_log_abs_det_jacobian

__all__ = [
    "AffineCouplingTransform",
    "ELUClampWarning",
    "ELUTransform",
    "LULinearTransform",
    "LeakyReLUTransform",
    "LeakySoftplusTransform",
    "LinearELUTransform",
    "LinearTailELUTransform",
    "newton_inverse",
]


class ELUClampWarning(UserWarning):
    """Emitted by ``ELUTransform(clamp=True)`` when it clamps values onto its codomain."""


def _check_real(
    value: float,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        lb, hb = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{name} must be a finite number in {lb}{lo}, {hi}{hb}, got {value!r}")
    return v


def _check_finite_input(y: torch.Tensor, who: str) -> None:
    """Refuse NaN (and, as a side effect of the numeric solvers, non-finite) inputs."""
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise TypeError(f"{who}: expected a floating torch.Tensor, got {type(y).__name__}")
    if bool(torch.isnan(y).any()):
        raise ValueError(f"{who}: the input contains {int(torch.isnan(y).sum())} NaN value(s)")


# ---------------------------------------------------------------------------
# ELU itself: R -> (-alpha, inf)
# ---------------------------------------------------------------------------


class _ParametrisedTransform(Transform):
    """Equality, hashing, ``repr`` and ``with_cache`` from the parameter names in ``_params``.

    Subclasses store each parameter under its name in ``_params`` and accept it as a
    keyword argument of the same name, plus a keyword-only ``cache_size``. Two
    transforms are equal when they are of the same type and every parameter is equal:
    numbers by ``==``, tensors by value (same shape, dtype and entries, as torch's
    ``AffineTransform`` compares), anything else (a conditioner network) by ``==``,
    which for modules and functions is identity. The hash uses a tensor's shape and
    dtype only, so equal transforms hash alike. A transform is bound to the parameter
    values it was built with; flow layers build a fresh one on each call.
    """

    _params: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._params)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return type(self)(
            **dict(zip(self._params, self._values(), strict=True)), cache_size=cache_size
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        pairs = zip(self._values(), other._values(), strict=True)  # type: ignore[attr-defined]
        return all(_same(a, b) for a, b in pairs)

    def __hash__(self) -> int:
        return hash((type(self), *map(_hashable, self._values())))

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={v}" for n, v in zip(self._params, self._values(), strict=True))
        return f"{type(self).__name__}({args})"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and a.device == b.device
            and torch.equal(a, b)
        )
    return bool(a == b)


def _hashable(v: Any) -> Any:
    return ("tensor", tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else v


class ELUTransform(_ParametrisedTransform):
    r"""ELU as a bijection :math:`\mathbb{R} \to (-\alpha, \infty)`.

    .. math:: y = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \le 0 \end{cases},
        \qquad x = \begin{cases} y & y > 0 \\ \log(1 + y / \alpha) & -\alpha < y \le 0
        \end{cases}, \qquad \log \left|\frac{dy}{dx}\right| = \begin{cases} 0 & x > 0 \\
        \log \alpha + x & x \le 0 \end{cases}

    The codomain is ``constraints.greater_than(-alpha)``, not the positive reals (the
    mistake of Pyro's ``ELUTransform``, pyro issue 2806), so a
    :class:`~torch.distributions.TransformedDistribution` with ``validate_args`` refuses
    values below :math:`-\alpha` before inverting them. The log-det is exact (no
    ``1e-8`` padding) and finite for every finite ``x``.

    In floating point, ``elu(x)`` rounds to exactly :math:`-\alpha` once
    :math:`e^x` is below the unit roundoff (``x < -36.7`` in float64, ``x < -16.6`` in
    float32): such outputs lie on the boundary and cannot be inverted; use
    ``cache_size=1`` if a sample must be scored after drawing it.

    References:
        Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
        (Clevert, Unterthiner, Hochreiter, 2015), arXiv:1511.07289.

    Arguments:
        alpha: :math:`\alpha > 0`.
        clamp: opt-in: instead of raising, replace inputs of the inverse that are
            :math:`\le -\alpha` by the largest float above :math:`-\alpha` and emit an
            :class:`ELUClampWarning` with the count (also added to ``n_clamped``). NaN is
            always an error.
        cache_size: as in :class:`torch.distributions.Transform` (0 or 1).

    Raises:
        ValueError: from the inverse, for an element :math:`\le -\alpha` or NaN (unless
            ``clamp``); the message names the bound.

    Example:
        >>> from torch.distributions import Normal, TransformedDistribution
        >>> d = TransformedDistribution(Normal(0.0, 1.0), ELUTransform(alpha=2.0))
        >>> d.support
        GreaterThan(lower_bound=-2.0)
        >>> round(float(d.log_prob(torch.tensor(-1.0))), 4)
        -1.1592
    """

    domain = constraints.real
    bijective = True
    sign = +1
    _params = ("alpha", "clamp")

    def __init__(self, alpha: float = 1.0, *, clamp: bool = False, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.alpha = check_alpha(alpha)
        if not isinstance(clamp, bool):
            raise TypeError(f"clamp must be a bool, got {type(clamp).__name__} {clamp!r}")
        self.clamp = clamp
        self.n_clamped = 0

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def codomain(self) -> constraints.Constraint:
        return constraints.greater_than(-self.alpha)

    def __repr__(self) -> str:
        extra = ", clamp=True" if self.clamp else ""
        return f"{type(self).__name__}(alpha={self.alpha}{extra})"

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return elu(x, self.alpha)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.clamp:
            _check_finite_input(y, repr(self))
            a = torch.tensor(-self.alpha, dtype=y.dtype, device=y.device)
            low = torch.nextafter(a, torch.zeros_like(a))  # largest float above -alpha
            while not bool(low > -self.alpha):  # -alpha not representable: step further
                low = torch.nextafter(low, torch.zeros_like(low))
            outside = y < low
            n = int(outside.sum())
            if n:
                self.n_clamped += n
                warnings.warn(
                    f"{self!r}: clamped {n} of {y.numel()} value(s) at or below the bound "
                    f"-alpha = {-self.alpha} onto the codomain (-{self.alpha}, inf) "
                    f"({self.n_clamped} in total)",
                    ELUClampWarning,
                    stacklevel=3,
                )
                y = torch.where(outside, low, y)
        try:
            return elu_inverse(y, self.alpha)
        except ValueError as e:
            raise ValueError(
                f"{self!r}: cannot invert values outside the codomain (-alpha, inf) = "
                f"(-{self.alpha}, inf): elements must be > -alpha = {-self.alpha}. ({e}) "
                "Use an R -> R variant (LinearTailELUTransform, LinearELUTransform) inside "
                "a flow, or clamp=True to clamp with a warning."
            ) from None

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return elu_log_abs_det_jacobian(x, self.alpha)


# ---------------------------------------------------------------------------
# R -> R variants
# ---------------------------------------------------------------------------


class LinearTailELUTransform(_ParametrisedTransform):
    r"""ELU continued linearly below a knee :math:`k < 0`: a C1 bijection of :math:`\mathbb{R}`.

    .. math:: y = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & k \le x \le 0 \\
        \alpha (e^k - 1) + \alpha e^k (x - k) & x < k \end{cases}

    It equals ELU on :math:`[k, \infty)`, so the flow keeps ELU's shape where the data
    are, and its slope never falls below :math:`\min(1, \alpha e^k)`, so the inverse
    (closed form: identity, :func:`~elulab.functional.elu_inverse`, then linear) is exact
    and well conditioned everywhere. The log-det is :math:`0`, :math:`\log\alpha + x`
    or :math:`\log\alpha + k`.

    Arguments:
        alpha: :math:`\alpha > 0`.
        knee: :math:`k < 0`, where the linear tail starts (default -2: tail slope
            :math:`\alpha e^{-2} \approx 0.135 \alpha`).
        cache_size: as in :class:`torch.distributions.Transform`.

    Example:
        >>> t = LinearTailELUTransform(alpha=1.0, knee=-2.0)
        >>> x = torch.tensor([-5.0, -1.0, 3.0], dtype=torch.float64)
        >>> torch.allclose(t.inv(t(x)), x)
        True
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1
    _params = ("alpha", "knee")

    def __init__(self, alpha: float = 1.0, knee: float = -2.0, *, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.alpha = check_alpha(alpha)
        self.knee = _check_real(knee, "knee", high=0.0)
        self.y_knee = self.alpha * math.expm1(self.knee)
        self.tail_slope = self.alpha * math.exp(self.knee)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        mid = elu(torch.clamp(x, min=self.knee), self.alpha)
        tail = self.y_knee + self.tail_slope * (x - self.knee)
        return torch.where(x < self.knee, tail, mid)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_finite_input(y, repr(self))
        # clamping keeps the ELU branch inside its domain (y_knee > -alpha)
        mid = elu_inverse(torch.clamp(y, min=self.y_knee), self.alpha)
        tail = self.knee + (y - self.y_knee) / self.tail_slope
        return torch.where(y < self.y_knee, tail, mid)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return elu_log_abs_det_jacobian(torch.clamp(x, min=self.knee), self.alpha)


def newton_inverse(
    f: Callable[[torch.Tensor], torch.Tensor],
    df: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    start: torch.Tensor,
    *,
    rtol: float | None = None,
    max_iter: int = 100,
) -> torch.Tensor:
    r"""Solve :math:`f(x) = y` elementwise for an increasing convex :math:`f`, with gradients.

    Newton's method :math:`x \leftarrow x - (f(x) - y) / f'(x)` from a start with
    :math:`f(x_0) \ge y`: for an increasing convex function the iterates then decrease
    monotonically to the root (no overshoot, no bracket needed). The loop stops when
    every step is below ``rtol * (1 + |x|)``, by default 8 units of roundoff of the
    dtype, so the returned root is within a few ulps of the exact one.

    The solve runs without autograd; one more Newton step is then taken with autograd,
    with :math:`f'` detached. Its value is the root (the step is ~0) and its gradient is
    the implicit-function gradient :math:`\partial x / \partial y = 1 / f'(x)` and
    :math:`\partial x / \partial\theta = -(\partial f / \partial\theta) / f'(x)` for
    any parameter :math:`\theta` of ``f`` (first order only).

    Arguments:
        f, df: the function and its derivative (elementwise).
        y: target values.
        start: starting points with ``f(start) >= y`` (e.g. an upper bound of the root).
        rtol: relative step tolerance (default ``8 * finfo(y.dtype).eps``).
        max_iter: iteration cap.

    Raises:
        RuntimeError: if the iteration has not converged after ``max_iter`` steps
            (never returns an unconverged value silently).

    Example:
        >>> y = torch.tensor([0.5, 2.0], dtype=torch.float64)
        >>> x = newton_inverse(torch.exp, torch.exp, y, start=torch.full_like(y, 1.0))
        >>> torch.allclose(x, torch.log(y))
        True
    """
    tol = 8.0 * torch.finfo(y.dtype).eps if rtol is None else float(rtol)
    with torch.no_grad():
        yd = y.detach()
        x = start.detach().clone()
        for _ in range(max_iter):
            step = (f(x) - yd) / df(x)
            x = x - step
            if bool((step.abs() <= tol * (1.0 + x.abs())).all()):
                break
        else:
            worst = float((f(x) - yd).abs().max())
            raise RuntimeError(
                f"newton_inverse did not converge in {max_iter} iterations "
                f"(largest residual {worst:.3g})"
            )
    slope = df(x).detach()
    return x - (f(x) - y) / slope


class LinearELUTransform(_ParametrisedTransform):
    r"""ELU plus a small linear term, a smooth bijection of :math:`\mathbb{R}`.

    .. math:: y = \mathrm{ELU}_\alpha(x) + \beta x, \qquad
        \frac{dy}{dx} = \mathrm{ELU}_\alpha'(x) + \beta \in (\beta, 1 + \beta]

    For :math:`y \ge 0` the inverse is :math:`y / (1 + \beta)`; for :math:`y < 0` it
    solves :math:`\alpha (e^x - 1) + \beta x = y` by :func:`newton_inverse` from the
    upper bound :math:`\min(y / (\alpha + \beta), (y + \alpha) / \beta)` (the function is
    convex there), to 8 ulps, with implicit-function gradients. The log-det is
    :math:`\log(\mathrm{ELU}_\alpha'(x) + \beta)`, computed on the left as
    ``logaddexp(log(alpha) + x, log(beta))``, so it stays exact where :math:`e^x`
    underflows or :math:`e^{-x}` overflows.

    Arguments:
        alpha: :math:`\alpha > 0`.
        beta: :math:`\beta > 0`, the slope of the linear term (default 0.1).
        cache_size: as in :class:`torch.distributions.Transform`.

    Example:
        >>> t = LinearELUTransform(beta=0.1)
        >>> x = torch.tensor([-50.0, -1.0, 2.0], dtype=torch.float64)
        >>> torch.allclose(t.inv(t(x)), x)
        True
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1
    _params = ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 0.1, *, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.alpha = check_alpha(alpha)
        self.beta = _check_real(beta, "beta", low=0.0)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return elu(x, self.alpha) + self.beta * x

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_finite_input(y, repr(self))
        a, b = self.alpha, self.beta
        yn = torch.clamp(y, max=0.0)
        start = torch.minimum(yn / (a + b), (yn + a) / b)
        xn = newton_inverse(
            lambda x: a * torch.expm1(x) + b * x,
            lambda x: a * torch.exp(x) + b,
            yn,
            start,
        )
        return torch.where(y >= 0, y / (1.0 + b), xn)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.alpha, self.beta
        xn = torch.clamp(x, max=0.0)
        left = torch.logaddexp(math.log(a) + xn, torch.full_like(xn, math.log(b)))
        return torch.where(x > 0, torch.full_like(x, math.log1p(b)), left)


# ---------------------------------------------------------------------------
# baselines: LeakyReLU and a leaky softplus
# ---------------------------------------------------------------------------


class LeakyReLUTransform(_ParametrisedTransform):
    r"""LeakyReLU as a bijection of :math:`\mathbb{R}` (baseline).

    .. math:: y = \begin{cases} x & x > 0 \\ s x & x \le 0 \end{cases},
        \qquad \log\left|\frac{dy}{dx}\right| = \begin{cases} 0 & x > 0 \\
        \log s & x \le 0 \end{cases}

    Arguments:
        negative_slope: :math:`s > 0` (default 0.1).

    Example:
        >>> LeakyReLUTransform(0.5).inv(torch.tensor([-1.0, 2.0]))
        tensor([-2.,  2.])
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1
    _params = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.1, *, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.negative_slope = _check_real(negative_slope, "negative_slope", low=0.0)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self.negative_slope * x)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_finite_input(y, repr(self))
        return torch.where(y > 0, y, y / self.negative_slope)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.where(
            x > 0, torch.zeros_like(x), torch.full_like(x, math.log(self.negative_slope))
        )


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + e^x) without torch's ``threshold=20`` switch to x (a 2e-9 jump at 20)."""
    return torch.logaddexp(x, torch.zeros_like(x))


class LeakySoftplusTransform(_ParametrisedTransform):
    r"""A softplus-type bijection of :math:`\mathbb{R}` (baseline): a smooth LeakyReLU.

    .. math:: y = s x + (1 - s)\,\mathrm{softplus}(x) - (1 - s) \log 2, \qquad
        \frac{dy}{dx} = s + (1 - s)\,\sigma(x) \in (s, 1)

    shifted so that :math:`y(0) = 0`. The inverse solves the convex equation by
    :func:`newton_inverse` (8 ulps, implicit gradients) from the upper bound given by the
    piecewise-linear minorant :math:`s x + (1 - s) \max(0, x)`.

    Arguments:
        slope: :math:`s \in (0, 1)`, the slope as :math:`x \to -\infty` (default 0.1).

    Example:
        >>> t = LeakySoftplusTransform(0.1)
        >>> x = torch.tensor([-30.0, 0.0, 4.0], dtype=torch.float64)
        >>> torch.allclose(t.inv(t(x)), x)
        True
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1
    _params = ("slope",)

    def __init__(self, slope: float = 0.1, *, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.slope = _check_real(slope, "slope", low=0.0, high=1.0)
        self._shift = (1.0 - self.slope) * math.log(2.0)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        s = self.slope
        return s * x + (1.0 - s) * _softplus(x) - self._shift

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_finite_input(y, repr(self))
        s = self.slope
        yc = y + self._shift  # solve s x + (1 - s) softplus(x) = yc
        start = torch.where(yc > 0, yc, yc / s)  # f >= the minorant, so f(start) >= yc
        return newton_inverse(
            lambda x: s * x + (1.0 - s) * _softplus(x),
            lambda x: s + (1.0 - s) * torch.sigmoid(x),
            yc,
            start,
        )

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s = self.slope
        # log(s + (1-s) sigmoid(x)) = log(s + e^x) - softplus(x), exact for large |x|
        return torch.logaddexp(torch.full_like(x, math.log(s)), x) - _softplus(x)


# ---------------------------------------------------------------------------
# multivariate layers (event dimension 1)
# ---------------------------------------------------------------------------


class LULinearTransform(_ParametrisedTransform):
    r"""An invertible linear map :math:`y = W x`, :math:`W = P L U`, with a cheap log-det.

    :math:`P` is a fixed permutation, :math:`L` unit lower triangular, :math:`U` upper
    triangular with diagonal :math:`e^{d}`, so

    .. math:: \log |\det W| = \sum_i d_i

    and the inverse is two triangular solves. No LU factorisation is ever computed: the
    factors are the parameters.

    References:
        Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma, Dhariwal, 2018),
        arXiv:1807.03039.

    Arguments:
        perm: a permutation of ``range(D)`` (long tensor); ``(P v)_i = v_{perm_i}``.
        lower: ``(D, D)``; only its strictly lower part is used.
        upper: ``(D, D)``; only its strictly upper part is used.
        log_diag: ``(D,)``, the log of :math:`U`'s diagonal.

    Example:
        >>> D = 3
        >>> t = LULinearTransform(torch.tensor([2, 0, 1]), torch.randn(D, D),
        ...                       torch.randn(D, D), torch.zeros(D))
        >>> x = torch.randn(5, D)
        >>> torch.allclose(t.inv(t(x)), x, atol=1e-5)
        True
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True
    _params = ("perm", "lower", "upper", "log_diag")

    def __init__(
        self,
        perm: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
        log_diag: torch.Tensor,
        *,
        cache_size: int = 0,
    ) -> None:
        super().__init__(cache_size=cache_size)
        d = log_diag.shape[-1]
        if log_diag.dim() != 1 or lower.shape != (d, d) or upper.shape != (d, d):
            raise ValueError(
                f"LULinearTransform: expected lower/upper (D, D) and log_diag (D,), got "
                f"{tuple(lower.shape)}, {tuple(upper.shape)}, {tuple(log_diag.shape)}"
            )
        if perm.shape != (d,) or not torch.equal(torch.sort(perm).values, torch.arange(d)):
            raise ValueError(f"LULinearTransform: perm must be a permutation of range({d})")
        eye = torch.eye(d, dtype=lower.dtype, device=lower.device)
        self.perm, self.lower, self.upper = perm, lower, upper
        self.inv_perm = torch.argsort(perm)
        self.L = torch.tril(lower, -1) + eye
        self.U = torch.triu(upper, 1) + torch.diag(torch.exp(log_diag))
        self.log_diag = log_diag

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.log_diag.shape[-1]})"

    @property
    def weight(self) -> torch.Tensor:
        """The matrix :math:`W = P L U`."""
        return (self.L @ self.U)[self.perm]

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.U.T @ self.L.T)[..., self.perm]

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        d = y.shape[-1]
        v = y[..., self.inv_perm].reshape(-1, d).T
        w = torch.linalg.solve_triangular(self.L, v, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(self.U, w, upper=True)
        return x.T.reshape(y.shape)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.log_diag.sum().expand(x.shape[:-1])


class AffineCouplingTransform(_ParametrisedTransform):
    r"""An affine coupling layer: half of the coordinates condition an affine map of the rest.

    .. math:: y_A = x_A, \qquad y_B = x_B \odot e^{s(x_A)} + t(x_A), \qquad
        \log|\det J| = \sum_{i \in B} s_i(x_A)

    with :math:`s = b \tanh(\tilde s / b)` (a soft bound :math:`b` on the log-scale for
    stability) and :math:`(\tilde s, t)` given by the ``conditioner`` network.

    References:
        Density estimation using Real NVP (Dinh, Sohl-Dickstein, Bengio, 2016),
        arXiv:1605.08803.

    Arguments:
        mask: a boolean ``(D,)`` tensor, True on the conditioning coordinates :math:`A`
            (at least one True and one False).
        conditioner: maps ``(..., |A|)`` to ``(..., 2 |B|)`` (log-scale, shift).
        scale_bound: :math:`b > 0`.

    Example:
        >>> net = torch.nn.Linear(1, 2)
        >>> t = AffineCouplingTransform(torch.tensor([True, False]), net)
        >>> x = torch.randn(4, 2)
        >>> torch.allclose(t.inv(t(x)), x, atol=1e-6)
        True
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True
    _params = ("mask", "conditioner", "scale_bound")

    def __init__(
        self,
        mask: torch.Tensor,
        conditioner: Callable[[torch.Tensor], torch.Tensor],
        scale_bound: float = 3.0,
        *,
        cache_size: int = 0,
    ) -> None:
        super().__init__(cache_size=cache_size)
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.dim() != 1 or bool(mask.all()) or not bool(mask.any()):
            raise ValueError(
                "AffineCouplingTransform: mask must be a 1-d boolean tensor with at least "
                "one True (conditioning) and one False (transformed) entry"
            )
        self.mask = mask
        self.idx_a = torch.nonzero(mask).flatten()
        self.idx_b = torch.nonzero(~mask).flatten()
        self.order = torch.argsort(torch.cat([self.idx_a, self.idx_b]))
        self.conditioner = conditioner
        self.scale_bound = _check_real(scale_bound, "scale_bound", low=0.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mask={self.mask.tolist()}, scale_bound={self.scale_bound})"

    def _scale_shift(self, xa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conditioner(xa)
        nb = self.idx_b.numel()
        if out.shape[-1] != 2 * nb:
            raise ValueError(
                f"AffineCouplingTransform: conditioner returned last dimension "
                f"{out.shape[-1]}, expected 2 * {nb}"
            )
        raw, shift = out[..., :nb], out[..., nb:]
        b = self.scale_bound
        return b * torch.tanh(raw / b), shift

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        xa, xb = x[..., self.idx_a], x[..., self.idx_b]
        log_s, t = self._scale_shift(xa)
        return torch.cat([xa, xb * torch.exp(log_s) + t], dim=-1)[..., self.order]

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        ya, yb = y[..., self.idx_a], y[..., self.idx_b]
        log_s, t = self._scale_shift(ya)
        return torch.cat([ya, (yb - t) * torch.exp(-log_s)], dim=-1)[..., self.order]

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_s, _ = self._scale_shift(x[..., self.idx_a])
        return log_s.sum(-1)
