"""Benchmark: the ELU bijector's closed-form log-det against autograd, and flow sampling.

Prints, for ELUTransform on a batch of N x D inputs:

* the time of the closed-form ``log_abs_det_jacobian`` (summed over D) against the
  time of the reference it replaces: the autograd Jacobian of the D-dimensional map
  (``torch.autograd.functional.jacobian``, vectorised) and its ``slogdet``, per point;
  the ratio says how much the exact formula saves;
* sampling throughput (samples/s) and log_prob throughput of an 8-D ELU flow
  (``make_flow(8, elementwise=...)``) for each elementwise kind.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_flows.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.autograd.functional import jacobian

from elulab.flows import ELEMENTWISE_KINDS, ELUTransform, make_flow


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    torch.manual_seed(0)
    repeat = 3 if args.quick else 7
    t = ELUTransform(1.0)
    print("log-det of ELUTransform: closed form vs autograd Jacobian + slogdet (float64)")
    print(f"{'N':>6} {'D':>4} {'closed form (s)':>16} {'autograd (s)':>13} {'ratio':>9}")
    for n, d in ((64, 8), (64, 32)) if args.quick else ((256, 8), (256, 32), (64, 128)):
        x = torch.randn(n, d, dtype=torch.float64)
        closed = _time(lambda x=x: t.log_abs_det_jacobian(x, t(x)).sum(-1), repeat)

        def ref(x: torch.Tensor = x) -> torch.Tensor:
            J = jacobian(lambda v: t(v).sum(0), x, vectorize=True)  # (D, N, D)
            J = J.permute(1, 0, 2)  # rows of point i's Jacobian
            return torch.linalg.slogdet(J)[1]

        x0 = x[:4]
        err = float((ref(x0) - t.log_abs_det_jacobian(x0, t(x0)).sum(-1)).abs().max())
        auto = _time(ref, repeat)
        print(
            f"{n:>6} {d:>4} {closed:>16.2e} {auto:>13.2e} {auto / closed:>9.0f}x  (max diff {err:.1e})"
        )
    print()
    print("8-D flow, 4 blocks, hidden 64, float32: samples/s and log_prob points/s (batch 4096)")
    for kind in (*ELEMENTWISE_KINDS, None):
        torch.manual_seed(0)
        flow = make_flow(8, elementwise=kind, blocks=4, hidden=64)
        flow.initialize(torch.randn(1000, 8))
        n = 1024 if args.quick else 4096
        with torch.no_grad():
            ts = _time(lambda flow=flow, n=n: flow.sample((n,)), repeat)
            xs = flow.sample((n,))
            tl = _time(lambda flow=flow, xs=xs: flow.log_prob(xs), repeat)
        print(
            f"  {kind or 'coupling only':<16} sample {n / ts:>10.0f}/s   log_prob {n / tl:>10.0f}/s"
        )


if __name__ == "__main__":
    main()
