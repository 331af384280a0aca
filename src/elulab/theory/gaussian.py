r"""Gaussian moments of activations, in float64.

For :math:`z \sim \mathcal{N}(\mu, \sigma^2)` and an activation :math:`f`, this module
computes

.. math:: \mathbb{E}[f(z)],\quad \mathbb{E}[f(z)^2],\quad \operatorname{Var} f(z),\quad
          \mathbb{E}[f'(z)],\quad \mathbb{E}[f'(z)^2],

in closed form for the ELU family (``elu``, ``celu``, ``selu``, and ``scale * elu(x; alpha)``
for any ``alpha > 0`` and ``scale``), ``relu`` and ``leaky_relu``, and by quadrature for
every other activation of :data:`elulab.functional.ACTIVATION_NAMES`.

The closed forms (``c = mu / sigma``, :math:`\Phi`/:math:`\varphi` the standard normal cdf
and pdf, ``f(x) = scale * elu(x; alpha)``):

.. math::
    \mathbb{E}[f] &= \lambda\big[\mu\Phi(c) + \sigma\varphi(c)
        + \alpha\big(e^{\mu+\sigma^2/2}\Phi(-c-\sigma) - \Phi(-c)\big)\big] \\
    \mathbb{E}[f^2] &= \lambda^2\big[(\mu^2+\sigma^2)\Phi(c) + \mu\sigma\varphi(c)
        + \alpha^2\big(e^{2\mu+2\sigma^2}\Phi(-c-2\sigma)
        - 2e^{\mu+\sigma^2/2}\Phi(-c-\sigma) + \Phi(-c)\big)\big] \\
    \mathbb{E}[f'] &= \lambda\big[\Phi(c) + \alpha e^{\mu+\sigma^2/2}\Phi(-c-\sigma)\big] \\
    \mathbb{E}[f'^2] &= \lambda^2\big[\Phi(c) + \alpha^2 e^{2\mu+2\sigma^2}\Phi(-c-2\sigma)\big]

Evaluated as written these lose digits (differences of nearly equal terms when
:math:`\sigma` is small, :math:`E f^2 - (E f)^2` for the variance, overflow of
:math:`e^{2\sigma^2}`). The implementation evaluates the same quantities without
cancellation: each side of the kink is summarised by its probability, the conditional
moments of the side (truncated-normal moments from a stable recursion), and conditional
expectations of :math:`e^z` as either ratios of ``erfcx``/``log_ndtr`` or, when the
side is narrow, a Taylor series in :math:`\sigma` over those moments; the variance is
assembled from the law of total variance (a sum of non-negative terms). See
``docs/theory.md`` for the derivation and the measured accuracy (relative error
<= 1e-12 against 40-digit mpmath quadrature over mu in [-10, 10], sigma in [1e-3, 10]).

The other activations go through quadrature (:func:`_quadrature_moments`): composite
Gauss-Legendre in :math:`\xi = (z - \mu)/\sigma` over float64 forms of ``f`` and ``f'``
that keep their relative precision in the tails (GELU through ``erfc``, ``tanh'`` as
:math:`4e^{-2|x|}/(1+e^{-2|x|})^2`, ...), with the variance and the mean taken from
``f(z) - f(mu)`` accumulated from ``f'`` where the direct difference would cancel;
relative error <= 1e-12 against 32-digit mpmath over mu in [-8, 8], sigma in [1e-3, 10]
(measured: <= 4.3e-14), sign-changing means and slopes to 1e-15 of their scale.

References:
    Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs),
    Clevert, Unterthiner, Hochreiter, 2015, arXiv:1511.07289.

    Self-Normalizing Neural Networks, Klambauer, Unterthiner, Mayr, Hochreiter, 2017,
    arXiv:1706.02515.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc, erfcx, expit, log_ndtr, ndtr

from elulab.functional import (
    SELU_ALPHA,
    SELU_LAMBDA,
    check_alpha,
    normalize_activation_name,
)

__all__ = [
    "CLOSED_FORM_ACTIVATIONS",
    "GaussianMoments",
    "expected_slope",
    "gaussian_moments",
]

#: Activations whose Gaussian moments are computed in closed form; every other name of
#: :data:`elulab.functional.ACTIVATION_NAMES` goes through quadrature.
CLOSED_FORM_ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "elu", "celu", "selu")

FloatOrArray = float | NDArray[np.float64]

# ---------------------------------------------------------------------------------------
# numerical constants
# ---------------------------------------------------------------------------------------

_K = 40  # number of truncated-normal moments kept (series order)
_THETA = 0.4  # Taylor series when |step| * rms(moment variable) <= _THETA, ratios above
_Y_FORWARD = 1.0  # forward moment recursion for y <= _Y_FORWARD, continued fraction above
_N_BACKWARD = _K + 400  # depth of the backward (continued fraction) recursion
_C_MAX = 1e8  # |mu / sigma| is clipped here (see _std_position)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_KS = np.arange(_K + 1, dtype=np.float64)
_INV_FACT = np.array([1.0 / math.factorial(k) for k in range(_K + 1)])
_TWO_K_MINUS_2 = 2.0**_KS - 2.0

# quadrature: composite Gauss-Legendre on mu +- _QUAD_HALF_WIDTH sigma
_QUAD_HALF_WIDTH = 12.0  # Phi(-12) = 1.8e-33: the truncated tails are far below float64
_QUAD_NODES = 16  # Gauss-Legendre nodes per panel
_QUAD_INNER = 6  # Gauss-Legendre nodes per gap between two nodes (for f(z) - f(mu))
_QUAD_MAX_EVALS_PER_CHUNK = 4_000_000
_QUAD_MAX_SIGMA = 1e3  # panels grow with sigma: 24 * sigma panels of 16 nodes


@dataclass(frozen=True)
class GaussianMoments:
    """Moments of ``f(z)`` and ``f'(z)`` for ``z ~ N(mu, sigma^2)`` (float64).

    Arguments:
        mean: :math:`E[f(z)]`.
        second_moment: :math:`E[f(z)^2]`.
        variance: :math:`Var f(z)` (computed without the cancellation of
            ``second_moment - mean**2``).
        mean_slope: :math:`E[f'(z)]`.
        mean_slope_sq: :math:`E[f'(z)^2]`.
        method: ``"closed form"`` or ``"quadrature (...)"`` naming the rule used.
    """

    mean: FloatOrArray
    second_moment: FloatOrArray
    variance: FloatOrArray
    mean_slope: FloatOrArray
    mean_slope_sq: FloatOrArray
    method: str


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


def _as_float_array(x: ArrayLike, name: str) -> NDArray[np.float64]:
    if isinstance(x, bool):
        raise TypeError(f"{name} must be a real number or an array of real numbers, got bool")
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a real number or an array of real numbers, got {x!r}"
        ) from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return arr


def _check_real(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _mu_sigma(mu: ArrayLike, sigma: ArrayLike) -> tuple[NDArray, NDArray, tuple[int, ...]]:
    m = _as_float_array(mu, "mu")
    s = _as_float_array(sigma, "sigma")
    if np.any(s <= 0.0):
        raise ValueError(f"sigma must be > 0 (a standard deviation), got {sigma!r}")
    m, s = np.broadcast_arrays(m, s)
    return m.ravel().copy(), s.ravel().copy(), m.shape


def _shape_out(x: NDArray, shape: tuple[int, ...]) -> FloatOrArray:
    if shape == ():
        return float(x[0])
    return x.reshape(shape)


# ---------------------------------------------------------------------------------------
# truncated-normal moments
# ---------------------------------------------------------------------------------------


def _std_position(mu: NDArray, s: NDArray) -> NDArray:
    """``c = mu / s``, clipped to +-1e8: beyond |c| ~ 40 every tail term underflows to 0,
    and the clip keeps ``c^2`` and ``c / s`` finite for extreme inputs."""
    with np.errstate(over="ignore"):  # mu / s = +-inf is clipped like any large value
        return np.clip(mu / s, -_C_MAX, _C_MAX)


def _t_moments(y: NDArray) -> tuple[NDArray, NDArray]:
    r"""Scaled moments of :math:`t \ge 0` with density :math:`\propto e^{-yt - t^2/2}`.

    Returns ``(m, sc)`` with ``m[:, k] = E[(sc * t)^k]`` for ``k = 0.._K`` and
    ``sc = max(1, y)`` (the scaling keeps every entry near ``k!`` in size). Requires
    ``y >= -1``. The unnormalised moments :math:`I_k(y) = \int_0^\infty t^k e^{-yt-t^2/2}dt`
    obey :math:`I_{k+1} = k I_{k-1} - y I_k`, stable forwards for ``y <= 1`` (started from
    :math:`I_1/I_0 = 1/R(y) - y`, ``R`` the Mills ratio); for ``y > 1`` the ratios
    :math:`r_k = I_k/I_{k-1} = k/(y + r_{k+1})` are run backwards (a continued fraction).
    """
    n = y.size
    m = np.empty((n, _K + 1))
    sc = np.maximum(1.0, y)
    fwd = y <= _Y_FORWARD
    if np.any(fwd):
        yf = y[fwd]
        mf = np.empty((yf.size, _K + 1))
        mf[:, 0] = 1.0
        mf[:, 1] = 1.0 / (_SQRT_HALF_PI * erfcx(yf * _INV_SQRT2)) - yf
        for k in range(1, _K):
            mf[:, k + 1] = k * mf[:, k - 1] - yf * mf[:, k]
        m[fwd] = mf
    bwd = ~fwd
    if np.any(bwd):
        yb = y[bwd]
        scb = sc[bwd]
        ratios = np.empty((yb.size, _K + 1))
        ratios[:, 0] = 1.0
        r = np.zeros(yb.size)
        for k in range(_N_BACKWARD, 0, -1):
            r = k / (yb + r)
            if k <= _K:
                ratios[:, k] = r * scb
        m[bwd] = np.cumprod(ratios, axis=1)
    return m, sc


def _u_moments(b: NDArray) -> NDArray:
    r"""Moments ``E[u^k | u <= b]``, ``k = 0.._K``, of a standard normal ``u``; ``b > 1``.

    Recursion :math:`g_k = (k-1) g_{k-2} - b^{k-1} h`, :math:`h = \varphi(b)/\Phi(b)`,
    stable for ``b > 0`` (even moments are at least half their untruncated value, odd
    ones add terms of one sign).
    """
    g = np.empty((b.size, _K + 1))
    log_h = -0.5 * b * b - _LOG_SQRT_2PI - log_ndtr(b)
    log_b = np.log(b)
    g[:, 0] = 1.0
    g[:, 1] = -np.exp(log_h)
    for k in range(2, _K + 1):
        g[:, k] = (k - 1) * g[:, k - 2] - np.exp((k - 1) * log_b + log_h)
    return g


def _series(mom: NDArray, step: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    r"""Taylor sums over moments: ``A1 = E[e^{h d} - 1]``, ``A2 = E[e^{h d} - 1 - h d]``,
    ``B2 = E[(e^{h d} - 1)^2]``, where ``mom[:, k] = E[d^k]`` and ``step = h``."""
    pw = step[:, None] ** _KS[None, :] * _INV_FACT[None, :] * mom
    # add the small terms first
    a2 = np.sum(pw[:, :1:-1], axis=1)
    a1 = a2 + pw[:, 1]
    b2 = np.sum((pw * _TWO_K_MINUS_2[None, :])[:, :1:-1], axis=1)
    return a1, a2, b2


def _expm1mx(x: NDArray) -> NDArray:
    """``exp(x) - 1 - x`` without cancellation."""
    out = np.empty_like(x)
    small = np.abs(x) < 0.7
    xs = x[small]
    acc = np.zeros_like(xs)
    for k in range(30, 1, -1):  # 0.7**30 / 30! is far below 1e-16 * x**2 / 2
        acc = (acc + 1.0 / math.factorial(k)) * xs
    out[small] = acc * xs
    xl = x[~small]
    out[~small] = np.expm1(xl) - xl
    return out


class _Side(NamedTuple):
    """Probability and conditional mean/variance of ``w`` on one side (``w > 0``)."""

    prob: NDArray
    mean: NDArray
    var: NDArray


def _side_linear(eta: NDArray, s: NDArray) -> _Side:
    """``w ~ N(eta, s^2)`` restricted to ``w > 0``: ``P(w > 0)``, ``E[w | w > 0]``, ``Var``."""
    cs = _std_position(eta, s)
    prob = ndtr(cs)
    mean = np.empty_like(eta)
    var = np.empty_like(eta)
    bd = cs <= 1.0  # the side holds at most ~84% of the mass: measure from the kink
    if np.any(bd):
        m, sc = _t_moments(-cs[bd])
        m1 = m[:, 1] / sc
        m2 = m[:, 2] / sc / sc
        mean[bd] = s[bd] * m1
        var[bd] = s[bd] ** 2 * (m2 - m1 * m1)
    bk = ~bd  # the side holds the bulk: measure from eta
    if np.any(bk):
        b = cs[bk]
        h = np.exp(-0.5 * b * b - _LOG_SQRT_2PI - log_ndtr(b))
        mean[bk] = eta[bk] + s[bk] * h
        var[bk] = s[bk] ** 2 * (1.0 - b * h - h * h)
    return _Side(prob, mean, var)


class _ExpSide(NamedTuple):
    """The side ``z <= 0`` of an ELU: probability and conditional quantities."""

    prob: NDArray  # P(z <= 0)
    e1: NDArray  # E[e^z - 1 | z <= 0]
    e1mz: NDArray  # E[e^z - 1 - z | z <= 0]  (>= 0)
    var_exp: NDArray  # Var[e^z | z <= 0]
    mean_z: NDArray  # E[z | z <= 0]


def _exp_side(mu: NDArray, s: NDArray) -> _ExpSide:
    """Conditional expectations of ``e^z`` on ``z <= 0`` for ``z ~ N(mu, s^2)``."""
    c = _std_position(mu, s)
    prob = ndtr(-c)
    e1 = np.empty_like(mu)
    e1mz = np.empty_like(mu)
    var_exp = np.empty_like(mu)
    mean_z = np.empty_like(mu)

    # (a) near the kink (c >= -1): z = -s t, t >= 0 with density ~ exp(-c t - t^2/2)
    bd = c >= -1.0
    if np.any(bd):
        y, sb = c[bd], s[bd]
        m, sc = _t_moments(y)
        m1 = m[:, 1] / sc
        m2 = m[:, 2] / sc / sc
        mean_z[bd] = -sb * m1
        a1 = np.empty_like(y)
        a2 = np.empty_like(y)
        v = np.empty_like(y)
        ser = sb * np.sqrt(m2) <= _THETA
        if np.any(ser):
            s1, s2, b2 = _series(m[ser], -sb[ser] / sc[ser])
            a1[ser], a2[ser], v[ser] = s1, s2, b2 - s1 * s1
        dr = ~ser
        if np.any(dr):
            yd, sd = y[dr], sb[dr]
            r0 = erfcx(yd * _INV_SQRT2)
            ex1 = erfcx((yd + sd) * _INV_SQRT2) / r0  # E[e^{-s t}]
            ex2 = erfcx((yd + 2.0 * sd) * _INV_SQRT2) / r0  # E[e^{-2 s t}]
            a1[dr] = ex1 - 1.0
            a2[dr] = a1[dr] + sd * m1[dr]
            v[dr] = ex2 - ex1 * ex1
        e1[bd], e1mz[bd], var_exp[bd] = a1, a2, v

    # (b) the bulk is negative (c < -1): z = mu + s u, u <= b = -c
    bk = ~bd
    if np.any(bk):
        b, sb, mb = -c[bk], s[bk], mu[bk]
        g = _u_moments(b)
        g1 = g[:, 1]
        mean_z[bk] = mb + sb * g1
        e1b = np.empty_like(b)
        e1mzb = np.empty_like(b)
        vb = np.empty_like(b)
        ser = sb * np.sqrt(g[:, 2]) <= _THETA
        if np.any(ser):  # e^z = e^mu e^{s u}, expanded in s (no overflow: s <= 0.4)
            s1, s2, b2 = _series(g[ser], sb[ser])
            ms, ss, g1s = mb[ser], sb[ser], g1[ser]
            em, ex = np.expm1(ms), np.exp(ms)
            e1b[ser] = em + ex * s1
            # E[e^z - 1 - z] as a sum of non-negative terms
            e1mzb[ser] = _expm1mx(ms) + ex * s2 + ss * g1s * em
            vb[ser] = ex * ex * (b2 - s1 * s1)
        dr = ~ser
        if np.any(dr):  # log-space ratios of normal cdfs; e^{2 s^2} never formed alone
            bd_, sd, md = b[dr], sb[dr], mb[dr]
            lnorm = log_ndtr(bd_)
            l1 = 0.5 * sd * sd + log_ndtr(bd_ - sd) - lnorm  # log E[e^{s u}]
            l2 = 2.0 * sd * sd + log_ndtr(bd_ - 2.0 * sd) - lnorm  # log E[e^{2 s u}]
            e1b[dr] = np.expm1(md + l1)
            e1mzb[dr] = e1b[dr] - mean_z[bk][dr]
            vb[dr] = -np.exp(2.0 * md + l2) * np.expm1(2.0 * l1 - l2)
        e1[bk], e1mz[bk], var_exp[bk] = e1b, e1mzb, vb
    return _ExpSide(prob, e1, e1mz, var_exp, mean_z)


def _pick(*candidates: tuple[NDArray, ...]) -> NDArray:
    """Sum the terms of the candidate whose rounding-error bound (sum of |terms|) is least."""
    sums = np.stack([sum(terms) for terms in candidates])
    bounds = np.stack([sum(np.abs(t) for t in terms) for terms in candidates])
    best = np.argmin(bounds, axis=0)
    return np.take_along_axis(sums, best[None, :], axis=0)[0]


# ---------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------


def _exp_integrals(mu: NDArray, s: NDArray) -> tuple[NDArray, NDArray]:
    """``Q_k = E[e^{kz} 1{z <= 0}] = e^{k mu + k^2 s^2/2} Phi(-c - k s)``, ``k = 1, 2``.

    Never forms ``e^{k^2 s^2/2}`` alone: for ``c + k s >= 0`` it is
    ``phi(c) R(c + k s) = exp(-c^2/2) erfcx((c + k s)/sqrt 2) / 2`` (``R`` the Mills
    ratio), otherwise ``exp(k mu + k^2 s^2/2 + log_ndtr(-c - k s))`` with a negative
    exponent of moderate size."""
    c = _std_position(mu, s)
    out = []
    for k in (1.0, 2.0):
        arg = c + k * s
        q = np.empty_like(mu)
        mills = arg >= 0.0
        q[mills] = 0.5 * np.exp(-0.5 * c[mills] ** 2) * erfcx(arg[mills] * _INV_SQRT2)
        lg = ~mills
        q[lg] = np.exp(k * mu[lg] + 0.5 * (k * s[lg]) ** 2 + log_ndtr(-arg[lg]))
        out.append(q)
    return out[0], out[1]


def _elu_kink_terms(mu: NDArray, s: NDArray) -> tuple[NDArray, ...]:
    """Pieces of the derivatives of the ELU moments in (mu, s^2), for the SELU moment map.

    Returns ``(p, p1, q1, q2, dens0)``: ``P(z > 0)``, ``E[z 1{z > 0}]``,
    ``E[e^z 1{z <= 0}]``, ``E[e^{2z} 1{z <= 0}]`` and the density of ``z`` at 0.
    """
    pos = _side_linear(mu, s)
    q1, q2 = _exp_integrals(mu, s)
    c = _std_position(mu, s)
    dens0 = np.exp(-0.5 * c * c - _LOG_SQRT_2PI) / s
    return pos.prob, pos.prob * pos.mean, q1, q2, dens0


def _elu_moments(mu: NDArray, s: NDArray, alpha: float) -> tuple[NDArray, ...]:
    """Moments of ``elu(z; alpha)`` (scale 1) for ``z ~ N(mu, s^2)``."""
    pos = _side_linear(mu, s)
    neg = _exp_side(mu, s)
    p, q = pos.prob, neg.prob
    mean = _pick(
        (p * pos.mean, alpha * q * neg.e1),
        (mu, (alpha - 1.0) * q * neg.mean_z, alpha * q * neg.e1mz),
    )
    second = p * (pos.var + pos.mean**2) + alpha**2 * q * (neg.var_exp + neg.e1**2)
    var = p * pos.var + alpha**2 * q * neg.var_exp + p * q * (pos.mean - alpha * neg.e1) ** 2
    q1, q2 = _exp_integrals(mu, s)
    slope = p + alpha * q1
    slope_sq = p + alpha**2 * q2
    return mean, second, var, slope, slope_sq


def _leaky_moments(mu: NDArray, s: NDArray, a: float) -> tuple[NDArray, ...]:
    """Moments of ``x if x > 0 else a * x`` (``a = 0``: ReLU) for ``z ~ N(mu, s^2)``."""
    pos = _side_linear(mu, s)
    negw = _side_linear(-mu, s)  # w = -z on z <= 0
    p, q = pos.prob, negw.prob
    mneg = -negw.mean
    mean = _pick(
        (p * pos.mean, a * q * mneg),
        (mu, (a - 1.0) * q * mneg),
        (a * mu, (1.0 - a) * p * pos.mean),
    )
    second = p * (pos.var + pos.mean**2) + a * a * q * (negw.var + mneg**2)
    var = p * pos.var + a * a * q * negw.var + p * q * (pos.mean - a * mneg) ** 2
    slope = p + a * q
    slope_sq = p + a * a * q
    return mean, second, var, slope, slope_sq


# ---------------------------------------------------------------------------------------
# quadrature
# ---------------------------------------------------------------------------------------


def _sech2(x: NDArray) -> NDArray:
    """``sech(x)^2 = 4 e^{-2|x|} / (1 + e^{-2|x|})^2``, to full relative precision in the
    tails (``1 - tanh(x)^2`` keeps only absolute precision there)."""
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


def _softplus(x: NDArray) -> NDArray:
    return np.logaddexp(0.0, x)  # max(x, 0) + log1p(e^{-|x|})


def _gelu(x: NDArray) -> NDArray:
    return 0.5 * x * erfc(-x * _INV_SQRT2)


def _gelu_slope(x: NDArray) -> NDArray:
    return 0.5 * erfc(-x * _INV_SQRT2) + x * np.exp(-0.5 * x * x - _LOG_SQRT_2PI)


def _mish_slope(x: NDArray) -> NDArray:
    sp = _softplus(x)
    return np.tanh(sp) + x * _sech2(sp) * expit(x)


def _smooth_elu_curv(x: NDArray, w: float) -> NDArray:  # e^{x + w^2/2} Phi(-x/w - w)
    return np.exp(x + 0.5 * w * w + log_ndtr(-x / w - w))


def _smooth_elu(x: NDArray, w: float) -> NDArray:  # see elulab.functional.smooth_elu
    t = x / w
    return (
        x * ndtr(t) + w * np.exp(-0.5 * t * t - _LOG_SQRT_2PI) + _smooth_elu_curv(x, w) - ndtr(-t)
    )


def _smooth_elu_slope(x: NDArray, w: float) -> NDArray:
    return ndtr(x / w) + _smooth_elu_curv(x, w)


_Fn = Callable[[NDArray], NDArray]

#: ``(f, f')`` of every activation computed by quadrature, each accurate to a few ulp
#: *relative* to its value, tails included: GELU through ``erfc`` (``1 + erf``, as torch
#: computes it, loses digits below ``x ~ -5`` and is 0 from -8.5 on), ``tanh'`` and
#: ``sigmoid'`` without ``1 - tanh^2`` or ``s (1 - s)``, softplus exact (torch's
#: ``F.softplus`` returns ``x`` for ``x > 20``, an absolute error of at most
#: ``log1p(e^-20) = 2.1e-9``).
_INTEGRANDS: dict[str, tuple[_Fn, _Fn]] = {
    "gelu": (_gelu, _gelu_slope),
    "silu": (lambda x: x * expit(x), lambda x: expit(x) * (1.0 + x * expit(-x))),
    "mish": (lambda x: x * np.tanh(_softplus(x)), _mish_slope),
    "tanh": (np.tanh, _sech2),
    "sigmoid": (expit, lambda x: expit(x) * expit(-x)),
    "softplus": (_softplus, expit),
    "sin": (np.sin, np.cos),
    "smooth_elu": (lambda x: _smooth_elu(x, 0.25), lambda x: _smooth_elu_slope(x, 0.25)),
    "linear": (lambda x: x, np.ones_like),  # should the registry ever carry it
}


def _tail_shift(name: str, c: NDArray, s: NDArray) -> NDArray:
    r"""How far toward 0 (in standard deviations) the window reaches beyond 12.

    Where :math:`|g|` (``g`` one of ``f, f^2, f', f'^2``) decays like :math:`e^{-k|z|}`
    away from 0 (``k <= 4``, for ``tanh'^2``) the integrand
    :math:`|g(z)|\,\varphi((z-\mu)/s)` peaks :math:`k s` standard deviations from ``mu``
    toward 0; where it decays like :math:`e^{-k z^2/2}` (GELU, ``k <= 2``),
    :math:`k|\mu| s/(1 + k s^2)`. The peak never passes 0 (``|c|``, ``c = mu/s``), and one
    40 deviations away has a weight :math:`e^{-800}`, below float64.
    """
    if name == "sin":
        return np.zeros_like(c)
    a = np.abs(c)
    t = 2.0 * a * s * s / (1.0 + 2.0 * s * s) if name == "gelu" else 4.0 * s
    return np.minimum(np.minimum(t + 1.0, a), 40.0)


def _gl_rule(n: int) -> tuple[NDArray, NDArray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return x, w


def _quadrature_side(
    fn: tuple[_Fn, _Fn], mu: NDArray, s: NDArray, span: NDArray, n_panels: int, f_mu: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    r"""The nodes on one side of ``mu``: :math:`z = \mu + s\,\xi`, :math:`\xi = \text{span}\,u`,
    ``u`` in (0, 1) on ``n_panels`` equal panels (``span < 0``: the lower side).

    Returns ``(weights, delta, slope)`` per node: the Gauss-Legendre weight times the
    standard normal density, ``delta = f(z) - f(mu)`` and ``f'(z)``. ``delta`` is either
    the direct difference or the running sum of :math:`\int f'` over the gaps between
    consecutive nodes (``_QUAD_INNER``-node Gauss-Legendre on each), whichever has the
    smaller rounding-error bound: in a saturated or nearly linear region (``tanh`` at
    ``mu = 8``, any ``f`` at small ``s``) the direct difference cancels.
    """
    f, df = fn
    gx, gw = _gl_rule(_QUAD_NODES)
    ix, iw = _gl_rule(_QUAD_INNER)
    edges = np.linspace(0.0, 1.0, n_panels + 1)
    half = 0.5 * np.diff(edges)
    u = (0.5 * (edges[1:] + edges[:-1])[:, None] + half[:, None] * gx).ravel()
    wu = (half[:, None] * gw).ravel()
    gap = np.diff(u, prepend=0.0)
    v = (u - gap)[:, None] + 0.5 * gap[:, None] * (1.0 + ix)  # gap nodes, (nodes, inner)
    wv = 0.5 * gap[:, None] * iw
    step = (s * span)[:, None]
    z = mu[:, None] + step * u
    t = np.abs(span)[:, None] * u
    weights = np.abs(span)[:, None] * wu * np.exp(-0.5 * t * t - _LOG_SQRT_2PI)
    slope = df(z)
    inc = step * np.einsum("nmk,mk->nm", df(mu[:, None, None] + step[:, :, None] * v), wv)
    path = np.cumsum(inc, axis=1)
    path_bound = (np.arange(1, u.size + 1) + _QUAD_INNER) * np.cumsum(np.abs(inc), axis=1)
    fz = f(z)
    direct = fz - f_mu[:, None]
    # z = mu + s xi is itself rounded: |f'(z) z| eps more
    direct_bound = np.abs(fz) + np.abs(f_mu)[:, None] + np.abs(slope * z)
    return weights, np.where(path_bound < direct_bound, path, direct), slope


def _quadrature_moments(name: str, mu: NDArray, s: NDArray) -> tuple[tuple[NDArray, ...], str]:
    r"""Composite Gauss-Legendre in :math:`\xi = (z - \mu)/s`, split at ``mu``.

    The window is :math:`\xi \in [-12, 12]`, widened toward 0 by :func:`_tail_shift`;
    panels are ``min(1, 1/s)`` wide in ``xi`` (at most 1 in ``z``, where these
    functions bend), 16 nodes each. With ``delta = f(z) - f(mu)`` (see
    :func:`_quadrature_side`): :math:`E f = f(\mu) + E\,\delta`,
    :math:`\operatorname{Var} f = E(\delta - E\delta)^2`, :math:`E f^2 = \operatorname{Var}
    f + (E f)^2`; :math:`E f'` and :math:`E f'^2` on the same nodes.
    """
    if np.any(s > _QUAD_MAX_SIGMA):
        raise ValueError(
            f"sigma must be <= {_QUAD_MAX_SIGMA:g} for {name!r} (computed by quadrature), "
            f"got {float(np.max(s))!r}"
        )
    if name not in _INTEGRANDS:  # a registry name added without an integrand here
        raise ValueError(f"no Gaussian moments for {name!r}: add its (f, f') to _INTEGRANDS")
    fn = _INTEGRANDS[name]
    c = _std_position(mu, s)
    ext = _tail_shift(name, c, s)
    span_lo = _QUAD_HALF_WIDTH + np.where(c > 0.0, ext, 0.0)
    span_hi = _QUAD_HALF_WIDTH + np.where(c < 0.0, ext, 0.0)
    per = np.maximum(1.0, s)  # panels per standard deviation
    n_lo = np.ceil(span_lo * per).astype(np.int64)
    n_hi = np.ceil(span_hi * per).astype(np.int64)
    out = [np.empty_like(mu) for _ in range(5)]
    layouts = np.stack([n_lo, n_hi], axis=1)
    for a, b in np.unique(layouts, axis=0):
        idx = np.nonzero((n_lo == a) & (n_hi == b))[0]
        chunk = max(1, _QUAD_MAX_EVALS_PER_CHUNK // int((a + b) * _QUAD_NODES * _QUAD_INNER))
        for start in range(0, idx.size, chunk):
            sel = idx[start : start + chunk]
            m, sd = mu[sel], s[sel]
            f_mu = fn[0](m)
            lo = _quadrature_side(fn, m, sd, -span_lo[sel], int(a), f_mu)
            hi = _quadrature_side(fn, m, sd, span_hi[sel], int(b), f_mu)
            w, delta, slope = (np.concatenate(p, axis=1) for p in zip(lo, hi, strict=True))
            e_delta = np.sum(w * delta, axis=1)
            var = np.sum(w * (delta - e_delta[:, None]) ** 2, axis=1)
            mean = f_mu + e_delta
            vals = (
                mean,
                var + mean**2,
                var,
                np.sum(w * slope, axis=1),
                np.sum(w * slope**2, axis=1),
            )
            for o, v in zip(out, vals, strict=True):
                o[sel] = v
    method = (
        f"quadrature (composite Gauss-Legendre, {_QUAD_NODES} nodes per panel, panels of "
        f"min(1, 1/sigma) standard deviations on mu +- {_QUAD_HALF_WIDTH:g} sigma, widened "
        "toward 0 where a tail peaks; accurate f, f' in float64)"
    )
    return tuple(out), method


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------


def gaussian_moments(
    activation: str,
    mu: ArrayLike,
    sigma: ArrayLike,
    *,
    alpha: float | None = None,
    scale: float | None = None,
    negative_slope: float | None = None,
) -> GaussianMoments:
    r"""Moments of ``f(z)`` and ``f'(z)`` for :math:`z \sim \mathcal{N}(\mu, \sigma^2)`.

    Closed form for ``elu`` (``scale * elu(x; alpha)``), ``celu``
    (``scale * celu(x; alpha)`` :math:`= \text{scale}\cdot\alpha\,\text{elu}(x/\alpha; 1)`),
    ``selu`` (``alpha``/``scale`` default to the SELU constants), ``relu`` and
    ``leaky_relu``; quadrature for the other names of
    :data:`elulab.functional.ACTIVATION_NAMES` (the functions of
    :func:`elulab.functional.activation_function` with default parameters, evaluated in
    float64 forms accurate in the tails; softplus exactly, without torch's switch to
    ``x`` above 20). The ELU formulas are in the module docstring; :math:`f'(0)` is
    irrelevant (a null set).

    References:
        Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs),
        Clevert, Unterthiner, Hochreiter, 2015, arXiv:1511.07289.

    Arguments:
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        mu: mean(s) of the pre-activation; any shape, broadcast against ``sigma``.
        sigma: standard deviation(s), finite and > 0.
        alpha: ELU/CELU/SELU ``alpha`` (> 0); default 1 (SELU: 1.6732632423543772...).
        scale: output scale of ELU/CELU/SELU; default 1 (SELU: 1.0507009873554804...).
        negative_slope: slope of ``leaky_relu`` for ``x <= 0``; default 0.01.

    Returns:
        A :class:`GaussianMoments`; floats for scalar inputs, arrays of the broadcast
        shape otherwise; ``method`` says ``"closed form"`` or which quadrature was used.

    Raises:
        ValueError: unknown activation (the message lists the allowed ones), ``sigma``
            not > 0, non-finite input, ``alpha <= 0``, or a parameter that the
            activation does not take.

    Example:
        >>> m = gaussian_moments("elu", 0.0, 1.0)
        >>> round(m.mean_slope, 12), m.method
        (0.761578291865, 'closed form')
    """
    name = normalize_activation_name(activation)
    if alpha is not None and name not in ("elu", "celu", "selu"):
        raise ValueError(f"alpha applies to elu, celu and selu only, not to {name!r}")
    if scale is not None and name not in ("elu", "celu", "selu"):
        raise ValueError(f"scale applies to elu, celu and selu only, not to {name!r}")
    if negative_slope is not None and name != "leaky_relu":
        raise ValueError(f"negative_slope applies to leaky_relu only, not to {name!r}")
    m, s, shape = _mu_sigma(mu, sigma)

    a, lam, slope_neg = 1.0, 1.0, 0.0
    if name in ("elu", "celu", "selu"):
        default_alpha, default_scale = (SELU_ALPHA, SELU_LAMBDA) if name == "selu" else (1, 1)
        a = check_alpha(default_alpha if alpha is None else alpha)
        lam = _check_real(default_scale if scale is None else scale, "scale")
    elif name == "leaky_relu":
        slope_neg = _check_real(
            0.01 if negative_slope is None else negative_slope, "negative_slope"
        )

    # overflow of a result (|mu| ~ 1e200) is reported below, not as a RuntimeWarning
    with np.errstate(over="ignore", invalid="ignore"):
        if name in ("elu", "celu", "selu"):
            if name == "celu" and a != 1.0:
                # celu(x; a) = a * elu(x / a; 1): moments of z / a ~ N(mu/a, (s/a)^2)
                mean, second, var, slope, slope_sq = _elu_moments(m / a, s / a, 1.0)
                mean, second, var = a * mean, a * a * second, a * a * var
            else:
                elu_alpha = 1.0 if name == "celu" else a
                mean, second, var, slope, slope_sq = _elu_moments(m, s, elu_alpha)
            vals = (lam * mean, lam**2 * second, lam**2 * var, lam * slope, lam**2 * slope_sq)
            method = "closed form"
        elif name in ("relu", "leaky_relu"):
            vals = _leaky_moments(m, s, slope_neg)
            method = "closed form"
        else:
            vals, method = _quadrature_moments(name, m, s)
    fields = ("mean", "second_moment", "variance", "mean_slope", "mean_slope_sq")
    for field, v in zip(fields, vals, strict=True):
        if not np.all(np.isfinite(v)):
            i = int(np.argmin(np.isfinite(v)))
            raise ValueError(
                f"{field} of {name} is not representable in float64 at mu={float(m[i])!r}, "
                f"sigma={float(s[i])!r} (overflow); use smaller |mu| or sigma"
            )
    mean, second, var, slope, slope_sq = (_shape_out(v, shape) for v in vals)
    return GaussianMoments(mean, second, var, slope, slope_sq, method)


def expected_slope(
    activation: str,
    mu: ArrayLike = 0.0,
    sigma: ArrayLike = 1.0,
    **params: float,
) -> FloatOrArray:
    r""":math:`E[f'(z)]` for :math:`z \sim \mathcal{N}(\mu, \sigma^2)` (see :func:`gaussian_moments`).

    For ELU (``alpha = 1``) and :math:`z \sim \mathcal{N}(0, 1)` this is
    :math:`1/2 + e^{1/2}\Phi(-1) = 0.76157829186512337\ldots`; for ReLU, 1/2.

    Arguments:
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        mu: mean(s) of the pre-activation.
        sigma: standard deviation(s), > 0.
        params: ``alpha``, ``scale`` or ``negative_slope``, as in :func:`gaussian_moments`.

    Example:
        >>> expected_slope("relu")
        0.5
    """
    return gaussian_moments(activation, mu, sigma, **params).mean_slope
