"""Reproduce: every experiment of a list in order, then the report, then a closing summary.

:func:`reproduce` is what ``elulab reproduce`` does once its arguments are parsed. It
is handed the experiments (the CLI passes the registry, so the lab never imports
:mod:`elulab.experiments`) and the report builder (the CLI passes
:func:`elulab.report.build_report`). Every config is resolved before anything runs,
so a bad profile fails at once; a failed run or hook is collected as a problem and
the next experiment goes on; the report is built from the store at the end, and
the cost of the runs (:mod:`elulab.lab.costs`) is written beside it as ``costs.md``.

Example:
    >>> import tempfile, pathlib
    >>> from dataclasses import dataclass
    >>> from elulab.lab.api import Experiment, RunResult
    >>> from elulab.lab.store import Store
    >>> @dataclass(frozen=True)
    ... class Config:
    ...     seeds: int = 2
    >>> class Doc(Experiment):
    ...     name, title, claims, Config = "doc", "Doc", ("C0",), Config
    ...     profiles = {"quick": {}}
    ...     def run(self, config, seed, context):
    ...         return RunResult(metrics={"x": float(seed)})
    ...     def verdict(self, config, results):
    ...         return []
    >>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite")
    >>> out = reproduce([Doc()], store=store)
    >>> out.problems, out.closing_lines()
    ([], ['doc: no verdict (2 runs completed)'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import ConfigError, Experiment
from .backends import Backend
from .costs import ExperimentCost, costs_markdown, run_cost
from .runner import SweepEvent, SweepOutcome, run_experiment
from .stats import Effect
from .store import Store

__all__ = [
    "ReproduceOutcome",
    "check_configs",
    "counted",
    "reproduce",
    "sweep_costs",
    "sweep_problems",
]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 run"``, ``"2 runs"``: a count with its noun in the right number.

    Example:
        >>> counted(1, "run"), counted(0, "seed"), counted(2, "process", "processes")
        ('1 run', '0 seeds', '2 processes')
    """
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def _effect_text(e: Effect) -> str:
    return "n/a" if e.value != e.value else e.format()


def check_configs(experiments: Sequence[Experiment], profile: str) -> None:
    """Resolve ``profile`` for every experiment (nothing runs).

    Raises:
        ConfigError: no experiments, or the first profile or config that is rejected.
    """
    if not experiments:
        raise ConfigError("no experiments are registered")
    for exp in experiments:
        exp.resolve_config(profile)


def sweep_problems(outcome: SweepOutcome) -> list[str]:
    """One line per failed seed and per error of the summary step of a sweep."""
    name = outcome.experiment
    problems = [f"{name} seed {s}: {e}" for s, e in sorted(outcome.failed.items())]
    return problems + [f"{name}: {e}" for e in outcome.errors]


def sweep_costs(store: Store, sweeps: Sequence[SweepOutcome]) -> list[ExperimentCost]:
    """The stored run time of each sweep: its config's completed runs of its seeds
    (those run now and those already stored), see :func:`elulab.lab.costs.run_cost`."""
    return [
        run_cost(
            store.runs(s.experiment, "completed", config_hash=s.config_hash),
            experiment=s.experiment,
            profile=s.profile,
            config_hash=s.config_hash,
            seeds=s.seeds,
            summarised=0.0 if s.summary is None else s.summary.created_at,
        )
        for s in sweeps
    ]


@dataclass
class ReproduceOutcome:
    """What one :func:`reproduce` call did: each sweep, the report, the problems, and
    the stored run time of each sweep (``costs``, written to ``costs_path`` beside the
    report)."""

    sweeps: list[SweepOutcome] = field(default_factory=list)
    report: Path | None = None
    problems: list[str] = field(default_factory=list)
    costs: list[ExperimentCost] = field(default_factory=list)
    costs_path: Path | None = None

    def closing_lines(self, reference: Any = None) -> list[str]:
        """One line per (experiment, claim): status (with its qualifier), effect with its
        95% CI, seeds; with ``reference`` (anything with ``lookup(experiment, claim)`` ->
        ``(entry, verdict)`` or None, e.g. :class:`elulab.report.Reference`), the
        reference verdict after it, for a run of another profile than the reference's.

        An experiment without verdicts gets one line saying how many of its runs
        completed and failed.
        """
        lines: list[str] = []
        for sweep in self.sweeps:
            n_ok = len(sweep.completed) + len(sweep.skipped)
            if not sweep.verdicts:
                runs = counted(n_ok, "run") + " completed"
                if sweep.failed:
                    runs += f", {len(sweep.failed)} failed"
                lines.append(f"{sweep.experiment}: no verdict ({runs})")
                continue
            for v in sweep.verdicts:
                effect = _effect_text(v.interval)
                name = f" ({v.effect_name})" if v.effect_name else ""
                line = (
                    f"{sweep.experiment} {v.claim}: {v.label}, effect {effect}{name}, "
                    f"{counted(int(v.n_seeds), 'seed')}"
                )
                profile = getattr(reference, "profile", None)
                if reference is not None and sweep.profile != profile:
                    found = reference.lookup(sweep.experiment, v.claim)
                    if found is None:
                        line += f"; reference ({profile}): none yet"
                    else:
                        rv = found[1]
                        ref_effect = _effect_text(Effect(rv.effect, rv.ci_low, rv.ci_high))
                        line += (
                            f"; reference ({profile}): {rv.label}, effect {ref_effect}, "
                            f"{counted(int(rv.n_seeds), 'seed')}"
                        )
                lines.append(line)
        return lines


def reproduce(
    experiments: Sequence[Experiment],
    *,
    store: Store,
    profile: str = "quick",
    backend: Backend | None = None,
    out_dir: str | Path | None = None,
    build_report: Callable[[Path, Path], Any] | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
    on_sweep: Callable[[Experiment, SweepOutcome], None] | None = None,
) -> ReproduceOutcome:
    """Run every experiment of ``experiments`` in order, then build the report.

    Args:
        experiments: Experiment instances, in the order to run them.
        store: the result store (runs already stored are skipped).
        profile: the profile of every experiment (``"quick"`` or ``"full"``).
        backend: where runs execute (default: in this process).
        out_dir: the report folder; with ``build_report``, the report is built there.
        build_report: ``build_report(store_path, out_dir) -> index path``; an
            exception it raises is collected as a problem.
        on_event: progress events of every sweep (:class:`SweepEvent`).
        on_sweep: called with each experiment and its outcome as it finishes.

    Returns:
        The sweeps, the absolute path of the report's index (None without one), the
        problems (failed seeds, hook errors, a report that could not be built), and the
        run time of each sweep, written as ``costs.md`` into the report's folder.

    Raises:
        ConfigError: no experiments, or a profile an experiment does not have, or a
            config it rejects; raised before anything runs.
    """
    check_configs(experiments, profile)
    out = ReproduceOutcome()
    for exp in experiments:
        sweep = run_experiment(
            exp, store=store, profile=profile, backend=backend, on_event=on_event
        )
        out.sweeps.append(sweep)
        out.problems += sweep_problems(sweep)
        if on_sweep is not None:
            on_sweep(exp, sweep)
    if build_report is not None and out_dir is not None:
        try:
            index = build_report(store.path, Path(out_dir))
        except Exception as e:
            out.problems.append(f"the report could not be built: {type(e).__name__}: {e}")
        else:
            out.report = Path(index).absolute()
    out.costs = sweep_costs(store, out.sweeps)
    if out.report is not None:
        path = out.report.parent / "costs.md"
        try:
            text = f"# Stored run time, {profile} profile\n\n{costs_markdown(out.costs)}\n"
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            out.problems.append(f"cannot write {path}: {e.strerror or e}")
        else:
            out.costs_path = path
    return out
