r"""Mean-field signal propagation in deep random networks (float64).

A fully connected network with weights :math:`\mathcal{N}(0, \sigma_w^2/n)` and biases
:math:`\mathcal{N}(0, \sigma_b^2)` propagates, at infinite width, the pre-activation
length :math:`q^l` of an input and the correlation :math:`c^l` of two inputs of equal
length through (Poole et al. 2016; Schoenholz et al. 2017)

.. math::
    q^{l+1} = \mathcal{V}(q^l) = \sigma_w^2\,\mathbb{E}_z[f(\sqrt{q^l} z)^2] + \sigma_b^2, \qquad
    c^{l+1} = \mathcal{C}(c^l) = \frac{\sigma_w^2\,\mathbb{E}[f(u_1) f(u_2)] + \sigma_b^2}{q^*},

:math:`z \sim \mathcal{N}(0, 1)`, :math:`(u_1, u_2) \sim \mathcal{N}(0, q^*[[1, c], [c, 1]])`.
At the stable fixed point :math:`q^*` of the length map,

.. math::
    \chi_1 = \sigma_w^2\,\mathbb{E}[f'(\sqrt{q^*} z)^2], \qquad
    \mathcal{V}'(q^*) = \chi_1 + \sigma_w^2\,\mathbb{E}[f''(\sqrt{q^*} z) f(\sqrt{q^*} z)], \qquad
    \chi_c = \mathcal{C}'(c^*) = \sigma_w^2\,\mathbb{E}[f'(u_1) f'(u_2)]\big|_{c^*},

and the depth scales are :math:`\xi_q = -1/\log\mathcal{V}'(q^*)`,
:math:`\xi_c = -1/\log\chi_c` (:math:`|q^l - q^*| \sim e^{-l/\xi_q}`,
:math:`|c^l - c^*| \sim e^{-l/\xi_c}`). :math:`\chi_1 < 1` is the ordered phase
(:math:`c^* = 1`), :math:`\chi_1 > 1` the chaotic one (:math:`c^* < 1`), and
:math:`\chi_1 = 1` the edge of chaos, where :math:`\xi_c = \infty`.

Evaluation: the one-dimensional expectations come from
:func:`elulab.theory.gaussian.gaussian_moments` (closed form for the ELU family, ReLU and
LeakyReLU, quadrature otherwise); :math:`\mathbb{E}[f''f]` is
:math:`\lambda^2\alpha^2(Q_2 - Q_1)` for :math:`\lambda\,\mathrm{elu}(\cdot;\alpha)`
(:math:`Q_k = \mathbb{E}[e^{kx}1\{x<0\}] = \tfrac12\operatorname{erfcx}(k\sqrt{q}/\sqrt2)`),
0 for ReLU and LeakyReLU (:math:`f(0) = 0` meets the kink), and otherwise
:math:`\mathbb{E}[z f(\sqrt q z) f'(\sqrt q z)]/\sqrt q - \mathbb{E}[f'^2]` (Stein's lemma) by
composite Gauss-Legendre quadrature in :math:`z` (panels of width :math:`\min(1, 1/\sqrt q)`
on [-12, 12]); the two-dimensional ones are the closed-form kernels of
:mod:`elulab.theory.kernels` for ReLU and the ELU family, a closed form for LeakyReLU, and
the product of such rules on [-9, 9]^2 otherwise. The edge of chaos is parametrised by :math:`q^*`:
:math:`\sigma_w^2 = 1/\mathbb{E}[f'(\sqrt{q^*}z)^2]`,
:math:`\sigma_b^2 = q^* - \sigma_w^2\,\mathbb{E}[f(\sqrt{q^*}z)^2]`.

References:
    Exponential expressivity in deep neural networks through transient chaos, Poole,
    Lahiri, Raghu, Sohl-Dickstein and Ganguli, NeurIPS 2016, arXiv:1606.05340.

    Deep Information Propagation, Schoenholz, Gilmer, Ganguli and Sohl-Dickstein, ICLR 2017,
    arXiv:1611.01232.

    On the Impact of the Activation Function on Deep Neural Networks Training, Hayou,
    Doucet and Rousseau, ICML 2019, arXiv:1902.06853 (edge of chaos of ELU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from elulab.functional import (
    SELU_ALPHA,
    SELU_LAMBDA,
    activation_function,
    check_alpha,
    normalize_activation_name,
)

from .gaussian import _check_real, gaussian_moments
from .kernels import KERNEL_ACTIVATIONS, _em1, _variances, nngp_step, ntk_step

__all__ = [
    "EdgeOfChaos",
    "MeanField",
    "chi_1",
    "correlation_fixed_point",
    "correlation_map",
    "edge_of_chaos",
    "length_fixed_point",
    "length_map",
    "length_map_slope",
    "mean_field",
]

# quadrature for activations without closed forms: composite Gauss-Legendre in z on
# [-L, L], panels of width min(1, 1/sigma) (so at most 1 in the activation's own variable)
_QUAD_1D = (12.0, 16)  # (L, nodes per panel): Phi(-12) ~ 1e-33
_QUAD_2D = (9.0, 10)  # product rule: Phi(-9) ~ 1e-19, far below float64 at O(1) values
_Q_MIN = 1e-12  # the search range of fixed points of the length map: [_Q_MIN, q_max]
_Q_MAX_CLOSED = 1e12  # closed-form activations
_Q_MAX_QUADRATURE = 1e4  # quadrature activations (its cost grows with sqrt(q))
_EOC_GRID = 400  # geometric grid of q* along the edge of chaos


@dataclass(frozen=True)
class MeanField:
    """Mean-field quantities at the stable fixed point (see the module docstring).

    Arguments:
        activation: canonical activation name.
        weight_var: :math:`\\sigma_w^2`.
        bias_var: :math:`\\sigma_b^2`.
        q_star: fixed point of the length map reached from ``q0``.
        chi_1: :math:`\\sigma_w^2 E[f'(\\sqrt{q^*} z)^2]`.
        length_slope: :math:`\\mathcal{V}'(q^*)`.
        c_star: stable fixed point of the correlation map (1 unless chaotic).
        chi_c: :math:`\\mathcal{C}'(c^*)`.
        xi_q: :math:`-1/\\log \\mathcal{V}'(q^*)` (``inf`` if the slope is 1).
        xi_c: :math:`-1/\\log \\chi_c` (``inf`` at the edge of chaos).
        phase: ``"ordered"`` (:math:`\\chi_1 < 1`), ``"chaotic"`` or ``"critical"``
            (:math:`|\\chi_1 - 1| \\le 10^{-12}`).
    """

    activation: str
    weight_var: float
    bias_var: float
    q_star: float
    chi_1: float
    length_slope: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str


@dataclass(frozen=True)
class EdgeOfChaos:
    """Points of the edge of chaos :math:`\\chi_1 = 1` (arrays of one shape).

    Arguments:
        bias_var: :math:`\\sigma_b^2`.
        weight_var: :math:`\\sigma_w^2` on the edge for that ``bias_var``.
        q_star: the fixed point of the length map there.
    """

    bias_var: NDArray[np.float64]
    weight_var: NDArray[np.float64]
    q_star: NDArray[np.float64]


# ---------------------------------------------------------------------------------------
# activations and their Gaussian expectations
# ---------------------------------------------------------------------------------------


class _Act:
    """A resolved activation: name, parameters, and how its expectations are computed."""

    def __init__(self, activation: str, params: dict[str, float]) -> None:
        name = normalize_activation_name(activation)
        allowed = {
            "elu": {"alpha", "scale"},
            "celu": {"alpha", "scale"},
            "selu": {"alpha", "scale"},
            "leaky_relu": {"negative_slope"},
        }.get(name, set())
        extra = set(params) - allowed
        if extra:
            raise ValueError(
                f"parameter(s) {', '.join(sorted(extra))} do not apply to {name!r}"
                + (f"; it takes {', '.join(sorted(allowed))}" if allowed else "")
            )
        self.name = name
        self.params = {k: v for k, v in params.items() if v is not None}
        self.alpha = 1.0
        self.scale = 1.0
        self.slope = 0.0
        if name in ("elu", "celu", "selu"):
            d_alpha, d_scale = (SELU_ALPHA, SELU_LAMBDA) if name == "selu" else (1.0, 1.0)
            self.alpha = check_alpha(self.params.get("alpha", d_alpha))
            self.scale = _check_real(self.params.get("scale", d_scale), "scale")
        elif name == "leaky_relu":
            self.slope = _check_real(self.params.get("negative_slope", 0.01), "negative_slope")
        elif name != "relu" and self.params:
            raise ValueError(f"{name!r} takes no parameters")
        self.closed = name in ("relu", "leaky_relu", "elu", "celu", "selu")
        self.q_max = _Q_MAX_CLOSED if self.closed else _Q_MAX_QUADRATURE

    def moments(self, q: NDArray) -> tuple[NDArray, NDArray]:
        """``(E[f(sqrt(q) z)^2], E[f'(sqrt(q) z)^2])``."""
        m = gaussian_moments(self.name, np.zeros_like(q), np.sqrt(q), **self.params)
        return np.asarray(m.second_moment, dtype=np.float64), np.asarray(
            m.mean_slope_sq, dtype=np.float64
        )

    def curvature(self, q: NDArray) -> NDArray:
        """``E[f''(sqrt(q) z) f(sqrt(q) z)]``."""
        if self.name in ("relu", "leaky_relu"):
            return np.zeros_like(q)
        if self.closed:
            # lam elu(x; a): f f'' = lam^2 a^2 (e^{2x} - e^x) 1{x<0};
            # lam celu(x; a) = lam a elu(x/a; 1): f f'' = lam^2 (e^{2w} - e^w) 1{w<0}, w = x/a
            if self.name == "celu":
                pre, sig = self.scale**2, np.sqrt(q) / self.alpha
            else:
                pre, sig = (self.scale * self.alpha) ** 2, np.sqrt(q)
            x = sig / math.sqrt(2.0)
            return 0.5 * pre * (_em1(2.0 * x) - _em1(x))  # Q_2 - Q_1, Q_k = erfcx(k x) / 2
        # Stein: d/dq E[f(sqrt q z)^2] = E[z f f'(sqrt q z)] / sqrt q = E[f'^2] + E[f f'']
        out = np.empty_like(q)
        for i, qi in enumerate(q):
            x, w = _gauss_grid(math.sqrt(qi), *_QUAD_1D)
            f, df = self._values(math.sqrt(qi) * x)
            out[i] = np.sum(w * x * f * df) / math.sqrt(qi) - np.sum(w * df * df)
        return out

    def _values(self, x: NDArray) -> tuple[NDArray, NDArray]:
        fn = activation_function(self.name)
        with torch.enable_grad():
            t = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
            y = fn(t)
            (dy,) = torch.autograd.grad(y.sum(), t)
        return y.detach().numpy(), dy.numpy()

    def kernels(self, q: float, c: NDArray) -> tuple[NDArray, NDArray]:
        """``(E[f(u1) f(u2)], E[f'(u1) f'(u2)])``, ``u ~ N(0, q [[1, c], [c, 1]])``."""
        s12 = q * c
        if self.name in KERNEL_ACTIVATIONS and "scale" not in self.params:
            kw = {} if self.name == "relu" else {"alpha": self.alpha}
            k = np.asarray(nngp_step(self.name, q, s12, q, **kw), dtype=np.float64)
            n = np.asarray(ntk_step(self.name, q, s12, q, **kw), dtype=np.float64)
            return k, n
        if self.name in ("elu", "celu", "selu"):  # an explicit scale: lam^2 times the kernel
            base = "elu" if self.name == "selu" else self.name
            k = np.asarray(nngp_step(base, q, s12, q, alpha=self.alpha), dtype=np.float64)
            n = np.asarray(ntk_step(base, q, s12, q, alpha=self.alpha), dtype=np.float64)
            return self.scale**2 * k, self.scale**2 * n
        if self.name == "leaky_relu":
            a = self.slope
            cc = np.clip(c, -1.0, 1.0)
            r = np.sqrt((1.0 - cc) * (1.0 + cc))
            psi = np.arctan2(r, cc)
            cp, cm = 0.5 * (1.0 + a), 0.5 * (1.0 - a)
            k = q * (cp * cp * cc + cm * cm * (2.0 / math.pi) * (r + cc * np.arctan2(cc, r)))
            n = (math.pi - psi) / (2.0 * math.pi) * (1.0 + a * a) + a * psi / math.pi
            return k, n
        s = math.sqrt(q)
        x, w = _gauss_grid(s, *_QUAD_2D)
        z1, z2 = x[:, None], x[None, :]
        ww = w[:, None] * w[None, :]
        cc = np.clip(np.atleast_1d(c), -1.0, 1.0)
        f1, d1 = self._values(s * np.broadcast_to(z1, ww.shape))
        ks, ns = [], []
        for ci in cc:
            u2 = s * (ci * z1 + math.sqrt((1.0 - ci) * (1.0 + ci)) * z2)
            f2, d2 = self._values(u2)
            ks.append(np.sum(ww * f1 * f2))
            ns.append(np.sum(ww * d1 * d2))
        return np.array(ks).reshape(np.shape(c)), np.array(ns).reshape(np.shape(c))


def _gauss_grid(sigma: float, half_width: float, nodes: int) -> tuple[NDArray, NDArray]:
    """Nodes ``z`` and weights ``w`` (Gaussian density included) of a composite
    Gauss-Legendre rule on [-L, L] with panels of width at most min(1, 1/sigma)."""
    n_panels = math.ceil(2.0 * half_width * max(1.0, sigma))
    gx, gw = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(-half_width, half_width, n_panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    z = (mid[:, None] + half[:, None] * gx[None, :]).ravel()
    w = (half[:, None] * gw[None, :]).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return z, w


def _q_array(q: ArrayLike) -> tuple[NDArray, tuple[int, ...]]:
    arr = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
        raise ValueError(f"q must be finite and > 0 (a variance), got {q!r}")
    return arr.ravel(), arr.shape


def _shaped(x: NDArray, shape: tuple[int, ...]) -> float | NDArray:
    return float(x[0]) if shape == () else x.reshape(shape)


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------


def length_map(
    q: ArrayLike, activation: str, weight_var: float, bias_var: float, **params: float
) -> float | NDArray:
    r"""The length map :math:`\mathcal{V}(q) = \sigma_w^2 E[f(\sqrt q z)^2] + \sigma_b^2`.

    Arguments:
        q: pre-activation variance(s), > 0.
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        weight_var: :math:`\sigma_w^2 > 0`.
        bias_var: :math:`\sigma_b^2 \ge 0`.
        params: ``alpha``/``scale`` (ELU family) or ``negative_slope`` (LeakyReLU).

    Example:
        >>> length_map(1.0, "relu", 2.0, 0.0)  # ReLU with sigma_w^2 = 2 keeps the length
        1.0
    """
    act = _Act(activation, params)
    wv, bv = _variances(weight_var, bias_var)
    qa, shape = _q_array(q)
    return _shaped(wv * act.moments(qa)[0] + bv, shape)


def length_map_slope(
    q: ArrayLike, activation: str, weight_var: float, bias_var: float, **params: float
) -> float | NDArray:
    r""":math:`\mathcal{V}'(q) = \sigma_w^2(E[f'(\sqrt q z)^2] + E[f''(\sqrt q z) f(\sqrt q z)])`.

    Example:
        >>> length_map_slope(3.0, "relu", 2.0, 0.5)
        1.0
    """
    act = _Act(activation, params)
    wv, _ = _variances(weight_var, bias_var)
    qa, shape = _q_array(q)
    return _shaped(wv * (act.moments(qa)[1] + act.curvature(qa)), shape)


def _fixed_point(fun, x0: float, lo: float, hi: float) -> float:
    """The fixed point of an increasing map reached by iterating from ``x0``: the nearest
    root of ``fun(x) - x`` in the direction the iteration moves, bracketed by doubling
    (halving) from ``x0``; ``hi`` (``lo``) if there is none before it."""

    def gap(x: float) -> float:
        return float(fun(np.array([x]))[0] - x)

    g0 = gap(x0)
    if g0 == 0.0:
        return x0
    a, b, factor, end = x0, x0, (2.0 if g0 > 0.0 else 0.5), (hi if g0 > 0.0 else lo)
    while True:
        b = min(b * factor, hi) if g0 > 0.0 else max(b * factor, lo)
        gb = gap(b)
        if gb == 0.0:
            return b
        if (gb < 0.0) == (g0 > 0.0):
            break
        if b == end:
            return end
        a = b
    lo_b, hi_b = sorted((a, b))
    return float(brentq(gap, lo_b, hi_b, xtol=1e-300, rtol=1e-15))


def length_fixed_point(
    activation: str, weight_var: float, bias_var: float, q0: float = 1.0, **params: float
) -> float:
    r"""The fixed point :math:`q^* = \mathcal{V}(q^*)` reached by iterating the length map
    from ``q0`` (the nearest root of :math:`\mathcal{V}(q) - q` in the direction it moves).

    Returns ``0.0`` if the length shrinks to 0 (possible only for ``bias_var = 0``).

    Raises:
        ValueError: the length grows without bound (no fixed point up to 1e12; 1e4 for
            activations computed by quadrature), or bad input.

    Example:
        >>> round(length_fixed_point("tanh", 1.5, 0.05), 10)
        0.4180372005
    """
    act = _Act(activation, params)
    wv, bv = _variances(weight_var, bias_var)
    x0 = float(_q_array(q0)[0][0])

    def fun(q: NDArray) -> NDArray:
        return wv * act.moments(np.maximum(q, 1e-300))[0] + bv

    q = _fixed_point(fun, x0, _Q_MIN, act.q_max)
    if q >= act.q_max:
        raise ValueError(
            f"the length map of {act.name} with weight_var={wv!r}, bias_var={bv!r} has no "
            f"fixed point below {act.q_max:g}: the pre-activation variance grows without bound"
        )
    if q <= _Q_MIN and bv == 0.0:
        return 0.0
    return q


def chi_1(
    activation: str, weight_var: float, bias_var: float, q0: float = 1.0, **params: float
) -> float:
    r""":math:`\chi_1 = \sigma_w^2 E[f'(\sqrt{q^*} z)^2]` at :func:`length_fixed_point`.

    Example:
        >>> chi_1("relu", 2.0, 0.0)
        1.0
    """
    q = length_fixed_point(activation, weight_var, bias_var, q0, **params)
    act = _Act(activation, params)
    return float(weight_var * act.moments(np.array([max(q, 1e-300)]))[1][0])


def correlation_map(
    c: ArrayLike, activation: str, weight_var: float, bias_var: float, q: float, **params: float
) -> float | NDArray:
    r"""The correlation map :math:`\mathcal{C}(c) = (\sigma_w^2 E[f(u_1) f(u_2)] +
    \sigma_b^2)/q`, :math:`(u_1, u_2) \sim \mathcal{N}(0, q[[1, c], [c, 1]])`.

    ``q`` should be the fixed point :math:`q^*` (then :math:`\mathcal{C}(1) = 1`).

    Example:
        >>> round(correlation_map(0.0, "relu", 2.0, 0.0, 1.0), 12)  # 1/pi
        0.318309886184
    """
    act = _Act(activation, params)
    wv, bv = _variances(weight_var, bias_var)
    qv = float(_q_array(q)[0][0])
    ca = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(ca)) or np.any(np.abs(ca) > 1.0):
        raise ValueError(f"c must be a correlation in [-1, 1], got {c!r}")
    k, _ = act.kernels(qv, ca.ravel())
    return _shaped((wv * k + bv) / qv, ca.shape)


def correlation_fixed_point(
    activation: str, weight_var: float, bias_var: float, q0: float = 1.0, **params: float
) -> float:
    r"""The stable fixed point :math:`c^*` of the correlation map at :math:`q^*`: 1 when
    :math:`\chi_1 \le 1`, otherwise the largest root of :math:`\mathcal{C}(c) = c` below 1.

    Example:
        >>> correlation_fixed_point("relu", 1.5, 0.1)
        1.0
    """
    return mean_field(activation, weight_var, bias_var, q0, **params).c_star


def _c_star(act: _Act, wv: float, bv: float, q: float, chi1: float) -> float:
    if chi1 <= 1.0:
        return 1.0

    def gap(c: float) -> float:
        return float((wv * act.kernels(q, np.array([c]))[0][0] + bv) / q - c)

    hi = 1.0
    for k in range(1, 17):  # just below 1 the map is below the diagonal (slope chi1 > 1)
        if gap(1.0 - 10.0 ** (-k)) < 0.0:
            hi = 1.0 - 10.0 ** (-k)
            break
    if hi == 1.0:
        return 1.0
    grid = np.linspace(hi, -1.0, 65)
    vals = np.array([gap(float(c)) for c in grid])
    flip = np.nonzero(vals[1:] >= 0.0)[0]
    if flip.size == 0:
        return -1.0
    i = int(flip[0])
    if vals[i + 1] == 0.0:
        return float(grid[i + 1])
    return float(brentq(gap, float(grid[i + 1]), float(grid[i]), xtol=1e-15, rtol=1e-15))


def mean_field(
    activation: str, weight_var: float, bias_var: float, q0: float = 1.0, **params: float
) -> MeanField:
    r"""All mean-field quantities of the module docstring at :math:`(\sigma_w^2, \sigma_b^2)`.

    Arguments:
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        weight_var: :math:`\sigma_w^2 > 0`.
        bias_var: :math:`\sigma_b^2 \ge 0`.
        q0: the input length the length map is iterated from (default 1).
        params: ``alpha``/``scale`` (ELU family) or ``negative_slope`` (LeakyReLU).

    Raises:
        ValueError: no finite fixed point of the length map, or bad input.

    Example:
        >>> m = mean_field("tanh", 2.5, 0.05)
        >>> m.phase, round(m.c_star, 6), round(m.xi_c, 3)
        ('chaotic', 0.446804, 11.796)
    """
    act = _Act(activation, params)
    wv, bv = _variances(weight_var, bias_var)
    q = length_fixed_point(act.name, wv, bv, q0, **act.params)
    qq = np.array([max(q, 1e-300)])
    chi1 = float(wv * act.moments(qq)[1][0])
    slope = float(wv * (act.moments(qq)[1][0] + act.curvature(qq)[0]))
    c = 1.0 if q == 0.0 else _c_star(act, wv, bv, q, chi1)
    chic = chi1 if c == 1.0 else float(wv * act.kernels(q, np.array([c]))[1][0])
    return MeanField(act.name, wv, bv, q, chi1, slope, c, chic, _xi(slope), _xi(chic), _phase(chi1))


def _xi(slope: float) -> float:
    if slope <= 0.0:
        return 0.0
    if slope >= 1.0:
        return math.inf
    return -1.0 / math.log(slope)


def _phase(chi1: float) -> str:
    if abs(chi1 - 1.0) <= 1e-12:
        return "critical"
    return "ordered" if chi1 < 1.0 else "chaotic"


def edge_of_chaos(activation: str, bias_var: ArrayLike, **params: float) -> EdgeOfChaos:
    r"""The edge of chaos :math:`\chi_1 = 1`: :math:`\sigma_w^2` for each :math:`\sigma_b^2`.

    Along the edge, :math:`\sigma_w^2(q) = 1/E[f'(\sqrt q z)^2]` and
    :math:`\sigma_b^2(q) = q - \sigma_w^2(q)\,E[f(\sqrt q z)^2]`; each requested
    ``bias_var`` is matched by solving :math:`\sigma_b^2(q) = ` ``bias_var`` for :math:`q`
    (the first root on a geometric grid of ``q`` in [1e-12, 1e12], [1e-12, 1e4] for
    activations computed by quadrature, refined by Brent's method).

    Raises:
        ValueError: a ``bias_var`` that no point of the edge reaches (e.g. ``bias_var > 0``
            for ReLU, whose edge is the single point (2, 0)).

    Example:
        >>> e = edge_of_chaos("relu", 0.0)
        >>> float(e.weight_var)
        2.0
    """
    act = _Act(activation, params)
    targets = np.atleast_1d(np.asarray(bias_var, dtype=np.float64)).ravel()
    if not np.all(np.isfinite(targets)) or np.any(targets < 0.0):
        raise ValueError(f"bias_var must be finite and >= 0, got {bias_var!r}")

    def curve(q: NDArray) -> tuple[NDArray, NDArray]:
        second, slope_sq = act.moments(q)
        wv = 1.0 / slope_sq
        return wv, q - wv * second

    grid = np.geomspace(_Q_MIN, act.q_max, _EOC_GRID)
    bv_grid = curve(grid)[1]
    out_w, out_q = np.empty_like(targets), np.empty_like(targets)
    for j, t in enumerate(targets):
        d = bv_grid - t
        hit = np.nonzero(np.abs(d) <= 1e-14 * np.maximum(1.0, t))[0]
        flip = np.nonzero(np.sign(d[1:]) != np.sign(d[:-1]))[0]
        if hit.size and (flip.size == 0 or hit[0] <= flip[0]):
            q = float(grid[hit[0]])
        elif flip.size:
            i = int(flip[0])
            q = float(
                brentq(
                    lambda x, t=t: curve(np.array([x]))[1][0] - t,
                    float(grid[i]),
                    float(grid[i + 1]),
                    xtol=1e-300,
                    rtol=1e-15,
                )
            )
        else:
            lo, hi = float(np.min(bv_grid)), float(np.max(bv_grid))
            raise ValueError(
                f"no edge-of-chaos point of {act.name} has bias_var={t!r}; along the edge "
                f"bias_var ranges over [{lo:.6g}, {hi:.6g}] for q* in [{_Q_MIN:g}, {act.q_max:g}]"
            )
        out_q[j] = q
        out_w[j] = curve(np.array([q]))[0][0]
    shape = np.shape(bias_var)
    return EdgeOfChaos(
        np.reshape(targets, shape), np.reshape(out_w, shape), np.reshape(out_q, shape)
    )
