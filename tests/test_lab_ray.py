"""Tests of the Ray backend against a local Ray instance (one per test module)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import elulab.experiments
from elulab.cli import app
from elulab.lab.backends import LocalBackend, RayBackend
from elulab.lab.runner import run_experiment
from elulab.lab.store import Store
from lab_toy import Toy

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]  # starts a local Ray instance: ~12 s


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray instance with 2 CPUs; backends reuse it instead of starting their own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's start-up warnings are not ours to fix
        ray.init(
            num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
        )
    try:
        yield ray
    finally:
        ray.shutdown()


def _metrics(store: Store) -> dict[int, dict[str, float]]:
    return {r.seed: r.result.metrics for r in store.runs() if r.result is not None}


def test_ray_gives_the_same_metrics_as_local(local_ray: Any, tmp_path: Path) -> None:
    overrides = {"size": 32, "steps": 20, "fail_seeds": "2"}
    local, remote = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    run_experiment(Toy(), store=local, seeds=5, overrides=overrides, backend=LocalBackend(1))
    backend = RayBackend()
    out = run_experiment(Toy(), store=remote, seeds=5, overrides=overrides, backend=backend)
    backend.close()
    assert local_ray.is_initialized()  # the backend did not stop an instance it did not start
    assert sorted(out.completed) == [0, 1, 3, 4] and list(out.failed) == [2]
    assert "seed 2 fails on purpose" in out.failed[2]
    assert _metrics(local) == _metrics(remote)
    assert os.getpid() not in {r.env["pid"] for r in remote.runs()}
    for r in remote.runs():  # artifacts came back to the driver, which wrote them
        assert r.artifact_dir is not None
        assert (r.artifact_dir / "note.txt").read_text() == f"seed {r.seed}"
    assert remote.summaries()[0].env["backend"] == "ray"


def test_cli_ray_backend(local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elulab.experiments, "EXPERIMENTS", {"lab_toy": Toy})
    store = str(tmp_path / "s.sqlite")
    args = ["run", "lab_toy", "--backend", "ray", "--store", store, "--seeds", "4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["runs"] == {"completed": 4, "skipped": 0, "failed": 0}
    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert again["runs"] == {"completed": 0, "skipped": 4, "failed": 0}
    assert again["verdicts"] == out["verdicts"]
