r"""The four test problems of C9, each with a reference solution.

* :func:`burgers`: viscous Burgers :math:`u_t + u u_x = \nu u_{xx}`, :math:`\nu =
  0.01/\pi`, on :math:`[-1, 1] \times [0, 1]`, :math:`u(x, 0) = -\sin \pi x`,
  :math:`u(\pm 1, t) = 0` (Raissi et al. 2019; DeepXDE's example). Reference: the
  shared data (:func:`elulab.data.load_burgers`), not analytic.
* :func:`linear_exponential`: :math:`u'' = e^{x - x_0} [x < x_0]` on :math:`[a, b]`
  with the Dirichlet values of :math:`u = 1 + \mathrm{ELU}(x - x_0)`: exponential left
  of :math:`x_0`, linear right of it, :math:`C^1` with a jump of :math:`u''` at
  :math:`x_0` (C9's own case).
* :func:`stiff_ode`: :math:`y' = -k (y - \cos t)`, :math:`y(0) = 0` on
  :math:`[0, T]`: :math:`y = A (\cos t - e^{-kt}) + B \sin t`, :math:`A = k^2/(1+k^2)`,
  :math:`B = k/(1+k^2)`. The residual is divided by :math:`k` (the same equation, O(1)
  terms).
* :func:`poisson_2d`: :math:`-\Delta u = 2 \pi^2 \sin \pi x \sin \pi y` on
  :math:`[-1, 1]^2`, :math:`u = 0` on the boundary: :math:`u = \sin \pi x \sin \pi y`.
"""

from __future__ import annotations

import math

import torch

from ._problem import Condition, Problem, box_sampler, faces_sampler

__all__ = ["burgers", "linear_exponential", "poisson_2d", "stiff_ode"]


def burgers(
    n_domain: int = 2540, n_boundary: int = 80, n_initial: int = 160, nu: float = 0.01 / math.pi
) -> Problem:
    """Viscous Burgers on ``(x, t)`` in ``[-1, 1] x [0, 1]`` (DeepXDE's point counts).

    Example:
        >>> p = burgers()
        >>> p.in_features, [c.name for c in p.conditions], p.solution is None
        (2, ['boundary', 'initial'], True)
    """
    lo, hi = (-1.0, 0.0), (1.0, 1.0)

    def residual(x, u, du, d2u):
        return du[:, 0, 1] + u[:, 0] * du[:, 0, 0] - nu * d2u[:, 0, 0]

    conds = (
        Condition("boundary", faces_sampler(lo, hi, (0,)), lambda x: x[:, :1] * 0.0, n_boundary),
        Condition(
            "initial", box_sampler(lo, hi, {1: 0.0}), lambda x: -torch.sin(math.pi * x[:, :1]),
            n_initial,
        ),
    )  # fmt: skip
    return Problem("burgers", lo, hi, residual, conds, n_domain, second=(0,), info={"nu": nu})


def linear_exponential(
    n_domain: int = 256, a: float = -3.0, b: float = 2.0, x0: float = 0.25
) -> Problem:
    """``u'' = exp(x - x0) [x < x0]``, Dirichlet ends: ``u = 1 + ELU(x - x0)``.

    Example:
        >>> p = linear_exponential()
        >>> p.solution(torch.tensor([[0.25], [1.25]], dtype=torch.float64)).ravel().tolist()
        [1.0, 2.0]
    """
    if not a < x0 < b:
        raise ValueError(f"need a < x0 < b, got a={a}, x0={x0}, b={b}")

    def solution(x):
        s = x - x0
        return torch.where(s < 0, torch.exp(s.clamp(max=0)), 1.0 + s)

    def residual(x, u, du, d2u):
        s = x[:, 0] - x0
        return d2u[:, 0, 0] - torch.where(s < 0, torch.exp(s.clamp(max=0)), 0.0)

    ends = Condition("boundary", faces_sampler((a,), (b,), (0,)), solution, 2)
    return Problem(
        "linear_exponential", (a,), (b,), residual, (ends,), n_domain, solution=solution,
        info={"kink": x0},
    )  # fmt: skip


def stiff_ode(n_domain: int = 256, k: float = 25.0, t_end: float = 1.0) -> Problem:
    """``y' = -k (y - cos t)``, ``y(0) = 0`` on ``[0, t_end]`` (residual divided by ``k``).

    Example:
        >>> p = stiff_ode(k=10.0)
        >>> round(float(p.solution(torch.zeros(1, 1, dtype=torch.float64))), 12)
        0.0
    """
    A, B = k * k / (1 + k * k), k / (1 + k * k)

    def solution(t):
        return A * (torch.cos(t) - torch.exp(-k * t)) + B * torch.sin(t)

    def residual(t, u, du, d2u):
        return du[:, 0, 0] / k + u[:, 0] - torch.cos(t[:, 0])

    start = Condition("initial", box_sampler((0.0,), (t_end,), {0: 0.0}), lambda t: t * 0.0, 1)
    return Problem(
        "stiff_ode", (0.0,), (t_end,), residual, (start,), n_domain, solution=solution,
        info={"k": k},
    )  # fmt: skip


def poisson_2d(n_domain: int = 1024, n_boundary: int = 256) -> Problem:
    """``-Laplace u = 2 pi^2 sin(pi x) sin(pi y)`` on ``[-1, 1]^2``, ``u = 0`` on the edge.

    Example:
        >>> p = poisson_2d()
        >>> p.in_features, p.mixed
        (2, False)
    """
    lo, hi = (-1.0, -1.0), (1.0, 1.0)

    def solution(x):
        return (torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1]))[:, None]

    def residual(x, u, du, d2u):
        return d2u[:, 0, 0] + d2u[:, 0, 1] + 2 * math.pi**2 * solution(x)[:, 0]

    edge = Condition(
        "boundary", faces_sampler(lo, hi, (0, 1)), lambda x: x[:, :1] * 0.0, n_boundary
    )
    return Problem("poisson_2d", lo, hi, residual, (edge,), n_domain, solution=solution)
