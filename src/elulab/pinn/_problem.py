r"""PDE problems ``F(x, u, du, d2u) = 0`` with Dirichlet/initial conditions, and their loss.

A :class:`Problem` holds the residual ``F``, the box it lives on, the conditions
:math:`u(x) = g(x)` on sampled point sets (boundary or initial), and optionally the
analytic solution. :meth:`Problem.sample` draws the collocation points from a seed,
:meth:`Problem.loss` is the PINN objective

.. math:: L = \frac{1}{N} \sum_n |F(x_n, u, \partial u, \partial^2 u)|^2
    + \sum_c w_c \frac{1}{N_c} \sum_m |u(x^c_m) - g_c(x^c_m)|^2,

with the derivatives from one Taylor-mode pass (:meth:`elulab.pinn.MLP.taylor`), and
:func:`compile_loss` wraps a loss in :func:`torch.compile` with an eager fallback.

References:
    | Physics-informed neural networks (Raissi, Perdikaris and Karniadakis, 2019),
    | J. Comput. Phys. 378, 686-707.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "Condition",
    "Points",
    "Problem",
    "box_sampler",
    "compile_loss",
    "faces_sampler",
    "relative_l2",
]

Residual = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Sampler = Callable[[int, torch.Generator], torch.Tensor]


def box_sampler(
    lo: Sequence[float], hi: Sequence[float], fixed: dict[int, float] | None = None
) -> Sampler:
    """Uniform points in the box ``[lo, hi]``, coordinates in ``fixed`` held at a value.

    Example:
        >>> s = box_sampler((0.0, 0.0), (1.0, 2.0), fixed={1: 0.0})  # the face t = 0
        >>> s(3, torch.Generator().manual_seed(0))[:, 1].tolist()
        [0.0, 0.0, 0.0]
    """
    lo_t, hi_t = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
    fixed = dict(fixed or {})

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        x = lo_t + (hi_t - lo_t) * torch.rand(n, len(lo_t), generator=gen, dtype=torch.float64)
        for d, v in fixed.items():
            x[:, d] = v
        return x

    return sample


def faces_sampler(lo: Sequence[float], hi: Sequence[float], dims: Sequence[int]) -> Sampler:
    """Uniform points on the faces ``x_d = lo_d`` and ``x_d = hi_d`` for ``d`` in ``dims``.

    The points go round the ``2 len(dims)`` faces in turn (point ``m`` on face
    ``m mod 2 len(dims)``: equal shares, so two points in 1-D are the two ends), the
    other coordinates uniform in the box.

    Example:
        >>> s = faces_sampler((-1.0, 0.0), (1.0, 1.0), dims=(0,))  # x = -1 or x = 1
        >>> sorted(set(s(20, torch.Generator().manual_seed(0))[:, 0].tolist()))
        [-1.0, 1.0]
    """
    inner = box_sampler(lo, hi)
    dims = tuple(dims)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        x = inner(n, gen)
        face = torch.arange(n) % (2 * len(dims))
        for k, d in enumerate(dims):
            x[face == 2 * k, d] = lo[d]
            x[face == 2 * k + 1, d] = hi[d]
        return x

    return sample


@dataclass(frozen=True)
class Condition:
    """A Dirichlet or initial condition :math:`u(x) = g(x)` on ``n`` sampled points.

    Arguments:
        name: the name its loss term is logged under.
        sample: ``sample(n, generator) -> (n, in)`` points (:func:`box_sampler`,
            :func:`faces_sampler`).
        value: ``g(x) -> (n, out)``.
        n: the number of points.
        weight: the weight :math:`w_c` of its term in the loss.
    """

    name: str
    sample: Sampler
    value: Callable[[torch.Tensor], torch.Tensor]
    n: int
    weight: float = 1.0


def _check_finite(name: str, x: torch.Tensor, width: int) -> None:
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"{name} points must have shape (N, {width}), got {tuple(x.shape)}")
    bad = ~torch.isfinite(x).all(dim=1)
    if bool(bad.any()):
        raise ValueError(
            f"{name} points must be finite; {int(bad.sum())} of {len(x)} rows are not, "
            f"e.g. {x[bad][0].tolist()}"
        )


@dataclass(frozen=True)
class Points:
    """Collocation points: the domain points and, per condition, ``(name, x, g, weight)``.

    Checked on construction: every point finite, every array ``(N, in)`` / ``(N, out)``.
    """

    domain: torch.Tensor
    conditions: tuple[tuple[str, torch.Tensor, torch.Tensor, float], ...] = ()

    def __post_init__(self) -> None:
        d = self.domain.shape[-1] if self.domain.ndim == 2 else -1
        _check_finite("domain", self.domain, max(d, 1))
        for name, x, g, _ in self.conditions:
            _check_finite(f"condition {name!r}", x, d)
            if g.ndim != 2 or len(g) != len(x) or not bool(torch.isfinite(g).all()):
                raise ValueError(
                    f"condition {name!r}: targets must be finite with shape ({len(x)}, out), "
                    f"got {tuple(g.shape)}"
                )

    def to(self, dtype: torch.dtype) -> Points:
        """The same points in another floating dtype."""
        conds = tuple((n, x.to(dtype), g.to(dtype), w) for n, x, g, w in self.conditions)
        return Points(self.domain.to(dtype), conds)


@dataclass(frozen=True)
class Problem:
    """A PDE/ODE ``F(x, u, du, d2u) = 0`` on a box, with conditions and a reference.

    Arguments:
        name: a short name.
        lo, hi: the box (one entry per input coordinate).
        residual: ``F(x, u, du, d2u)`` on the domain points, shapes ``(N, in)``,
            ``(N, out)``, ``(N, out, in)``, ``(N, out, in)`` (or ``(N, out, in, in)``
            with ``mixed``); returns ``(N,)`` or ``(N, k)``.
        conditions: the :class:`Condition` terms.
        n_domain: the number of domain (residual) points.
        out_features: the output dimension.
        solution: the analytic solution ``x -> (N, out)``, if known.
        mixed: the residual needs mixed second derivatives.
        second: the input coordinates whose pure second derivatives the residual
            reads (None: all); ``d2u[:, :, j]`` is then coordinate ``second[j]``.
        info: free-form facts (e.g. the kink location) for experiments.

    Example:
        >>> from elulab.pinn import MLP
        >>> p = Problem("u''=0", (0.0,), (1.0,), lambda x, u, du, d2u: d2u[:, 0, 0],
        ...             (Condition("ends", box_sampler((0.0,), (1.0,)), lambda x: x, 4),), 16)
        >>> _ = torch.manual_seed(0)
        >>> loss, logs = p.loss(MLP(1, 1, 8, 1).double(), p.sample(0))
        >>> sorted(logs)
        ['ends', 'residual']
    """

    name: str
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    residual: Residual
    conditions: tuple[Condition, ...]
    n_domain: int
    out_features: int = 1
    solution: Callable[[torch.Tensor], torch.Tensor] | None = None
    mixed: bool = False
    second: tuple[int, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def in_features(self) -> int:
        return len(self.lo)

    def sample(
        self, seed: int | None = None, *, generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> Points:  # fmt: skip
        """Collocation points from a seed (or a generator): the domain, then each condition."""
        if (seed is None) == (generator is None):
            raise ValueError("give exactly one of seed and generator")
        gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
        dom = box_sampler(self.lo, self.hi)(self.n_domain, gen)
        conds = []
        for c in self.conditions:
            x = c.sample(c.n, gen)
            conds.append((c.name, x.to(dtype), c.value(x).to(dtype), float(c.weight)))
        return Points(dom.to(dtype), tuple(conds))

    def residual_of(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The residual ``F`` of ``model`` (an :class:`elulab.pinn.MLP`) at ``x``, ``(N, k)``.

        Raises:
            ValueError: if ``F`` does not return ``(N,)`` or ``(N, k)``.
        """
        u, du, d2u = model.taylor(x, mixed=self.mixed, second=self.second)
        r = self.residual(x, u, du, d2u)
        if not isinstance(r, torch.Tensor) or r.ndim not in (1, 2) or r.shape[0] != len(x):
            got = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise ValueError(
                f"{self.name}: the residual must return shape ({len(x)},) or ({len(x)}, k) "
                f"for {len(x)} points, got {got}"
            )
        return r if r.ndim == 2 else r[:, None]

    def loss(self, model: nn.Module, points: Points) -> tuple[torch.Tensor, dict[str, Any]]:
        """The PINN loss and its terms (detached tensors, ``"residual"`` and per condition)."""
        lr = self.residual_of(model, points.domain).square().mean()
        total, logs = lr, {"residual": lr.detach()}
        for name, x, g, w in points.conditions:
            lc = (model(x) - g).square().mean()
            total = total + w * lc
            logs[name] = lc.detach()
        return total, logs

    def loss_fn(self, points: Points, compile: bool = False) -> Callable[[nn.Module, Any], Any]:
        """A ``loss_fn(model, batch)`` for :func:`elulab.train.fit` (the batch is ignored:
        full-batch on ``points``), optionally through :func:`compile_loss`."""
        fn = compile_loss(self.loss) if compile else self.loss
        return lambda model, _batch=None: fn(model, points)


_SAID: set[str] = set()


def compile_loss(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` through :func:`torch.compile`, falling back to eager ``fn`` if compiling fails.

    The first call compiles; if that raises (no C++ compiler, an unsupported op), a
    ``RuntimeWarning`` says so once per process and every later call runs eagerly.
    Errors raised after a successful compile are re-raised.

    Example:
        >>> f = compile_loss(lambda x: (x * x).sum())
        >>> callable(f)
        True
    """
    state: dict[str, Any] = {"ok": None, "compiled": None}

    def run(*args: Any, **kwargs: Any) -> Any:
        if state["ok"] is False:
            return fn(*args, **kwargs)
        try:
            if state["compiled"] is None:
                state["compiled"] = torch.compile(fn, dynamic=False)
            out = state["compiled"](*args, **kwargs)
        except Exception as err:
            if state["ok"]:
                raise
            state["ok"] = False
            msg = f"torch.compile failed ({type(err).__name__}); running the loss eagerly"
            if msg not in _SAID:
                _SAID.add(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return fn(*args, **kwargs)
        state["ok"] = True
        return out

    run.fallback = lambda: state["ok"] is False  # type: ignore[attr-defined]
    return run


def relative_l2(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """:math:`\\|p - r\\|_2 / \\|r\\|_2` over all entries (nan if the reference is 0)."""
    num, den = float((pred - ref).detach().norm()), float(ref.detach().norm())
    return num / den if den > 0 else math.nan
