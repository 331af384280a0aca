"""The runner: one sweep of an experiment, from config to stored verdicts.

:func:`run_experiment` resolves the config (profile, then overrides), computes its
hash, skips the seeds the store already holds as completed, runs the others on a
backend, writes each run to the store as it arrives, and finally stores a summary:
the experiment's verdicts over every completed seed of the sweep and its figures.

The config hash covers ``Experiment.version``, so runs stored by another version of
the experiment are never reused; each run also records that version and the git
revision of the code that computed it, and the summary the revisions behind it.

Data flow: config -> backend runs (workers) -> outcomes -> driver writes the store
-> ``experiment.verdict`` / ``experiment.figures`` over stored results -> summary row.

Example:
    >>> import tempfile, pathlib
    >>> from dataclasses import dataclass
    >>> from elulab.lab.api import Experiment, RunResult
    >>> from elulab.lab.store import Store
    >>> @dataclass(frozen=True)
    ... class Config:
    ...     seeds: int = 3
    >>> class Doc(Experiment):
    ...     name, title, claims, Config = "doc", "Doc", ("C0",), Config
    ...     profiles = {"quick": {}}
    ...     def run(self, config, seed, context):
    ...         return RunResult(metrics={"x": float(seed)})
    ...     def verdict(self, config, results):
    ...         return []
    >>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite")
    >>> out = run_experiment(Doc(), store=store)
    >>> out.completed, run_experiment(Doc(), store=store).skipped
    ([0, 1, 2], [0, 1, 2])
"""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import ConfigError, Experiment, Figure, RunResult, Verdict, config_hash, config_to_dict
from .backends import Backend, LocalBackend, RunOutcome, RunTask, environment
from .store import Store, SummaryRecord

__all__ = ["SweepEvent", "SweepOutcome", "load_experiment", "run_experiment"]


@dataclass
class SweepEvent:
    """A progress event of a sweep.

    ``kind`` is ``"start"`` (``total`` runs to do, ``skipped`` already stored),
    ``"progress"`` (``fraction`` of the current in-process run done), ``"run"`` (a
    run finished: ``seed``, ``status``, ``error``), ``"summary"`` (verdicts stored).
    """

    kind: str
    experiment: str
    total: int = 0
    skipped: int = 0
    done: int = 0
    seed: int | None = None
    status: str | None = None
    error: str | None = None
    fraction: float = 0.0


@dataclass
class SweepOutcome:
    """What one :func:`run_experiment` call did."""

    experiment: str
    config_hash: str
    profile: str
    config: Any
    seeds: list[int]
    completed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    summary: SummaryRecord | None = None

    @property
    def verdicts(self) -> list[Verdict]:
        return [] if self.summary is None else self.summary.verdicts

    @property
    def errors(self) -> list[str]:
        """Errors of the summary step (verdict or figures hook)."""
        return [] if self.summary is None else self.summary.errors


def load_experiment(spec: str) -> Experiment:
    """Instantiate an experiment given as ``"package.module:ClassName"``.

    For experiments that are not (yet) in the registry, e.g. ``elulab run mymod:MyExp``.

    Raises:
        ConfigError: the module or class cannot be found, or is not an Experiment.
    """
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ConfigError(f"experiment spec {spec!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import {module_name!r} for experiment {spec!r}: {e}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise ConfigError(f"{spec!r} is not an Experiment subclass")
    return cls()


def _import_root(obj: object) -> str | None:
    """The sys.path folder from which the module of ``type(obj)`` was imported."""
    module = sys.modules.get(type(obj).__module__)
    file = getattr(module, "__file__", None)
    if module is None or file is None:
        return None
    root = Path(file).resolve().parent
    if Path(file).stem == "__init__":
        root = root.parent
    for _ in range(module.__name__.count(".")):
        root = root.parent
    return str(root)


def _figure_records(experiment: Experiment, figures: Any, out_dir: Path) -> list[dict[str, Any]]:
    records = []
    for fig in figures or []:
        if not isinstance(fig, Figure):
            raise TypeError(f"figures() must return Figure objects, got {type(fig).__name__}")
        path = Path(fig.path)
        if not path.is_absolute():
            path = out_dir / path
        path = path.resolve()
        try:
            rel = path.relative_to(out_dir.resolve())
        except ValueError:
            raise ValueError(f"figure {fig.path} is not inside the out_dir it was given") from None
        if not path.is_file():
            raise FileNotFoundError(f"figure {fig.path} was not written")
        claim = fig.claim or (experiment.claims[0] if experiment.claims else None)
        records.append({"path": rel.as_posix(), "caption": fig.caption, "claim": claim})
    return records


def _first_line(error: str) -> str:
    lines = [ln for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else error


def run_experiment(
    experiment: Experiment,
    *,
    store: Store,
    profile: str = "quick",
    overrides: Mapping[str, Any] | None = None,
    seeds: int | None = None,
    backend: Backend | None = None,
    threads: int = 1,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
) -> SweepOutcome:
    """Run the seeds ``0..N-1`` of one config of ``experiment`` and store everything.

    Args:
        experiment: an Experiment instance (defined in an importable module, so that
            worker processes can load it).
        store: the result store (only this process writes it).
        profile: ``"quick"`` or ``"full"`` (or any profile the experiment defines).
        overrides: config values, e.g. ``{"steps": "100"}`` (strings are parsed).
        seeds: the number of seeds ``N`` (default: the config's ``seeds``).
        backend: where runs execute (default: in this process).
        threads: torch threads per run (same on every backend: same metrics).
        device: ``"cpu"`` or ``"cuda"``, handed to the experiment.
        data_dir: the data root handed to the experiment (None: default lookup).
        on_event: called with a :class:`SweepEvent` as the sweep goes.

    Returns:
        The seeds completed, skipped and failed in this call, and the stored summary
        (None when no seed has completed).

    Raises:
        ConfigError: an unknown profile or key, a bad value, or ``seeds < 1``.
    """
    overrides = dict(overrides or {})
    if seeds is not None:
        overrides["seeds"] = seeds
    config = experiment.resolve_config(profile, overrides)
    n_seeds = getattr(config, "seeds", None)
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ConfigError(f"{experiment.name}: seeds must be an integer >= 1, got {n_seeds!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    backend = backend or LocalBackend(workers=1, threads=threads)
    emit = on_event or (lambda event: None)
    name = experiment.name
    chash = config_hash(name, config, experiment.version)
    cdict = config_to_dict(config)
    seed_list = list(range(n_seeds))
    out = SweepOutcome(name, chash, profile, config, seed_list)

    done_before = store.completed_seeds(name, chash)
    out.skipped = [s for s in seed_list if s in done_before]
    todo = [s for s in seed_list if s not in done_before]
    root = _import_root(experiment)
    tasks = [
        RunTask(
            seed=s,
            experiment=experiment,
            config=config,
            threads=threads,
            device=device,
            data_dir=None if data_dir is None else str(data_dir),
            sys_path=(root,) if root else (),
        )
        for s in todo
    ]
    emit(SweepEvent("start", name, total=len(todo), skipped=len(out.skipped)))

    def progress(done: float, total: float) -> None:
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        emit(
            SweepEvent(
                "progress",
                name,
                total=len(todo),
                done=len(out.completed) + len(out.failed),
                fraction=frac,
            )
        )

    driver_env = {**environment(device), **backend.describe(), "threads_per_run": threads}
    outcomes = backend.run(tasks, progress)
    try:
        for outcome in outcomes:
            _record(store, name, chash, cdict, outcome, out, experiment.version)
            emit(
                SweepEvent(
                    "run",
                    name,
                    total=len(todo),
                    done=len(out.completed) + len(out.failed),
                    seed=outcome.seed,
                    status="failed" if outcome.seed in out.failed else "completed",
                    error=out.failed.get(outcome.seed),
                )
            )
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()

    out.summary = _summarise(
        experiment, store, profile, config, chash, cdict, seed_list, driver_env
    )
    if out.summary is not None:
        emit(SweepEvent("summary", name, total=len(todo), done=len(todo)))
    return out


def _record(
    store: Store,
    name: str,
    chash: str,
    cdict: dict[str, Any],
    outcome: RunOutcome,
    out: SweepOutcome,
    version: int,
) -> None:
    status, result, error = outcome.status, outcome.result, outcome.error
    git = outcome.env.get("git")
    try:
        stored = store.record_run(
            name,
            chash,
            cdict,
            outcome.seed,
            status=status,
            result=result,
            error=error,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            env=outcome.env,
            version=version,
            git=git,
        )
    except ValueError as e:  # e.g. a bad artifact name: the run is stored as failed
        status, error = "failed", f"cannot store the result: {e}"
        stored = store.record_run(
            name,
            chash,
            cdict,
            outcome.seed,
            status=status,
            error=error,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            env=outcome.env,
            version=version,
            git=git,
        )
    if not stored:  # another driver completed this seed first: keep its row
        out.skipped.append(outcome.seed)
    elif status == "completed":
        out.completed.append(outcome.seed)
    else:
        out.failed[outcome.seed] = _first_line(error or "unknown error")


def _summarise(
    experiment: Experiment,
    store: Store,
    profile: str,
    config: Any,
    chash: str,
    cdict: dict[str, Any],
    seed_list: list[int],
    env: dict[str, Any],
) -> SummaryRecord | None:
    wanted = set(seed_list)
    records = [
        r for r in store.runs(experiment.name, "completed", config_hash=chash) if r.seed in wanted
    ]
    if not records:
        return None
    results: list[RunResult] = [r.result for r in records if r.result is not None]
    used = [r.seed for r in records]
    errors: list[str] = []
    verdicts: list[Verdict] = []
    try:
        verdicts = list(experiment.verdict(config, results))
        for v in verdicts:
            if not isinstance(v, Verdict):
                raise TypeError(f"verdict() must return Verdict objects, got {type(v).__name__}")
    except Exception as e:
        verdicts = []
        errors.append(f"verdict failed: {type(e).__name__}: {e}")
    fig_dir = store.tmp_dir()
    figures: list[dict[str, Any]] = []
    try:
        figures = _figure_records(experiment, experiment.figures(config, results, fig_dir), fig_dir)
    except Exception as e:
        figures = []
        errors.append(f"figures failed: {type(e).__name__}: {e}")
    if not figures:
        shutil.rmtree(fig_dir, ignore_errors=True)
    return store.record_summary(
        experiment=experiment.name,
        title=experiment.title,
        claims=list(experiment.claims),
        config_hash=chash,
        profile=profile,
        config=cdict,
        seeds=used,
        verdicts=verdicts,
        figures=figures,
        figures_tmp=fig_dir if figures else None,
        errors=errors,
        env=env,
        created_at=time.time(),
        version=experiment.version,
        revisions=[r.git for r in records],
    )
