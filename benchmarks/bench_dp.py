"""Time one epoch of DP-SGD (Opacus, elulab.dp.train_private) against plain SGD, print ratios.

The models of the ``dp_activations`` experiment (MLP 784-128-128-10, the small CNN) on
6000 MNIST images, batch 256, one thread. Private: ghost clipping, per-sample gradients
by Opacus's hooks, and by functorch; non-private: :func:`elulab.train.fit` with the same
batch size. Each is timed over ``--repeats`` epochs in CPU time of this process
(``time.process_time``: less disturbed by other processes on a shared machine than wall
time) and compared by its fastest epoch; the calibration of sigma and the accounting
(once per run, cached) are excluded.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_dp.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from elulab.data import load_mnist
from elulab.dp import noise_multiplier, train_private
from elulab.experiments.dp_activations import build_model
from elulab.train import batches, fit


def epoch_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=6000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x, y = load_mnist()
    x, y = x[: args.n], y[: args.n]
    noise_multiplier(3.0, 1e-5, 1 / -(-args.n // 256), -(-args.n // 256))  # warm the cache
    print(f"seconds per epoch ({args.n} images, batch 256, 1 thread, fastest of {args.repeats})")
    print(f"{'model':6} {'plain':>7} {'ghost':>7} {'hooks':>7} {'functorch':>9}  ghost/plain")
    for model in ("mlp", "cnn"):
        net = build_model(model, "elu")

        def plain(net: nn.Module = net) -> None:
            fit(net, lambda m, i: nn.functional.cross_entropy(m(x[i]), y[i]),
                batches(len(y), 256, seed=0, epochs=1),
                optimizer=torch.optim.SGD(net.parameters(), lr=0.01))  # fmt: skip

        def private(mode: str, net: nn.Module = net) -> None:
            train_private(net, (x, y), 3.0, 1e-5, epochs=1, batch_size=256, max_grad_norm=1.0,
                          lr=0.01, grad_sample_mode=mode)  # fmt: skip

        t = {"plain": epoch_time(plain, args.repeats)}
        for mode in ("ghost", "hooks", "functorch"):
            t[mode] = epoch_time(lambda m=mode: private(m), args.repeats)
        print(f"{model:6} {t['plain']:7.3f} {t['ghost']:7.3f} {t['hooks']:7.3f} "
              f"{t['functorch']:9.3f}  {t['ghost'] / t['plain']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
