"""Fused ELU layers against the eager composition: time, peak memory, ulp; ratios in one run.

Two parts (CPU by default; ``--device cuda`` for a GPU):

1. bias + SELU + AlphaDropout(0.05) on ``(n / 1000, 1000)`` float32 tensors, ``n`` from
   1e4 to 1.6e7: the eager composition (``AlphaDropout()(SELU()(z + b))``, what
   ``SNN(fused=False)`` runs) against ``elulab.nn.fused_bias_elu_dropout`` with the eager
   kernels and with the compiled (or Triton) kernel; forward, and forward + backward.
2. an SNN training step (8 layers of width 1024, batch 256, AlphaDropout 0.05, cross-
   entropy): ``SNN(fused=False)`` against ``SNN()`` (fused blocks); forward, forward +
   backward, and the peak memory of forward + backward; then the same for a deeper net
   (32 layers of width 512, batch 1024), where activations outweigh the weight gradients.
   A third arm runs the same ``nn.Linear`` layers with no activation or dropout at all:
   ``plain / linear only`` is the most that any elementwise fusion could save (Amdahl).

Times are medians over ``--repeats`` runs, the variants interleaved run by run so that
drifts in machine load hit all alike; the load average is printed before and after.
Peak memory (CPU) is the maximum, during the call, of the "Total Allocated" counter of
``torch.profiler``'s memory events minus its value at the start: the most bytes that
tensors allocated by the call held at once (every CPU tensor allocation is reported;
inputs and weights allocated before the call are not counted); on CUDA, ``torch.cuda.max_memory_allocated``.
The compiled kernels are compiled before timing (the compile time is printed).

    OMP_NUM_THREADS=2 python benchmarks/bench_fused.py --threads 2 [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

from elulab.nn import SELU, SNN, AlphaDropout, _fused, fused_bias_elu_dropout

__all__ = ["main"]

SIZES = (10_000, 100_000, 1_000_000, 4_000_000, 16_000_000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_times(fns: dict[str, Callable[[], object]], repeats: int, device) -> dict[str, float]:
    for fn in fns.values():  # warm-up (and compilation for a new size)
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    mem = [e["args"] for e in events if e.get("name") == "[memory]"]
    if not mem:
        return 0
    # the counter includes bytes still held from earlier profiled calls: start from it
    base = mem[0]["Total Allocated"] - mem[0]["Bytes"]
    return max(m["Total Allocated"] for m in mem) - base


def _ulp(a: torch.Tensor, b: torch.Tensor) -> int:
    bits, mask = (torch.int64, 0x7FFFFFFFFFFFFFFF) if a.dtype == torch.float64 else (
        torch.int32, 0x7FFFFFFF)  # fmt: skip
    ia, ib = (t.view(bits).long() for t in (a, b))
    ia = torch.where(ia < 0, -(ia & mask), ia)
    ib = torch.where(ib < 0, -(ib & mask), ib)
    return int((ia - ib).abs().max())


def _ulp_table(device: torch.device, fast: str) -> None:
    from elulab.nn import CELU, ELU, ScaledELU

    print(f"\neval-mode ulp distance, {fast} kernel vs the composition (grid over [-20, 20])")
    small = torch.logspace(-12, 0, 1 << 14)
    grid = torch.cat([torch.linspace(-20, 20, 1 << 15), small, -small]).view(-1, 64)
    for dtype in (torch.float32, torch.float64):
        if device.type == "cuda" and dtype == torch.float64:
            continue
        row = []
        for name, m in (("selu", SELU()), ("elu", ELU(0.7)), ("celu", CELU(1.3)),
                        ("scaled", ScaledELU(1.2, 1.5))):  # fmt: skip
            s = grid.to(device=device, dtype=dtype)
            with torch.no_grad():
                y = fused_bias_elu_dropout(s, None, activation=m, impl=fast)
                row.append(f"{name} {_ulp(y, m(s))}")
        print(f"  {dtype!s:<15}" + ", ".join(row))


def _elementwise(args, device: torch.device, fast: str) -> None:
    print("\nbias + SELU + AlphaDropout(0.05), float32: median ms (ratio = composition / fused)")
    head = f"{'elements':>10} | {'fwd comp':>9}{'eager k':>9}{fast[:7]:>9}{'ratio':>7} |"
    print(head + f" {'f+b comp':>9}{'eager k':>9}{fast[:7]:>9}{'ratio':>7} | {'peak f+b':>14}")
    drop = AlphaDropout(0.05)
    act = SELU()
    for n in args.sizes:
        cols = 1000
        z = torch.randn(max(n // cols, 1), cols, device=device, requires_grad=True)
        b = torch.zeros(cols, device=device, requires_grad=True)
        g = torch.randn_like(z)

        def comp(z=z, b=b):
            return drop(act(z + b))

        def eager_k(z=z, b=b):
            return fused_bias_elu_dropout(z, b, activation=act, dropout=drop, impl="eager")

        def fast_k(z=z, b=b):
            return fused_bias_elu_dropout(z, b, activation=act, dropout=drop, impl=fast)

        def fwd(f):
            def run():
                with torch.no_grad():
                    f()

            return run

        def fwd_bwd(f, g=g, z=z, b=b):
            return lambda: torch.autograd.grad(f(), (z, b), g)

        tf = _median_times({k: fwd(f) for k, f in (("c", comp), ("e", eager_k), ("f", fast_k))},
                           args.repeats, device)  # fmt: skip
        tb = _median_times({k: fwd_bwd(f) for k, f in (("c", comp), ("e", eager_k), ("f", fast_k))},
                           args.repeats, device)  # fmt: skip
        pc, pf = (_peak_bytes(fwd_bwd(f), device) for f in (comp, fast_k))
        print(
            f"{n:>10.0e} | {1e3 * tf['c']:>9.3f}{1e3 * tf['e']:>9.3f}{1e3 * tf['f']:>9.3f}"
            f"{tf['c'] / tf['f']:>6.2f}x | {1e3 * tb['c']:>9.3f}{1e3 * tb['e']:>9.3f}"
            f"{1e3 * tb['f']:>9.3f}{tb['c'] / tb['f']:>6.2f}x | {pc / 2**20:>6.1f}/{pf / 2**20:<6.1f}MiB"
        )


def _snn(args, device: torch.device) -> None:
    print(
        "\nSNN training step (AlphaDropout 0.05, cross-entropy; depth x width / batch): median ms"
    )
    print(f"{'net':>12} | {'fwd plain':>10}{'fused':>9}{'ratio':>7} | {'f+b plain':>10}{'fused':>9}"
          f"{'ratio':>7} | {'linear':>8}{'bound':>7} | {'peak f+b plain/fused':>21}")  # fmt: skip
    for depth, width, batch in ((8, 1024, 256), (32, 512, 1024)):
        nets = {
            k: SNN(1024, 10, depth=depth, width=width, dropout=0.05, fused=k == "fused",
                   generator=torch.Generator().manual_seed(0)).to(device).train()
            for k in ("plain", "fused")
        }  # fmt: skip
        linears = [m for m in nets["plain"].modules() if isinstance(m, nn.Linear)]
        nets["linear"] = nn.Sequential(*linears)  # the same weights, nothing elementwise
        x = torch.randn(batch, 1024, device=device)
        y = torch.randint(0, 10, (batch,), device=device)

        def fwd(net, x=x):
            return lambda: net(x)

        def step(net, x=x, y=y):
            def run():
                net.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(net(x), y).backward()

            return run

        tf = _median_times({k: fwd(n) for k, n in nets.items()}, args.repeats, device)
        tb = _median_times({k: step(n) for k, n in nets.items()}, args.repeats, device)
        pp, pf = (_peak_bytes(step(nets[k]), device) for k in ("plain", "fused"))
        print(
            f"{f'{depth}x{width}/{batch}':>12} | {1e3 * tf['plain']:>10.2f}{1e3 * tf['fused']:>9.2f}"
            f"{tf['plain'] / tf['fused']:>6.2f}x | {1e3 * tb['plain']:>10.2f}"
            f"{1e3 * tb['fused']:>9.2f}{tb['plain'] / tb['fused']:>6.2f}x | "
            f"{1e3 * tb['linear']:>8.2f}{tb['plain'] / tb['linear']:>6.2f}x | "
            f"{pp / 2**20:>8.1f}/{pf / 2**20:.1f} MiB ({pf / pp:.2f})"
        )


def _bandwidth(device: torch.device) -> None:
    """GPU only: fused forward bytes per second against a device copy."""
    n = 1 << 26
    z = torch.randn(n // 1024, 1024, device=device)
    out = torch.empty_like(z)
    drop = AlphaDropout(0.05)
    t = _median_times({"copy": lambda: out.copy_(z),
                       "fused": lambda: fused_bias_elu_dropout(z, None, dropout=drop, impl="triton")},
                      20, device)  # fmt: skip
    copy_bw = 2 * 4 * n / t["copy"]
    fused_bw = (4 + 4 + 1) * n / t["fused"]  # read z, write y and code
    print(f"\nGPU bandwidth: copy {copy_bw / 1e9:.0f} GB/s, fused forward {fused_bw / 1e9:.0f} "
          f"GB/s ({fused_bw / copy_bw:.0%} of copy)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--skip-snn", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # before compiling: inductor reads it at codegen
    device = torch.device(args.device)
    fast = "triton" if device.type == "cuda" else "compile"
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {device}, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}, repeats {args.repeats}")  # fmt: skip
    t0 = time.perf_counter()
    z = torch.randn(64, 64, device=device, requires_grad=True)
    for d in (None, AlphaDropout(0.05)):
        fused_bias_elu_dropout(z, None, dropout=d, impl=fast).sum().backward()
    if fast == "compile" and not _fused.compile_available():
        print(f"torch.compile unavailable: {_fused._compile_failed}")
    print(f"compile/warm-up {time.perf_counter() - t0:.1f} s")
    _ulp_table(device, fast)
    _elementwise(args, device, fast)
    if not args.skip_snn:
        _snn(args, device)
    if device.type == "cuda":
        _bandwidth(device)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
