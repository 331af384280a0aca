r"""Whole-pass unit counts: dead and saturated units, and slopes that are exactly zero.

* :func:`dead_fractions`: one pass over a whole data set with gradients and no update
  (:class:`Diagnostics` on the activation modules): the share of units whose gradient
  is exactly zero on *every* sample (dead) and of those that are not dead but sit where
  ``|f'| < eps`` on every sample (saturated);
* :func:`zero_slope_point`: the float input below which an activation's slope, as
  torch's own backward computes it, is exactly ``0.0``;
* :func:`zero_slope_stats`: per activation module, over a whole data set, how often the
  slope at its input is exactly ``0.0``, and the lowest input seen.

Why a slope can be exactly zero where the mathematics says it is not: ELU's slope on
the negative side is :math:`f'(x) = \alpha e^x > 0` for every real ``x``, but in float32
:math:`e^x` rounds to 0 once it is below half the smallest subnormal, :math:`2^{-150}`,
i.e. for :math:`x \le -150 \ln 2 = -103.972\ldots`; there an ELU unit passes no
gradient at all, exactly like a dead ReLU. (Without subnormals, i.e. flush-to-zero,
the point is :math:`\ln 2^{-126} = -87.34`.) Every slope with an exponential tail
(SELU, CELU, Mish, SiLU, GELU, ...) has such a point; where it lies depends on the
kernel, and for some kernels on whether the vectorised or the scalar code path runs
(e.g. torch's CPU GELU backward), so :func:`zero_slope_point` measures it on the
running torch rather than assuming it.

Example:
    >>> import math, torch
    >>> from torch import nn
    >>> x0 = zero_slope_point(nn.ELU())
    >>> x0 <= -150 * math.log(2) < x0 + 1e-5, zero_slope_point(nn.ReLU()), zero_slope_point(nn.LeakyReLU())
    (True, 0.0, -inf)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._hooks import DEFAULT_EPS, Diagnostics
from ._slopes import activation_table

__all__ = ["ZeroSlope", "dead_fractions", "zero_slope_point", "zero_slope_stats"]

_FRACTIONS = ("dead_fraction", "saturated_fraction")


def dead_fractions(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = DEFAULT_EPS, chunk: int = 500
) -> tuple[float, float]:
    """Dead and saturated fractions of a classifier's activation units over the whole of ``x``.

    One pass in ``eval()`` mode with gradients of the summed per-sample cross-entropy
    (each sample's own gradient enters unscaled), in chunks of ``chunk`` samples, and no
    update. A unit (a feature, or a channel of a conv layer) is dead when its gradient
    is exactly zero on every sample; saturated when it is not dead but ``|f'| < eps`` on
    every sample (:class:`Diagnostics`). Both fractions are over all activation units of
    the model (each layer weighted by its number of units).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = net[0].bias.copy_(torch.tensor([-1e3, -1e3, 1e3, 1e3]))
        >>> dead_fractions(net, torch.rand(10, 3), torch.zeros(10, dtype=torch.long))
        (0.5, 0.0)
    """
    was = model.training
    model.eval()
    with Diagnostics(model, eps=eps, layers=(), keep_history=False) as diag:
        for i in range(0, len(y), chunk):
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(
                model(x[i : i + chunk]), y[i : i + chunk], reduction="sum"
            ).backward()
            diag.step()
        stats = diag.window()
    model.zero_grad(set_to_none=True)
    model.train(was)
    units = sum(s.units for s in stats)
    dead, sat = (sum(getattr(s, f) * s.units for s in stats) / units for f in _FRACTIONS)
    return dead, sat


def _slope(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``f'(x)`` elementwise by torch's backward of ``module`` (upstream gradient 1)."""
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        out = module(leaf.clone())  # a non-leaf copy: in-place modules may overwrite it
        (g,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    return g


def zero_slope_point(
    module: nn.Module, dtype: torch.dtype = torch.float32, *, n: int = 64, limit: float = 1e4
) -> float:
    """The largest ``x <= 0`` of ``dtype`` at and below which ``f'`` is exactly ``0.0``.

    Bisection over the representable magnitudes in ``[0, limit]``, evaluating torch's
    own backward of ``module`` on ``n`` copies of each value (``n = 64`` runs the
    vectorised kernels, ``n = 1`` the scalar path). It assumes the zero set on the
    negative side is a tail ``{x <= x0}``, as it is for the exponential tails of the
    ELU family, Mish, SiLU and GELU (the tests check it against a dense scan).

    Returns:
        ``0.0`` when ``f'(0) = 0`` already (ReLU); ``-inf`` when ``f'(-limit) != 0``
        (LeakyReLU, linear).

    Raises:
        ValueError: for a dtype other than float32 or float64.
    """
    ints = {torch.float32: (np.float32, np.int32), torch.float64: (np.float64, np.int64)}
    if dtype not in ints:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    ftype, itype = ints[dtype]

    def zero(bits: int) -> bool:  # is f'(-|x|) exactly zero, |x| given by its bit pattern
        v = -float(np.array(bits, dtype=itype).view(ftype))
        return bool((_slope(module, torch.full((n,), v, dtype=dtype)) == 0).all())

    lo, hi = 0, int(np.array(limit, dtype=ftype).view(itype))
    if zero(lo):
        return 0.0
    if not zero(hi):
        return -math.inf
    while hi - lo > 1:  # invariant: f' != 0 at -|lo|, f' == 0 at -|hi|
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if zero(mid) else (mid, hi)
    return -float(np.array(hi, dtype=itype).view(ftype))


@dataclass(frozen=True)
class ZeroSlope:
    """Exact zeros of one activation module's slope over a whole pass.

    Args:
        name: the module's qualified name in the model.
        kind: its class name.
        units: features (or channels: dimension 1) of its input.
        inputs: input elements seen (samples x positions x units).
        zeros: how many of them have ``f'`` exactly ``0.0``.
        zero_units: share of units with ``f'`` exactly ``0.0`` at every sample and
            position: dead whatever the gradient above them.
        min_input: the lowest input seen (NaN if any input was NaN).
    """

    name: str
    kind: str
    units: int
    inputs: int
    zeros: int
    zero_units: float
    min_input: float

    @property
    def zero_share(self) -> float:
        """``zeros / inputs``: the share of inputs where ``f'`` is exactly ``0.0``."""
        return self.zeros / self.inputs if self.inputs else 0.0

    @classmethod
    def pool(cls, stats: Sequence[ZeroSlope], name: str = "(all)") -> ZeroSlope:
        """All layers as one: counts summed, ``zero_units`` weighted by units, lowest input."""
        units, low = sum(s.units for s in stats), np.min([s.min_input for s in stats])
        zero_units = sum(s.zero_units * s.units for s in stats) / units
        inputs, zeros = sum(s.inputs for s in stats), sum(s.zeros for s in stats)
        return cls(
            name, "+".join(s.kind for s in stats), units, inputs, zeros, zero_units, float(low)
        )


def zero_slope_stats(model: nn.Module, x: torch.Tensor, chunk: int = 500) -> list[ZeroSlope]:
    """Where ``f'`` is exactly zero at the inputs of ``model``'s activation modules.

    Forward passes over ``x`` in chunks (``eval()`` mode, no update); a forward pre-hook
    on every activation module known to :class:`Diagnostics` computes the slope at its
    input by torch's own backward (:func:`_slope`). A module called several times
    accumulates over its calls.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ELU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = net[0].bias.copy_(torch.tensor([-500.0, -500.0, 0.0, 0.0]))
        >>> (s,) = zero_slope_stats(net, torch.rand(10, 3))
        >>> s.kind, s.zero_units, s.zero_share, s.min_input < -400
        ('ELU', 0.5, 0.5, True)
    """
    table, acc, handles, busy = activation_table(), {}, [], []

    def hook(name: str):
        def pre(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if busy:  # the hook's own call of the module, in _slope
                return
            z = inputs[0].detach()
            if z.ndim < 2:
                raise ValueError(
                    f"zero_slope_stats: {name!r} got shape {tuple(z.shape)}; need (batch, ...)"
                )
            busy.append(True)
            try:
                zero = _slope(module, z) == 0
            finally:
                busy.clear()
            dims = tuple(d for d in range(z.ndim) if d != 1)
            a = acc.setdefault(name, [type(module).__name__, z.shape[1], 0, 0, None, math.inf])
            a[2], a[3] = a[2] + int(zero.sum()), a[3] + zero.numel()
            units = zero.all(dim=dims)
            a[4] = units if a[4] is None else a[4] & units
            low = float(z.min())
            a[5] = low if math.isnan(low) or low < a[5] else a[5]  # NaN sticks

        return pre

    for name, m in model.named_modules():
        if any(isinstance(m, cls) for cls in table):
            handles.append(m.register_forward_pre_hook(hook(name)))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), chunk):
                model(x[i : i + chunk])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return [
        ZeroSlope(n, kind, int(u), total, zeros, float(mask.double().mean()), low)
        for n, (kind, u, zeros, total, mask, low) in acc.items()
    ]
