"""Hooks that watch a model train: dead and saturated units, activation and gradient stats.

:class:`Diagnostics` is a context manager. On entry it registers forward hooks on the
model's Linear and Conv layers and on its activation modules, keeps every handle, and
on exit (normal or by exception) removes them all. Between ``loss.backward()`` and the
optimiser step, :meth:`Diagnostics.step` turns what the hooks saw into one
:class:`LayerStats` per layer.

Definitions (per layer, per step, i.e. over one batch):

* a *unit* is an output feature of a Linear layer (last dimension), a channel of a
  Conv layer (dimension 1, pooled over all positions), and, for an activation module,
  a feature or channel of its input (the pre-activation), laid out like the layer that
  produced it;
* **dead**: the gradient of the loss with respect to the unit's pre-activation is
  exactly ``0.0`` for every sample (and every position). For an activation module this
  is the gradient at its input, i.e. after multiplying by ``f'``; for a Linear/Conv
  layer it is the gradient at its output. ``dead_fraction`` is the share of such units;
* **saturated**: not dead, but ``|f'(x)| < eps`` at every sample and position: the unit
  passes a gradient, scaled down by more than ``1/eps``. For ELU this is the negative
  plateau (output within ``eps`` of ``-alpha``). Linear/Conv layers are linear: they have
  no flat region, so their ``saturated_fraction`` is 0 by definition;
* ``mean``, ``var``: of the layer's output over the batch (all elements);
* ``grad_norm``: the L2 norm of the gradient of the loss with respect to the
  pre-activation (as for *dead*), over the whole batch;
* ``grad_gain``: ``grad_norm`` of this layer over ``grad_norm`` of the next layer in
  forward order, the factor by which the gradient grows (> 1) or shrinks (< 1) as it
  flows back through this step; ``None`` for the last layer or a zero denominator.

Over several steps (an epoch, an evaluation pass), :meth:`Diagnostics.window` gives the
same numbers with *dead* meaning "zero gradient at every sample of every step since
:meth:`Diagnostics.reset_window`", and the other values averaged over those steps.

Example:
    >>> import torch, torch.nn as nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> with Diagnostics(model) as diag:
    ...     loss = nn.functional.cross_entropy(model(torch.randn(16, 4)), torch.zeros(16, dtype=torch.long))
    ...     loss.backward()
    ...     stats = diag.step()
    >>> [s.name for s in stats], all(0 <= s.dead_fraction <= 1 for s in stats)
    (['0', '1', '2'], True)
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ._slopes import Mask, activation_table, flat_units

__all__ = ["DEFAULT_EPS", "Diagnostics", "LayerStats"]

DEFAULT_EPS = 1e-2
_LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear)
_CONV_TYPES: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd,)


@dataclass
class LayerStats:
    """What the diagnostics measured for one layer over one step (or one window).

    Args:
        name: the module's qualified name in the model; a module called several times in
            one forward pass gets ``name[i]`` for its call ``i >= 1``.
        kind: the module's class name (``"Linear"``, ``"Conv2d"``, ``"ReLU"``, ...).
        units: the number of units (features or channels).
        dead_fraction: share of units whose pre-activation gradient is exactly zero for
            every sample, in ``[0, 1]``.
        saturated_fraction: share of units that are not dead but sit where
            ``|f'(x)| < eps`` for every sample, in ``[0, 1]``.
        mean, var: mean and variance of the module's output.
        grad_norm: L2 norm of the loss gradient at the pre-activation.
        grad_gain: ``grad_norm`` over the next layer's, or ``None``.
        steps: how many steps these numbers cover.
    """

    name: str
    kind: str
    units: int
    dead_fraction: float
    saturated_fraction: float
    mean: float
    var: float
    grad_norm: float
    grad_gain: float | None
    steps: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (non-finite numbers become ``None``)."""
        d = asdict(self)
        for k in ("mean", "var", "grad_norm", "grad_gain"):
            v = d[k]
            if v is not None and not math.isfinite(v):
                d[k] = None
        return d


class _Site:
    """What the hooks saw for one call of one module within the current step."""

    __slots__ = (
        "flat", "grad_sq", "kind", "moments", "name", "nonzero", "pending", "share", "units",
    )  # fmt: skip

    def __init__(self, name: str, kind: str, units: int) -> None:
        self.name, self.kind, self.units = name, kind, units
        self.moments: tuple[torch.Tensor, torch.Tensor, int] | None = None  # see _moments
        self.flat: torch.Tensor | None = None  # (units,) bool: |f'| < eps everywhere
        self.nonzero: torch.Tensor | None = None  # (units,) bool: some gradient != 0
        self.grad_sq: float | None = None
        # an activation whose input is the previous layer's output hands that layer its
        # input gradient with what it reduced from it (pending); the layer reuses the
        # reductions when its own output gradient is that very tensor, unchanged
        self.share: _Site | None = None
        self.pending: tuple[torch.Tensor, torch.Tensor, float] | None = None


class _Window:
    """Running aggregate of one layer over the steps of a window."""

    __slots__ = ("flat", "grad_norm", "kind", "mean", "nonzero", "steps", "units", "var")

    def __init__(self, kind: str, units: int) -> None:
        self.kind, self.units = kind, units
        self.nonzero = torch.zeros(units, dtype=torch.bool)
        self.flat = torch.ones(units, dtype=torch.bool)
        self.mean = self.var = self.grad_norm = 0.0
        self.steps = 0


def _moments(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The two reductions behind :func:`_mean_var`, left as tensors until ``step()``.

    ``torch.var_mean`` is several times slower on CPU; the arithmetic is done once per
    step in Python floats (float64, as before), not as a handful of tiny tensor ops per
    call of every hook.
    """
    with torch.no_grad():
        t = t.detach()
        if not t.is_floating_point():
            t = t.float()
        return t.mean(), torch.linalg.vector_norm(t), max(t.numel(), 1)


def _mean_var(moments: tuple[torch.Tensor, torch.Tensor, int] | None) -> tuple[float, float]:
    """Mean and (population) variance of all elements, as ``E[x^2] - E[x]^2`` in float64.

    Accurate while ``var >> 1e-7 * mean^2`` (float32 sums), clamped at 0.
    """
    if moments is None:
        return math.nan, math.nan
    mean_t, norm_t, n = moments
    mean, norm = float(mean_t), float(norm_t)
    var = norm * norm / n - mean * mean
    return mean, var if not var < 0.0 else 0.0


def _grad_reductions(g: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, float]:
    """Per unit "some gradient is not 0", and the squared L2 norm of ``g`` (float64)."""
    # max |g| per unit, never g**2: squares of gradients below ~1e-23 underflow
    # to zero in float32 and would turn a slowed unit into a "dead" one
    # (max > 0 or min < 0 is much faster on CPU than abs().amax or an inf-norm)
    hi, lo = (g.amax(dim=dims), g.amin(dim=dims)) if dims else (g, g)
    nz = (hi > 0) | (lo < 0)
    norm = float(torch.linalg.vector_norm(g))  # squared in float64 below
    if norm == 0.0 or not math.isfinite(norm):  # squares under/overflowed in float32
        top = float(torch.maximum(hi.max(), -lo.min()))
        if top > 0:
            norm = top * float(torch.linalg.vector_norm(g.double() / top))
    return nz, norm * norm


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same memory, layout and version: the same values (``b`` is held alive)."""
    return (
        a.data_ptr() == b.data_ptr()
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.dtype == b.dtype
        and a._version == b._version
    )


def _reduce_dims(ndim: int, unit_dim: int) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i != unit_dim)


class Diagnostics:
    """Context manager that records dead/saturated units and gradient flow per layer.

    See the module docstring for the definitions. Typical use::

        with Diagnostics(model) as diag:
            for x, y in loader:
                opt.zero_grad()
                loss_fn(model(x), y).backward()
                diag.step()          # one list of LayerStats per step, in diag.history
                opt.step()

    Only forward passes that build an autograd graph are recorded (evaluation under
    ``torch.no_grad()`` is ignored). Call :meth:`step` after each backward pass; a module
    called twice before ``step`` (gradient accumulation, shared activation modules)
    gives two layers, ``name`` and ``name[1]``.

    Activations called as functions (``F.relu(x)``) are invisible to module hooks: the
    Linear/Conv layers feeding them still report dead units (their output gradient is
    zero) but saturation needs an activation module; write the activation as a module,
    and use :func:`elulab.nn.swap_activations` to change it.

    Args:
        model: the model to watch.
        enabled: when False, nothing is attached and :meth:`step` returns ``[]``: the
            model runs exactly as without the context manager.
        eps: slope threshold of *saturated*, in ``(0, 1)``.
        layers: the linear-like module classes to watch (default: Linear, Bilinear and
            every Conv/ConvTranspose); ``()`` to watch activations only.
        activations: extra elementwise activation classes to watch (their slope is
            computed by autograd); the ELU family, ReLU, LeakyReLU, GELU, SiLU, Mish,
            Tanh, Sigmoid, Softplus, ... are known already.
        keep_history: keep every audited step's stats in :attr:`history`.
        every: audit one step in ``every`` (steps 0, k, 2k, ... of the calls to
            :meth:`step`); on the others the hooks return at once and :meth:`step`
            returns ``[]``. Each audited step's counts stay exact; the window's dead and
            saturated shares are then over the audited steps only (an upper bound on
            the shares over all steps). ``every=4`` makes the MLP of
            ``benchmarks/bench_audit.py`` cost about 1.1x a plain step instead of 1.3x.

    Raises:
        TypeError: for a model that is not an ``nn.Module`` or is a TorchScript module
            (hooks do not run there), or bad ``layers``/``activations``.
        ValueError: for ``eps`` outside ``(0, 1)``, ``every`` not a positive integer, or a
            model with nothing to watch.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        enabled: bool = True,
        eps: float = DEFAULT_EPS,
        layers: tuple[type[nn.Module], ...] | None = None,
        activations: tuple[type[nn.Module], ...] = (),
        keep_history: bool = True,
        every: int = 1,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if isinstance(model, torch.jit.ScriptModule):
            raise TypeError(
                "TorchScript modules do not run Python hooks; audit the eager model instead"
            )
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 < eps < 1.0:
            raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer (1: every step), got {every!r}")
        layers = (*_LINEAR_TYPES, *_CONV_TYPES) if layers is None else tuple(layers)
        for name, classes in (("layers", layers), ("activations", tuple(activations))):
            bad = [c for c in classes if not (isinstance(c, type) and issubclass(c, nn.Module))]
            if bad:
                raise TypeError(f"{name} must be nn.Module subclasses, got {bad!r}")
        self.model = model
        self.enabled = bool(enabled)
        self.eps = float(eps)
        self.keep_history = bool(keep_history)
        self.every = every
        self.history: list[list[LayerStats]] = []
        self._layer_types = layers
        self._table = activation_table(tuple(activations))
        self._targets = self._find_targets()
        if not self._targets:
            known = sorted({c.__name__ for c in self._table} | {c.__name__ for c in layers})
            raise ValueError(
                f"{type(model).__name__} has no module the diagnostics can watch; "
                f"known kinds: {', '.join(known)} (pass activations=(MyAct,) for others)"
            )
        self._handles: list[Any] = []
        self._sites: list[_Site] = []
        self._calls: dict[str, int] = {}
        self._window: dict[str, _Window] = {}
        self._window_order: list[str] = []
        self._last_out: Callable[[], torch.Tensor | None] = lambda: None
        self._last_unit_dim = 1
        self._last_site: _Site | None = None
        self._pending: dict[int, list[_Site]] = {}
        self._busy = False
        self._active = False
        self._steps = 0  # calls of step() so far
        self._idle = False  # this step is not audited (every > 1)

    # -- which modules ------------------------------------------------------------------
    def _find_targets(self) -> list[tuple[str, nn.Module, str, Mask | None]]:
        out: list[tuple[str, nn.Module, str, Mask | None]] = []
        for name, module in self.model.named_modules():
            label = name or "(model)"
            if isinstance(module, self._layer_types):
                out.append((label, module, "layer", None))
                continue
            for cls, mask in self._table.items():
                if isinstance(module, cls):
                    out.append((label, module, "activation", mask))
                    break
        return out

    @property
    def watched(self) -> list[str]:
        """Names of the modules the hooks are (or would be) attached to."""
        return [name for name, *_ in self._targets]

    @property
    def attached(self) -> bool:
        """Whether hooks are attached now."""
        return bool(self._handles)

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> Diagnostics:
        if self._active:
            raise RuntimeError("this Diagnostics is already active; it cannot be entered twice")
        self._active = True
        if self.enabled:
            try:
                for name, module, role, mask in self._targets:
                    if role == "layer":
                        self._handles.append(module.register_forward_hook(self._layer_hook(name)))
                    else:
                        self._handles.append(
                            module.register_forward_pre_hook(self._act_hook(name, mask))
                        )
                        self._handles.append(module.register_forward_hook(self._act_out_hook))
            except BaseException:
                self._detach()
                self._active = False
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._detach()
        self._active = False
        self._sites = []
        self._calls = {}
        self._pending = {}

    def _detach(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def close(self) -> None:
        """Remove every hook (what leaving the ``with`` block does)."""
        self.__exit__(None, None, None)

    # -- hooks -----------------------------------------------------------------------------
    def _new_site(self, name: str, kind: str, units: int) -> _Site:
        i = self._calls.get(name, 0)
        self._calls[name] = i + 1
        site = _Site(name if i == 0 else f"{name}[{i}]", kind, units)
        self._sites.append(site)
        return site

    def _grad_hook(self, site: _Site, dims: tuple[int, ...]) -> Callable[[torch.Tensor], None]:
        def hook(g: torch.Tensor) -> None:
            g = g.detach()
            done, site.pending = site.pending, None
            if done is not None and _same_tensor(g, done[0]):
                nz, sq = done[1], done[2]  # the activation reduced this very gradient
            else:
                nz, sq = _grad_reductions(g, dims)
            if site.share is not None:  # held until the layer's hook: no address reuse
                site.share.pending = (g, nz, sq)
            if site.nonzero is None:
                site.nonzero, site.grad_sq = nz, sq
            else:  # a second backward through the same graph (retain_graph)
                site.nonzero = site.nonzero | nz
                site.grad_sq = site.grad_sq + sq

        return hook

    def _layer_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if self._busy or self._idle or not isinstance(output, torch.Tensor):
                return
            if not output.requires_grad:
                return
            if output.ndim < 2:
                raise ValueError(
                    f"Diagnostics: layer {name!r} returned a tensor of shape "
                    f"{tuple(output.shape)}; batched inputs (batch, ...) are required"
                )
            unit_dim = output.ndim - 1 if isinstance(module, _LINEAR_TYPES) else 1
            site = self._new_site(name, type(module).__name__, int(output.shape[unit_dim]))
            site.moments = _moments(output)
            output.register_hook(self._grad_hook(site, _reduce_dims(output.ndim, unit_dim)))
            self._last_out = weakref.ref(output)
            self._last_unit_dim = unit_dim
            self._last_site = site

        return hook

    def _act_hook(self, name: str, mask: Mask | None) -> Callable[..., Any]:
        def pre_hook(module: nn.Module, inputs: tuple[Any, ...]) -> Any:
            if self._busy or self._idle or not torch.is_grad_enabled():
                return None
            if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor):
                raise TypeError(
                    f"Diagnostics: activation module {name!r} ({type(module).__name__}) was "
                    "called with something other than one tensor; only elementwise "
                    "activations of one tensor are supported"
                )
            x = inputs[0]
            if not x.requires_grad:
                return None
            if x.ndim < 2:
                raise ValueError(
                    f"Diagnostics: activation {name!r} got a tensor of shape "
                    f"{tuple(x.shape)}; batched inputs (batch, ...) are required"
                )
            linked = self._last_out() is x
            unit_dim = self._last_unit_dim if linked else 1
            site = self._new_site(name, type(module).__name__, int(x.shape[unit_dim]))
            site.share = self._last_site if linked else None
            dims = _reduce_dims(x.ndim, unit_dim)
            self._busy = True
            try:
                site.flat = flat_units(module, x, self.eps, mask, dims)
            finally:
                self._busy = False
            # the gradient of this private alias of x is exactly the module's input
            # gradient, even when x is used elsewhere; a view costs nothing, but an
            # in-place module needs a copy (hooks on a view modified in place are lost)
            inplace = getattr(module, "inplace", False) is True or mask is None
            x2 = x.clone() if inplace else x.view_as(x)
            x2.register_hook(self._grad_hook(site, dims))
            self._pending.setdefault(id(module), []).append(site)
            return (x2,)

        return pre_hook

    def _act_out_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        pending = self._pending.get(id(module))
        if self._busy or not pending:
            return
        site = pending.pop()
        if isinstance(output, torch.Tensor):
            site.moments = _moments(output)

    # -- steps ----------------------------------------------------------------------------
    def step(self) -> list[LayerStats]:
        """Close the current step: one :class:`LayerStats` per layer, in forward order.

        Call it after ``loss.backward()``. The stats are appended to :attr:`history`
        (when ``keep_history``) and to the current window.

        Raises:
            RuntimeError: outside the ``with`` block, or when no forward pass with
                gradients, or no backward pass, was seen since the last step.
        """
        if not self._active:
            raise RuntimeError(
                "Diagnostics.step() called outside the `with Diagnostics(...)` block"
            )
        if not self.enabled:
            return []
        if self._idle:  # a step between audited ones: the hooks recorded nothing
            self._advance()
            return []
        sites, self._sites, self._calls, self._pending = self._sites, [], {}, {}
        if not sites:
            raise RuntimeError(
                "Diagnostics.step(): no forward pass with gradients was recorded since the "
                "last step (forward passes under torch.no_grad() are not recorded)"
            )
        if all(s.nonzero is None for s in sites):
            raise RuntimeError(
                "Diagnostics.step(): no gradient reached the watched layers; call "
                "loss.backward() before step()"
            )
        norms = [0.0 if s.grad_sq is None else math.sqrt(s.grad_sq) for s in sites]
        stats: list[LayerStats] = []
        for i, s in enumerate(sites):
            nz = s.nonzero if s.nonzero is not None else torch.zeros(s.units, dtype=torch.bool)
            live = int(nz.sum())  # exact counts: dead = units - live
            flat_live = 0 if s.flat is None else int((s.flat & nz).sum())
            flat = s.flat if s.flat is not None else torch.zeros(s.units, dtype=torch.bool)
            mean, var = _mean_var(s.moments)
            stats.append(
                LayerStats(
                    name=s.name,
                    kind=s.kind,
                    units=s.units,
                    dead_fraction=(s.units - live) / s.units if s.units else 0.0,
                    saturated_fraction=flat_live / s.units if s.units else 0.0,
                    mean=mean,
                    var=var,
                    grad_norm=norms[i],
                    grad_gain=_gain(norms, i),
                )
            )
            self._accumulate(s, nz, flat, stats[-1])
        if self.keep_history:
            self.history.append(stats)
        self._advance()
        return stats

    def _advance(self) -> None:
        self._steps += 1
        self._idle = self._steps % self.every != 0

    def _accumulate(self, s: _Site, nz: torch.Tensor, flat: torch.Tensor, st: LayerStats) -> None:
        w = self._window.get(s.name)
        if w is None or w.units != s.units:
            w = self._window[s.name] = _Window(s.kind, s.units)
            if s.name not in self._window_order:
                self._window_order.append(s.name)
        w.nonzero |= nz.cpu()
        w.flat &= flat.cpu()
        w.mean += st.mean
        w.var += st.var
        w.grad_norm += st.grad_norm
        w.steps += 1

    def reset_window(self) -> None:
        """Start a new window (e.g. a new epoch or evaluation pass)."""
        self._window = {}
        self._window_order = []

    def window(self) -> list[LayerStats]:
        """Per-layer stats over every step since :meth:`reset_window` (or the start).

        ``dead_fraction``: units with a zero gradient at every sample of every step;
        ``saturated_fraction``: units that are flat at every sample of every step and
        not dead; ``mean``, ``var``, ``grad_norm``: averages of the per-step values.

        Raises:
            RuntimeError: when no step was recorded in the window.
        """
        if not self._window:
            raise RuntimeError("Diagnostics.window(): no step recorded since the window began")
        names = self._window_order
        norms = [self._window[n].grad_norm / self._window[n].steps for n in names]
        out = []
        for i, n in enumerate(names):
            w = self._window[n]
            out.append(
                LayerStats(
                    name=n,
                    kind=w.kind,
                    units=w.units,
                    dead_fraction=_share(~w.nonzero),
                    saturated_fraction=_share(w.flat & w.nonzero),
                    mean=w.mean / w.steps,
                    var=w.var / w.steps,
                    grad_norm=norms[i],
                    grad_gain=_gain(norms, i),
                    steps=w.steps,
                )
            )
        return out

    def __iter__(self) -> Iterator[list[LayerStats]]:
        return iter(self.history)


def _share(mask: torch.Tensor) -> float:
    """Exact share of True in a boolean vector (count / size, in Python floats)."""
    return int(mask.sum()) / mask.numel() if mask.numel() else 0.0


def _gain(norms: list[float], i: int) -> float | None:
    if i + 1 >= len(norms) or norms[i + 1] == 0.0:
        return None
    return norms[i] / norms[i + 1]
