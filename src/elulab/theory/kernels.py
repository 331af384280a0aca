r"""Exact infinite-width kernels (NNGP and NTK) for the ELU family, in float64.

For a centred Gaussian pair :math:`(u, v) \sim \mathcal{N}(0, \Sigma)`,
:math:`\Sigma = \begin{pmatrix} s_{11} & s_{12} \\ s_{12} & s_{22} \end{pmatrix}`, and an
activation :math:`f`, one layer of an infinitely wide network maps :math:`\Sigma` through

.. math:: K_f(\Sigma) = \mathbb{E}[f(u) f(v)], \qquad N_f(\Sigma) = \mathbb{E}[f'(u) f'(v)]

(the NNGP and the NTK "step"). This module gives both in closed form for
:math:`f = \mathrm{ELU}(\cdot;\alpha)` (so also CELU and SELU) and ReLU, and assembles them
into the kernels of deep fully connected networks (:func:`nngp`, :func:`ntk`).

Derivation (written out with every integral in ``docs/kernels.md``). Write
:math:`\sigma_i = \sqrt{s_{ii}}`, :math:`\rho = s_{12}/(\sigma_1\sigma_2)`,
:math:`r = \sqrt{1-\rho^2}`, :math:`\psi = \arccos\rho`, :math:`\varphi_0 = 1/\sqrt{2\pi}`.
Split the plane into the sign quadrants of :math:`(u, v)`; on :math:`u > 0` ELU is
:math:`u`, on :math:`u < 0` it is :math:`\alpha(e^u - 1)`. Exponential tilting
(:math:`\mathbb{E}[e^{c\cdot w} g(w)] = e^{c^\top\Sigma c/2}\,\mathbb{E}[g(w + \Sigma c)]`)
turns every exponential term into a bivariate normal cdf :math:`\Phi_2(h, k; \rho)` with
shifted means:

.. math::
    G_{+-} &= \mathbb{E}[e^{v} 1\{u>0, v<0\}] = e^{s_{22}/2}\,\Phi_2(\rho\sigma_2, -\sigma_2; -\rho) \\
    G_{10} &= \mathbb{E}[e^{u} 1\{u<0, v<0\}] = e^{s_{11}/2}\,\Phi_2(-\sigma_1, -\rho\sigma_1; \rho) \\
    G_{11} &= \mathbb{E}[e^{u+v} 1\{u<0, v<0\}]
            = e^{(s_{11}+2s_{12}+s_{22})/2}\,\Phi_2(-\sigma_1-\rho\sigma_2, -\rho\sigma_1-\sigma_2; \rho)

(:math:`G_{-+}`, :math:`G_{01}` by symmetry), and Stein's lemma turns the first moment
:math:`\mathbb{E}[u\,e^{v} 1\{u>0,v<0\}]` into :math:`s_{12} G_{+-}` plus univariate terms.
With :math:`P_{++} = P_{--} = (\pi - \psi)/(2\pi)`:

.. math::
    K &= \frac{\sigma_1\sigma_2}{2\pi}\big(r + \rho(\pi - \psi)\big)
       + \alpha\big(T_{+-} + T_{-+}\big) + \alpha^2\big(G_{11} - G_{10} - G_{01} + P_{--}\big), \\
    T_{+-} &= \mathbb{E}[u (e^v - 1) 1\{u>0,v<0\}]
       = s_{12} G_{+-} + \tfrac{1}{2}\sigma_1\varphi_0\big(\operatorname{erfcx}(r\sigma_2/\sqrt2) - 1\big), \\
    N &= P_{++} + \alpha\big(G_{+-} + G_{-+}\big) + \alpha^2 G_{11}.

Evaluation. Each :math:`G` is :math:`e^{D^2/2}` times the Gaussian probability of a wedge
whose apex, at Mahalanobis distance :math:`D`, is its point nearest the origin (the
exponent is :math:`\le 0` on the quadrant). In whitened polar coordinates around the apex
this is :math:`\frac{1}{2\pi}\int g(D\cos\theta)\,d\theta` with
:math:`g(t) = 1 - t\,R(t)` (:math:`R` the Mills ratio), a sum or difference of the
canonical wedge :math:`C(p, q) = \frac{1}{2\pi}\int_0^{\arctan(q/p)} g(\sqrt{p^2+q^2}\cos
\theta)\,d\theta = e^{D^2/2}\big[\tfrac12\Phi(-q) - T(q, p/q)\big]` (Owen's :math:`T`).
Owen's form, even in log space, cancels catastrophically once :math:`p \gtrsim 2`
(:math:`\tfrac12 e^{D^2/2}\Phi(-q) \approx e^{p^2/2}` against a result of order
:math:`1/D^2`: at :math:`s_{11} = s_{22} = 100`, :math:`\rho = 0` it subtracts numbers of size
:math:`e^{50}` to get :math:`10^{-3}`). So :math:`C` is evaluated as the same integral: for
:math:`q \le p` by a 12-node Gauss-Legendre rule in :math:`\tau = \tan\theta` (a smooth,
positive integrand: relative error <= 1.1e-15 measured for every :math:`p \le 100`), and for
:math:`q > p` by the exact complement :math:`C(p,q) = \tfrac14\operatorname{erfcx}(p/\sqrt2)
\operatorname{erfcx}(q/\sqrt2) - C(q, p)`. No exponential is ever formed, so nothing
overflows or underflows for any variance. :func:`bivariate_normal_cdf` is built from the
same wedges (relative accuracy in the tails, where Owen's formula in float64 is noise).

For the NNGP at small variances (:math:`\sigma_1, \sigma_2 \le 1/2`) the sum above cancels
(each :math:`G \approx P_{--}` while :math:`K = O(\sigma^2)`, and for :math:`\alpha = 1`,
:math:`\rho = 0` even :math:`K = O(\sigma^4)`). There ELU is split as
:math:`f = \ell + \alpha\,\mathrm{r}`, :math:`\ell(x) = x\,1\{x>0\} + \alpha x\,1\{x<0\}`,
:math:`\mathrm{r}(x) = (e^x - 1 - x)1\{x<0\} \ge 0`: :math:`\mathbb{E}[\ell(u)\ell(v)]` is an
arc-cosine-type closed form, and the rest are integrals over the polar angle of
sign-definite power series of the exact radial integrals (Gauss-Legendre in the angle on each
quadrant; see ``docs/kernels.md``). At :math:`\rho = \pm 1` every formula above is exact as
written (the degenerate quadrants have zero width).

Accuracy (tests/test_theory_kernels.py, against 563 30-digit mpmath references over variances
1e-3..1e2, correlations -0.999..0.999 and ±1, alpha 0.1..3): maximum relative error 1.4e-13
for the ELU NNGP (one small and one larger variance, where K is a difference of terms ~400
times larger), 1.6e-15 for the NTK, a few ulp for equal variances.

References:
    Kernel Methods for Deep Learning, Cho and Saul, NeurIPS 2009 (arc-cosine kernels).
    Neural Tangent Kernel: Convergence and Generalization in Neural Networks, Jacot, Gabriel
    and Hongler, NeurIPS 2018, arXiv:1806.07572.
    Wide Neural Networks of Any Depth Evolve as Linear Models Under Gradient Descent, Lee et
    al., NeurIPS 2019, arXiv:1902.06720.
    Deep Neural Networks as Gaussian Processes, Lee et al., ICLR 2018, arXiv:1711.00165.
    Avoiding Kernel Fixed Points: Computing with ELU and GELU Infinite Networks, Tsuchida,
    Pearce, van der Heide, Roosta and Gallagher, AAAI 2021, arXiv:2002.08517.
    Tables for Computing Bivariate Normal Probabilities, Owen, Ann. Math. Statist. 27 (1956)
    (Owen's T function).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfcx, gammaln, ndtr

from elulab.functional import SELU_ALPHA, SELU_LAMBDA, check_alpha, normalize_activation_name

from .gaussian import _as_float_array, _check_real

__all__ = [
    "KERNEL_ACTIVATIONS",
    "bivariate_normal_cdf",
    "celu_nngp_step",
    "celu_ntk_step",
    "elu_nngp_step",
    "elu_ntk_step",
    "gauss_hermite_nngp_and_ntk",
    "gauss_hermite_steps",
    "kernel_summary",
    "nngp",
    "nngp_and_ntk",
    "nngp_step",
    "ntk",
    "ntk_step",
    "relu_nngp_step",
    "relu_ntk_step",
    "selu_nngp_step",
    "selu_ntk_step",
]

#: Activations with closed-form kernels here.
KERNEL_ACTIVATIONS: tuple[str, ...] = ("relu", "elu", "celu", "selu")

FloatOrArray = float | NDArray[np.float64]

_TWO_PI = 2.0 * math.pi
_SQRT2 = math.sqrt(2.0)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_PHI0 = 1.0 / math.sqrt(2.0 * math.pi)
_RHO_TOL = 1e-12  # |rho| <= 1 + _RHO_TOL is rounding and is treated as |rho| = 1

# canonical wedge: Gauss-Legendre in tau = tan(theta)
_WEDGE_NODES = 12
_WX, _WW = np.polynomial.legendre.leggauss(_WEDGE_NODES)
_G_CF_FROM = 4.0  # g(t) by the Laplace continued fraction for t >= 4
_G_CF_DEPTH = 40

# small-variance series (NNGP): polar-angle Gauss-Legendre, radial power series
_SERIES_MAX_SIGMA = 0.5
_SERIES_TERMS = 28  # |b|^n m_{n+2}/n! < 1e-20 for |b| <= 1/2 and n > 28
_ANGLE_NODES = 24
_AX, _AW = np.polynomial.legendre.leggauss(_ANGLE_NODES)
_N = np.arange(_SERIES_TERMS + 3, dtype=np.float64)
# m_k = int_0^inf R^k exp(-R^2/2) dR = 2^{(k-1)/2} Gamma((k+1)/2)
_LOG_M = 0.5 * (_N - 1.0) * math.log(2.0) + gammaln(0.5 * (_N + 1.0))
_LOG_FACT = gammaln(_N + 1.0)


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


def _split(a: NDArray) -> tuple[NDArray, NDArray]:
    c = 134217729.0 * a  # 2^27 + 1 (Veltkamp)
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: NDArray, b: NDArray) -> tuple[NDArray, NDArray]:
    """``a * b = p + e`` exactly (Dekker), for |a|, |b| < 1e150."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


class _Geometry:
    """Scales of a 2x2 covariance, each computed from the inputs without cancellation."""

    __slots__ = ("det", "lam", "psi", "rho", "s1", "s2", "s11", "s12", "s22", "sd", "shape")

    def __init__(self, s11: ArrayLike, s12: ArrayLike, s22: ArrayLike) -> None:
        a = _as_float_array(s11, "s11")
        b = _as_float_array(s12, "s12")
        c = _as_float_array(s22, "s22")
        try:
            a, b, c = np.broadcast_arrays(a, b, c)
        except ValueError as exc:
            raise ValueError(
                f"s11, s12, s22 must broadcast to one shape, got shapes {a.shape}, "
                f"{b.shape}, {c.shape}"
            ) from exc
        self.shape = a.shape
        a, b, c = (np.array(x, dtype=np.float64).ravel() for x in (a, b, c))
        for arr, name in ((a, "s11"), (c, "s22")):
            if np.any(arr <= 0.0):
                bad = float(arr[np.argmin(arr > 0.0)])
                raise ValueError(f"{name} must be > 0 (a variance), got {bad!r}")
        if np.any(np.maximum(a, c) > 1e300) or np.any(np.minimum(a, c) < 1e-300):
            raise ValueError("variances must lie in [1e-300, 1e300]")
        p1, e1 = _two_prod(a, c)
        p2, e2 = _two_prod(b, b)
        det = (p1 - p2) + (e1 - e2)
        bad = det < -_RHO_TOL * 2.0 * p1
        if np.any(bad):
            i = int(np.argmax(bad))
            corr = float(b[i] / math.sqrt(a[i] * c[i]))
            raise ValueError(
                "covariance [[s11, s12], [s12, s22]] must be positive semi-definite "
                f"(s12**2 <= s11*s22), got s11={float(a[i])!r}, s12={float(b[i])!r}, "
                f"s22={float(c[i])!r} (correlation {corr!r})"
            )
        self.det = np.maximum(det, 0.0)
        self.s11, self.s12, self.s22 = a, b, c
        self.s1, self.s2 = np.sqrt(a), np.sqrt(c)
        self.sd = np.sqrt(self.det)  # sqrt(det) = r s1 s2
        self.rho = np.clip(b / (self.s1 * self.s2), -1.0, 1.0)
        self.psi = np.arctan2(self.sd, b)  # arccos(rho), in [0, pi]
        self.lam = np.arctan2(self.sd, -b)  # pi - psi, without the cancellation near rho = -1

    def subset(self, mask: NDArray) -> _Geometry:
        sub = _Geometry.__new__(_Geometry)
        for name in ("det", "lam", "psi", "rho", "s1", "s11", "s12", "s2", "s22", "sd"):
            setattr(sub, name, getattr(self, name)[mask])
        sub.shape = (int(np.count_nonzero(mask)),)
        return sub

    def out(self, x: NDArray) -> FloatOrArray:
        if self.shape == ():
            return float(x[0])
        return x.reshape(self.shape)


# ---------------------------------------------------------------------------------------
# special functions
# ---------------------------------------------------------------------------------------


def _g(t: NDArray) -> NDArray:
    r""":math:`g(t) = 1 - t R(t) = \int_0^\infty x e^{-tx - x^2/2} dx`, ``t >= 0``.

    ``R(t) = sqrt(pi/2) erfcx(t/sqrt 2)`` is the Mills ratio; for ``t >= 4`` the difference
    would lose ``log10(t^2)`` digits, so ``g = R / (t + F)`` with ``F = 2/(t + 3/(t + ...))``
    (the Laplace continued fraction of ``1/R - t``, 40 levels: error < 1e-16 there).
    """
    if t.size == 0 or float(t.max()) < _G_CF_FROM:
        return 1.0 - t * _SQRT_HALF_PI * erfcx(t / _SQRT2)
    out = np.empty_like(t)
    small = t < _G_CF_FROM
    ts = t[small]
    out[small] = 1.0 - ts * _SQRT_HALF_PI * erfcx(ts / _SQRT2)
    tl = t[~small]
    if tl.size:
        f = np.zeros_like(tl)
        for k in range(_G_CF_DEPTH, 1, -1):
            f = k / (tl + f)
        out[~small] = _SQRT_HALF_PI * erfcx(tl / _SQRT2) / (tl + f)
    return out


def _wedge_gl(p: NDArray, q: NDArray) -> NDArray:
    """``C(p, q)`` for ``0 <= q <= p``, ``p > 0``: Gauss-Legendre in tau = tan(theta)."""
    d = np.hypot(p, q)
    half = 0.5 * (q / p)
    tau = half[:, None] * (_WX + 1.0)
    one_tau2 = 1.0 + tau * tau
    val = _g((d[:, None] / np.sqrt(one_tau2)).ravel()).reshape(tau.shape) / one_tau2
    return (val @ _WW) * half / _TWO_PI


def _wedge(p: NDArray, q: NDArray) -> NDArray:
    r"""Canonical scaled wedge :math:`C(p, q)`, ``p, q >= 0``.

    :math:`C(p,q) = \frac{1}{2\pi}\int_0^{\arctan(q/p)} g(D\cos\theta)\,d\theta`,
    :math:`D = \sqrt{p^2+q^2}`: :math:`e^{-D^2/2}C` is the probability, under a standard
    bivariate normal, of the wedge with apex at distance :math:`D` bounded by the ray from
    the origin through the apex and a ray at angle :math:`\arctan(q/p)` to it;
    :math:`C = e^{D^2/2}[\frac12\Phi(-q) - T(q, p/q)]`.
    """
    out = np.zeros_like(p)
    low = (q <= p) & (q > 0.0)
    out[low] = _wedge_gl(p[low], q[low])
    high = q > p
    ph, qh = p[high], q[high]
    sub = np.zeros_like(ph)
    pos = ph > 0.0
    sub[pos] = _wedge_gl(qh[pos], ph[pos])
    out[high] = 0.25 * erfcx(ph / _SQRT2) * erfcx(qh / _SQRT2) - sub
    return out


def _scaled_wedges(
    p1: NDArray, q1: NDArray, side1: NDArray, p2: NDArray, q2: NDArray, side2: NDArray
) -> NDArray:
    """Wedge with boundary rays ``(p_i, q_i)`` on sides ``side_i`` of the apex direction:
    the sum of the two canonical wedges if the rays lie on opposite sides, else their
    difference."""
    c1 = _wedge(p1, q1)
    c2 = _wedge(p2, q2)
    return np.where(side1 * side2 <= 0.0, c1 + c2, np.abs(c1 - c2))


def _em1(x: NDArray) -> NDArray:
    """``erfcx(x) - 1`` for ``x >= 0``, by its Taylor series below 1/2."""
    out = np.empty_like(x)
    small = x <= 0.5
    xs = x[small]
    acc = np.zeros_like(xs)
    for k in range(32, 0, -1):  # sum_{k>=1} (-x)^k / Gamma(k/2 + 1); 0.5^32/Gamma(17) ~ 1e-23
        acc = acc * (-xs) + 1.0 / math.gamma(0.5 * k + 1.0)
    out[small] = acc * (-xs)
    out[~small] = erfcx(x[~small]) - 1.0
    return out


# ---------------------------------------------------------------------------------------
# the ELU kernels
# ---------------------------------------------------------------------------------------


def _tilted(geo: _Geometry) -> dict[str, NDArray]:
    """The five tilted quadrant probabilities ``G`` as scaled wedges (see module doc).

    Each wedge has two boundary rays, given as ``(p, q)`` (``p = r c_i sigma_i`` along the
    apex direction, ``q`` the distance from the origin to the ray's line); ``G_{+-}`` and
    ``G_{01}`` share the ray ``(r sigma_2, |rho| sigma_2)``, ``G_{-+}`` and ``G_{10}`` the ray
    ``(r sigma_1, |rho| sigma_1)``, so four canonical wedges serve all five.
    """
    s1, s2, sd, s12 = geo.s1, geo.s2, geo.sd, geo.s12
    e1 = 0.25 * erfcx(s1 / _SQRT2)  # C(0, sigma_1): a right angle at the apex
    e2 = 0.25 * erfcx(s2 / _SQRT2)
    w1 = _wedge(sd / s2, np.abs(s12) / s2)
    w2 = _wedge(sd / s1, np.abs(s12) / s1)
    neg = s12 <= 0.0
    pos = s12 >= 0.0
    a = (geo.s11 + s12) / s1  # sigma_1 + rho sigma_2
    b = (geo.s22 + s12) / s2  # rho sigma_1 + sigma_2
    return {
        "pn": np.where(neg, e2 + w2, np.abs(e2 - w2)),
        "np": np.where(neg, e1 + w1, np.abs(e1 - w1)),
        "10": np.where(pos, w1 + e1, np.abs(w1 - e1)),
        "01": np.where(pos, w2 + e2, np.abs(w2 - e2)),
        "11": _scaled_wedges(sd / s2, np.abs(b), -np.sign(b), sd / s1, np.abs(a), np.sign(a)),
    }


def _elu_closed(geo: _Geometry, alpha: float, g: dict[str, NDArray]) -> tuple[NDArray, NDArray]:
    """NNGP and NTK steps of ELU(alpha) from the closed form (module docstring)."""
    s1, s2, s12, sd = geo.s1, geo.s2, geo.s12, geo.sd
    p_pp = geo.lam / _TWO_PI
    t_pp = _arc_cos_1(geo)
    t_pn = s12 * g["pn"] + 0.5 * s1 * _PHI0 * _em1(sd / (s1 * _SQRT2))
    t_np = s12 * g["np"] + 0.5 * s2 * _PHI0 * _em1(sd / (s2 * _SQRT2))
    t_nn = (g["11"] - g["10"]) - (g["01"] - p_pp)
    nngp = t_pp + alpha * (t_pn + t_np) + alpha * alpha * t_nn
    ntk = p_pp + alpha * (g["pn"] + g["np"]) + alpha * alpha * g["11"]
    return nngp, ntk


def _series_k2(b: NDArray) -> NDArray:
    r""":math:`\int_0^\infty R^2 e^{-R^2/2}(e^{Rb} - 1 - Rb)\,dR = \sum_{n\ge2} b^n m_{n+2}/n!`."""
    n = np.arange(2, _SERIES_TERMS + 1)
    coef = np.exp(_LOG_M[n + 2] - _LOG_FACT[n])
    acc = np.zeros_like(b)
    for c in coef[::-1]:
        acc = (acc + c) * b
    return acc * b


def _series_k11(a: NDArray, b: NDArray) -> NDArray:
    r""":math:`\int_0^\infty R e^{-R^2/2}(e^{Ra}-1-Ra)(e^{Rb}-1-Rb)\,dR` for ``a, b <= 0``.

    :math:`= \sum_{n\ge4} m_{n+1} A_n`, :math:`A_n = \sum_{j,k\ge2,\,j+k=n} a^j b^k/(j!\,k!)`,
    by :math:`n A_n = (a+b) A_{n-1} + a^2 b^{n-2}/(n-2)! + b^2 a^{n-2}/(n-2)!`,
    :math:`A_3 = 0`: every term has the sign :math:`(-1)^n` when ``a, b`` share a sign, so
    nothing cancels (a direct binomial expansion would, when ``|a| << |b|``).
    """
    s, a2, b2 = a + b, a * a, b * b
    ua, vb = 0.5 * a2, 0.5 * b2  # a^{n-2}/(n-2)!, b^{n-2}/(n-2)! at n = 4
    an = np.zeros_like(a)
    total = np.zeros_like(a)
    for n in range(4, _SERIES_TERMS + 1):
        if n > 4:
            ua = ua * a / (n - 2)
            vb = vb * b / (n - 2)
        an = (s * an + a2 * vb + b2 * ua) / n
        total += math.exp(_LOG_M[n + 1]) * an
    return total


def _angle_rule(length: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Gauss-Legendre nodes ``t`` in (0, L), their complements ``L - t``, and weights."""
    half = 0.5 * length[:, None]
    return half * (1.0 + _AX), half * (1.0 - _AX), half * _AW


def _elu_nngp_series(geo: _Geometry, alpha: float) -> NDArray:
    """ELU NNGP step for small variances: ``f = l + alpha * r`` and polar-angle quadrature."""
    s1, s2, s12, sd = geo.s1, geo.s2, geo.s12, geo.sd
    asin = np.arctan2(s12, sd)
    cp, cm = 0.5 * (1.0 + alpha), 0.5 * (1.0 - alpha)
    e_ll = cp * cp * s12 + cm * cm * (2.0 / math.pi) * (sd + s12 * asin)
    S1, S2 = s1[:, None], s2[:, None]
    # quadrant u > 0 > v (angle psi): a = s1 sin t, b = -s2 sin(psi - t)
    t, tc, w = _angle_rule(geo.psi)
    i_pn = np.sum(w * (S1 * np.sin(t)) * _series_k2(-S2 * np.sin(tc)), axis=1)
    i_np = np.sum(w * _series_k2(-S1 * np.sin(tc)) * (S2 * np.sin(t)), axis=1)
    # quadrant u, v < 0 (angle pi - psi): a = -s1 sin t, b = -s2 sin(L - t)
    t, tc, w = _angle_rule(geo.lam)
    a, b = -S1 * np.sin(t), -S2 * np.sin(tc)
    i_nn_a = np.sum(w * (-a) * _series_k2(b), axis=1)
    i_nn_b = np.sum(w * _series_k2(a) * (-b), axis=1)
    i_rr = np.sum(w * _series_k11(a, b), axis=1)
    # E[l(u) r(v)] = cp E[u r(v)] + cm E[|u| r(v)], E[u r(v)] = (s12/2) (erfcx(s2/sqrt2) - 1)
    e_lr = cp * 0.5 * s12 * _em1(s2 / _SQRT2) + cm * (i_pn + i_nn_a) / _TWO_PI
    e_rl = cp * 0.5 * s12 * _em1(s1 / _SQRT2) + cm * (i_np + i_nn_b) / _TWO_PI
    return e_ll + alpha * (e_lr + e_rl) + alpha * alpha * i_rr / _TWO_PI


def _elu_kernels(
    geo: _Geometry, alpha: float, *, nngp: bool = True, ntk: bool = True
) -> tuple[NDArray, NDArray]:
    """NNGP and NTK steps of ELU(alpha), scale 1 (an array of zeros for one not asked for)."""
    k = np.zeros_like(geo.s1)
    n = np.zeros_like(geo.s1)
    series = np.zeros(geo.s1.shape, dtype=bool)
    if nngp:
        series = np.maximum(geo.s1, geo.s2) <= _SERIES_MAX_SIGMA
        if np.any(series):
            k[series] = _elu_nngp_series(geo.subset(series), alpha)
    closed = ~series if not ntk else np.ones_like(series)
    if np.any(closed):
        sub = geo.subset(closed)
        kc, nc = _elu_closed(sub, alpha, _tilted(sub))
        n[closed] = nc
        if nngp:
            k[closed & ~series] = kc[~series[closed]]
    return k, n


def _arc_cos_1(geo: _Geometry) -> NDArray:
    r""":math:`\mathbb{E}[u^+ v^+] = \sigma_1\sigma_2(\sin L - L\cos L)/(2\pi)`,
    :math:`L = \pi - \psi`; as written it cancels when :math:`L \to 0` (:math:`\rho \to -1`,
    value :math:`L^3/3`), so there it is the series :math:`\sum_{n\ge1}(-1)^{n+1} 2n
    L^{2n+1}/(2n+1)!` (L <= 1: 10 terms leave < 1e-18 relative)."""
    big_l = geo.lam
    out = (geo.sd + geo.s12 * big_l) / _TWO_PI
    small = big_l <= 1.0
    if np.any(small):
        ls = big_l[small]
        l2 = ls * ls
        acc = np.zeros_like(ls)
        for n in range(10, 0, -1):
            acc = acc * (-l2) + 2.0 * n / math.factorial(2 * n + 1)
        out[small] = geo.s1[small] * geo.s2[small] * acc * ls * l2 / _TWO_PI
    return out


def _relu_kernels(geo: _Geometry) -> tuple[NDArray, NDArray]:
    """Arc-cosine kernels of degree 1 and 0 (Cho and Saul, 2009)."""
    return _arc_cos_1(geo), geo.lam / _TWO_PI


_CHUNK = 1 << 15  # entries per block: bounds the temporaries (entries x nodes)


def _kernels(
    name: str, alpha: float, geo: _Geometry, *, nngp: bool = True, ntk: bool = True
) -> tuple[NDArray, NDArray]:
    """Both steps for a resolved activation; scale and input scaling of celu/selu applied."""
    if name == "relu":
        return _relu_kernels(geo)
    if name == "celu" and alpha != 1.0:
        # celu(x; a) = a elu(x / a; 1): K = a^2 K_elu(S / a^2), N = N_elu(S / a^2)
        a2 = alpha * alpha
        k, n = _kernels("elu", 1.0, _scaled(geo, 1.0 / a2), nngp=nngp, ntk=ntk)
        return a2 * k, n
    elu_alpha = 1.0 if name == "celu" else alpha
    size = geo.s1.size
    k = np.empty(size)
    n = np.empty(size)
    for start in range(0, size, _CHUNK):
        sel = np.zeros(size, dtype=bool)
        sel[start : start + _CHUNK] = True
        k[sel], n[sel] = _elu_kernels(geo.subset(sel), elu_alpha, nngp=nngp, ntk=ntk)
    if name == "selu":
        lam2 = SELU_LAMBDA * SELU_LAMBDA
        return lam2 * k, lam2 * n
    return k, n


def _scaled(geo: _Geometry, c: float) -> _Geometry:
    out = _Geometry.__new__(_Geometry)
    out.shape = geo.shape
    out.s11, out.s12, out.s22 = geo.s11 * c, geo.s12 * c, geo.s22 * c
    out.det = geo.det * (c * c)
    out.s1, out.s2 = np.sqrt(out.s11), np.sqrt(out.s22)
    out.sd = np.sqrt(out.det)
    out.rho, out.psi, out.lam = geo.rho, geo.psi, geo.lam
    return out


def _resolve(activation: str, alpha: float | None) -> tuple[str, float]:
    name = normalize_activation_name(activation)
    if name not in KERNEL_ACTIVATIONS:
        raise ValueError(
            f"no closed-form kernel for activation {name!r}; allowed: "
            f"{', '.join(KERNEL_ACTIVATIONS)}"
        )
    if name == "relu":
        if alpha is not None:
            raise ValueError("alpha applies to elu, celu and selu only, not to 'relu'")
        return name, 0.0
    default = SELU_ALPHA if name == "selu" else 1.0
    return name, check_alpha(default if alpha is None else alpha)


# ---------------------------------------------------------------------------------------
# public API: one layer
# ---------------------------------------------------------------------------------------


def nngp_step(
    activation: str, s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, *, alpha: float | None = None
) -> FloatOrArray:
    r""":math:`\mathbb{E}[f(u) f(v)]` for :math:`(u, v) \sim \mathcal{N}(0, [[s_{11}, s_{12}],
    [s_{12}, s_{22}]])`, in closed form (module docstring).

    Arguments:
        activation: ``"relu"``, ``"elu"``, ``"celu"`` or ``"selu"`` (:data:`KERNEL_ACTIVATIONS`).
        s11, s12, s22: the covariance entries; any shapes that broadcast together;
            ``s11, s22 > 0`` and ``s12**2 <= s11 * s22`` (a correlation within 1e-12 of ±1
            is rounding and is treated as ±1).
        alpha: ELU/CELU ``alpha`` (default 1); for SELU the negative saturation (default
            :data:`elulab.functional.SELU_ALPHA`, scale :data:`~elulab.functional.SELU_LAMBDA`).

    Returns:
        A float for scalar inputs, else an array of the broadcast shape.

    Raises:
        ValueError: unknown activation, a variance <= 0, a covariance that is not positive
            semi-definite, non-finite input, ``alpha <= 0`` or ``alpha`` given for ReLU.

    Example:
        >>> round(nngp_step("relu", 1.0, 0.0, 1.0), 15)  # 1 / (2 pi)
        0.159154943091895
    """
    name, a = _resolve(activation, alpha)
    geo = _Geometry(s11, s12, s22)
    return geo.out(_kernels(name, a, geo, ntk=False)[0])


def ntk_step(
    activation: str, s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, *, alpha: float | None = None
) -> FloatOrArray:
    r""":math:`\mathbb{E}[f'(u) f'(v)]` for :math:`(u, v) \sim \mathcal{N}(0, [[s_{11}, s_{12}],
    [s_{12}, s_{22}]])`, in closed form (arguments as :func:`nngp_step`).

    By Price's theorem this is :math:`\partial\,\mathbb{E}[f(u)f(v)]/\partial s_{12}`.

    Example:
        >>> ntk_step("relu", 1.0, 0.0, 1.0)
        0.25
    """
    name, a = _resolve(activation, alpha)
    geo = _Geometry(s11, s12, s22)
    return geo.out(_kernels(name, a, geo, nngp=False)[1])


def elu_nngp_step(
    s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, alpha: float = 1.0
) -> FloatOrArray:
    r"""ELU NNGP step :math:`\mathbb{E}[\mathrm{elu}(u)\,\mathrm{elu}(v)]` (see :func:`nngp_step`).

    Example:
        >>> round(elu_nngp_step(1.0, 1.0, 1.0), 12)  # E[elu(z)^2], z ~ N(0, 1)
        0.644945417493
    """
    return nngp_step("elu", s11, s12, s22, alpha=alpha)


def elu_ntk_step(
    s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, alpha: float = 1.0
) -> FloatOrArray:
    r"""ELU NTK step :math:`\mathbb{E}[\mathrm{elu}'(u)\,\mathrm{elu}'(v)]` (see :func:`ntk_step`).

    Example:
        >>> round(elu_ntk_step(1.0, 0.0, 1.0), 12)  # (1/2 + e^{1/2} Phi(-1))^2
        0.58000149464
    """
    return ntk_step("elu", s11, s12, s22, alpha=alpha)


def celu_nngp_step(
    s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, alpha: float = 1.0
) -> FloatOrArray:
    r"""CELU NNGP step; :math:`\mathrm{celu}(x;\alpha) = \alpha\,\mathrm{elu}(x/\alpha; 1)`, so
    :math:`K_{\mathrm{celu}}(\Sigma) = \alpha^2 K_{\mathrm{elu}}(\Sigma/\alpha^2)`.

    Example:
        >>> celu_nngp_step(1.0, 0.5, 1.0) == elu_nngp_step(1.0, 0.5, 1.0)
        True
    """
    return nngp_step("celu", s11, s12, s22, alpha=alpha)


def celu_ntk_step(
    s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, alpha: float = 1.0
) -> FloatOrArray:
    r"""CELU NTK step, :math:`N_{\mathrm{celu}}(\Sigma) = N_{\mathrm{elu}}(\Sigma/\alpha^2)`.

    Example:
        >>> float(celu_ntk_step(4.0, 0.0, 4.0, alpha=2.0)) == float(elu_ntk_step(1.0, 0.0, 1.0))
        True
    """
    return ntk_step("celu", s11, s12, s22, alpha=alpha)


def selu_nngp_step(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike) -> FloatOrArray:
    r"""SELU NNGP step, :math:`\lambda^2 K_{\mathrm{elu}}(\Sigma; \alpha_{01})`.

    Example:
        >>> round(selu_nngp_step(1.0, 1.0, 1.0), 12)  # SELU keeps unit variance
        1.0
    """
    return nngp_step("selu", s11, s12, s22)


def selu_ntk_step(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike) -> FloatOrArray:
    r"""SELU NTK step, :math:`\lambda^2 N_{\mathrm{elu}}(\Sigma; \alpha_{01})`.

    Example:
        >>> round(selu_ntk_step(1.0, 1.0, 1.0), 6)  # E[selu'(z)^2], z ~ N(0, 1)
        1.071575
    """
    return ntk_step("selu", s11, s12, s22)


def relu_nngp_step(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike) -> FloatOrArray:
    r"""ReLU NNGP step, the arc-cosine kernel of degree 1 (Cho and Saul, 2009):
    :math:`\frac{\sigma_1\sigma_2}{2\pi}(\sin\psi + (\pi - \psi)\cos\psi)`, :math:`\psi = \arccos\rho`.

    Example:
        >>> relu_nngp_step(2.0, 2.0, 2.0)
        1.0
    """
    return nngp_step("relu", s11, s12, s22)


def relu_ntk_step(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike) -> FloatOrArray:
    r"""ReLU NTK step, the arc-cosine kernel of degree 0: :math:`(\pi - \psi)/(2\pi)`.

    Example:
        >>> relu_ntk_step(1.0, -1.0, 1.0)
        0.0
    """
    return ntk_step("relu", s11, s12, s22)


def _variances(weight_var: float, bias_var: float) -> tuple[float, float]:
    """``(weight_var, bias_var)`` checked: finite, ``weight_var > 0``, ``bias_var >= 0``."""
    wv = _check_real(weight_var, "weight_var")
    bv = _check_real(bias_var, "bias_var")
    if wv <= 0.0:
        raise ValueError(f"weight_var must be > 0, got {weight_var!r}")
    if bv < 0.0:
        raise ValueError(f"bias_var must be >= 0, got {bias_var!r}")
    return wv, bv


def kernel_summary(
    activation: str, alpha: float | None, s11: float, s12: float, s22: float
) -> dict[str, float | str | None]:
    """Both kernel steps for one covariance, for the command line.

    Arguments:
        activation: ``"relu"``, ``"elu"``, ``"celu"`` or ``"selu"``.
        alpha: the activation's ``alpha`` or ``None`` for its default (must be ``None`` for ReLU).
        s11, s12, s22: one covariance (real numbers).

    Returns:
        ``{"activation", "alpha", "s11", "s12", "s22", "correlation", "nngp_step", "ntk_step"}``
        (``alpha`` is the value used, ``None`` for ReLU).

    Raises:
        ValueError: one line naming what is wrong (unknown activation, variance <= 0,
            covariance not positive semi-definite, non-finite number, bad alpha).

    Example:
        >>> kernel_summary("relu", None, 1.0, 0.0, 1.0)["ntk_step"]
        0.25
    """
    values = [_check_real(v, n) for v, n in ((s11, "s11"), (s12, "s12"), (s22, "s22"))]
    name, a = _resolve(activation, alpha)
    geo = _Geometry(*values)
    k, n = _kernels(name, a, geo)
    return {
        "activation": name,
        "alpha": None if name == "relu" else a,
        "s11": values[0],
        "s12": values[1],
        "s22": values[2],
        "correlation": float(geo.rho[0]),
        "nngp_step": float(k[0]),
        "ntk_step": float(n[0]),
    }


# ---------------------------------------------------------------------------------------
# public API: the bivariate normal cdf
# ---------------------------------------------------------------------------------------


def _phi2_lower(h: NDArray, k: NDArray, rho: NDArray, r: NDArray) -> NDArray:
    """``Phi2(h, k; rho)`` where its apex is its point nearest the origin
    (``h - rho k <= 0`` and ``k - rho h <= 0``): ``exp(-D^2/2)`` times a scaled wedge."""
    out = np.empty_like(h)
    origin = (h == 0.0) & (k == 0.0)
    out[origin] = 0.25 + np.arcsin(rho[origin]) / _TWO_PI
    o = ~origin
    h, k, rho, r = h[o], k[o], rho[o], r[o]
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.where(r > 0.0, (rho * k - h) / r, 0.0)
        p2 = np.where(r > 0.0, (rho * h - k) / r, 0.0)
    wedge = _scaled_wedges(p1, np.abs(k), np.sign(k), p2, np.abs(h), -np.sign(h))
    with np.errstate(under="ignore"):
        out[o] = np.exp(-0.5 * (p1 * p1 + k * k)) * wedge
    return out


def bivariate_normal_cdf(h: ArrayLike, k: ArrayLike, rho: ArrayLike) -> FloatOrArray:
    r""":math:`\Phi_2(h, k; \rho) = P(X \le h, Y \le k)` for standard normals of correlation
    :math:`\rho`, with relative accuracy in the tails.

    Owen (1956): :math:`\Phi_2 = \tfrac12\Phi(h) + \tfrac12\Phi(k) - T(h, a_h) - T(k, a_k) -
    \beta`, :math:`a_h = (k - \rho h)/(h\sqrt{1-\rho^2})`. Each of its two halves is the
    probability of the part of the quadrant on one side of the line from the origin through
    the apex :math:`(h, k)`: a canonical wedge :math:`C` of the module docstring, which is
    evaluated without cancellation. The value is computed, depending on the signs of
    :math:`h - \rho k` and :math:`k - \rho h`, as :math:`\Phi_2(h, k; \rho)`,
    :math:`\Phi(h) - \Phi_2(h, -k; -\rho)`, :math:`\Phi(k) - \Phi_2(-h, k; -\rho)` or
    :math:`1 - \Phi(-h) - \Phi(-k) + \Phi_2(-h, -k; \rho)`, so that the :math:`\Phi_2` on the
    right always has its apex as its point nearest the origin and is a product
    :math:`e^{-D^2/2}\times` (a sum or difference of canonical wedges).

    Arguments:
        h, k: upper limits (broadcast together with ``rho``); finite.
        rho: correlation in [-1, 1].

    Example:
        >>> round(bivariate_normal_cdf(0.0, 0.0, 0.5), 15)  # 1/4 + arcsin(1/2) / (2 pi)
        0.333333333333333
    """
    ha = _as_float_array(h, "h")
    ka = _as_float_array(k, "k")
    ra = _as_float_array(rho, "rho")
    if np.any(np.abs(ra) > 1.0):
        raise ValueError(f"rho must lie in [-1, 1], got {rho!r}")
    ha, ka, ra = np.broadcast_arrays(ha, ka, ra)
    shape = ha.shape
    ha, ka, ra = (np.array(x, dtype=np.float64).ravel() for x in (ha, ka, ra))
    r = np.sqrt((1.0 - ra) * (1.0 + ra))
    out = np.empty_like(ha)
    one = ra == 1.0
    out[one] = ndtr(np.minimum(ha[one], ka[one]))
    minus = ra == -1.0
    out[minus] = np.where(ha[minus] + ka[minus] > 0.0, ndtr(ha[minus]) - ndtr(-ka[minus]), 0.0)
    inner = ~(one | minus)
    dh = ha - ra * ka  # >= 0: the edge X = h is not the nearest part
    dk = ka - ra * ha
    cases = (
        (inner & (dh <= 0) & (dk <= 0), 1.0, 1.0, 1.0),
        (inner & (dh <= 0) & (dk > 0), 1.0, -1.0, -1.0),
        (inner & (dh > 0) & (dk <= 0), -1.0, 1.0, -1.0),
        (inner & (dh > 0) & (dk > 0), -1.0, -1.0, 1.0),
    )
    for mask, sh, sk, sr in cases:
        if not np.any(mask):
            continue
        hm, km, rm, rr = sh * ha[mask], sk * ka[mask], sr * ra[mask], r[mask]
        tail = _phi2_lower(hm, km, rm, rr)
        if sh > 0 and sk > 0:
            out[mask] = tail
        elif sh > 0:
            out[mask] = ndtr(ha[mask]) - tail
        elif sk > 0:
            out[mask] = ndtr(ka[mask]) - tail
        else:
            out[mask] = (ndtr(ha[mask]) - ndtr(-ka[mask])) + tail
    out = np.clip(out, 0.0, 1.0)
    return float(out[0]) if shape == () else out.reshape(shape)


# ---------------------------------------------------------------------------------------
# public API: deep fully connected networks
# ---------------------------------------------------------------------------------------


def _inputs(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = _as_float_array(x, name)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D array (n inputs, d features), got shape {arr.shape}"
        )
    return arr


def _network(
    x1: ArrayLike,
    x2: ArrayLike | None,
    depth: int,
    activation: str,
    alpha: float | None,
    weight_var: float,
    bias_var: float,
    want_ntk: bool,
) -> tuple[NDArray, NDArray]:
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
        raise ValueError(f"depth must be an int >= 0 (the number of hidden layers), got {depth!r}")
    wv, bv = _variances(weight_var, bias_var)
    name, a = _resolve(activation, alpha)
    a1 = _inputs(x1, "x1")
    same = x2 is None
    a2 = a1 if same else _inputs(x2, "x2")
    if a2.shape[1] != a1.shape[1]:
        raise ValueError(
            f"x1 and x2 must have the same number of features, got {a1.shape[1]} and {a2.shape[1]}"
        )
    d = a1.shape[1]
    k12 = wv * (a1 @ a2.T) / d + bv
    if same:
        d1 = d2 = np.diag(k12).copy()
    else:
        d1 = wv * np.einsum("ij,ij->i", a1, a1) / d + bv
        d2 = wv * np.einsum("ij,ij->i", a2, a2) / d + bv
    for diag, xname in ((d1, "x1"), (d2, "x2")):
        if np.any(diag <= 0.0):
            i = int(np.argmin(diag > 0.0))
            raise ValueError(
                f"row {i} of {xname} is zero and bias_var is 0: its pre-activation variance is "
                "0; use bias_var > 0 or non-zero inputs"
            )
    theta = k12.copy()
    if same:  # the upper triangle is enough
        iu = np.triu_indices(a1.shape[0])
        k, t = k12[iu], theta[iu]
        s11, s22 = d1[iu[0]], d2[iu[1]]
    else:
        k, t = k12.ravel(), theta.ravel()
        s11 = np.repeat(d1, a2.shape[0])
        s22 = np.tile(d2, a1.shape[0])
    for _ in range(depth):
        bound = np.sqrt(s11 * s22)
        geo = _Geometry(s11, np.clip(k, -bound, bound), s22)
        kk, nn = _kernels(name, a, geo, ntk=want_ntk)
        diag_geo = _Geometry(d1, d1, d1)
        new_d1 = wv * _kernels(name, a, diag_geo, ntk=False)[0] + bv
        if same:
            new_d2 = new_d1
        else:
            new_d2 = wv * _kernels(name, a, _Geometry(d2, d2, d2), ntk=False)[0] + bv
        k = wv * kk + bv
        if want_ntk:
            t = k + wv * nn * t
        d1, d2 = new_d1, new_d2
        if same:
            s11, s22 = d1[iu[0]], d2[iu[1]]
        else:
            s11, s22 = np.repeat(d1, a2.shape[0]), np.tile(d2, a1.shape[0])
    shape = (a1.shape[0], a2.shape[0])
    if same:
        out_k, out_t = np.empty(shape), np.empty(shape)
        out_k[iu] = k
        out_k.T[iu] = k
        out_t[iu] = t
        out_t.T[iu] = t
        return out_k, out_t
    return k.reshape(shape), t.reshape(shape)


def nngp(
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    depth: int = 1,
    activation: str = "elu",
    alpha: float | None = None,
    weight_var: float = 1.0,
    bias_var: float = 0.0,
) -> NDArray[np.float64]:
    r"""NNGP kernel matrix of an infinitely wide fully connected network.

    The network has ``depth`` hidden layers of width :math:`\to\infty` and a linear readout:
    :math:`h^{1} = W^{0}x/\sqrt{d} + b^{0}`, :math:`h^{l+1} = W^{l} f(h^{l})/\sqrt{n_l} +
    b^{l}`, every weight :math:`\sim\mathcal{N}(0, \sigma_w^2)` (``weight_var``) and bias
    :math:`\sim\mathcal{N}(0, \sigma_b^2)` (``bias_var``). The output covariance is
    :math:`K^{L}` (``L = depth``) of the recursion

    .. math:: K^{0}(x, x') = \sigma_w^2\,x\cdot x'/d + \sigma_b^2, \qquad
              K^{l+1} = \sigma_w^2\,\mathbb{E}[f(u) f(v)] + \sigma_b^2,

    :math:`(u, v) \sim \mathcal{N}(0, [[K^l(x,x), K^l(x,x')], [K^l(x,x'), K^l(x',x')]])`
    (Lee et al. 2018; neural-tangents' ``stax.serial(Dense, f, Dense, ...)`` with
    ``W_std = sigma_w``, ``b_std = sigma_b``).

    Arguments:
        x1: inputs, shape ``(n1, d)``.
        x2: inputs, shape ``(n2, d)``; ``None`` for ``x1`` against itself.
        depth: number of hidden layers (>= 0; 0 gives :math:`K^0`).
        activation: ``"relu"``, ``"elu"``, ``"celu"`` or ``"selu"``.
        alpha: the activation's alpha (see :func:`nngp_step`).
        weight_var: :math:`\sigma_w^2 > 0`.
        bias_var: :math:`\sigma_b^2 \ge 0`.

    Returns:
        The ``(n1, n2)`` float64 kernel matrix.

    Raises:
        ValueError: bad shapes, a zero input with ``bias_var = 0``, or bad parameters.

    Example:
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> nngp(x, depth=1, activation="relu", weight_var=2.0).round(6).tolist()  # 1/pi off the diagonal
        [[1.0, 0.31831], [0.31831, 1.0]]
    """
    return _network(x1, x2, depth, activation, alpha, weight_var, bias_var, False)[0]


def ntk(
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    depth: int = 1,
    activation: str = "elu",
    alpha: float | None = None,
    weight_var: float = 1.0,
    bias_var: float = 0.0,
) -> NDArray[np.float64]:
    r"""Neural tangent kernel matrix of the network of :func:`nngp` (NTK parameterisation).

    With the parameters scaled as in Jacot et al. (2018) and Lee et al. (2019) (every
    layer computes :math:`\sigma_w W x/\sqrt{n} + \sigma_b b` with standard normal
    :math:`W, b`: neural-tangents' ``parameterization="ntk"``),

    .. math:: \Theta^{0} = K^{0}, \qquad
              \Theta^{l+1} = K^{l+1} + \sigma_w^2\,\mathbb{E}[f'(u) f'(v)]\,\Theta^{l},

    and the output is :math:`\Theta^{L}`. Arguments as :func:`nngp`.

    Example:
        >>> x = np.array([[1.0, 0.0]])
        >>> ntk(x, depth=1, activation="relu", weight_var=2.0)  # K^1 + 2 * (1/2) * K^0
        array([[2.]])
    """
    return _network(x1, x2, depth, activation, alpha, weight_var, bias_var, True)[1]


def nngp_and_ntk(
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    depth: int = 1,
    activation: str = "elu",
    alpha: float | None = None,
    weight_var: float = 1.0,
    bias_var: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(nngp(...), ntk(...))`` from one pass of the recursion (arguments as :func:`nngp`).

    Example:
        >>> k, t = nngp_and_ntk(np.array([[1.0, 0.0]]), activation="relu", weight_var=2.0)
        >>> float(k[0, 0]), float(t[0, 0])
        (1.0, 2.0)
    """
    return _network(x1, x2, depth, activation, alpha, weight_var, bias_var, True)


# ---------------------------------------------------------------------------------------
# public API: any activation of the registry, by Gauss-Hermite quadrature
# ---------------------------------------------------------------------------------------

_GH_BLOCK = 1 << 16  # entries x nodes^2 per block (measured fastest of 2^14..2^18)


def gauss_hermite_steps(
    activation: str, s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, *, nodes: int = 32
) -> tuple[FloatOrArray, FloatOrArray]:
    r"""``(E[f(u) f(v)], E[f'(u) f'(v)])`` for any activation of the registry, by quadrature.

    With :math:`u = \sigma_1 z_1`, :math:`v = \sigma_2(\rho z_1 + \sqrt{1-\rho^2}\,z_2)` for
    independent standard normals :math:`z_1, z_2`, each expectation is the product
    Gauss-Hermite rule (probabilists' nodes :math:`z_i` and weights :math:`w_i`, ``nodes``
    per dimension, exact for polynomials of degree ``2 nodes - 1`` in each variable):

    .. math:: \mathbb{E}[g(u) h(v)] \approx \sum_i w_i\, g(\sigma_1 z_i) \sum_j w_j\,
              h\big(\sigma_2(\rho z_i + \sqrt{1-\rho^2}\, z_j)\big),

    the method of neural-tangents' ``stax.ElementwiseNumerical`` (Novak et al. 2020), here
    in float64 for the activations of :data:`elulab.functional.ACTIVATION_NAMES` with their
    default parameters (``f'`` from :func:`elulab.functional.activation_derivative`). It is
    for activations without a closed form here (GELU, SiLU, tanh, ...). For smooth ``f`` it
    converges geometrically, the slower the larger the variance (the activation's curved part
    shrinks to a width ``1/sigma`` in ``z``): the GELU NNGP step at equal variances ``q``,
    largest relative error over correlations in [-0.999, 0.999], measured against a composite
    Gauss-Legendre rule, is 1.3e-7 / 5e-10 / 3e-15 (24 / 32 / 64 nodes) at ``q = 1``,
    2e-4 / 7e-6 / 2e-11 at ``q = 2.1``, 3e-2 / 6e-3 / 1.3e-5 at ``q = 5``. At a kink it
    converges only algebraically (ReLU, and the ELU family's ``f'``): use :func:`nngp_step`
    and :func:`ntk_step` there (tests/test_theory_gauss_hermite.py states the errors).

    Arguments:
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        s11, s12, s22: the covariance entries, as in :func:`nngp_step`.
        nodes: quadrature nodes per dimension (>= 2); cost ``nodes**2`` per entry.

    Returns:
        The NNGP and NTK steps, floats for scalar inputs, else arrays of the broadcast shape.

    Raises:
        ValueError: unknown activation, ``nodes < 2``, or a bad covariance.

    Example:
        >>> k, n = gauss_hermite_steps("sin", 1.0, 0.5, 1.0)  # e^{-1} sinh(1/2), e^{-1} cosh(1/2)
        >>> abs(k - math.exp(-1) * math.sinh(0.5)) < 1e-15, abs(n - math.exp(-1) * math.cosh(0.5)) < 1e-15
        (True, True)
    """
    import torch

    from elulab.functional import activation_derivative, activation_function

    name = normalize_activation_name(activation)
    if isinstance(nodes, bool) or not isinstance(nodes, numbers.Integral) or nodes < 2:
        raise ValueError(f"nodes must be an int >= 2 (nodes per dimension), got {nodes!r}")
    geo = _Geometry(s11, s12, s22)
    f, df = activation_function(name), activation_derivative(name)
    z, w = np.polynomial.hermite_e.hermegauss(int(nodes))
    zt, wt = torch.as_tensor(z), torch.as_tensor(w / math.sqrt(_TWO_PI))
    r = np.sqrt((1.0 - geo.rho) * (1.0 + geo.rho))
    size = geo.s1.size
    k, n = np.empty(size), np.empty(size)
    step = max(1, _GH_BLOCK // (int(nodes) ** 2))
    with torch.no_grad():
        for a in range(0, size, step):
            sl = slice(a, a + step)
            s1, s2, rho, rr = (
                torch.as_tensor(x[sl])[:, None] for x in (geo.s1, geo.s2, geo.rho, r)
            )
            u = s1 * zt
            v = (s2 * rho * zt)[:, :, None] + (s2 * rr * zt)[:, None, :]
            k[sl] = ((f(u) * wt) * (f(v) @ wt)).sum(-1).numpy()
            n[sl] = ((df(u) * wt) * (df(v) @ wt)).sum(-1).numpy()
    return geo.out(k), geo.out(n)


def gauss_hermite_nngp_and_ntk(
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    depth: int = 1,
    activation: str = "gelu",
    weight_var: float = 1.0,
    bias_var: float = 0.0,
    *,
    nodes: int = 32,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""NNGP and NTK matrices of :func:`nngp_and_ntk` for any activation, each layer's steps
    by :func:`gauss_hermite_steps` (the recursions of :func:`nngp` and :func:`ntk`).

    Arguments as :func:`nngp` (no ``alpha``: the registry's default parameters), and
    ``nodes`` as :func:`gauss_hermite_steps`. For ``x2 = None`` only the upper triangle is
    computed.

    Example:
        >>> x = np.array([[1.0, 0.0], [0.6, 0.8]])
        >>> k, t = gauss_hermite_nngp_and_ntk(x, activation="gelu", weight_var=2.0, nodes=64)
        >>> kk, tt = gauss_hermite_nngp_and_ntk(x, x, activation="gelu", weight_var=2.0, nodes=64)
        >>> bool(np.allclose(k, kk, rtol=1e-14) and np.allclose(t, tt, rtol=1e-14))
        True
    """
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
        raise ValueError(f"depth must be an int >= 0 (the number of hidden layers), got {depth!r}")
    wv, bv = _variances(weight_var, bias_var)
    a1 = _inputs(x1, "x1")
    a2 = a1 if x2 is None else _inputs(x2, "x2")
    if a2.shape[1] != a1.shape[1]:
        raise ValueError(
            f"x1 and x2 must have the same number of features, got {a1.shape[1]} and {a2.shape[1]}"
        )
    d = a1.shape[1]
    rows, cols = np.triu_indices(len(a1)) if x2 is None else np.indices((len(a1), len(a2)))
    rows, cols = rows.ravel(), cols.ravel()
    d1 = wv * np.einsum("ij,ij->i", a1, a1) / d + bv
    d2 = wv * np.einsum("ij,ij->i", a2, a2) / d + bv
    if np.any(d1 <= 0.0) or np.any(d2 <= 0.0):
        raise ValueError("an input row is zero and bias_var is 0: its pre-activation variance is 0")
    k = wv * (a1 @ a2.T)[rows, cols] / d + bv
    t = k.copy()
    for _ in range(depth):
        s11, s22 = d1[rows], d2[cols]
        bound = np.sqrt(s11 * s22)
        kk, nn = gauss_hermite_steps(activation, s11, np.clip(k, -bound, bound), s22, nodes=nodes)
        k = wv * kk + bv
        t = k + wv * nn * t
        d1 = wv * gauss_hermite_steps(activation, d1, d1, d1, nodes=nodes)[0] + bv
        d2 = (
            d1
            if x2 is None
            else wv * gauss_hermite_steps(activation, d2, d2, d2, nodes=nodes)[0] + bv
        )
    out_k, out_t = np.empty((len(a1), len(a2))), np.empty((len(a1), len(a2)))
    out_k[rows, cols], out_t[rows, cols] = k, t
    if x2 is None:
        out_k[cols, rows], out_t[cols, rows] = k, t
    return out_k, out_t
