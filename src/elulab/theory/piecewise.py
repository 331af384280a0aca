r"""Piecewise linear-plus-exponential functions and the ReLU approximation floor (float64).

A :class:`Piecewise` function has knots :math:`\beta_1 < \dots < \beta_K` and, on piece
:math:`j` (between :math:`\beta_j` and :math:`\beta_{j+1}`),

.. math:: f(x) = p_j + q_j x + A_j e^{k_j x}.

Piecewise linear functions (:math:`A_j = 0`), exponentials of a piecewise linear function
(:math:`p_j = q_j = 0`) and sums of ELU units :math:`a\,\mathrm{ELU}(w(x-b))/w` whose
exponential sides do not overlap are all of this form.

**The ReLU floor.** A one-hidden-layer ReLU net of ``n`` units on the line,
:math:`c + \sum_i v_i \max(0, w_i x + b_i)`, has at most ``n`` kinks: at most ``n + 1``
linear pieces. A net of ``L`` hidden layers of width ``n`` has at most :math:`(n+1)^L`
(each unit of a layer adds at most one kink per piece of the layer below). So its squared
L2 error on :math:`[lo, hi]` is at least

.. math:: F_m = \min_{lo = a_0 < \dots < a_m = hi} \sum_{i} \min_{\ell \text{ linear}}
    \int_{a_{i-1}}^{a_i} (f - \ell)^2 \, dx, \qquad m = (n+1)^L,

the best *discontinuous* piecewise linear fit with ``m`` free pieces (a ReLU net is
continuous: a relaxation). On an interval of length :math:`h` and midpoint :math:`c`
inside one piece, the best line removes :math:`p + qx` and leaves (Legendre projection
of :math:`e^{us}`, :math:`s \in [-1, 1]`, :math:`u = kh/2`)

.. math:: \min_\ell \int (A e^{kx} - \ell)^2 = A^2 e^{2kc}\,\tfrac h2\,R(u), \quad
    R(u) = \frac{\sinh 2u}{u} - \frac{2\sinh^2 u}{u^2}
    - \frac{6(u\cosh u - \sinh u)^2}{u^4} = \tfrac{2}{45}u^4 + \tfrac{4}{525}u^6 + \dots

(:func:`exp_line_residual`). An interval that crosses knots of ``f`` costs at least the
sum over its parts (splitting only lowers a best fit). :func:`relu_floor` bounds
:math:`F_m` from below by dynamic programming over a grid of ``grid`` cells: each knot
:math:`a_i` is only known to lie in a cell, and each interval is charged the cost of its
part between the cells of its end knots (a sub-interval costs no more than the whole).
The result is a rigorous lower bound that rises to :math:`F_m` (with extra knots at the
kinks of ``f``) as the grid is refined.

References:
    On the Number of Linear Regions of Deep Neural Networks (Montufar, Pascanu, Cho,
    Bengio, 2014), NeurIPS (pieces of ReLU nets).

    A Practical Guide to Splines (de Boor, 1978), ch. 3 (best piecewise linear L2 fits).

Example:
    >>> f = Piecewise((), ((0.0, 0.0, 1.0, 1.0),))   # e^x on the whole line
    >>> lo, hi = 0.0, 1.0
    >>> one = relu_floor(f, 1, lo, hi)               # a line: no knot to place
    >>> round(one / float(exp_line_residual(1.0, 1.0, lo, hi)), 12)
    1.0
    >>> relu_floor(f, 4, lo, hi) < one / 4**4 * 1.1  # error ~ m^-4 (squared L2)
    True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import integrate

__all__ = ["Piecewise", "exp_line_residual", "line_residual_R", "relu_floor", "relu_pieces"]

# Taylor coefficients of R(u) in u^4, u^6, ..., u^20 (exact fractions, from sympy)
_R_SERIES = (2 / 45, 4 / 525, 8 / 14175, 16 / 654885, 2 / 2837835, 4 / 273648375)
_R_SERIES += (16 / 69780335625, 32 / 11343181224375, 4 / 142924083427125)


@dataclass(frozen=True)
class Piecewise:
    """``f(x) = p_j + q_j x + A_j exp(k_j x)`` on piece ``j`` (see the module docstring).

    Args:
        knots: increasing knots ``beta_1 < ... < beta_K`` (piece 0 is left of ``beta_1``).
        pieces: ``K + 1`` tuples ``(p, q, A, k)``.
    """

    knots: tuple[float, ...]
    pieces: tuple[tuple[float, float, float, float], ...]

    def __post_init__(self) -> None:
        if len(self.pieces) != len(self.knots) + 1:
            raise ValueError(f"need {len(self.knots) + 1} pieces, got {len(self.pieces)}")
        if any(b <= a for a, b in zip(self.knots, self.knots[1:], strict=False)):
            raise ValueError(f"knots must increase, got {self.knots}")

    @classmethod
    def linear(cls, knots: Sequence[float], slopes: Sequence[float]) -> Piecewise:
        """The continuous piecewise linear function with ``slopes``, 0 at 0 on piece 0.

        Example:
            >>> f = Piecewise.linear((0.0,), (1.0, -1.0))   # min(x, -x) = -|x|
            >>> f(np.array([-2.0, 0.0, 3.0])).tolist()
            [-2.0, 0.0, -3.0]
        """
        pq = [(0.0, float(slopes[0]))]
        for b, s0, s1 in zip(knots, slopes, slopes[1:], strict=False):
            pq.append((pq[-1][0] + (s0 - s1) * b, float(s1)))
        return cls(tuple(knots), tuple((p, q, 0.0, 0.0) for p, q in pq))

    @classmethod
    def exp_linear(cls, knots: Sequence[float], slopes: Sequence[float]) -> Piecewise:
        """``exp(g)``, ``g = Piecewise.linear(knots, slopes)``: exponential on every piece."""
        g = cls.linear(knots, slopes)
        return cls(g.knots, tuple((0.0, 0.0, math.exp(p), q) for p, q, _, _ in g.pieces))

    @classmethod
    def elu_sum(cls, units: Sequence[tuple[float, float, float, int]]) -> Piecewise:
        """``sum a ELU(side k (x - b)) / k`` over ``units = (a, k, b, side)`` (ELU alpha 1).

        ``side = +1``: exponential left of ``b``, linear right; ``-1``: the mirror image.
        At most one unit may be exponential on any piece (else it is not of this form).

        Example:
            >>> f = Piecewise.elu_sum([(1.0, 1.0, 0.0, 1)])   # ELU itself
            >>> np.allclose(f(np.array([-1.0, 2.0])), [np.expm1(-1.0), 2.0])
            True
        """
        knots = tuple(sorted(b for _, _, b, _ in units))
        pieces = []
        inside = [knots[0] - 1, *((a + b) / 2 for a, b in itertools.pairwise(knots)), knots[-1] + 1]
        for j, x in enumerate(inside):  # x: a point inside piece j
            p = q = amp = rate = 0.0
            for a, k, b, side in units:
                if side * (x - b) > 0:  # the linear side: a side (x - b)
                    p, q = p - a * side * b, q + a * side
                elif amp != 0.0:
                    raise ValueError(f"two exponential sides overlap on piece {j}: {units}")
                else:  # a (e^{side k (x - b)} - 1) / k
                    p, amp, rate = p - a / k, a * math.exp(-side * k * b) / k, side * k
            pieces.append((p, q, amp, rate))
        return cls(knots, tuple(pieces))

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """``f(x)`` elementwise, float64."""
        x = np.asarray(x, dtype=np.float64)
        j = np.searchsorted(np.asarray(self.knots, dtype=np.float64), x, side="right")
        p, q, a, k = (np.asarray(c, dtype=np.float64)[j] for c in zip(*self.pieces, strict=True))
        return p + q * x + a * np.exp(k * x)

    def bounds(self, lo: float, hi: float) -> list[tuple[float, float, int]]:
        """``(start, end, piece index)`` of the pieces that meet ``[lo, hi]``."""
        edges = [-np.inf, *self.knots, np.inf]
        return [
            (max(lo, edges[j]), min(hi, edges[j + 1]), j)
            for j in range(len(self.pieces))
            if edges[j] < hi and edges[j + 1] > lo
        ]

    def moments(self, lo: float, hi: float) -> tuple[float, float]:
        """Mean and variance of ``f`` under the uniform measure on ``[lo, hi]`` (quadrature)."""
        parts = self.bounds(lo, hi)
        m1 = sum(integrate.quad(self, a, b, epsabs=0, epsrel=1e-13)[0] for a, b, _ in parts)
        sq = sum(
            integrate.quad(lambda t: float(self(t)) ** 2, a, b, epsabs=0, epsrel=1e-13)[0]
            for a, b, _ in parts
        )
        mean = m1 / (hi - lo)
        return mean, sq / (hi - lo) - mean**2


def line_residual_R(u: np.ndarray | float) -> np.ndarray:
    """``R(u)``: the squared L2 distance of ``exp(u s)`` from lines on ``s in [-1, 1]``.

    Series for ``|u| < 1`` (all terms positive), the closed form otherwise.

    Example:
        >>> float(line_residual_R(0.0)), round(float(line_residual_R(1.0)), 10)
        (0.0, 0.0526530173)
    """
    u = np.abs(np.asarray(u, dtype=np.float64))
    small = u < 1.0
    us = np.where(small, u, 0.0)
    series = sum(c * us ** (4 + 2 * i) for i, c in enumerate(_R_SERIES))
    ub = np.where(small, 1.0, u)
    closed = (
        np.sinh(2 * ub) / ub
        - 2 * np.sinh(ub) ** 2 / ub**2
        - 6 * (ub * np.cosh(ub) - np.sinh(ub)) ** 2 / ub**4
    )
    return np.where(small, series, closed)


def exp_line_residual(
    amp: float, rate: float, a: np.ndarray | float, b: np.ndarray | float
) -> np.ndarray:
    """``min over lines l of int_a^b (amp e^{rate x} - l(x))^2 dx`` (0 where ``b <= a``).

    Example:
        >>> round(float(exp_line_residual(1.0, 0.0, 0.0, 1.0)), 12)  # a constant is a line
        0.0
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    h = np.maximum(b - a, 0.0)
    c = 0.5 * (a + b)
    return amp**2 * np.exp(2 * rate * c) * (h / 2) * line_residual_R(rate * h / 2)


def relu_pieces(width: int, depth: int) -> int:
    """``(width + 1) ** depth``: the most linear pieces of a ReLU MLP on the line.

    Example:
        >>> relu_pieces(10, 1), relu_pieces(3, 2)
        (11, 16)
    """
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth must be >= 1, got {width}, {depth}")
    return (width + 1) ** depth


def relu_floor(f: Piecewise, pieces: int, lo: float, hi: float, grid: int = 1000) -> float:
    """A lower bound on the squared L2 error on ``[lo, hi]`` of any ``pieces``-piece linear fit.

    Dynamic programming over ``grid`` uniform cells (see the module docstring); cost
    ``O(pieces * grid^2)``. Divide by ``hi - lo`` for a mean squared error.

    Args:
        f: the target.
        pieces: the number of linear pieces allowed (>= 1), e.g. :func:`relu_pieces`.
        lo, hi: the interval.
        grid: cells per interval; the bound tightens as it grows.
    """
    if pieces < 1 or grid < 2 or not hi > lo:
        raise ValueError(f"need pieces >= 1, grid >= 2, hi > lo; got {pieces}, {grid}, {lo}, {hi}")
    t = np.linspace(lo, hi, grid + 1)
    cost = np.zeros((grid + 1, grid + 1))  # cost[i, j]: the residual on [t_i, t_j]
    for a, b, j in f.bounds(lo, hi):
        _, _, amp, rate = f.pieces[j]
        if amp != 0.0:
            s, e = np.clip(t, a, b)[:, None], np.clip(t, a, b)[None, :]
            cost += exp_line_residual(amp, rate, s, e)
    cost = np.triu(cost)
    if pieces == 1:
        return float(cost[0, grid])
    # value[c]: the least cost of the intervals left of a knot in cell c (cells 0..grid-1)
    value = cost[0, :grid].copy()
    inner = cost[1 : grid + 1, :grid].copy()  # inner[c, c'] = cost[c + 1, c'], knots in order:
    inner[np.tril_indices(grid, -1)] = np.inf  # no knot left of the one before it
    for _ in range(pieces - 2):
        value = np.min(value[:, None] + inner, axis=0)
    return float(np.min(value + cost[1 : grid + 1, grid]))
