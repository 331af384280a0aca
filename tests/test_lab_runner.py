"""Tests of the runner and the local backend: resume, failures, determinism, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elulab.lab.api import ConfigError, config_hash
from elulab.lab.backends import LocalBackend, seed_everything
from elulab.lab.runner import SweepEvent, load_experiment, run_experiment
from elulab.lab.store import Store
from lab_toy import Toy

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def _metrics(store: Store, chash: str | None = None) -> dict[int, dict[str, float]]:
    return {
        r.seed: r.result.metrics
        for r in store.runs("lab_toy", config_hash=chash)
        if r.result is not None
    }


def test_sweep_resume_and_failures(tmp_path: Path) -> None:
    events: list[SweepEvent] = []
    overrides = {"fail_seeds": "1,3", "figure": "true"}
    with Store(tmp_path / "s.sqlite") as store:
        out = run_experiment(
            Toy(),
            store=store,
            seeds=4,
            overrides=overrides,
            on_event=events.append,
        )
        assert out.completed == [0, 2] and sorted(out.failed) == [1, 3] and out.skipped == []
        assert "RuntimeError: seed 1 fails on purpose" == out.failed[1]
        # verdict over the completed seeds only, figures stored relative to artifacts/
        (v,) = out.verdicts
        assert v.n_seeds == 2 and out.summary is not None and out.summary.seeds == [0, 2]
        (fig,) = out.summary.figures
        assert (store.artifacts_dir / fig["path"]).is_file() and fig["claim"] == "T1"
        assert events[0].kind == "start" and events[-1].kind == "summary"
        assert sorted(e.seed for e in events if e.kind == "run") == [0, 1, 2, 3]
        failed = store.runs("lab_toy", status="failed")
        assert [r.seed for r in failed] == [1, 3]
        assert "Traceback" in (failed[0].error or "")
        # second invocation: only the failed seeds are run again (and fail again)
        again = run_experiment(Toy(), store=store, seeds=4, overrides=overrides)
        assert again.skipped == [0, 2] and again.completed == [] and sorted(again.failed) == [1, 3]
        assert [r.attempts for r in store.runs("lab_toy", status="failed")] == [2, 2]
        # more seeds reuse the stored ones (seeds is not part of the config hash)
        more = run_experiment(Toy(), store=store, seeds=6, overrides=overrides)
        assert more.skipped == [0, 2] and more.completed == [4, 5]
        assert more.config_hash == out.config_hash and more.verdicts[0].n_seeds == 4
        n = store.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert n == 6 and len(store.summaries("lab_toy")) == 3


def test_relative_store_path_keeps_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `make reproduce` passes a relative --store; figure paths must not be joined twice
    monkeypatch.chdir(tmp_path)
    with Store(Path("results") / "s.sqlite") as store:
        out = run_experiment(Toy(), store=store, seeds=2, overrides={"figure": "true"})
        assert out.summary is not None and not out.summary.errors
        (fig,) = out.summary.figures
        assert (tmp_path / "results" / "artifacts" / fig["path"]).is_file()


def test_config_errors_before_anything_runs(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ConfigError, match="unknown config key 'nope'"):
            run_experiment(Toy(), store=store, overrides={"nope": 1})
        with pytest.raises(ConfigError, match="seeds must be an integer >= 1"):
            run_experiment(Toy(), store=store, seeds=0)
        with pytest.raises(ConfigError, match="allowed: quick, full"):
            run_experiment(Toy(), store=store, profile="medium")
        assert store.runs(status=None) == []
    with pytest.raises(ConfigError, match="not an Experiment"):
        load_experiment("lab_toy:ToyConfig")
    with pytest.raises(ConfigError, match="cannot import"):
        load_experiment("no_such_module_xyz:Toy")
    assert isinstance(load_experiment("lab_toy:Toy"), Toy)


class _BadVerdict(Toy):
    def verdict(self, config, results):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("oops")


def test_verdict_error_is_recorded_runs_kept(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        out = run_experiment(_BadVerdict(), store=store, seeds=2)
        assert out.completed == [0, 1] and out.verdicts == []
        assert out.errors == ["verdict failed: ZeroDivisionError: oops"]
        assert store.summaries()[0].errors == out.errors


def test_seeding_makes_runs_reproducible(tmp_path: Path) -> None:
    import random

    import numpy as np
    import torch

    seed_everything(5)
    a = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    seed_everything(5)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(-1)
    s1, s2 = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    run_experiment(Toy(), store=s1, seeds=3)
    run_experiment(Toy(), store=s2, seeds=3)
    m1, m2 = _metrics(s1), _metrics(s2)
    assert m1 == m2 and len({m["py"] for m in m1.values()}) == 3


def test_in_process_and_worker_processes_agree(tmp_path: Path) -> None:
    """Same seeds, same thread count: identical metrics in-process and in 2 workers."""
    s1, s2 = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    run_experiment(Toy(), store=s1, seeds=4, overrides={"size": 32, "steps": 20})
    with LocalBackend(workers=2) as backend:
        out = run_experiment(
            Toy(), store=s2, seeds=4, backend=backend, overrides={"size": 32, "steps": 20}
        )
    assert sorted(out.completed) == [0, 1, 2, 3]
    pids = {r.env["pid"] for r in s2.runs()}
    assert os.getpid() not in pids  # really ran elsewhere
    assert _metrics(s1) == _metrics(s2)
    # artifacts came back through the pool and were written by the driver
    for r in s2.runs():
        assert r.artifact_dir is not None
        assert (r.artifact_dir / "note.txt").read_text() == f"seed {r.seed}"


def test_many_tiny_runs_three_workers_no_loss(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        with LocalBackend(workers=3) as backend:
            out = run_experiment(
                Toy(),
                store=store,
                seeds=60,
                backend=backend,
                overrides={"fail_seeds": "7,30", "steps": 1},
            )
        assert len(out.completed) == 58 and sorted(out.failed) == [7, 30]
        rows = store.conn.execute(
            "SELECT seed, count(*) FROM runs GROUP BY experiment, config_hash, seed"
        ).fetchall()
        assert sorted(s for s, _ in rows) == list(range(60)) and {c for _, c in rows} == {1}
        assert len({r.env["pid"] for r in store.runs()}) >= 2
        assert store.completed_seeds("lab_toy", out.config_hash) == set(range(60)) - {7, 30}


# -- crash safety: a real `elulab run` process, killed mid-sweep ---------------------------


def _cli(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "elulab.cli", "run", "lab_toy:Toy", "--store", str(store), *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(SRC), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _completed(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute("SELECT count(*) FROM runs WHERE status='completed'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # store being created
        return 0


def _wait_for(store: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while _completed(store) < n:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.05)


def _check_store(store_path: Path, seeds: int) -> Store:
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    store = Store(store_path)
    rows = store.runs(status=None)
    assert len(rows) == len({r.seed for r in rows}) <= seeds
    for r in rows:  # every stored row is whole: result and artifacts
        assert r.status == "completed" and r.result is not None
        assert r.result.metrics["seed"] == r.seed
        assert r.artifact_dir is not None
        assert (r.artifact_dir / "note.txt").read_text() == f"seed {r.seed}"
    return store


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "workers"), [(signal.SIGKILL, "2"), (signal.SIGINT, "1")], ids=["kill-9", "ctrl-c"]
)
def test_interrupted_sweep_resumes(tmp_path: Path, sig: int, workers: str) -> None:
    store_path = tmp_path / "r" / "s.sqlite"
    args = ("--seeds", "10", "--set", "sleep_s=0.3", "--workers", workers)
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err_file:
        proc = subprocess.Popen(
            _cli(store_path, *args),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            # a job started with `&` by a shell without job control (CI scripts) ignores
            # SIGINT, and so would this child: give it the default Ctrl-C, as a terminal does
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            _wait_for(store_path, 3, proc)
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = log.read_bytes()
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert b"run the same command again to resume" in err and b"Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    store = _check_store(store_path, 10)
    before = {r.seed: (r.result.metrics if r.result else None, r.finished_at) for r in store.runs()}
    assert 3 <= len(before) < 10
    store.close()

    done = subprocess.run(
        [*_cli(store_path, *args), "--json"], env=_env(), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    import json

    report = json.loads(done.stdout)
    assert report["runs"]["skipped"] == len(before)
    assert report["runs"]["completed"] == 10 - len(before) and report["runs"]["failed"] == 0
    store = _check_store(store_path, 10)
    after = {r.seed: (r.result.metrics if r.result else None, r.finished_at) for r in store.runs()}
    assert sorted(after) == list(range(10))
    assert all(after[s] == before[s] for s in before)  # completed rows untouched
    assert (
        config_hash("lab_toy", Toy().resolve_config("quick", {"sleep_s": 0.3}))
        == (report["config_hash"])
    )
    store.close()


class _ToyV2(Toy):
    """The toy after a change that alters what a run computes."""

    version = 2


def test_a_new_version_is_never_served_from_the_store(tmp_path: Path) -> None:
    from elulab.lab.backends import environment

    with Store(tmp_path / "s.sqlite") as store:
        first = run_experiment(Toy(), store=store, seeds=2)
        assert first.completed == [0, 1]
        assert run_experiment(Toy(), store=store, seeds=2).skipped == [0, 1]
        second = run_experiment(_ToyV2(), store=store, seeds=2)
        assert second.completed == [0, 1] and second.skipped == []  # recomputed
        assert second.config_hash != first.config_hash
        versions = sorted((r.version, r.config_hash) for r in store.runs("lab_toy"))
        assert versions == sorted([(1, first.config_hash)] * 2 + [(2, second.config_hash)] * 2)
        git = environment()["git"]
        assert {r.git for r in store.runs("lab_toy")} == {git}
        assert second.summary is not None and second.summary.version == 2
        assert second.summary.revisions == [git]
        assert store.summaries("lab_toy")[0].version == 2


def test_nonfinite_values_in_series_and_tables_are_stored_not_fatal(tmp_path: Path) -> None:
    """A diverged run's nan in a table cell or a curve must not make the run unstorable
    (an snn_uci full seed was lost that way after 50 minutes)."""
    import json
    import math

    from elulab.lab.api import RunResult, Series
    from elulab.lab.backends import _check_result

    r = RunResult(
        metrics={"m": math.nan},
        series={"s": Series(x=[0.0, 1.0], ys={"a": [1.0, math.inf]})},
        tables={"t": [{"acc": math.nan, "n": 3, "nested": [math.nan, 2.0]}]},
    )
    _check_result(r)  # no TypeError
    d = json.loads(json.dumps(r.to_json(), allow_nan=False))
    assert d["tables"]["t"][0] == {"acc": None, "n": 3, "nested": [None, 2.0]}
    back = RunResult.from_json(d)
    assert math.isnan(back.metrics["m"]) and math.isnan(back.series["s"].ys["a"][1])
    assert back.series["s"].ys["a"][0] == 1.0
