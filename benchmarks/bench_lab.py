"""Benchmark of the lab: runner overhead per run, and parallel speed-up of a sweep.

Prints ratios against references measured in the same process:

1. runner + store overhead per run, as a fraction of the run time of a CPU-bound
   run of about 1 s (target: under 5%), or of one seed of a registered experiment's
   quick profile with ``--experiment NAME``;
2. speed-up of a CPU-bound sweep with 2 workers over 1 (in-process), for local worker
   processes and for Ray (target: >= 1.7x on 2 free cores).

Usage::

    python benchmarks/bench_lab.py [--runs 30] [--seeds 4] [--run-seconds 1.0]
        [--experiment NAME] [--repeats 3] [--no-ray]

On a shared machine the speed-ups are bounded by the cores other processes leave free.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

__all__ = ["main"]


def _direct_run_time(experiment, config, seeds: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds of ``experiment.run`` alone, summed over ``seeds`` (no lab)."""
    from elulab.lab.api import RunContext
    from elulab.lab.backends import seed_everything

    total = 0.0
    with tempfile.TemporaryDirectory() as d:
        for seed in range(seeds):
            seed_everything(seed)
            t = time.perf_counter()
            experiment.run(config, seed, RunContext(workdir=Path(d)))
            total += time.perf_counter() - t
    return total


def bench_overhead(runs: int, run_seconds: float, experiment_name: str | None) -> None:
    import torch

    from elulab.lab import LocalBackend, Store, run_experiment
    from lab_toy import CpuToy, Toy

    torch.set_num_threads(1)
    toy = Toy()
    overrides = {"steps": 1, "size": 8}
    config = toy.resolve_config("quick", {**overrides, "seeds": runs})
    direct = _direct_run_time(toy, config, runs)
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "s.sqlite")
        t = time.perf_counter()
        run_experiment(toy, store=store, seeds=runs, overrides=overrides, backend=LocalBackend(1))
        sweep = time.perf_counter() - t
        store.close()
    per_run = (sweep - direct) / runs
    print(
        f"runner + store overhead: {per_run * 1e3:.1f} ms per run "
        f"(sweep of {runs} tiny runs with artifacts and a summary, in-process)"
    )

    if experiment_name:
        from elulab.experiments import get_experiment

        exp = get_experiment(experiment_name)
        cfg = exp.resolve_config("quick")
        ref = _direct_run_time(exp, cfg, 1)
        label = f"one seed of {experiment_name} (quick)"
    else:
        cpu = CpuToy()
        steps = _calibrate_steps(cpu, run_seconds)
        cfg = cpu.resolve_config("quick", {"steps": steps})
        ref = _direct_run_time(cpu, cfg, 1)
        label = f"a CPU-bound toy run ({steps} matmul steps)"
    print(f"reference: {label}: {ref:.3f} s")
    print(f"overhead / run time: {per_run / ref:.2%} (target < 5%)")


def _calibrate_steps(cpu, seconds: float) -> int:  # type: ignore[no-untyped-def]
    probe = 100
    t = _direct_run_time(cpu, cpu.resolve_config("quick", {"steps": probe}), 1)
    return max(1, round(probe * seconds / max(t, 1e-6)))


def bench_speedup(seeds: int, run_seconds: float, use_ray: bool, repeats: int) -> None:
    import torch

    from elulab.lab import LocalBackend, RayBackend, Store, run_experiment
    from lab_toy import CpuToy

    torch.set_num_threads(1)
    cpu = CpuToy()
    steps = _calibrate_steps(cpu, run_seconds)
    overrides = {"steps": steps}

    def sweep(backend) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """Wall time of the sweep and mean duration of one run inside it."""
        with tempfile.TemporaryDirectory() as d:
            store = Store(Path(d) / "s.sqlite")
            t = time.perf_counter()
            out = run_experiment(
                cpu, store=store, seeds=seeds, overrides=overrides, backend=backend
            )
            elapsed = time.perf_counter() - t
            per_run = sum(r.duration_s for r in store.runs()) / seeds
            store.close()
        assert len(out.completed) == seeds, out.failed
        return elapsed, per_run

    backends = {"1 worker (in-process)": LocalBackend(1)}
    local2 = LocalBackend(2)
    t = time.perf_counter()
    sweep(local2)  # starts the pool; it is kept between sweeps
    print(f"local pool of 2 started (first sweep) in {time.perf_counter() - t:.2f} s")
    backends["2 local worker processes"] = local2
    if use_ray:
        try:
            ray2 = RayBackend(workers=2)
            t = time.perf_counter()
            sweep(ray2)
            print(f"Ray with 2 CPUs started (first sweep) in {time.perf_counter() - t:.2f} s")
            backends["Ray, 2 CPUs"] = ray2
        except Exception as e:  # Ray missing or cannot start: say so, keep the other numbers
            print(f"Ray: skipped ({e})")
    # Sleep-bound runs need no free core: they show what the lab's scheduling allows.
    sleepy = {"steps": 1, "size": 8, "sleep_s": 0.5}
    for label, backend in backends.items():
        with tempfile.TemporaryDirectory() as d:
            store = Store(Path(d) / "s.sqlite")
            t = time.perf_counter()
            run_experiment(cpu, store=store, seeds=8, overrides=sleepy, backend=backend)
            wall = time.perf_counter() - t
            store.close()
        print(
            f"  8 runs sleeping 0.5 s, {label:27s} {wall:6.2f} s (ideal {4.0 / (1 if label.startswith('1') else 2):.1f} s)"
        )
    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeats):  # interleaved, best of `repeats`: other load comes and goes
        for label, backend in backends.items():
            wall, per_run = sweep(backend)
            if label not in best or wall < best[label][0]:
                best[label] = (wall, per_run)
    for backend in backends.values():
        backend.close()
    print(
        f"sweep of {seeds} CPU-bound runs (~{run_seconds:.1f} s each alone, 1 thread), "
        f"best of {repeats}, warm workers:"
    )
    one = best["1 worker (in-process)"][0]
    for label, (wall, per_run) in best.items():
        ratio = "" if wall == one else f"  speed-up {one / wall:.2f}x (target >= 1.7x)"
        print(f"  {label:27s} {wall:6.2f} s  (mean run {per_run:.2f} s){ratio}")
    print(
        f"  cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f} (other processes "
        "share these cores: a run slower in parallel than alone means they were not free)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="tiny runs for the overhead")
    parser.add_argument("--seeds", type=int, default=4, help="runs in the speed-up sweep")
    parser.add_argument("--run-seconds", type=float, default=1.0, help="CPU-bound run length")
    parser.add_argument("--experiment", default=None, help="registered experiment as reference")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many sweeps")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray backend")
    args = parser.parse_args()
    bench_overhead(args.runs, args.run_seconds, args.experiment)
    bench_speedup(args.seeds, args.run_seconds, not args.no_ray, args.repeats)


if __name__ == "__main__":
    main()
