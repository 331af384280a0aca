"""Overhead of the activation audit hooks: training-step time with hooks on / off / absent.

For an MLP and a CNN on MNIST-shaped batches, times one SGD step (forward, backward,
``Diagnostics.step()`` when on, optimiser step) in three ways:

* ``none``: no context manager at all (the reference);
* ``off``: inside ``Diagnostics(model, enabled=False)`` (nothing attached: target 1.0x);
* ``on``: inside ``Diagnostics(model)`` with ``step()`` after every backward
  (target <= 1.3x);
* ``on/4``: inside ``Diagnostics(model, every=4)``: one step in four audited (each
  timing is 8 steps by default: steps 0 and 4 audited).

The three variants are interleaved round by round; the time is the median over rounds
and each ratio the median over rounds of that round's ratio (paired), so drifts in
machine load hit all three alike. ``--clock cpu`` times the thread's CPU time
(``time.thread_time``: with one torch thread every op runs on the calling thread)
instead of wall time, which time slices lost to other processes on a shared machine do
not inflate. Run with one thread:

    OMP_NUM_THREADS=1 python benchmarks/bench_audit.py [--rounds 30] [--clock cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch
from torch import nn

from elulab.diagnostics import Diagnostics

__all__ = ["main"]


def _mlp(act: type[nn.Module]) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        act(),
        nn.Linear(256, 256),
        act(),
        nn.Linear(256, 256),
        act(),
        nn.Linear(256, 10),
    )


def _cnn(act: type[nn.Module]) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        act(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        act(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 128),
        act(),
        nn.Linear(128, 10),
    )


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def _time_steps(
    model: nn.Module, mode: str, x: torch.Tensor, y: torch.Tensor, n: int, clock=time.perf_counter
) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    if mode == "none":
        cm: contextlib.AbstractContextManager = contextlib.nullcontext()
    else:
        every = 4 if mode == "on/4" else 1
        cm = Diagnostics(model, enabled=(mode != "off"), keep_history=False, every=every)
    with cm as diag:
        t0 = clock()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            if diag is not None:
                diag.step()
            opt.step()
        return (clock() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=8, help="steps per timing")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"clock {args.clock}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'model':<12}{'none ms':>10}{'off/none':>10}{'on/none':>10}{'on/4/none':>11}")
    for arch, build in (("mlp", _mlp), ("cnn", _cnn)):
        for act in (nn.ReLU, nn.ELU):
            model = build(act)
            for mode in ("none", "off", "on", "on/4"):  # warm-up
                _time_steps(model, mode, x, y, 2)
            times: dict[str, list[float]] = {"none": [], "off": [], "on": [], "on/4": []}
            for _ in range(args.rounds):
                for mode in times:
                    times[mode].append(_time_steps(model, mode, x, y, args.steps, clock))
            ratio = {
                k: statistics.median(a / b for a, b in zip(times[k], times["none"], strict=True))
                for k in ("off", "on", "on/4")
            }
            label = f"{arch}-{act.__name__.lower()}"
            print(
                f"{label:<12}{1e3 * statistics.median(times['none']):>10.2f}"
                f"{ratio['off']:>9.2f}x{ratio['on']:>9.2f}x{ratio['on/4']:>10.2f}x"
            )


if __name__ == "__main__":
    main()
