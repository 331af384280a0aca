"""The ``elulab`` command: parses arguments and hands off to the library and the lab.

Every command prints a rich table for people, or JSON with ``--json``. Bad input
exits with code 2 and one line naming what is allowed; no traceback. Usage errors
found by the parser itself (a missing argument, an unknown option, a value that is
not a number) are printed the same way, ``error: ...`` on one line, exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

__all__ = ["app", "main"]


class _OneLineErrors(TyperGroup):
    """The ``elulab`` group: a usage error is one line ``error: ...`` on stderr, exit 2.

    Typer would draw a box around click's message; every other error of the command
    line is one line, so these are too.
    """

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as e:  # click's ClickException (vendored by typer)
            if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                message = " ".join(str(e.format_message()).split()).rstrip(".")  # type: ignore[attr-defined]
                ctx = getattr(e, "ctx", None)
                if ctx is not None:
                    message += f"; see '{ctx.command_path} --help'"
                err_console.print(
                    f"error: {message}", markup=False, highlight=False, soft_wrap=True
                )
            sys.exit(int(getattr(e, "exit_code", 2)))
        except typer.Abort:
            err_console.print("aborted", highlight=False)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="elulab",
    help="The ELU family, its exact math, and a lab that checks every claim about it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_OneLineErrors,
)
constants_app = typer.Typer(help="Derived constants (SELU, AlphaDropout).", no_args_is_help=True)
app.add_typer(constants_app, name="constants")

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit with code 2."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (no rich markup)."""
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"elulab {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main_options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the elulab version and exit.",
    ),
) -> None:
    """The ELU family, its exact math, and a lab that checks every claim about it."""


# --- commands are added below, one section per area ---------------------------------

# --- section: constants and moments (theory) ---

_THEORY_CONVENTION_HELP = (
    "Pre-activation z ~ N(mean*omega, var*tau). Default omega=0, tau=1: the SELU paper's "
    "map; omega=tau=1: the SNN authors' notebook (z ~ N(mean, var))."
)


def _theory_finite(value: float, option: str, *, positive: bool = False) -> float:
    import math

    if not math.isfinite(value) or (positive and value <= 0.0):
        fail(f"{option} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return value


def _theory_table(title: str, rows: list[tuple[str, Any]], caption: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=title, caption=caption)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in rows:
        # the shortest text that reads back as the same float: full precision, no noise
        table.add_row(key, repr(float(value)) if isinstance(value, float) else str(value))
    console.print(table)


@constants_app.command("selu")
def constants_selu_cmd(
    mean: float = typer.Option(0.0, "--mean", help="Fixed-point mean mu*."),
    var: float = typer.Option(1.0, "--var", help="Fixed-point variance nu* (> 0)."),
    omega: float = typer.Option(0.0, "--omega", help=_THEORY_CONVENTION_HELP),
    tau: float = typer.Option(1.0, "--tau", help="Sum of squared weights (> 0); see --omega."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """SELU lambda and alpha for a fixed point (mean, var), with the Jacobian's norm."""
    from elulab.theory import solve_selu_parameters

    _theory_finite(mean, "--mean")
    _theory_finite(var, "--var", positive=True)
    _theory_finite(omega, "--omega")
    _theory_finite(tau, "--tau", positive=True)
    try:
        p = solve_selu_parameters(mean, var, omega=omega, tau=tau)
    except (ValueError, TypeError) as exc:
        fail(str(exc))
    data = {
        "lambda": p.lam,
        "alpha": p.alpha,
        "mean": p.mean,
        "var": p.var,
        "omega": p.omega,
        "tau": p.tau,
        "jacobian": p.jacobian.tolist(),
        "jacobian_spectral_norm": p.spectral_norm,
    }
    if as_json:
        print_json(data)
        return
    rows = [(k, v) for k, v in data.items() if k != "jacobian"]
    rows += [(f"jacobian[{i}][{j}]", float(p.jacobian[i, j])) for i in range(2) for j in range(2)]
    _theory_table(
        "SELU constants",
        rows,
        caption="z ~ N(mean*omega, var*tau); spectral norm < 1: the fixed point attracts",
    )


@constants_app.command("alpha-dropout")
def constants_alpha_dropout_cmd(
    rate: float = typer.Option(..., "--rate", help="Dropout rate in [0, 1)."),
    mean: float = typer.Option(0.0, "--mean", help="Fixed-point mean to keep."),
    var: float = typer.Option(1.0, "--var", help="Fixed-point variance to keep (> 0)."),
    omega: float = typer.Option(0.0, "--omega", help=_THEORY_CONVENTION_HELP),
    tau: float = typer.Option(1.0, "--tau", help="Sum of squared weights (> 0); see --omega."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """AlphaDropout a, b and alpha' = -lambda*alpha for a rate at a fixed point."""
    import math

    from elulab.theory import alpha_dropout_parameters, solve_selu_parameters

    if not (math.isfinite(rate) and 0.0 <= rate < 1.0):
        fail(f"--rate must be in [0, 1), got {rate!r}")
    _theory_finite(mean, "--mean")
    _theory_finite(var, "--var", positive=True)
    _theory_finite(omega, "--omega")
    _theory_finite(tau, "--tau", positive=True)
    try:
        selu = solve_selu_parameters(mean, var, omega=omega, tau=tau)
        p = alpha_dropout_parameters(rate, mean=mean, var=var, lam=selu.lam, alpha=selu.alpha)
    except (ValueError, TypeError) as exc:
        fail(str(exc))
    data = {
        "a": p.a,
        "b": p.b,
        "alpha_prime": p.alpha_prime,
        "rate": p.rate,
        "mean": p.mean,
        "var": p.var,
        "lambda": selu.lam,
        "alpha": selu.alpha,
    }
    if as_json:
        print_json(data)
        return
    _theory_table(
        "AlphaDropout",
        list(data.items()),
        caption="dropped units -> alpha_prime, then a * x + b",
    )


@app.command("moments")
def moments_cmd(
    activation: str = typer.Argument(..., help="Activation name (relu, elu, selu, gelu, ...)."),
    mean: float = typer.Option(0.0, "--mean", help="Mean mu of the pre-activation z."),
    std: float = typer.Option(1.0, "--std", help="Standard deviation sigma of z (> 0)."),
    alpha: float | None = typer.Option(None, "--alpha", help="alpha of elu/celu/selu (> 0)."),
    scale: float | None = typer.Option(None, "--scale", help="Output scale of elu/celu/selu."),
    negative_slope: float | None = typer.Option(
        None, "--negative-slope", help="Slope of leaky_relu for x <= 0 (default 0.01)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """E f(z), E f(z)^2, Var f(z), E f'(z), E f'(z)^2 for z ~ N(mean, std^2)."""
    from elulab.theory import gaussian_moments

    _theory_finite(mean, "--mean")
    _theory_finite(std, "--std", positive=True)
    given = {"alpha": alpha, "scale": scale, "negative_slope": negative_slope}
    params = {k: v for k, v in given.items() if v is not None}
    try:
        m = gaussian_moments(activation, mean, std, **params)
    except (ValueError, TypeError) as exc:
        fail(str(exc))
    data = {
        "activation": activation,
        "mu": mean,
        "sigma": std,
        "mean": m.mean,
        "second_moment": m.second_moment,
        "variance": m.variance,
        "mean_slope": m.mean_slope,
        "mean_slope_sq": m.mean_slope_sq,
        "method": m.method,
    }
    if as_json:
        print_json(data)
        return
    fields = ("mean", "second_moment", "variance", "mean_slope", "mean_slope_sq")
    rows = [(k, data[k]) for k in fields]
    _theory_table(
        f"{activation}(z), z ~ N({mean:g}, {std:g}^2)", rows, caption=f"method: {m.method}"
    )


# --- section: the lab (list, show, run, results, reproduce, report) ---

_DEFAULT_STORE = Path("elulab-results") / "elulab.sqlite"
_DEFAULT_REPORT = Path("elulab-report")
_STATUS_STYLE = {
    "supported": "green",
    "not supported": "red",
    "mixed": "yellow",
    "inconclusive": "dim",
}


def _lab_registry() -> dict[str, Any]:
    from .experiments import EXPERIMENTS

    return EXPERIMENTS


def _lab_experiment(name: str) -> Any:
    """The experiment registered as ``name``, or given as ``module:Class``."""
    from .lab.api import ConfigError

    try:
        if ":" in name:
            from .lab.runner import load_experiment

            return load_experiment(name)
        from .experiments import get_experiment

        return get_experiment(name)
    except ConfigError as e:
        fail(str(e))


def _lab_positive_int(option: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        fail(f"{option} expects an integer >= 1, got {raw!r}")
    if value < 1:
        fail(f"{option} expects an integer >= 1, got {raw!r}")
    return value


def _lab_overrides(sets: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _lab_store(path: Path, *, readonly: bool = False) -> Any:
    from .lab.store import Store, StoreError

    try:
        return Store(path, create=not readonly, readonly=readonly)
    except StoreError as e:
        fail(str(e))


def _lab_backend(name: str, workers: int | None, address: str | None) -> Any:
    from .lab.backends import BackendError, make_backend

    try:
        return make_backend(name, workers=workers, address=address)
    except (ValueError, BackendError) as e:
        fail(str(e))


def _lab_report_module() -> Any:
    try:
        from . import report
    except ImportError as e:
        fail(f"the report builder is not available: {e}")
    return report


def _lab_check_out(out: Path) -> None:
    """Fail (exit 2) now, before anything runs, if the report cannot be written to ``out``."""
    report = _lab_report_module()
    try:
        report.check_out_dir(out)
    except report.ReportError as e:
        fail(str(e))


class _LabProgress:
    """Rich progress bars on stderr, fed by the runner's events."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        self.task: Any = None

    def __enter__(self) -> _LabProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            note = f" ({event.skipped} stored)" if event.skipped else ""
            self.task = self.progress.add_task(f"{event.experiment}{note}", total=event.total)
        elif self.task is None:
            return
        elif event.kind == "progress":
            self.progress.update(self.task, completed=event.done + event.fraction)
        elif event.kind == "run":
            self.progress.update(self.task, completed=event.done)
            if event.status == "failed":
                self.progress.console.print(
                    f"{event.experiment} seed {event.seed} failed: {event.error}",
                    markup=False,
                    highlight=False,
                )


class _LabSweepView:
    """What people see of sweeps: progress bars on stderr while one runs, then (unless
    ``quiet``) its verdict table and run counts on stdout."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bars: _LabProgress | None = None

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            self.close()
            self.bars = _LabProgress().__enter__()
        if self.bars is not None:
            self.bars(event)

    def sweep_done(self, experiment: Any, outcome: Any) -> None:
        self.close()
        if self.quiet:
            return
        from .lab.reproduce import counted

        if outcome.verdicts:
            console.print(_lab_verdict_table(experiment, outcome))
        console.print(
            f"{experiment.name}: {counted(len(outcome.completed), 'run')} completed, "
            f"{len(outcome.skipped)} already stored, {len(outcome.failed)} failed "
            f"(config {outcome.config_hash})",
            highlight=False,
        )

    def close(self) -> None:
        if self.bars is not None:
            self.bars.__exit__()
            self.bars = None


def _lab_verdict_table(experiment: Any, outcome: Any) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from .lab.stats import format_number

    table = Table(title=escape(f"{experiment.name}: {experiment.title}"), title_justify="left")
    for col in ("claim", "status", "effect", "95% CI", "seeds", "summary"):
        table.add_column(col, overflow="fold")
    for v in outcome.verdicts:
        style = _STATUS_STYLE.get(v.status, "")
        ci = "n/a" if not v.interval.has_interval else None
        table.add_row(
            v.claim,
            f"[{style}]{v.status}[/]" if style else v.status,
            format_number(v.effect),
            ci or f"[{format_number(v.ci_low)}, {format_number(v.ci_high)}]",
            str(v.n_seeds),
            escape(v.summary),
        )
    return table


def _lab_outcome_json(experiment: Any, outcome: Any) -> dict[str, Any]:
    summary = outcome.summary
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "claims": list(experiment.claims),
        "version": experiment.version,
        "profile": outcome.profile,
        "config_hash": outcome.config_hash,
        "seeds": outcome.seeds,
        "runs": {
            "completed": len(outcome.completed),
            "skipped": len(outcome.skipped),
            "failed": len(outcome.failed),
        },
        "failures": [{"seed": s, "error": e} for s, e in sorted(outcome.failed.items())],
        "verdicts": [v.to_json() for v in outcome.verdicts],
        "revisions": [] if summary is None else summary.revisions,
        "figures": [] if summary is None else summary.figures,
        "errors": outcome.errors,
    }


def _lab_report_problems(problems: list[str]) -> None:
    if problems:
        from .lab.reproduce import counted

        err_console.print(f"{counted(len(problems), 'problem')}:", highlight=False)
        for p in problems:
            err_console.print(f"  {p}", markup=False, highlight=False)
        raise typer.Exit(code=1)


def _lab_interrupted() -> NoReturn:
    err_console.print(
        "interrupted: the completed runs are stored; run the same command again to resume",
        highlight=False,
    )
    raise typer.Exit(code=130)


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the registered experiments, their claims and profiles."""
    rows = []
    for name, cls in _lab_registry().items():
        default_seeds = getattr(cls.Config(), "seeds", None)
        rows.append(
            {
                "name": name,
                "title": cls.title,
                "claims": list(cls.claims),
                "version": cls.version,
                "profiles": sorted(cls.profiles),
                "seeds": {p: cls.profiles[p].get("seeds", default_seeds) for p in cls.profiles},
            }
        )
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="experiments")
    for col in ("name", "claims", "title", "seeds per profile"):
        table.add_column(col, overflow="fold")
    for r in rows:
        seeds = ", ".join(f"{p}: {n}" for p, n in r["seeds"].items())
        table.add_row(r["name"], ", ".join(r["claims"]), r["title"], seeds)
    console.print(table)


def _show_value(v: Any) -> str:
    """A config value as people type it in ``--set`` (exact floats, lists by commas)."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(_show_value(x) for x in v) if v else "(empty)"
    return str(v) if v != "" else '""'


def _show_profiles(exp: Any) -> list[str]:
    order = ["quick", "full", "smoke"]
    names = list(exp.profiles)
    return [p for p in order if p in names] + [p for p in names if p not in order]


@app.command("show")
def show_cmd(
    experiment: str = typer.Argument(
        ..., help="Registered name (see `elulab list`) or module:Class."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show every config key of one experiment: type, default, profile values, meaning."""
    exp = _lab_experiment(experiment)
    rows = exp.describe()
    profiles = _show_profiles(exp)
    if as_json:
        print_json(
            {
                "experiment": exp.name,
                "title": exp.title,
                "claims": list(exp.claims),
                "version": exp.version,
                "profiles": profiles,
                "config": rows,
            }
        )
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(f"{exp.name}: {exp.title}"),
        caption=escape(
            f"claims {', '.join(exp.claims)} · version {exp.version} · profiles "
            f"{', '.join(profiles)}; a profile not listed under a key uses the default; "
            "override with --set KEY=VALUE"
        ),
        title_justify="left",
        caption_justify="left",
        show_lines=True,
    )
    table.add_column("key", no_wrap=True)
    table.add_column("default, profiles", overflow="fold")
    table.add_column("allowed · meaning", overflow="fold")
    for r in rows:
        values = [escape(_show_value(r["default"]))]
        for p in profiles:
            value = r.get(p, r["default"])
            if value != r["default"]:
                values.append(f"[cyan]{p}[/] {escape(_show_value(value))}")
        meaning = escape(r["help"] or "(no description)")
        if r["allowed"]:
            meaning = f"[green]{escape(r['allowed'])}[/]\n{meaning}"
        table.add_row(
            f"[bold]{escape(r['name'])}[/]\n[dim]{escape(r['type'])}[/]",
            "\n".join(values),
            meaning,
        )
    console.print(table)


@app.command("run")
def run_cmd(
    experiment: str = typer.Argument(
        ..., help="Registered name (see `elulab list`) or module:Class."
    ),
    profile: str = typer.Option("quick", "--profile", help="Profile: quick or full."),
    seeds: str | None = typer.Option(None, "--seeds", metavar="N", help="Run seeds 0..N-1."),
    sets: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Config override."
    ),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
    workers: str | None = typer.Option(
        None, "--workers", metavar="N", help="Worker processes / Ray CPUs."
    ),
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON object."),
) -> None:
    """Run the seeds of one experiment (skipping stored ones) and print its verdicts."""
    from .lab.api import ConfigError
    from .lab.reproduce import sweep_problems
    from .lab.runner import run_experiment

    exp = _lab_experiment(experiment)
    overrides = _lab_overrides(sets)
    n_seeds = _lab_positive_int("--seeds", seeds)
    n_workers = _lab_positive_int("--workers", workers)
    try:
        exp.resolve_config(profile, {**overrides, **({"seeds": n_seeds} if n_seeds else {})})
    except ConfigError as e:
        fail(str(e))
    st = _lab_store(store)
    be = _lab_backend(backend, n_workers, address)
    view = _LabSweepView(quiet=as_json)
    try:
        outcome = run_experiment(
            exp,
            store=st,
            profile=profile,
            overrides=overrides,
            seeds=n_seeds,
            backend=be,
            on_event=view,
        )
        view.sweep_done(exp, outcome)
    except ConfigError as e:
        fail(str(e))
    except KeyboardInterrupt:
        _lab_interrupted()
    finally:
        view.close()
        be.close()
        st.close()
    if as_json:
        print_json(_lab_outcome_json(exp, outcome))
    _lab_report_problems(sweep_problems(outcome))


@app.command("reproduce")
def reproduce_cmd(
    profile: str = typer.Option("quick", "--profile", help="Profile: quick or full."),
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
    out: Path = typer.Option(_DEFAULT_REPORT, "--out", help="Report folder."),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
    workers: str | None = typer.Option(
        None, "--workers", metavar="N", help="Worker processes / Ray CPUs."
    ),
) -> None:
    """Run every registered experiment, then build the HTML report."""
    from .lab.api import ConfigError
    from .lab.reproduce import check_configs, reproduce

    n_workers = _lab_positive_int("--workers", workers)
    experiments = [cls() for cls in _lab_registry().values()]
    try:
        check_configs(experiments, profile)
    except ConfigError as e:
        fail(str(e))
    _lab_check_out(out)
    report = _lab_report_module()
    st = _lab_store(store)
    be = _lab_backend(backend, n_workers, address)
    view = _LabSweepView()
    try:
        result = reproduce(
            experiments,
            store=st,
            profile=profile,
            backend=be,
            out_dir=out,
            build_report=lambda store_path, out_dir: report.build_report(store_path, out_dir),
            on_event=view,
            on_sweep=view.sweep_done,
        )
    except ConfigError as e:
        fail(str(e))
    except KeyboardInterrupt:
        _lab_interrupted()
    finally:
        view.close()
        be.close()
        st.close()
    console.print("verdicts:", highlight=False)
    for line in result.closing_lines():
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    where = str(result.report) if result.report is not None else "not built (see below)"
    console.print(f"report: {where}", markup=False, highlight=False, soft_wrap=True)
    _lab_report_problems(result.problems)


@app.command("report")
def report_cmd(
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
    out: Path = typer.Option(_DEFAULT_REPORT, "--out", help="Report folder."),
) -> None:
    """Build the HTML report from the result store."""
    _lab_store(store, readonly=True).close()
    _lab_check_out(out)
    report = _lab_report_module()
    try:
        index = Path(report.build_report(store, out)).absolute()
    except report.ReportError as e:
        fail(str(e))
    console.print(f"report: {index}", markup=False, highlight=False, soft_wrap=True)


@app.command("results")
def results_cmd(
    experiment: str = typer.Argument(..., help="Experiment name (or module:Class)."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
) -> None:
    """Export the stored runs of one experiment: one row per (config, seed), with the
    experiment version and git revision of each run."""
    from .lab.store import export_runs

    if fmt not in ("csv", "json"):
        fail(f"unknown format {fmt!r}; allowed: csv, json")
    name = _lab_experiment(experiment).name if ":" in experiment else experiment
    st = _lab_store(store, readonly=True)
    try:
        known = sorted(set(_lab_registry()) | set(st.experiments()))
        if name not in known:
            fail(f"unknown experiment {name!r}; allowed: {', '.join(known) or '(none)'}")
        text = export_runs(st.runs(name, status=None), fmt)
    finally:
        st.close()
    sys.stdout.write(text)
    sys.stdout.flush()


# --- section: audit (diagnostics) ---


@app.command("audit")
def audit_cmd(
    spec: str = typer.Argument(
        ..., metavar="MODULE:FACTORY", help="zero-argument factory returning an nn.Module"
    ),
    data: str = typer.Option(
        ..., "--data", help="built-in data set: mnist, digits, mnist1d or uci:<name>"
    ),
    steps: int = typer.Option(100, "--steps", min=0, help="training steps before the audit"),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate"),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    seed: int = typer.Option(0, "--seed", help="seed of the split, shuffling and torch"),
    eps: float = typer.Option(1e-2, "--eps", help="slope threshold of 'saturated', in (0, 1)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    out: str | None = typer.Option(None, "--out", help="write audit.html and audit.json here"),
) -> None:
    """Audit a model per layer: dead/saturated units, activation stats, gradient flow."""
    from .diagnostics import FactoryError, ModelDataMismatch, audit_dataset, build_model

    if not (lr > 0 and lr == lr and lr != float("inf")):
        fail(f"--lr must be a positive number, got {lr}")
    if not 0.0 < eps < 1.0:
        fail(f"--eps must be in (0, 1), got {eps}")
    try:
        model = build_model(spec)
    except FactoryError as e:
        fail(str(e))
    try:
        result = audit_dataset(
            model, data, steps=steps, lr=lr, batch_size=batch_size, seed=seed, eps=eps
        )
    except (ModelDataMismatch, FileNotFoundError) as e:
        fail(str(e))
    except ValueError as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    result.meta["model"] = spec
    if out is not None:
        try:
            result.save(out)  # audit.json and audit.html, titled with the model's spec
        except OSError as e:
            fail(f"--out: {e}")
    if as_json:
        print_json(result.to_json())
        return
    from rich.markup import escape
    from rich.table import Table

    acc = "" if result.eval_accuracy is None else f", held-out accuracy {result.eval_accuracy:.4f}"
    table = Table(
        title=escape(
            f"{spec} on {data}: {result.steps} steps, audit loss {result.eval_loss:.4g}{acc}"
        )
    )
    for col in ("layer", "kind", "units", "dead", "saturated", "mean", "var", "grad norm", "gain"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    for s in result.layers:
        table.add_row(
            escape(s.name),
            escape(s.kind),
            str(s.units),
            f"{s.dead_fraction:.3f}",
            f"{s.saturated_fraction:.3f}",
            f"{s.mean:.4g}",
            f"{s.var:.4g}",
            f"{s.grad_norm:.4g}",
            "-" if s.grad_gain is None else f"{s.grad_gain:.3g}",
        )
    console.print(table)
    console.print(
        "dead: zero gradient at the pre-activation for every held-out sample; saturated: "
        f"not dead, |f'(x)| < {eps:g} for every sample; conv units are channels"
        + (f"; wrote {out}/audit.html and audit.json" if out is not None else "")
    )


def main() -> None:
    """Entry point of the ``elulab`` console script."""
    app()


if __name__ == "__main__":
    main()
