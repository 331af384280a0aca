"""Tests of the result store: creation, guarantees, foreign files, export."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from elulab.lab.api import RunResult, Series, Verdict
from elulab.lab.store import SCHEMA_VERSION, Store, StoreError, export_runs


def _record(store: Store, seed: int, status: str = "completed", **kw: object) -> bool:
    result = kw.pop("result", None)
    if status == "completed" and result is None:
        result = RunResult(metrics={"m": float(seed)})
    now = time.time()
    return store.record_run(
        "exp",
        "h1",
        {"a": 1},
        seed,
        status=status,
        result=result,  # type: ignore[arg-type]
        error=kw.pop("error", None),  # type: ignore[arg-type]
        started_at=now - 1.0,
        finished_at=now,
        env={"host": "x"},
    )


def test_create_layout_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "results" / "elulab.sqlite"
    with Store(path) as store:
        assert store.path == path and store.artifacts_dir == path.parent / "artifacts"
        meta = store.meta()
        assert meta["format"] == "elulab-results"
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert store.runs() == [] and store.summaries() == []
    # no temporary files left beside the store
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []
    with Store(path, create=False) as again:
        assert again.meta()["format"] == "elulab-results"


def test_run_roundtrip_with_artifacts(tmp_path: Path) -> None:
    result = RunResult(
        metrics={"loss": 0.5, "nan": float("nan")},
        series={"s": Series(x=[0.0, 1.0], ys={"a": [1.0, 2.0]}, xlabel="t", logy=True)},
        tables={"t": [{"k": "v", "n": 3}]},
        artifacts={"w.bin": b"\x00\x01", "sub/dir/c.txt": b"hello"},
    )
    with Store(tmp_path / "s.sqlite") as store:
        assert _record(store, 4, result=result)
        (rec,) = store.runs("exp")
    assert rec.seed == 4 and rec.status == "completed" and rec.config == {"a": 1}
    assert rec.result is not None
    assert rec.result.metrics["loss"] == 0.5
    assert rec.result.metrics["nan"] != rec.result.metrics["nan"]  # NaN survives as NaN
    assert rec.result.series["s"].logy is True and rec.result.tables == result.tables
    assert rec.env == {"host": "x"} and rec.duration_s == pytest.approx(1.0)
    assert rec.artifact_dir == tmp_path / "artifacts" / "exp" / "h1" / "seed-4"
    assert (rec.artifact_dir / "w.bin").read_bytes() == b"\x00\x01"
    assert (rec.artifact_dir / "sub" / "dir" / "c.txt").read_text() == "hello"


def test_completed_never_overwritten_failed_replaced(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert _record(store, 0, "failed", error="Traceback...\nValueError: boom")
        assert store.completed_seeds("exp", "h1") == set()
        (rec,) = store.runs("exp", status="failed")
        assert rec.result is None and rec.error is not None and "boom" in rec.error
        assert _record(store, 0, result=RunResult(metrics={"m": 1.0}))
        assert not _record(store, 0, result=RunResult(metrics={"m": 2.0}))
        assert not _record(store, 0, "failed", error="late failure")
        (rec,) = store.runs("exp", status=None)
        assert rec.status == "completed" and rec.attempts == 2
        assert rec.result is not None and rec.result.metrics == {"m": 1.0}
        assert store.completed_seeds("exp", "h1") == {0}
        n = store.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert n == 1


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../b", "", "a//b", "a\\b"])
def test_bad_artifact_names_write_nothing(tmp_path: Path, name: str) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match="artifact name"):
            _record(store, 0, result=RunResult(artifacts={name: b"x"}))
        assert store.runs(status=None) == []
    assert not (tmp_path / "escape").exists()


def test_summaries_latest_first(tmp_path: Path) -> None:
    v = Verdict("C1", "supported", 0.3, 0.1, 0.5, 5, "it holds", "gap")
    with Store(tmp_path / "s.sqlite") as store:
        figs = store.tmp_dir()
        (figs / "f.png").write_bytes(b"png")
        kw = dict(title="T", claims=["C1"], config_hash="h", profile="quick", config={"a": 1})
        first = store.record_summary(
            experiment="b", seeds=[0], verdicts=[v], env={}, created_at=1.0, **kw
        )
        second = store.record_summary(
            experiment="b",
            seeds=[0, 1],
            verdicts=[v],
            figures=[{"path": "f.png", "caption": "cap", "claim": "C1"}],
            figures_tmp=figs,
            env={"e": 1},
            created_at=2.0,
            **kw,
        )
        store.record_summary(experiment="a", seeds=[0], verdicts=[], env={}, created_at=1.5, **kw)
        assert [s.seeds for s in store.summaries("b")] == [[0, 1], [0]]
        latest = store.latest_summaries()
        assert [(s.experiment, s.created_at) for s in latest] == [("a", 1.5), ("b", 2.0)]
        assert first.figures == [] and second.verdicts == [v]
        (fig,) = second.figures
        assert fig["caption"] == "cap" and fig["claim"] == "C1"
        assert (store.artifacts_dir / fig["path"]).read_bytes() == b"png"
        assert not figs.exists()  # moved into place
        assert store.experiments() == ["a", "b"]


def test_export_csv_and_json(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _record(store, 1, result=RunResult(metrics={"acc": 0.9, "seed": 1.0}))
        _record(store, 0, "failed", error="Traceback (most recent call last):\nKeyError: 'x'")
        runs = store.runs("exp", status=None)
    rows = list(csv.DictReader(io.StringIO(export_runs(runs, "csv"))))
    assert [r["seed"] for r in rows] == ["0", "1"]
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "KeyError: 'x'"
    assert rows[0]["acc"] == "" and float(rows[1]["acc"]) == 0.9
    assert rows[1]["metric.seed"] == "1.0"  # a metric named like a fixed column
    data = json.loads(export_runs(runs, "json"))
    assert data[1]["metrics"] == {"acc": 0.9, "seed": 1.0} and data[1]["config"] == {"a": 1}
    assert data[0]["metrics"] == {} and "KeyError" in data[0]["error"]
    with pytest.raises(ValueError, match="csv, json"):
        export_runs(runs, "xml")


def test_text_file_is_rejected_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    with pytest.raises(StoreError, match="not an elulab store") as info:
        Store(path)
    assert "\n" not in str(info.value)
    assert path.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_foreign_sqlite_is_rejected_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (x)")
    conn.execute("INSERT INTO things VALUES (1)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for kwargs in ({}, {"readonly": True}):
        with pytest.raises(StoreError, match="not an elulab store"):
            Store(path, **kwargs)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_foreign_sqlite_with_a_meta_table_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'someone-else')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an elulab store"):
        Store(path)
    assert path.read_bytes() == before


def test_unwritable_locations(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store folder"):
        Store(blocker / "sub" / "s.sqlite")
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.sqlite", readonly=True)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_read_only_file_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    path.chmod(0o444)
    if os.geteuid() == 0:
        # root may write to a 0o444 file, so make the permission check see what a user sees
        import elulab.lab.store as store_mod

        real_access = os.access

        def access(p: object, mode: int) -> bool:
            if mode & os.W_OK and Path(str(p)) == path:
                return False
            return real_access(p, mode)

        monkeypatch.setattr(store_mod.os, "access", access)
    try:
        before = path.read_bytes()
        with pytest.raises(StoreError, match="not writable"):
            Store(path)
        assert path.read_bytes() == before
        with Store(path, readonly=True) as ro:
            assert ro.runs() == []
    finally:
        path.chmod(0o644)


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        _record(store, 0)
    with Store(path, readonly=True) as ro:
        assert [r.seed for r in ro.runs()] == [0]
        with pytest.raises(StoreError, match="read-only"):
            _record(ro, 1)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_stale_tmp_dirs_of_dead_processes_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    dead = tmp_path / "artifacts" / ".tmp-999999999-abc"
    mine = tmp_path / "artifacts" / f".tmp-{os.getpid()}-abc"
    dead.mkdir(parents=True)
    mine.mkdir()
    Store(path).close()
    assert not dead.exists() and mine.exists()


def test_two_connections_same_seed_no_duplicate(tmp_path: Path) -> None:
    """Two drivers on one store: the first completed result wins, nothing is duplicated."""
    path = tmp_path / "s.sqlite"
    a, b = Store(path), Store(path)
    try:
        assert _record(a, 0, result=RunResult(metrics={"m": 1.0}, artifacts={"x": b"a"}))
        assert b.completed_seeds("exp", "h1") == {0}
        assert not _record(b, 0, result=RunResult(metrics={"m": 2.0}, artifacts={"x": b"b"}))
        (rec,) = b.runs("exp", status=None)
        assert rec.result is not None and rec.result.metrics == {"m": 1.0}
        assert rec.artifact_dir is not None and (rec.artifact_dir / "x").read_bytes() == b"a"
        assert not [p for p in a.artifacts_dir.iterdir() if p.name.startswith(".tmp")]
    finally:
        a.close()
        b.close()
