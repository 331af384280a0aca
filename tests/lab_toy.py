"""Toy experiments for the lab tests and benchmarks (importable by worker processes).

``Toy`` draws from python's ``random``, numpy and torch, so equal metrics across
backends show that every source of randomness is seeded; it can sleep (to be killed
mid-sweep), fail on chosen seeds, return artifacts and draw a figure.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from elulab.lab.api import Experiment, Figure, RunResult, Series, Verdict
from elulab.lab.stats import decide, mean_ci

__all__ = ["Toy", "ToyConfig"]


@dataclass(frozen=True)
class ToyConfig:
    seeds: int = 3
    size: int = 16
    steps: int = 5
    sleep_s: float = 0.0
    fail_seeds: tuple[int, ...] = ()
    artifacts: bool = True
    figure: bool = False
    label: str = "toy"


class Toy(Experiment):
    name = "lab_toy"
    title = "A toy experiment for the lab tests"
    claims = ("T1",)
    Config = ToyConfig
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 3},
        "full": {"seeds": 5, "steps": 20},
    }

    def run(self, config: ToyConfig, seed: int, context) -> RunResult:  # type: ignore[override]
        if seed in config.fail_seeds:
            raise RuntimeError(f"seed {seed} fails on purpose")
        py = random.random()
        npv = float(np.random.rand())  # noqa: NPY002 -- checks that the lab seeds it
        x = torch.randn(config.size, config.size)
        w = torch.randn(config.size, config.size) / config.size**0.5
        norms = []
        for step in range(config.steps):
            x = torch.tanh(x @ w + 0.1)
            norms.append(float(x.norm()))
            context.progress(step + 1, config.steps)
        if config.sleep_s:
            time.sleep(config.sleep_s)
        artifacts = {}
        if config.artifacts:
            artifacts = {"note.txt": f"seed {seed}".encode(), "raw/x.bin": x.numpy().tobytes()}
        return RunResult(
            metrics={"value": float(x.sum()), "py": py, "np": npv, "seed": float(seed)},
            series={"norm": Series(x=list(range(config.steps)), ys={"norm": norms}, xlabel="step")},
            tables={"last": [{"seed": seed, "norm": norms[-1] if norms else 0.0}]},
            artifacts=artifacts,
        )

    def verdict(self, config: ToyConfig, results) -> list[Verdict]:  # type: ignore[override]
        values = [r.metrics["py"] for r in results]
        m, lo, hi = mean_ci(values)
        status = decide(lo, hi, threshold=0.0, direction="greater", n_seeds=len(values))
        return [
            Verdict("T1", status, m, lo, hi, len(values), f"mean draw {m:.3f}", "mean of U(0,1)")
        ]

    def figures(self, config: ToyConfig, results, out_dir: Path) -> list[Figure]:  # type: ignore[override]
        if not config.figure:
            return []
        from elulab.lab import plots  # never switches the process-wide backend

        fig, (ax,) = plots.panels(1, width=3, height=2)
        ax.plot([r.metrics["py"] for r in results], "o")
        path = plots.save(fig, out_dir / "draws.png")
        return [Figure(path=path, caption="One uniform draw per seed.")]


class CpuToy(Toy):
    """A CPU-bound run of about ``steps`` 256x256 float32 matmuls (for benchmarks)."""

    name = "lab_cpu_toy"
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 4, "size": 256, "steps": 2000, "artifacts": False}
    }
