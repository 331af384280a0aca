r"""Triton kernels (CUDA) for bias + ELU-family activation + dropout, forward and backward.

Imported lazily by :mod:`elulab.nn._fused` only for CUDA tensors, so that ``triton`` is
never needed on CPU. Same math and the same ``(y, code)`` format as the torch-op
kernels there: the forward writes ``y`` (in the input dtype, computed in float32) and,
with dropout, one uint8 per element (0 dropped, 1 kept with ``s <= 0``, 2 kept with
``s > 0``); the backward reads ``dL/dy``, ``y`` and ``code`` and writes ``dL/ds``.
The dropout mask is Philox ``tl.rand(seed, offset)`` with a seed drawn from torch's CUDA
global (CPU) generator each call, so ``torch.manual_seed`` reproduces it. ``expm1`` on ``s <= 0`` is the Taylor polynomial on [-1/2, 0] and
``exp(x) - 1`` below, as on CPU.

Constants (float32): forward ``[lam, lam*alpha, c, a, b, d]``, backward
``[a*lam, a*lam*alpha, b, c]`` (see :class:`elulab.nn._fused._Plan`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["triton_backward", "triton_forward"]

_BLOCK = 1024


@triton.jit
def _expm1_neg(x):
    p = x * (1.0 / 40320.0) + (1.0 / 5040.0)
    p = p * x + (1.0 / 720.0)
    p = p * x + (1.0 / 120.0)
    p = p * x + (1.0 / 24.0)
    p = p * x + (1.0 / 6.0)
    p = p * x + 0.5
    p = p * x + 1.0
    return tl.where(x > -0.5, x * p, tl.exp(x) - 1.0)


@triton.jit
def _fwd_kernel(
    z_ptr, b_ptr, y_ptr, code_ptr, n, cols, seed, p,
    lam, neg, c, a, b, d,
    HAS_BIAS: tl.constexpr, DROP: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    s = tl.load(z_ptr + offs, mask=m, other=0.0).to(tl.float32)
    if HAS_BIAS:
        s += tl.load(b_ptr + offs % cols, mask=m, other=0.0).to(tl.float32)
    u = tl.where(s > 0, s * lam, _expm1_neg(s * c) * neg)
    if DROP:
        keep = tl.rand(seed, offs) >= p
        y = tl.where(keep, u * a + b, d)
        code = tl.where(keep, tl.where(s > 0, 2, 1), 0).to(tl.uint8)
        tl.store(code_ptr + offs, code, mask=m)
    else:
        y = u
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bwd_kernel(
    g_ptr, y_ptr, code_ptr, out_ptr, n, pa, ka, b, c,
    HAS_CODE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + offs, mask=m, other=0.0).to(tl.float32)
    neg = g * ((y - b + ka) * c)
    if HAS_CODE:
        code = tl.load(code_ptr + offs, mask=m, other=0)
        out = tl.where(code == 2, g * pa, tl.where(code == 1, neg, 0.0))
    else:
        out = tl.where(y > 0, g * pa, neg)
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=m)


def triton_forward(
    z: torch.Tensor, bias: torch.Tensor | None, consts: tuple[torch.Tensor, ...], p: float
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, code)`` for a contiguous CUDA ``z`` (bias over the last dimension)."""
    z = z.contiguous()
    n = z.numel()
    y = torch.empty_like(z)
    drop = p > 0
    code = torch.empty(z.shape, dtype=torch.uint8, device=z.device) if drop else None
    seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if drop else 0  # CPU: no sync
    lam, neg, c, a, b, d = (float(v) for v in consts)
    grid = (triton.cdiv(n, _BLOCK),)
    _fwd_kernel[grid](
        z, bias if bias is not None else z, y, code if code is not None else y,
        n, z.shape[-1] if z.ndim else 1, seed, p, lam, neg, c, a, b, d,
        HAS_BIAS=bias is not None, DROP=drop, BLOCK=_BLOCK,
    )  # fmt: skip
    return y, code


def triton_backward(
    gy: torch.Tensor, y: torch.Tensor, code: torch.Tensor | None, consts: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """``dL/ds`` from ``dL/dy``, ``y`` and ``code`` (all contiguous, on CUDA)."""
    out = torch.empty_like(y)
    n = y.numel()
    pa, ka, b, c = (float(v) for v in consts)
    grid = (triton.cdiv(n, _BLOCK),)
    _bwd_kernel[grid](
        gy.contiguous(), y, code if code is not None else y, out, n, pa, ka, b, c,
        HAS_CODE=code is not None, BLOCK=_BLOCK,
    )  # fmt: skip
    return out
