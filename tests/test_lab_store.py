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
from elulab.lab.store import SCHEMA_VERSION, Store, StoreError, export_runs, revision_warning


def _record(store: Store, seed: int, status: str = "completed", **kw: object) -> bool:
    result = kw.pop("result", None)
    env = kw.pop("env", {"host": "x"})
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
        env=env,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
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


def test_empty_file_is_rejected_untouched_and_named_so(tmp_path: Path) -> None:
    """An empty file (e.g. left by the sqlite3 shell) is refused, said to be empty."""
    path = tmp_path / "s.sqlite"
    path.touch()
    with pytest.raises(StoreError, match=r"not an elulab store \(an empty file\)"):
        Store(path)
    assert path.read_bytes() == b""


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


# -- schema 2: experiment version and git revision of every run -------------------------------

_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed')), result TEXT, error TEXT,
    started_at REAL NOT NULL, finished_at REAL NOT NULL, duration_s REAL NOT NULL,
    env TEXT NOT NULL, artifact_dir TEXT, attempts INTEGER NOT NULL DEFAULT 1,
    UNIQUE (experiment, config_hash, seed)
);
CREATE TABLE summaries (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, title TEXT NOT NULL,
    claims TEXT NOT NULL, config_hash TEXT NOT NULL, profile TEXT NOT NULL,
    config TEXT NOT NULL, seeds TEXT NOT NULL, verdicts TEXT NOT NULL, figures TEXT NOT NULL,
    errors TEXT NOT NULL, env TEXT NOT NULL, created_at REAL NOT NULL
);
"""


def _schema_1_store(path: Path) -> None:
    """A store as elulab wrote it before schema 2: the revision only inside ``env``."""
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_1)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("format", "elulab-results"), ("schema_version", "1"), ("created_by", "elulab 0.1.0")],
    )
    result = json.dumps(RunResult(metrics={"m": 1.0}).to_json())
    for seed, git, status in [
        (0, "aaa", "completed"),
        (1, "bbb", "completed"),
        (2, "ccc", "failed"),
    ]:
        conn.execute(
            "INSERT INTO runs (experiment, config_hash, seed, config, status, result, started_at,"
            " finished_at, duration_s, env) VALUES ('exp', 'h1', ?, '{}', ?, ?, 0, 1, 1, ?)",
            (seed, status, result if status == "completed" else None, json.dumps({"git": git})),
        )
    conn.execute(
        "INSERT INTO runs (experiment, config_hash, seed, config, status, result, started_at,"
        " finished_at, duration_s, env) VALUES ('exp', 'h2', 0, '{}', 'completed', ?, 0, 1, 1,"
        " '{}')",
        (result,),
    )
    for chash, seeds in [("h1", [0, 1]), ("h1", [0]), ("h2", [0])]:
        conn.execute(
            "INSERT INTO summaries (experiment, title, claims, config_hash, profile, config, seeds,"
            " verdicts, figures, errors, env, created_at)"
            " VALUES ('exp', 'T', '[]', ?, 'quick', '{}', ?, '[]', '[]', '[]', '{}', 1)",
            (chash, json.dumps(seeds)),
        )
    conn.commit()
    conn.close()


def test_schema_1_store_is_read_as_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _schema_1_store(path)
    before = path.read_bytes()
    with Store(path, readonly=True) as ro:
        assert ro.schema_version == 1
        runs = {(r.config_hash, r.seed): r for r in ro.runs(status=None)}
        assert runs[("h1", 0)].git == "aaa" and runs[("h1", 0)].version is None
        assert runs[("h2", 0)].git is None
        assert [s.revisions for s in ro.summaries()] == [[None], ["aaa"], ["aaa", "bbb"]]
    assert path.read_bytes() == before


def test_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _schema_1_store(path)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        meta = store.meta()
        assert meta["schema_version"] == "2" and "upgraded_from_1_at" in meta
        cols = {r[1] for r in store.conn.execute("PRAGMA table_info(runs)")}
        assert {"version", "git"} <= cols
        stored = store.conn.execute("SELECT seed, git, version FROM runs ORDER BY id").fetchall()
        assert stored == [(0, "aaa", None), (1, "bbb", None), (2, "ccc", None), (0, None, None)]
        revisions = store.conn.execute("SELECT revisions FROM summaries ORDER BY id").fetchall()
        assert [json.loads(r[0]) for r in revisions] == [["aaa", "bbb"], ["aaa"], [None]]
        # the upgraded store takes new runs with their version
        assert _record(store, 5, env={"git": "ddd"}, version=3)
        (new,) = [r for r in store.runs("exp") if r.seed == 5]
        assert new.git == "ddd" and new.version == 3
    with Store(path) as again:  # a second opening finds nothing to do
        assert again.meta()["schema_version"] == "2"
        assert len(again.runs(status=None)) == 5


def test_runs_and_summaries_record_version_and_revision(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert _record(store, 0, env={"git": "abc"}, version=2)
        assert _record(store, 1, env={"git": "abc"}, version=2, git="def-dirty")
        assert _record(store, 2, env={}, version=2)
        by_seed = {r.seed: r for r in store.runs("exp")}
        assert [(by_seed[s].git, by_seed[s].version) for s in (0, 1, 2)] == [
            ("abc", 2),
            ("def-dirty", 2),
            (None, 2),
        ]
        kw = dict(title="T", claims=["C1"], config_hash="h1", profile="quick", config={}, env={})
        auto = store.record_summary(experiment="exp", seeds=[0, 1, 2], verdicts=[], **kw)
        assert auto.revisions == ["abc", "def-dirty", None]
        assert auto.revision_warning == (
            "the runs come from 3 different git revisions (abc, def-dirty, unknown)"
        )
        given = store.record_summary(
            experiment="exp", seeds=[0], verdicts=[], version=2, revisions=["abc", "abc"], **kw
        )
        assert given.revisions == ["abc"] and given.version == 2 and given.revision_warning is None
        assert store.summaries()[0].revisions == ["abc"]


def test_revision_warning() -> None:
    assert revision_warning([]) is None and revision_warning(["a"]) is None
    assert revision_warning([None]) is None  # no revision known, nothing mixed
    assert "2 different git revisions (a, b)" in (revision_warning(["a", "b", "a"]) or "")
    assert "(a, unknown)" in (revision_warning(["a", None]) or "")
    assert "uncommitted changes (a-dirty)" in (revision_warning(["a-dirty"]) or "")


def test_export_has_version_revision_iso_times_and_config(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.record_run(
            "exp",
            "h1",
            {"steps": 3, "lr": 0.001, "acts": ["elu", "relu"], "flag": True, "name": "a,b"},
            0,
            status="completed",
            result=RunResult(metrics={"version": 7.0, "acc": 0.5}),
            started_at=0.0,
            finished_at=1.25,
            env={"git": "abc123"},
            version=4,
        )
        runs = store.runs("exp")
    (row,) = list(csv.DictReader(io.StringIO(export_runs(runs, "csv"))))
    assert row["version"] == "4" and row["git"] == "abc123"
    assert row["started_at"] == "1970-01-01T00:00:00.000Z"
    assert row["finished_at"] == "1970-01-01T00:00:01.250Z"
    assert row["config.steps"] == "3" and row["config.lr"] == "0.001"
    assert row["config.acts"] == '["elu", "relu"]' and row["config.flag"] == "true"
    assert row["config.name"] == "a,b"
    assert row["metric.version"] == "7.0" and row["acc"] == "0.5"
    (obj,) = json.loads(export_runs(runs, "json"))
    assert obj["version"] == 4 and obj["git"] == "abc123"
    assert obj["started_at"] == "1970-01-01T00:00:00.000Z" and obj["config"]["steps"] == 3
