"""The result store: one SQLite file (WAL mode) and an artifacts folder beside it.

Layout (default ``elulab-results/``)::

    elulab.sqlite            tables meta, runs, summaries
    artifacts/<experiment>/<config hash>/seed-<n>/...       files a run returned
    artifacts/<experiment>/<config hash>/summary-<id>/...   figures of a summary

Guarantees:

* one row per (experiment, config hash, seed) in ``runs``; a completed row is never
  overwritten, a failed one is replaced when the seed is run again;
* every write is one SQLite transaction (``synchronous=FULL``): a process killed at
  any point leaves either the whole row or nothing; artifact folders are written
  under a temporary name and renamed into place before the row is committed;
* a file that is not an elulab store (not SQLite, or SQLite without elulab's
  ``meta`` table) raises :class:`StoreError` and is never written to.

Example:
    >>> import tempfile, pathlib
    >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as store:
    ...     store.runs()
    []
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .api import RunResult, Verdict

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "RunRecord",
    "Store",
    "StoreError",
    "SummaryRecord",
    "export_runs",
]

DEFAULT_STORE = Path("elulab-results") / "elulab.sqlite"
FORMAT_MARKER = "elulab-results"
SCHEMA_VERSION = 1
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
    result TEXT,
    error TEXT,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    duration_s REAL NOT NULL,
    env TEXT NOT NULL,
    artifact_dir TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    UNIQUE (experiment, config_hash, seed)
);
CREATE TABLE summaries (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    title TEXT NOT NULL,
    claims TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    profile TEXT NOT NULL,
    config TEXT NOT NULL,
    seeds TEXT NOT NULL,
    verdicts TEXT NOT NULL,
    figures TEXT NOT NULL,
    errors TEXT NOT NULL,
    env TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX summaries_by_experiment ON summaries (experiment, created_at);
"""


class StoreError(Exception):
    """The store cannot be used (foreign file, not writable, newer schema, ...).

    The message is one line naming the path and what is wrong.
    """


@dataclass
class RunRecord:
    """One stored (experiment, config hash, seed) run."""

    experiment: str
    config_hash: str
    config: dict[str, Any]
    seed: int
    status: str
    result: RunResult | None
    error: str | None
    started_at: float
    finished_at: float
    duration_s: float
    env: dict[str, Any]
    artifact_dir: Path | None
    attempts: int = 1


@dataclass
class SummaryRecord:
    """The verdicts and figures of one sweep (one ``elulab run`` of one config).

    ``figures`` holds ``{"path": str, "caption": str, "claim": str}`` with ``path``
    relative to :attr:`Store.artifacts_dir`.
    """

    experiment: str
    title: str
    claims: list[str]
    config_hash: str
    profile: str
    config: dict[str, Any]
    seeds: list[int]
    verdicts: list[Verdict]
    figures: list[dict[str, Any]]
    env: dict[str, Any]
    created_at: float
    errors: list[str] = field(default_factory=list)
    id: int | None = None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False)


def _check_artifact_name(name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if (
        not name
        or p.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
        or "\\" in name
        or "\x00" in name
    ):
        raise ValueError(
            f"artifact name {name!r} is not a relative path inside the run folder "
            "(use names like 'weights.pt' or 'curves/loss.csv')"
        )
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """An elulab result store (see the module docstring for layout and guarantees).

    Args:
        path: the SQLite file; its folder also holds ``artifacts/``.
        create: create the store (and its folder) when the file does not exist.
        readonly: open without writing anything (for reading results, e.g. the report).

    Raises:
        StoreError: the path is a folder, not an SQLite file, an SQLite file of
            another application, written by a newer elulab, missing (``create=False``
            or ``readonly=True``), or not writable.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False
    ) -> None:
        self.path = Path(path).absolute()  # figures and artifacts resolve the same from any cwd
        self.artifacts_dir = self.path.parent / "artifacts"
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise StoreError(f"store {self.path} is a directory, not an SQLite file")
        if self.path.exists():
            self._check_is_elulab_store()
        elif readonly or not create:
            raise StoreError(f"store {self.path} does not exist")
        else:
            self._create()
        self._conn = self._connect()
        self._check_schema()
        if not readonly:
            self._clean_stale_tmp()

    # -- opening -------------------------------------------------------------------
    def _check_is_elulab_store(self) -> None:
        """Decide, without writing anything, whether ``path`` is an elulab store."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(_SQLITE_HEADER))
        except OSError as e:
            raise StoreError(f"store {self.path} cannot be read: {e.strerror}") from None
        if header != _SQLITE_HEADER:
            raise StoreError(
                f"{self.path} is not an elulab store (not an SQLite database); "
                "choose another path with --store"
            )
        # immutable=1: no locks, no -shm/-wal files, the file is only read. A store whose
        # meta row is still in the WAL is read a second time through the WAL (mode=ro).
        found = self._read_marker(immutable=True)
        if found is None and Path(f"{self.path}-wal").exists():
            found = self._read_marker(immutable=False)
        if found != FORMAT_MARKER:
            raise StoreError(
                f"{self.path} is an SQLite database but not an elulab store (no elulab "
                "meta table); it was left untouched; choose another path with --store"
            )
        if not self.readonly and not (
            os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        ):
            raise StoreError(f"store {self.path} is not writable (the file and its folder must be)")

    def _read_marker(self, *, immutable: bool) -> str | None:
        mode = "ro&immutable=1" if immutable else "ro"
        uri = f"{self.path.resolve().as_uri()}?mode={mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=10)
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path} cannot be opened: {e}") from None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError:
            return None
        finally:
            conn.close()
        return None if row is None else str(row[0])

    def _create(self) -> None:
        """Create the schema in a temporary file, then link it into place atomically."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"cannot create the store folder {self.path.parent}: {e.strerror or e}"
            ) from None
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            conn = sqlite3.connect(tmp)
            try:
                conn.executescript(_SCHEMA)
                from .. import __version__

                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("format", FORMAT_MARKER),
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("created_at", repr(time.time())),
                        ("created_by", f"elulab {__version__}"),
                    ],
                )
                conn.commit()
            finally:
                conn.close()
            try:
                os.link(tmp, self.path)  # fails if another process created it meanwhile
            except FileExistsError:
                pass
            except OSError:
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except (OSError, sqlite3.Error) as e:
            msg = getattr(e, "strerror", None) or str(e)
            raise StoreError(f"cannot create the store {self.path}: {msg}") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._check_is_elulab_store()

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            else:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path} cannot be opened: {e}") from None
        return conn

    def _check_schema(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this elulab "
                f"({SCHEMA_VERSION}); upgrade elulab or use another --store"
            )

    def _clean_stale_tmp(self) -> None:
        """Remove temporary artifact folders left by processes that died."""
        if not self.artifacts_dir.is_dir():
            return
        for p in self.artifacts_dir.glob(".tmp-*"):
            try:
                pid = int(p.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if not _pid_alive(pid):
                shutil.rmtree(p, ignore_errors=True)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path} is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def meta(self) -> dict[str, str]:
        """The ``meta`` table (format marker, schema version, creation time)."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # -- writing -------------------------------------------------------------------
    def _require_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"store {self.path} was opened read-only")

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def tmp_dir(self) -> Path:
        """A new temporary folder inside ``artifacts/`` (renamed into place later)."""
        self._require_writable()
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        d = self.artifacts_dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        d.mkdir()
        return d

    def _move_into_place(self, tmp: Path, rel: str) -> None:
        """Rename ``tmp`` to ``artifacts/rel``, replacing what was there."""
        final = self.artifacts_dir / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            trash = self.artifacts_dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}-old"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(final)

    def completed_seeds(self, experiment: str, config_hash: str) -> set[int]:
        """Seeds of (experiment, config hash) already completed."""
        rows = self.conn.execute(
            "SELECT seed FROM runs WHERE experiment = ? AND config_hash = ? "
            "AND status = 'completed'",
            (experiment, config_hash),
        ).fetchall()
        return {int(r[0]) for r in rows}

    def record_run(
        self,
        experiment: str,
        config_hash: str,
        config: Mapping[str, Any],
        seed: int,
        *,
        status: str,
        result: RunResult | None = None,
        error: str | None = None,
        started_at: float,
        finished_at: float,
        env: Mapping[str, Any],
    ) -> bool:
        """Write one run atomically; return False if the seed was already completed.

        A completed row is never replaced (a second driver finishing the same seed
        keeps the first result); a failed row is replaced by the new attempt. The run's
        ``result.artifacts`` are written to ``artifacts/<exp>/<hash>/seed-<n>/``.

        Raises:
            ValueError: a bad status, or an artifact name that is not a relative path.
        """
        self._require_writable()
        if status not in ("completed", "failed"):
            raise ValueError(f"status must be 'completed' or 'failed', got {status!r}")
        if status == "completed" and result is None:
            raise ValueError("a completed run needs its RunResult")
        artifacts = dict(result.artifacts) if result is not None else {}
        names = {name: _check_artifact_name(name) for name in artifacts}
        result_json = _dumps(result.to_json()) if result is not None else None
        rel = f"{experiment}/{config_hash}/seed-{int(seed)}" if artifacts else None
        tmp: Path | None = None
        if artifacts:
            tmp = self.tmp_dir()
            for name, data in artifacts.items():
                target = tmp.joinpath(*names[name].parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
        try:
            with self._transaction() as conn:
                row = conn.execute(
                    "SELECT status FROM runs WHERE experiment = ? AND config_hash = ? AND seed = ?",
                    (experiment, config_hash, int(seed)),
                ).fetchone()
                if row is not None and row[0] == "completed":
                    return False
                if tmp is not None and rel is not None:
                    self._move_into_place(tmp, rel)
                    tmp = None
                conn.execute(
                    """INSERT INTO runs (experiment, config_hash, seed, config, status,
                        result, error, started_at, finished_at, duration_s, env, artifact_dir)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (experiment, config_hash, seed) DO UPDATE SET
                        config = excluded.config, status = excluded.status,
                        result = excluded.result, error = excluded.error,
                        started_at = excluded.started_at, finished_at = excluded.finished_at,
                        duration_s = excluded.duration_s, env = excluded.env,
                        artifact_dir = excluded.artifact_dir, attempts = runs.attempts + 1""",
                    (
                        experiment,
                        config_hash,
                        int(seed),
                        _dumps(dict(config)),
                        status,
                        result_json,
                        error,
                        float(started_at),
                        float(finished_at),
                        float(finished_at) - float(started_at),
                        _dumps(dict(env)),
                        rel,
                    ),
                )
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return True

    def record_summary(
        self,
        *,
        experiment: str,
        title: str,
        claims: Sequence[str],
        config_hash: str,
        profile: str,
        config: Mapping[str, Any],
        seeds: Iterable[int],
        verdicts: Sequence[Verdict],
        figures: Sequence[Mapping[str, Any]] = (),
        figures_tmp: Path | None = None,
        errors: Sequence[str] = (),
        env: Mapping[str, Any],
        created_at: float | None = None,
    ) -> SummaryRecord:
        """Write a summary row; move ``figures_tmp`` (from :meth:`tmp_dir`) into place.

        ``figures`` paths are relative to ``figures_tmp`` on input and become relative to
        :attr:`artifacts_dir` in the stored row.
        """
        self._require_writable()
        created = time.time() if created_at is None else float(created_at)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(created))
        rel_dir = f"{experiment}/{config_hash}/summary-{stamp}-{uuid.uuid4().hex[:6]}"
        figs = []
        for fig in figures:
            p = _check_artifact_name(str(fig["path"]))
            figs.append(
                {"path": f"{rel_dir}/{p}", "caption": str(fig["caption"]), "claim": fig["claim"]}
            )
        verdicts_json = _dumps([v.to_json() for v in verdicts])
        try:
            with self._transaction() as conn:
                if figures_tmp is not None:
                    self._move_into_place(figures_tmp, rel_dir)
                    figures_tmp = None
                cur = conn.execute(
                    """INSERT INTO summaries (experiment, title, claims, config_hash, profile,
                        config, seeds, verdicts, figures, errors, env, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        experiment,
                        title,
                        _dumps(list(claims)),
                        config_hash,
                        profile,
                        _dumps(dict(config)),
                        _dumps([int(s) for s in seeds]),
                        verdicts_json,
                        _dumps(figs),
                        _dumps([str(e) for e in errors]),
                        _dumps(dict(env)),
                        created,
                    ),
                )
                row_id = cur.lastrowid
        finally:
            if figures_tmp is not None:
                shutil.rmtree(figures_tmp, ignore_errors=True)
        return self._summary_from_row(
            self._query("SELECT * FROM summaries WHERE id = ?", (row_id,))[0]
        )

    # -- reading -------------------------------------------------------------------
    def _run_from_row(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            experiment=row["experiment"],
            config_hash=row["config_hash"],
            config=json.loads(row["config"]),
            seed=int(row["seed"]),
            status=row["status"],
            result=None
            if row["result"] is None
            else RunResult.from_json(json.loads(row["result"])),
            error=row["error"],
            started_at=float(row["started_at"]),
            finished_at=float(row["finished_at"]),
            duration_s=float(row["duration_s"]),
            env=json.loads(row["env"]),
            artifact_dir=None
            if row["artifact_dir"] is None
            else self.artifacts_dir / row["artifact_dir"],
            attempts=int(row["attempts"]),
        )

    def _summary_from_row(self, row: sqlite3.Row) -> SummaryRecord:
        return SummaryRecord(
            experiment=row["experiment"],
            title=row["title"],
            claims=json.loads(row["claims"]),
            config_hash=row["config_hash"],
            profile=row["profile"],
            config=json.loads(row["config"]),
            seeds=json.loads(row["seeds"]),
            verdicts=[Verdict.from_json(v) for v in json.loads(row["verdicts"])],
            figures=json.loads(row["figures"]),
            env=json.loads(row["env"]),
            created_at=float(row["created_at"]),
            errors=json.loads(row["errors"]),
            id=int(row["id"]),
        )

    def _query(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        cur = self.conn.cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(sql, params).fetchall()

    def runs(
        self,
        experiment: str | None = None,
        status: str | None = "completed",
        *,
        config_hash: str | None = None,
    ) -> list[RunRecord]:
        """Stored runs, ordered by experiment, config hash and seed.

        Args:
            experiment: only this experiment (default: all).
            status: ``"completed"`` (default), ``"failed"``, or None for both.
            config_hash: only this config.
        """
        where, params = [], []
        for col, val in (
            ("experiment", experiment),
            ("status", status),
            ("config_hash", config_hash),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY experiment, config_hash, seed"
        return [self._run_from_row(r) for r in self._query(sql, params)]

    def summaries(self, experiment: str | None = None) -> list[SummaryRecord]:
        """Stored summaries, latest first."""
        sql = "SELECT * FROM summaries"
        params: list[Any] = []
        if experiment is not None:
            sql += " WHERE experiment = ?"
            params.append(experiment)
        sql += " ORDER BY created_at DESC, id DESC"
        return [self._summary_from_row(r) for r in self._query(sql, params)]

    def latest_summaries(self) -> list[SummaryRecord]:
        """The newest summary of each experiment, in order of experiment name."""
        seen: dict[str, SummaryRecord] = {}
        for s in self.summaries():
            seen.setdefault(s.experiment, s)
        return [seen[k] for k in sorted(seen)]

    def experiments(self) -> list[str]:
        """Names of the experiments that have runs or summaries in the store."""
        rows = self.conn.execute(
            "SELECT experiment FROM runs UNION SELECT experiment FROM summaries ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]


_RUN_COLUMNS = (
    "experiment",
    "config_hash",
    "seed",
    "status",
    "duration_s",
    "started_at",
    "attempts",
    "error",
)


def export_runs(runs: Sequence[RunRecord], fmt: str) -> str:
    """The runs as CSV (one row per run, one column per metric) or JSON (a list).

    Args:
        runs: records from :meth:`Store.runs`.
        fmt: ``"csv"`` or ``"json"``. In CSV a failed run's error is its last line;
            JSON rows carry ``metrics`` and ``config`` as objects and the whole error.

    Example:
        >>> export_runs([], "csv").strip()
        'experiment,config_hash,seed,status,duration_s,started_at,attempts,error'
    """
    import csv
    import io

    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown format {fmt!r}; allowed: csv, json")
    if fmt == "json":
        rows = []
        for r in runs:
            metrics = r.result.to_json()["metrics"] if r.result is not None else {}
            rows.append(
                {
                    "experiment": r.experiment,
                    "config_hash": r.config_hash,
                    "seed": r.seed,
                    "status": r.status,
                    "duration_s": r.duration_s,
                    "started_at": r.started_at,
                    "attempts": r.attempts,
                    "error": r.error,
                    "metrics": metrics,
                    "config": r.config,
                }
            )
        return json.dumps(rows, indent=2, allow_nan=False) + "\n"
    metric_names = sorted({k for r in runs if r.result is not None for k in r.result.metrics})
    header = list(_RUN_COLUMNS) + [f"metric.{m}" if m in _RUN_COLUMNS else m for m in metric_names]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in runs:
        error = ""
        if r.error:
            lines = [ln.strip() for ln in r.error.strip().splitlines() if ln.strip()]
            error = lines[-1] if lines else ""
        metrics = r.result.metrics if r.result is not None else {}
        writer.writerow(
            [
                r.experiment,
                r.config_hash,
                r.seed,
                r.status,
                f"{r.duration_s:.6g}",
                f"{r.started_at:.3f}",
                r.attempts,
                error,
            ]
            + [repr(float(metrics[m])) if m in metrics else "" for m in metric_names]
        )
    return buf.getvalue()
