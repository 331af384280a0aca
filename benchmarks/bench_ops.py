"""Time elulab.functional's ELU/CELU/SELU against torch.nn.functional, print ratios.

For each op, size and device it times three workloads and prints elulab / torch
(interleaved blocks of calls, compared by their fastest block, which is the least disturbed
by other processes on a shared machine; 1.00 = same speed, < 1 = elulab faster):

- ``fwd``: ``f(x)`` under ``torch.no_grad()``;
- ``fwd+bwd``: ``f(x)`` then ``torch.autograd.grad`` of it;
- ``dbl-bwd``: ``g = grad(f(x), x, create_graph=True)`` then the gradient of ``sum(g^2)``
  (a gradient penalty / PINN residual, which needs second derivatives).

``--candidate`` adds a row for a design that was measured and not used: a custom
``torch.autograd.Function`` whose differentiable backward calls ``aten::elu_backward``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_ops.py [--sizes 1000 100000 1000000]``.
CUDA rows are added when a GPU is present.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import elulab.functional as ef

__all__ = ["main"]

Op = Callable[[torch.Tensor], torch.Tensor]


class _EluFunction(torch.autograd.Function):
    """The rejected design: closed-form backward in a custom Function (still differentiable)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return F.elu(x, alpha)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, ctx.alpha, 1.0, 1.0, False, x), None


def _ops(candidate: bool) -> list[tuple[str, Op, Op]]:
    ops: list[tuple[str, Op, Op]] = [
        ("elu", lambda t: ef.elu(t, 1.0), lambda t: F.elu(t, 1.0)),
        ("celu(0.7)", lambda t: ef.celu(t, 0.7), lambda t: F.celu(t, 0.7)),
        ("selu", ef.selu, F.selu),
    ]
    if candidate:
        ops.append(("elu custom Function", lambda t: _EluFunction.apply(t, 1.0), F.elu))
    return ops


def _forward(f: Op, x: torch.Tensor) -> None:
    with torch.no_grad():
        f(x)


def _forward_backward(f: Op, x: torch.Tensor) -> None:
    torch.autograd.grad(f(x).sum(), x)


def _double_backward(f: Op, x: torch.Tensor) -> None:
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    torch.autograd.grad(g.pow(2).sum(), x)


WORKLOADS = {"fwd": _forward, "fwd+bwd": _forward_backward, "dbl-bwd": _double_backward}


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def _block(work: Callable, f: Op, x: torch.Tensor, number: int) -> float:
    """Seconds per call over one block of ``number`` calls."""
    _sync(x)
    start = time.perf_counter()
    for _ in range(number):
        work(f, x)
    _sync(x)
    return (time.perf_counter() - start) / number


def _compare(
    work: Callable, ours: Op, theirs: Op, x: torch.Tensor, rounds: int, block_s: float
) -> tuple[float, float, float]:
    """Interleaved blocks of ours and theirs (alternating which goes first).

    Returns (ratio of the fastest blocks, median of the per-round ratios, torch's fastest
    time per call). On a shared machine other processes only ever add time, so the
    fastest block is the least disturbed estimate; the paired median is shown as a check.
    """
    for f in (ours, theirs):  # warm-up (allocator, autograd graph caches)
        _block(work, f, x, 3)
    per_call = min(_block(work, theirs, x, 3), _block(work, ours, x, 3))
    number = max(1, int(block_s / max(per_call, 1e-9)))
    t_ours, t_theirs = [], []
    for r in range(rounds):
        pair = [(t_theirs, theirs), (t_ours, ours)]
        for times, f in pair if r % 2 == 0 else pair[::-1]:
            times.append(_block(work, f, x, number))
    paired = statistics.median(o / t for o, t in zip(t_ours, t_theirs, strict=True))
    return min(t_ours) / min(t_theirs), paired, min(t_theirs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved blocks per impl")
    parser.add_argument("--block-ms", type=float, default=10.0, help="length of one block")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--candidate", action="store_true", help="time the custom Function")
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    devices = ["cpu"]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append("cuda")
    else:
        print("CUDA: not available, skipped")
    print(
        f"torch {torch.__version__}, {args.dtype}, {args.threads} thread(s), "
        f"{args.rounds} interleaved blocks of ~{args.block_ms:g} ms per implementation"
    )
    header = f"{'device':<6} {'op':<20} {'size':>9} " + " ".join(f"{w:>24}" for w in WORKLOADS)
    print(header)
    print("-" * len(header))
    for device in devices:
        for name, ours, theirs in _ops(args.candidate):
            for n in args.sizes:
                gen = torch.Generator().manual_seed(n)
                x = torch.randn(n, generator=gen, dtype=dtype).to(device).requires_grad_(True)
                cells = []
                for work in WORKLOADS.values():
                    ratio, paired, t_torch = _compare(
                        work, ours, theirs, x, args.rounds, args.block_ms / 1e3
                    )
                    cells.append(f"{ratio:4.2f} [{paired:4.2f}] {t_torch * 1e6:8.1f}us")
                print(f"{device:<6} {name:<20} {n:>9} " + " ".join(f"{c:>24}" for c in cells))
    print(
        "cells: elulab/torch ratio of the fastest blocks [median of paired per-round "
        "ratios] torch's fastest time per call; 1.00 = same speed"
    )


if __name__ == "__main__":
    main()
