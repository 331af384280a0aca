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
  ``meta`` table) raises :class:`StoreError` and is never written to;
* every run records the experiment's ``version`` and the ``git`` revision of the code
  that computed it, and every summary the revisions of the runs it was computed from;
  a store of an older schema is upgraded in place when opened for writing (one
  transaction) and read as it is when opened read-only.

Example:
    >>> import tempfile, pathlib
    >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as store:
    ...     store.runs()
    []
"""

from __future__ import annotations

import contextlib
import datetime
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
    "export_parquet",
    "export_runs",
    "revision_warning",
]

DEFAULT_STORE = Path("elulab-results") / "elulab.sqlite"
FORMAT_MARKER = "elulab-results"
SCHEMA_VERSION = 2
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
    version INTEGER,
    git TEXT,
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
    created_at REAL NOT NULL,
    version INTEGER,
    revisions TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX summaries_by_experiment ON summaries (experiment, created_at);
"""


class StoreError(Exception):
    """The store cannot be used (foreign file, not writable, newer schema, ...).

    The message is one line naming the path and what is wrong.
    """


@dataclass
class RunRecord:
    """One stored (experiment, config hash, seed) run.

    ``version`` is the experiment's version and ``git`` the revision of the code that
    computed the run (``"<sha>-dirty"`` for uncommitted changes); None when unknown
    (runs stored before schema 2 have no version; a run outside a git checkout no
    revision).
    """

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
    version: int | None = None
    git: str | None = None


@dataclass
class SummaryRecord:
    """The verdicts and figures of one sweep (one ``elulab run`` of one config).

    ``figures`` holds ``{"path": str, "caption": str, "claim": str}`` with ``path``
    relative to :attr:`Store.artifacts_dir`. ``revisions`` are the distinct git
    revisions of the runs the verdicts were computed from (None: unknown);
    :func:`revision_warning` says when they mix.
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
    version: int | None = None
    revisions: list[str | None] = field(default_factory=list)

    @property
    def revision_warning(self) -> str | None:
        """A sentence when the runs behind the verdicts mix revisions, else None."""
        return revision_warning(self.revisions)


def revision_warning(revisions: Sequence[str | None]) -> str | None:
    """Why verdicts over runs of these git revisions may not describe one code state.

    Runs of different revisions, or of a ``-dirty`` revision (uncommitted changes),
    give a warning; one clean revision, or no runs, give None. An unknown revision
    (None) counts as a revision of its own.

    Example:
        >>> revision_warning(["a1"]) is None
        True
        >>> revision_warning(["a1", "b2"])
        'the runs come from 2 different git revisions (a1, b2)'
        >>> revision_warning(["a1-dirty"])
        'runs come from code with uncommitted changes (a1-dirty)'
    """
    distinct = sorted({"unknown" if r is None else str(r) for r in revisions})
    if len(distinct) > 1:
        return f"the runs come from {len(distinct)} different git revisions ({', '.join(distinct)})"
    dirty = [r for r in distinct if r.endswith("-dirty")]
    if dirty:
        return f"runs come from code with uncommitted changes ({', '.join(dirty)})"
    return None


def _sorted_revisions(revisions: Iterable[str | None]) -> list[str | None]:
    return sorted(set(revisions), key=lambda r: (r is None, r or ""))


def _env_git(env_json: str | None) -> str | None:
    try:
        env = json.loads(env_json or "{}")
    except ValueError:
        return None
    git = env.get("git") if isinstance(env, dict) else None
    return None if git is None else str(git)


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

    A store of an older schema is upgraded in place when opened for writing; read-only,
    it is read as it is (:attr:`schema_version` says which).

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
        self.schema_version = SCHEMA_VERSION
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
            what = "an empty file" if not header else "not an SQLite database"
            raise StoreError(
                f"{self.path} is not an elulab store ({what}); choose another path with "
                "--store" + (", or delete the empty file" if not header else "")
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

    def _read_schema_version(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 1

    def _check_schema(self) -> None:
        version = self._read_schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this elulab "
                f"({SCHEMA_VERSION}); upgrade elulab or use another --store"
            )
        self.schema_version = version
        if version < SCHEMA_VERSION and not self.readonly:
            self._upgrade()

    def _upgrade(self) -> None:
        """Bring a store of an older schema to :data:`SCHEMA_VERSION`, in one transaction.

        Schema 1 -> 2: ``runs`` gains ``version`` (unknown: NULL) and ``git`` (from the
        run's recorded environment); ``summaries`` gains ``version`` (NULL) and
        ``revisions`` (the revisions of the completed runs of its config and seeds).
        """
        try:
            with self._transaction() as conn:
                version = self._read_schema_version()
                if version >= SCHEMA_VERSION:  # another process upgraded it meanwhile
                    self.schema_version = version
                    return
                if version < 2:
                    runs = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
                    if "version" not in runs:
                        conn.execute("ALTER TABLE runs ADD COLUMN version INTEGER")
                    if "git" not in runs:
                        conn.execute("ALTER TABLE runs ADD COLUMN git TEXT")
                    rows = conn.execute("SELECT id, env FROM runs").fetchall()
                    conn.executemany(
                        "UPDATE runs SET git = ? WHERE id = ?",
                        [(_env_git(env), rid) for rid, env in rows],
                    )
                    summ = {r[1] for r in conn.execute("PRAGMA table_info(summaries)")}
                    if "version" not in summ:
                        conn.execute("ALTER TABLE summaries ADD COLUMN version INTEGER")
                    if "revisions" not in summ:
                        conn.execute(
                            "ALTER TABLE summaries ADD COLUMN revisions TEXT NOT NULL DEFAULT '[]'"
                        )
                    rows = conn.execute(
                        "SELECT id, experiment, config_hash, seeds FROM summaries"
                    ).fetchall()
                    conn.executemany(
                        "UPDATE summaries SET revisions = ? WHERE id = ?",
                        [
                            (_dumps(self._revisions(exp, chash, json.loads(seeds))), sid)
                            for sid, exp, chash, seeds in rows
                        ],
                    )
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (f"upgraded_from_{version}_at", repr(time.time())),
                )
        except sqlite3.Error as e:
            raise StoreError(f"cannot upgrade the store {self.path} to schema 2: {e}") from None
        self.schema_version = SCHEMA_VERSION

    def _revisions(
        self, experiment: str, config_hash: str, seeds: Iterable[int]
    ) -> list[str | None]:
        """Distinct revisions of the completed runs of (experiment, config hash, seeds)."""
        column = "git" if self.schema_version >= 2 else "env"
        rows = self.conn.execute(
            f"SELECT seed, {column} FROM runs WHERE experiment = ? AND config_hash = ? "
            "AND status = 'completed'",
            (experiment, config_hash),
        ).fetchall()
        wanted = {int(s) for s in seeds}
        return _sorted_revisions(
            (value if column == "git" else _env_git(value))
            for seed, value in rows
            if int(seed) in wanted
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
        version: int | None = None,
        git: str | None = None,
    ) -> bool:
        """Write one run atomically; return False if the seed was already completed.

        A completed row is never replaced (a second driver finishing the same seed
        keeps the first result); a failed row is replaced by the new attempt. The run's
        ``result.artifacts`` are written to ``artifacts/<exp>/<hash>/seed-<n>/``.
        ``version`` is the experiment's version; ``git`` the code's revision (default:
        ``env["git"]``, as :func:`elulab.lab.backends.environment` records it).

        Raises:
            ValueError: a bad status, or an artifact name that is not a relative path.
        """
        self._require_writable()
        if status not in ("completed", "failed"):
            raise ValueError(f"status must be 'completed' or 'failed', got {status!r}")
        if status == "completed" and result is None:
            raise ValueError("a completed run needs its RunResult")
        if git is None and env.get("git") is not None:
            git = str(env["git"])
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
                        result, error, started_at, finished_at, duration_s, env, artifact_dir,
                        version, git)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (experiment, config_hash, seed) DO UPDATE SET
                        config = excluded.config, status = excluded.status,
                        result = excluded.result, error = excluded.error,
                        started_at = excluded.started_at, finished_at = excluded.finished_at,
                        duration_s = excluded.duration_s, env = excluded.env,
                        artifact_dir = excluded.artifact_dir, attempts = runs.attempts + 1,
                        version = excluded.version, git = excluded.git""",
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
                        None if version is None else int(version),
                        git,
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
        version: int | None = None,
        revisions: Iterable[str | None] | None = None,
    ) -> SummaryRecord:
        """Write a summary row; move ``figures_tmp`` (from :meth:`tmp_dir`) into place.

        ``figures`` paths are relative to ``figures_tmp`` on input and become relative to
        :attr:`artifacts_dir` in the stored row. ``revisions`` are the git revisions of
        the runs behind the verdicts (default: those of the stored completed runs of
        ``config_hash`` and ``seeds``); ``version`` the experiment's version.
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
        seeds = [int(s) for s in seeds]
        try:
            with self._transaction() as conn:
                revs = (
                    self._revisions(experiment, config_hash, seeds)
                    if revisions is None
                    else _sorted_revisions(revisions)
                )
                if figures_tmp is not None:
                    self._move_into_place(figures_tmp, rel_dir)
                    figures_tmp = None
                cur = conn.execute(
                    """INSERT INTO summaries (experiment, title, claims, config_hash, profile,
                        config, seeds, verdicts, figures, errors, env, created_at, version,
                        revisions)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        experiment,
                        title,
                        _dumps(list(claims)),
                        config_hash,
                        profile,
                        _dumps(dict(config)),
                        _dumps(seeds),
                        verdicts_json,
                        _dumps(figs),
                        _dumps([str(e) for e in errors]),
                        _dumps(dict(env)),
                        created,
                        None if version is None else int(version),
                        _dumps(revs),
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
        v2 = "git" in row.keys()
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
            version=None if not v2 or row["version"] is None else int(row["version"]),
            git=row["git"] if v2 else _env_git(row["env"]),
        )

    def _summary_from_row(self, row: sqlite3.Row) -> SummaryRecord:
        if "revisions" in row.keys():
            version = None if row["version"] is None else int(row["version"])
            revisions = json.loads(row["revisions"])
        else:  # a read-only store of schema 1
            version = None
            revisions = self._revisions(
                row["experiment"], row["config_hash"], json.loads(row["seeds"])
            )
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
            version=version,
            revisions=revisions,
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
    "version",
    "git",
    "config_hash",
    "seed",
    "status",
    "duration_s",
    "started_at",
    "finished_at",
    "attempts",
    "error",
)


def _iso(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g. ``2025-10-09T08:26:40.000Z``."""
    stamp = datetime.datetime.fromtimestamp(float(t), tz=datetime.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _config_cell(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def export_runs(runs: Sequence[RunRecord], fmt: str) -> str:
    """The runs as CSV (one row per run) or JSON (a list of objects).

    Every row carries the experiment's ``version`` and the ``git`` revision of the
    code that computed the run (empty / null when unknown), ISO 8601 UTC timestamps
    and the resolved config. CSV: one ``config.<key>`` column per config field
    (strings as they are, other values as JSON) and one column per metric (a metric
    named like a fixed column gets a ``metric.`` prefix); a failed run's error is the
    last line of its traceback. JSON rows carry ``metrics`` and ``config`` as objects
    and the whole error.

    Args:
        runs: records from :meth:`Store.runs`.
        fmt: ``"csv"`` or ``"json"``.

    Example:
        >>> export_runs([], "csv").strip()
        'experiment,version,git,config_hash,seed,status,duration_s,started_at,finished_at,attempts,error'
        >>> _iso(0.0)
        '1970-01-01T00:00:00.000Z'
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
                    "version": r.version,
                    "git": r.git,
                    "config_hash": r.config_hash,
                    "seed": r.seed,
                    "status": r.status,
                    "duration_s": r.duration_s,
                    "started_at": _iso(r.started_at),
                    "finished_at": _iso(r.finished_at),
                    "attempts": r.attempts,
                    "error": r.error,
                    "metrics": metrics,
                    "config": r.config,
                }
            )
        return json.dumps(rows, indent=2, allow_nan=False) + "\n"
    config_keys = list(dict.fromkeys(k for r in runs for k in r.config))
    metric_names = sorted({k for r in runs if r.result is not None for k in r.result.metrics})
    header = (
        list(_RUN_COLUMNS)
        + [f"config.{k}" for k in config_keys]
        + [
            f"metric.{m}" if m in _RUN_COLUMNS or m.startswith("config.") else m
            for m in metric_names
        ]
    )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in runs:
        error = _last_error_line(r.error)
        metrics = r.result.metrics if r.result is not None else {}
        writer.writerow(
            [
                r.experiment,
                "" if r.version is None else r.version,
                r.git or "",
                r.config_hash,
                r.seed,
                r.status,
                f"{r.duration_s:.6g}",
                _iso(r.started_at),
                _iso(r.finished_at),
                r.attempts,
                error,
            ]
            + [_config_cell(r.config[k]) if k in r.config else "" for k in config_keys]
            + [repr(float(metrics[m])) if m in metrics else "" for m in metric_names]
        )
    return buf.getvalue()


def _last_error_line(error: str | None) -> str:
    if not error:
        return ""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def export_parquet(runs: Sequence[RunRecord], path: str | os.PathLike[str]) -> Path:
    """Write the runs as a Parquet file: the columns of the CSV form of :func:`export_runs`.

    Types: ``seed``, ``version``, ``attempts`` int64 (``version`` null when unknown);
    ``duration_s`` and every metric float64 (null where a run lacks it, NaN kept);
    ``started_at`` / ``finished_at`` timestamps (milliseconds, UTC); ``config.<key>``
    text as in the CSV (strings as they are, other values as JSON); the rest text.
    Needs the optional ``pyarrow`` package.

    Raises:
        ImportError: pyarrow is not installed (the message says how to install it).

    Example:
        >>> import tempfile, pathlib
        >>> try:
        ...     p = export_parquet([], pathlib.Path(tempfile.mkdtemp()) / "runs.parquet")
        ... except ImportError:
        ...     p = pathlib.Path("runs.parquet")
        >>> p.name
        'runs.parquet'
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "the parquet format needs pyarrow, which is not installed "
            "(pip install pyarrow); without it use csv or json"
        ) from None
    config_keys = list(dict.fromkeys(k for r in runs for k in r.config))
    metric_names = sorted({k for r in runs if r.result is not None for k in r.result.metrics})
    stamp = pa.timestamp("ms", tz="UTC")
    columns: dict[str, Any] = {
        "experiment": pa.array([r.experiment for r in runs], pa.string()),
        "version": pa.array([r.version for r in runs], pa.int64()),
        "git": pa.array([r.git for r in runs], pa.string()),
        "config_hash": pa.array([r.config_hash for r in runs], pa.string()),
        "seed": pa.array([r.seed for r in runs], pa.int64()),
        "status": pa.array([r.status for r in runs], pa.string()),
        "duration_s": pa.array([r.duration_s for r in runs], pa.float64()),
        "started_at": pa.array([round(r.started_at * 1000) for r in runs], pa.int64()).cast(stamp),
        "finished_at": pa.array([round(r.finished_at * 1000) for r in runs], pa.int64()).cast(
            stamp
        ),
        "attempts": pa.array([r.attempts for r in runs], pa.int64()),
        "error": pa.array([_last_error_line(r.error) for r in runs], pa.string()),
    }
    for k in config_keys:
        columns[f"config.{k}"] = pa.array(
            [_config_cell(r.config[k]) if k in r.config else None for r in runs], pa.string()
        )
    for m in metric_names:
        name = f"metric.{m}" if m in _RUN_COLUMNS or m.startswith("config.") else m
        columns[name] = pa.array(
            [
                float(r.result.metrics[m])
                if r.result is not None and m in r.result.metrics
                else None
                for r in runs
            ],
            pa.float64(),
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), out)
    return out
