r"""Fused Linear + bias + ELU-family activation + (Alpha)Dropout, with a backward from the output.

The block :class:`FusedLinearELU` computes what ``Sequential(Linear, act, drop)`` computes,

.. math::
    s = x W^\top + b, \qquad u = f(s) = \begin{cases} \lambda s & s > 0 \\
    \lambda\alpha\,(e^{c s} - 1) & s \le 0 \end{cases}, \qquad
    y = \begin{cases} a u + b' & \text{kept (probability } q = 1 - p) \\
    d = a\alpha' + b' & \text{dropped} \end{cases}

with ELU (:math:`\lambda = 1, c = 1`), SELU (:math:`\lambda = 1.0507, \alpha = 1.6733,
c = 1`), CELU (:math:`\lambda = 1, c = 1/\alpha`) or :class:`ScaledELU`
(:math:`\lambda, \alpha`, :math:`c = 1`); AlphaDropout (:math:`a, b'` from
:class:`AlphaDropout`, :math:`\alpha'` its saturation), plain dropout
(:math:`a = 1/q, b' = 0, \alpha' = 0`) or none (:math:`a = 1, b' = 0`, nothing dropped).

**The backward needs only the output.** On :math:`s \le 0`,
:math:`f'(s) = \lambda\alpha c\, e^{cs} = c\,(u + \lambda\alpha)`, and :math:`u = (y - b')/a`
for a kept unit, so

.. math::
    \frac{\partial y}{\partial s} = \begin{cases} a\lambda & \text{kept}, s > 0 \\
    c\,(y - b' + a\lambda\alpha) & \text{kept}, s \le 0 \\ 0 & \text{dropped.} \end{cases}

So the block saves ``y`` (which the next layer saves anyway as its input) and one byte
per element, ``code`` (uint8) = 0 dropped, 1 kept with :math:`s \le 0`, 2 kept with
:math:`s > 0` (without dropout, nothing: the branch is the sign of ``y``). The eager
composition saves the pre-activation ``s`` for the activation's backward (4 bytes), the
kept mask for ``where`` (1 byte) and ``y`` for the next Linear: 9 bytes per element
against 5 (8 against 4 without dropout).

Kernels (``impl``):

* ``"eager"``: ATen ops, one per step, in a custom autograd function. Its forward runs
  the activation module and the AlphaDropout ops of the composition, so its output is
  **bitwise** the composition's, random draws included (``torch.rand_like``); only the
  backward differs (the formula above, a few ulp from autograd's).
* ``"compile"``: the same math as one ``torch.compile`` kernel forward and one backward.
  Two deliberate differences: ``expm1`` is a Taylor polynomial on :math:`[-1/2, 0]` and
  ``exp(x) - 1`` below (inductor's vectorised CPU ``expm1`` is ``exp(x) - 1``, which
  loses up to 4e4 ulp near 0), and the dropout mask comes from a keyed integer hash of
  the element index (two keys per call drawn from torch's global generator, so
  ``torch.manual_seed`` reproduces it) because inductor's per-element Philox on CPU is
  slower than the whole fused kernel. A unit is dropped when the top 24 bits of its
  32-bit hash, as an integer, are below ``round(p * 2**24)`` (the resolution of
  ``torch.rand``'s float32 uniforms).
* ``"triton"``: a Triton kernel for CUDA (forward and backward), Philox ``tl.rand``.
* ``"auto"`` (default): Triton on CUDA when importable, else ``torch.compile``; on CPU
  ``torch.compile`` for outputs of at least :data:`COMPILE_MIN_NUMEL` elements and the
  plain composition below (where a compiled call's fixed overhead, and the eager
  kernels' extra ops, cost more than fusion saves; measured by ``bench_fused.py``).
  If compilation is unavailable or fails, the eager kernels run instead (same memory,
  slower than the composition), with one warning per process.
* ``"composition"``: the three child modules, unfused.

The block runs the plain composition (its three child modules) when it cannot fuse: an
activation or dropout module it does not know, a hook on a child module (so
:class:`elulab.diagnostics.Diagnostics` sees the activation), ``torch.fx`` tracing, or
``torch.func`` transforms. The fused backward is first order only (``create_graph``
through it raises); use the composition (``impl="composition"``) for double backprop.

References:
    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515. Fast and Accurate Deep Network Learning by Exponential Linear Units
    (Clevert, Unterthiner, Hochreiter, 2015), arXiv:1511.07289.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from elulab.functional import SELU_ALPHA, SELU_LAMBDA

from ._activations import SELU
from ._snn import AlphaDropout, ScaledELU

__all__ = ["COMPILE_MIN_NUMEL", "IMPLS", "FusedLinearELU", "fused_bias_elu_dropout"]

#: Kernel choices of :class:`FusedLinearELU` and :func:`fused_bias_elu_dropout`.
IMPLS: tuple[str, ...] = ("auto", "compile", "eager", "triton", "composition")

#: With ``impl="auto"`` on CPU, outputs with fewer elements run the plain composition:
#: below this size the compiled call's fixed cost (guards, a Python wrapper, tens of
#: microseconds) exceeds what fusion saves (``benchmarks/bench_fused.py``: 0.5-0.7x at
#: 1e4 elements, 0.9-2x at 1e5, 4-8x from 1e6 on, one thread).
COMPILE_MIN_NUMEL: int = 1 << 17

_MIX = 0x45D9F3B  # the multiplier of a well-mixing 32-bit hash (T. Mueller)


# ---------------------------------------------------------------------------
# what to compute: constants of one (activation, dropout) pair
# ---------------------------------------------------------------------------


def _activation_constants(act: nn.Module) -> tuple[float, float, float] | None:
    """``(alpha, scale, input_scale)`` of an ELU-family module (ATen's ``elu``), or None."""
    if isinstance(act, ScaledELU):
        return float(act.alpha), float(act.lam), 1.0
    if isinstance(act, nn.SELU):
        return SELU_ALPHA, SELU_LAMBDA, 1.0
    if isinstance(act, nn.CELU):
        return float(act.alpha), 1.0, 1.0 / float(act.alpha)
    if isinstance(act, nn.ELU):
        return float(act.alpha), 1.0, 1.0
    return None


def _dropout_constants(drop: nn.Module | None) -> tuple[float, float, float, float] | None:
    """``(p, a, b, alpha_prime)`` of AlphaDropout / Dropout / nothing, or None if unknown."""
    if drop is None or isinstance(drop, nn.Identity):
        return 0.0, 1.0, 0.0, 0.0
    if isinstance(drop, AlphaDropout):
        return float(drop.p), float(drop.a), float(drop.b), float(drop.alpha_prime)
    if type(drop) is nn.Dropout:
        p = float(drop.p)
        return (p, 1.0 / (1.0 - p), 0.0, 0.0) if p < 1.0 else None
    return None


@dataclass(frozen=True)
class _Plan:
    """The constants of one block; ``alpha_dropout`` selects the composition's exact ops."""

    act: nn.Module = field(compare=False, hash=False)
    alpha: float
    scale: float
    input_scale: float
    p: float
    a: float
    b: float
    alpha_prime: float
    alpha_dropout: bool

    def consts(self, dtype: torch.dtype, device: torch.device, drop: bool) -> tuple[Any, Any]:
        """Forward and backward constant vectors in the compute dtype (float32 or float64)."""
        key = (dtype, device, drop)
        hit = _CONSTS.get((self, key))
        if hit is not None:
            return hit
        opm = torch.float64 if dtype == torch.float64 else torch.float32
        t = lambda v: torch.tensor(v, dtype=opm)  # noqa: E731
        # ATen's elu rounds alpha and scale to the compute dtype, then multiplies them
        neg = float(t(self.alpha) * t(self.scale))
        a, b = (self.a, self.b) if drop else (1.0, 0.0)
        d = float(t(self.alpha_prime) * t(a) + t(b))
        lam_alpha = self.scale * self.alpha
        hit = (
            _scalars((self.scale, neg, self.input_scale, a, b, d), opm, device),
            _scalars((a * self.scale, a * lam_alpha, b, self.input_scale), opm, device),
        )
        if len(_CONSTS) > 256:
            _CONSTS.clear()
        _CONSTS[(self, key)] = hit
        return hit


_Consts = tuple[torch.Tensor, ...]  # 0-d tensors
_CONSTS: dict[tuple[_Plan, tuple[Any, ...]], tuple[Any, Any]] = {}


def _scalars(values: tuple[Any, ...], dtype: torch.dtype, device: torch.device) -> tuple:
    """0-d tensors: kernel inputs without sizes (a size would be duck-sized against the
    data's and recompile the kernel when a batch happens to match it)."""
    return tuple(torch.tensor(v, dtype=dtype, device=device) for v in values)


def _plan(act: nn.Module, drop: nn.Module | None) -> _Plan | None:
    ac = _activation_constants(act)
    dc = _dropout_constants(drop)
    if ac is None or dc is None:
        return None
    return _Plan(act, *ac, *dc, alpha_dropout=isinstance(drop, AlphaDropout))


# ---------------------------------------------------------------------------
# kernels written in torch ops (eager, or compiled by inductor)
# ---------------------------------------------------------------------------


def _expm1_neg(x: torch.Tensor) -> torch.Tensor:
    """``expm1(x)`` for ``x <= 0``: Taylor (Horner) on [-1/2, 0], ``exp(x) - 1`` below.

    Truncation error below 0.25 ulp (8 terms in float32, 15 in float64); below -1/2 the
    subtraction costs at most 1.54x the ulp error of ``exp``.
    """
    n = 15 if x.dtype == torch.float64 else 8
    p = torch.full_like(x, 1.0 / math.factorial(n))
    for k in range(n - 1, 0, -1):
        p = p * x + 1.0 / math.factorial(k)
    return torch.where(x > -0.5, x * p, torch.exp(x) - 1.0)


def _mix(h: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer, two multiply-xorshift rounds, on int32 lanes (wrapping).

    ``(h >> 16) & 0xFFFF`` is the logical shift of the 32-bit pattern.
    """
    h = (((h >> 16) & 0xFFFF) ^ h) * _MIX
    h = (((h >> 16) & 0xFFFF) ^ h) * _MIX
    return ((h >> 16) & 0xFFFF) ^ h


def _act(s: torch.Tensor, c: _Consts) -> torch.Tensor:
    return torch.where(s > 0, s * c[0], _expm1_neg(s * c[2]) * c[1])


def _k_fwd(z: torch.Tensor, bias: torch.Tensor | None, c: _Consts) -> torch.Tensor:
    """Bias + activation (no dropout): ``y``."""
    s = (z if bias is None else z + bias).to(c[0].dtype)
    return _act(s, c).to(z.dtype)


def _k_fwd_drop(
    z: torch.Tensor, bias: torch.Tensor | None, c: _Consts, keys: _Consts
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bias + activation + dropout: ``(y, code)``; keys = (k0, k1, threshold)."""
    s = (z if bias is None else z + bias).to(c[0].dtype)
    pos = s > 0
    u = torch.where(pos, s * c[0], _expm1_neg(s * c[2]) * c[1])
    i = torch.arange(s.numel(), device=s.device, dtype=torch.int32).view(s.shape)
    # the top 24 bits as a float in [0, 2**24) against round(p * 2**24): float compares
    # and a uint8 code vectorise on CPU (int masks blended into floats do not, 8x slower)
    r = ((_mix(_mix(i ^ keys[0]) ^ keys[1]) >> 8) & 0xFFFFFF).to(torch.float32)
    keep = r >= keys[2]
    y = torch.where(keep, u * c[3] + c[4], c[5])
    code = torch.where(keep, torch.where(pos, 2.0, 1.0), 0.0).to(torch.uint8)
    return y.to(z.dtype), code


def _k_bwd(gy: torch.Tensor, y: torch.Tensor, c: _Consts) -> torch.Tensor:
    """``dL/ds`` from ``dL/dy`` and ``y`` (no dropout: the branch is ``y > 0``)."""
    g, v = gy.to(c[0].dtype), y.to(c[0].dtype)
    return torch.where(v > 0, g * c[0], g * ((v - c[2] + c[1]) * c[3])).to(gy.dtype)


def _k_bwd_code(gy: torch.Tensor, y: torch.Tensor, code: torch.Tensor, c: _Consts) -> torch.Tensor:
    """``dL/ds`` with dropout: 0 dropped, ``a lam`` kept positive, ``c (y - b + a lam alpha)``."""
    g, v, k = gy.to(c[0].dtype), y.to(c[0].dtype), code.to(torch.float32)  # float compares
    neg = torch.where(k == 1.0, g * ((v - c[2] + c[1]) * c[3]), 0.0)
    return torch.where(k == 2.0, g * c[0], neg).to(gy.dtype)


_KERNELS: dict[str, Callable[..., Any]] = {
    "fwd": _k_fwd,
    "fwd_drop": _k_fwd_drop,
    "bwd": _k_bwd,
    "bwd_code": _k_bwd_code,
}


# ---------------------------------------------------------------------------
# torch.compile: compiled lazily, fallback to eager said once per process
# ---------------------------------------------------------------------------

_torch_compile: Callable[..., Any] | None = getattr(torch, "compile", None)
_compiled: dict[str, Callable[..., Any]] = {}
_compile_failed: str | None = None


def _reset_compile_state() -> None:
    """Forget compiled kernels and a recorded failure (for tests)."""
    global _compile_failed
    _compiled.clear()
    _compile_failed = None


def compile_available() -> bool:
    """Whether the compiled kernels can be used (no failure recorded in this process)."""
    return _compile_failed is None and _torch_compile is not None


def _note_failure(error: BaseException) -> None:
    global _compile_failed
    first = (str(error).strip().splitlines() or [""])[0][:200]
    _compile_failed = f"{type(error).__name__}: {first}"
    warnings.warn(
        f"elulab.nn fused layers: torch.compile is unavailable or failed ({_compile_failed}); "
        "the eager kernels run instead for the rest of this process (same math, slower)",
        RuntimeWarning,
        stacklevel=4,
    )


def _run_compiled(name: str, *args: Any) -> Any:
    """Run a compiled kernel; on failure run it eagerly and warn once per process."""
    if _compile_failed is None:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # torch's compiler stack warns about its own deprecations while compiling;
                # under warnings-as-errors (pytest) those would look like a failure
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=FutureWarning)
                warnings.filterwarnings("ignore", category=UserWarning, module=r"torch(\.|$)")
                fn = _compiled.get(name)
                if fn is None:
                    if _torch_compile is None:
                        raise RuntimeError("this torch has no torch.compile")
                    fn = _compiled[name] = _torch_compile(_KERNELS[name], dynamic=True)
                return fn(*(a.detach() if isinstance(a, torch.Tensor) else a for a in args))
        except Exception as error:  # a compiler missing or failing: fall back below
            out = _KERNELS[name](*args)  # a genuine error (bad input) raises here instead
            _note_failure(error)
            return out
    return _KERNELS[name](*args)


# ---------------------------------------------------------------------------
# backends: forward (y, code) and backward (dL/ds) in one format
# ---------------------------------------------------------------------------


def _keys(p: float, device: torch.device) -> tuple:
    k0, k1 = torch.randint(-(1 << 31), 1 << 31, (2,), dtype=torch.int64).tolist()  # global RNG
    keys = _scalars((k0, k1), torch.int32, device)
    return (*keys, torch.tensor(float(round(p * 2.0**24)), dtype=torch.float32, device=device))


def _eager_forward(
    z: torch.Tensor, bias: torch.Tensor | None, plan: _Plan, drop: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    s = z if bias is None else z + bias
    u = plan.act.forward(s)  # the module's own kernel: bitwise the composition
    if not drop:
        return u, None
    keep = torch.rand_like(u) >= plan.p  # AlphaDropout.forward's ops, in its order
    fill = torch.full((), plan.alpha_prime, dtype=u.dtype, device=u.device)
    y = torch.where(keep, u, fill) * plan.a + plan.b
    code = keep.to(torch.uint8) + (keep & (s > 0)).to(torch.uint8)
    return y, code


def _forward(
    impl: str, z: torch.Tensor, bias: torch.Tensor | None, plan: _Plan, drop: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if impl == "eager" or (impl == "compile" and _compile_failed is not None):
        return _eager_forward(z, bias, plan, drop)
    if impl == "triton":
        from ._fused_triton import triton_forward

        fwd, _ = plan.consts(z.dtype, torch.device("cpu"), drop)  # floats, no device sync
        return triton_forward(z, bias, fwd, plan.p if drop else 0.0)
    fwd, _ = plan.consts(z.dtype, z.device, drop)
    if not drop:
        return _run_compiled("fwd", z, bias, fwd), None
    return _run_compiled("fwd_drop", z, bias, fwd, _keys(plan.p, z.device))


def _backward(
    impl: str, gy: torch.Tensor, y: torch.Tensor, code: torch.Tensor | None, plan: _Plan
) -> torch.Tensor:
    gy = gy.contiguous()
    if impl == "triton":
        from ._fused_triton import triton_backward

        _, bwd = plan.consts(y.dtype, torch.device("cpu"), code is not None)
        return triton_backward(gy, y, code, bwd)
    _, bwd = plan.consts(y.dtype, y.device, code is not None)
    if impl == "eager" or _compile_failed is not None:
        if code is None:  # ATen's own backward from the result: the same formula, one kernel
            return torch.ops.aten.elu_backward(
                gy, plan.alpha, plan.scale, plan.input_scale, True, y
            )
        return _k_bwd_code(gy, y, code, bwd)
    if code is None:
        return _run_compiled("bwd", gy, y, bwd)
    return _run_compiled("bwd_code", gy, y, code, bwd)


def _triton_usable(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _select(impl: str, numel: int, device: torch.device, dtype: torch.dtype) -> str:
    """The kernel that runs: ``impl``, or for "auto" by device and size."""
    if impl == "auto":
        if device.type == "cuda" and dtype != torch.float64 and _triton_usable(device):
            return "triton"
        if device.type == "cpu" and numel < COMPILE_MIN_NUMEL:
            return "composition"  # small: the plain ops are fastest (measured)
        impl = "compile"
    if impl == "compile" and numel >= 1 << 31:  # the kernel's element index is int32
        return "eager"
    if impl == "compile" and not compile_available():
        return "eager"
    if impl == "triton" and not _triton_usable(device):
        raise RuntimeError("impl='triton' needs a CUDA tensor and the triton package")
    return impl


# ---------------------------------------------------------------------------
# autograd functions
# ---------------------------------------------------------------------------


class _BiasELUDropout(torch.autograd.Function):
    """Elementwise: ``y = drop(act(z + bias))``, backward from ``y`` and ``code``."""

    @staticmethod
    def forward(ctx: Any, z, bias, plan: _Plan, drop: bool, impl: str):  # type: ignore[override]
        y, code = _forward(impl, z.contiguous(), bias, plan, drop)
        ctx.save_for_backward(y, code)
        ctx.plan, ctx.impl = plan, impl
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gy):  # type: ignore[override]
        y, code = ctx.saved_tensors
        gz = _backward(ctx.impl, gy, y, code, ctx.plan)
        gb = None
        if ctx.needs_input_grad[1]:
            gb = gz.reshape(-1, gz.shape[-1]).sum(0) if gz.ndim > 1 else gz
        return gz, gb, None, None, None


def _check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}; got {impl!r}")
    return impl


def _must_compose() -> bool:
    """fx tracing, an enclosing torch.compile, torch.func transforms: the plain composition."""
    if getattr(torch.fx._symbolic_trace, "_is_fx_tracing_flag", False):
        return True
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and compiler.is_compiling():
        return True
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active()) if active is not None else False


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def fused_bias_elu_dropout(
    input: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    activation: nn.Module | None = None,
    dropout: nn.Module | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    r"""``dropout(activation(input + bias))`` as one kernel, with the backward from the output.

    The math and the kernels are in :mod:`elulab.nn._fused` and ``docs/fused.md``:
    :math:`\partial y/\partial s` is :math:`a\lambda` (kept, :math:`s > 0`),
    :math:`c(y - b' + a\lambda\alpha)` (kept, :math:`s \le 0`), 0 (dropped).

    Arguments:
        input: a floating tensor ``(..., C)``.
        bias: ``(C,)``, broadcast over the last dimension, or None.
        activation: an ELU-family module (:class:`elulab.nn.ELU`, ``CELU``, ``SELU``,
            :class:`ScaledELU`, or torch's); default SELU.
        dropout: :class:`AlphaDropout`, ``nn.Dropout`` or None; applied when the module
            is in training mode, as the module itself would be.
        impl: one of :data:`IMPLS` (see the module docs).

    Example:
        >>> z = torch.tensor([[-1.0, 0.5]])
        >>> fused_bias_elu_dropout(z, torch.tensor([0.0, 0.5]), impl="eager")
        tensor([[-1.1113,  1.0507]])
    """
    impl = _check_impl(impl)
    act = SELU() if activation is None else activation
    plan = _plan(act, dropout)
    if plan is None or impl == "composition" or _must_compose():
        out = act(input if bias is None else input + bias)
        return out if dropout is None else dropout(out)
    drop = bool(dropout is not None and dropout.training and plan.p > 0)
    impl = _select(impl, input.numel(), input.device, input.dtype)
    if impl == "composition":
        out = act(input if bias is None else input + bias)
        return out if dropout is None else dropout(out)
    if _needs_grad(input, bias):
        return _BiasELUDropout.apply(input, bias, plan, drop, impl)
    with torch.no_grad():
        return _forward(impl, input.contiguous(), bias, plan, drop)[0]


class FusedLinearELU(nn.Module):
    r"""``Linear -> ELU-family activation -> (Alpha)Dropout`` as one block with a fused kernel.

    .. math:: y = \mathrm{drop}\big(f(x W^\top + b)\big)

    The same numbers as ``nn.Sequential(linear, activation, dropout)`` (its three
    children, which it holds): bitwise with ``impl="eager"`` (forward; random draws
    included), within a few ulp in eval mode and with the same output distribution in
    training with ``"compile"``/``"triton"``. The backward saves the output and one byte
    per element instead of the pre-activation (derivation in :mod:`elulab.nn._fused`).
    It runs the plain composition when a child has a hook, under ``torch.fx`` tracing or
    ``torch.func`` transforms, or for an activation/dropout it does not know.

    References:
        Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter,
        2017), arXiv:1706.02515.

    Arguments:
        in_features, out_features: the Linear sizes.
        activation: an ELU-family module (ELU, CELU, SELU, :class:`ScaledELU`); default
            SELU.
        dropout: :class:`AlphaDropout`, ``nn.Dropout``, or None (no dropout).
        bias: whether the Linear has a bias.
        impl: one of :data:`IMPLS`; ``"auto"`` picks Triton (CUDA), ``torch.compile``,
            or the eager kernels for small CPU tensors.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> block = FusedLinearELU(4, 3, dropout=AlphaDropout(0.05))
        >>> block(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: nn.Module | None = None,
        dropout: nn.Module | None = None,
        bias: bool = True,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self.impl = _check_impl(impl)
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = SELU() if activation is None else activation
        self.dropout = nn.Identity() if dropout is None else dropout
        self._plan_key: tuple[Any, ...] | None = None
        self._plan_cache: _Plan | None = None

    def _current_plan(self) -> _Plan | None:
        act, drop = self.activation, self.dropout
        key = (id(act), id(drop), *(getattr(act, k, None) for k in ("alpha", "lam")),
               *(getattr(drop, k, None) for k in ("p", "a", "b", "alpha_prime")))  # fmt: skip
        if key != self._plan_key:
            self._plan_key, self._plan_cache = key, _plan(act, drop)
        return self._plan_cache

    def _compose(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.linear(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self._current_plan() if self.impl != "composition" else None
        if plan is None or _must_compose() or _hooked(self.linear, self.activation, self.dropout):
            return self._compose(x)
        drop = self.dropout.training and plan.p > 0
        w, b = self.linear.weight, self.linear.bias
        numel = x.numel() // max(x.shape[-1], 1) * w.shape[0]
        impl = _select(self.impl, numel, x.device, x.dtype)
        if impl == "composition":
            return self._compose(x)
        # the bias inside the GEMM, as nn.Linear does (s is bitwise nn.Linear's output);
        # two autograd nodes: the elementwise one saves y and code, addmm saves x and W,
        # and nobody saves s; backward frees y and code before the GEMMs run
        s = nn.functional.linear(x, w, b)
        if _needs_grad(s):
            return _BiasELUDropout.apply(s, None, plan, drop, impl)
        with torch.no_grad():
            return _forward(impl, s.contiguous(), None, plan, drop)[0]

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}"


def _hooked(*modules: nn.Module) -> bool:
    for m in modules:
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
            return True
    from torch.nn.modules import module as _m

    return bool(_m._global_forward_hooks or _m._global_forward_pre_hooks)
