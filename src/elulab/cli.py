"""The ``elulab`` command: parses arguments and hands off to the library and the lab.

Every command prints a rich table for people, or JSON with ``--json``. Bad input
exits with code 2 and one line naming what is allowed; no traceback. Usage errors
found by the parser itself (a missing argument, an unknown option, a value that is
not a number) are printed the same way, ``error: ...`` on one line, exit code 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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


@app.command("kernel")
def kernel_cmd(
    activation: str = typer.Argument(..., help="elu, celu, selu or relu."),
    alpha: float | None = typer.Option(None, "--alpha", help="alpha of elu/celu/selu (> 0)."),
    s11: float = typer.Option(..., "--s11", help="Variance of u (> 0)."),
    s12: float = typer.Option(..., "--s12", help="Covariance of u and v."),
    s22: float = typer.Option(..., "--s22", help="Variance of v (> 0)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Infinite-width kernel steps E[f(u)f(v)] (NNGP) and E[f'(u)f'(v)] (NTK), closed form."""
    from elulab.theory.kernels import kernel_summary

    try:
        data = kernel_summary(activation, alpha, s11, s12, s22)
    except (ValueError, TypeError) as exc:
        fail(str(exc))
    if as_json:
        print_json(data)
        return
    from rich.markup import escape

    rows = [(k, data[k]) for k in ("correlation", "nngp_step", "ntk_step")]
    a = "" if data["alpha"] is None else f", alpha {data['alpha']:g}"
    cov = f"s11 {s11:g}, s12 {s12:g}, s22 {s22:g}"
    _theory_table(
        f"{data['activation']}{a} kernel steps",
        rows,
        caption=escape(f"{cov}; nngp_step = E[f(u) f(v)], ntk_step = E[f'(u) f'(v)]"),
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
        from rich.markup import escape

        from .lab.reproduce import counted

        if outcome.verdicts:
            console.print(_lab_verdict_table(experiment, outcome, _lab_reference()))
            for v in outcome.verdicts:  # whole sentences, wrapped at the terminal's width
                name = f" ({escape(v.effect_name)})" if v.effect_name else ""
                console.print(f"[bold]{escape(v.claim)}[/]{name}: {escape(v.summary)}")
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


def _lab_reference() -> Any:
    """The full-profile reference verdicts shipped with elulab; None (and a warning on
    stderr) when they cannot be read."""
    try:
        from .report import ReferenceError, load_reference
    except ImportError:
        return None
    try:
        return load_reference()
    except ReferenceError as e:
        err_console.print(f"warning: {e}", markup=False, highlight=False, soft_wrap=True)
        return None


def _lab_effect(v: Any) -> str:
    """``effect [low, high]`` to 3 significant digits; ``n/a`` without an effect."""
    import math

    from .lab.stats import format_number

    if not math.isfinite(float(v.effect)):
        return "n/a"
    text = format_number(v.effect)
    if math.isfinite(float(v.ci_low)) and math.isfinite(float(v.ci_high)):
        text += f" [{format_number(v.ci_low)}, {format_number(v.ci_high)}]"
    return text


def _lab_status(v: Any) -> str:
    """The status with its qualifier (``supported (small)``), coloured."""
    from rich.markup import escape

    label = f"{v.status} ({v.qualifier})" if getattr(v, "qualifier", "") else v.status
    style = _STATUS_STYLE.get(v.status, "")
    return f"[{style}]{escape(label)}[/]" if style else escape(label)


def _lab_reference_cell(reference: Any, experiment: str, claim: str) -> str:
    found = None if reference is None else reference.lookup(experiment, claim)
    if found is None:
        return "[dim]none yet[/]"
    from .lab.reproduce import counted

    _, rv = found
    return f"{_lab_status(rv)}\n{_lab_effect(rv)}\n{counted(int(rv.n_seeds), 'seed')}"


def _lab_verdict_table(experiment: Any, outcome: Any, reference: Any = None) -> Any:
    """Claim, status, effect with its interval, seeds, and (for a run that is not of the
    reference's profile) the reference verdict; the summaries are printed below it."""
    from rich.markup import escape
    from rich.table import Table

    from .lab.reproduce import counted

    with_ref = bool(reference and reference.experiments) and outcome.profile != reference.profile
    table = Table(title=escape(f"{experiment.name}: {experiment.title}"), title_justify="left")
    table.add_column("claim", no_wrap=True)
    if with_ref:  # this run and the reference side by side, each with its effect
        table.add_column(f"this run ({escape(outcome.profile)})", overflow="fold", min_width=22)
        table.add_column("seeds", justify="right", no_wrap=True)
        table.add_column(f"reference ({escape(reference.profile)})", overflow="fold", min_width=22)
    else:
        table.add_column("status", overflow="fold")
        table.add_column("effect [CI]", overflow="fold", min_width=22)
        table.add_column("seeds", justify="right", no_wrap=True)
    for v in outcome.verdicts:
        if with_ref:
            table.add_row(
                escape(v.claim),
                f"{_lab_status(v)}\n{_lab_effect(v)}",
                str(v.n_seeds),
                _lab_reference_cell(reference, experiment.name, v.claim),
            )
        else:
            table.add_row(escape(v.claim), _lab_status(v), _lab_effect(v), str(v.n_seeds))
    if with_ref:
        table.caption = escape(
            f"{outcome.profile} profile, {counted(len(outcome.seeds), 'seed')}: not the decisive "
            f"verdict; the reference is the {reference.profile} profile's, shipped with elulab"
        )
        table.caption_justify = "left"
    return table


def _lab_closing_table(result: Any, reference: Any) -> Any:
    """The closing verdict summary of ``elulab reproduce``: one row per (claim,
    experiment), this run beside the reference."""
    from rich.markup import escape
    from rich.table import Table

    from .lab.reproduce import counted

    profiles = sorted({s.profile for s in result.sweeps})
    with_ref = bool(reference and reference.experiments) and profiles != [reference.profile]
    table = Table(title="verdicts", title_justify="left")
    table.add_column("claim", no_wrap=True)
    table.add_column("experiment", overflow="fold")
    table.add_column(f"this run ({escape(', '.join(profiles))})", overflow="fold", min_width=22)
    if with_ref:
        table.add_column(f"reference ({escape(reference.profile)})", overflow="fold", min_width=22)
    for sweep in result.sweeps:
        if not sweep.verdicts:
            n_ok = len(sweep.completed) + len(sweep.skipped)
            runs = f"no verdict\n{counted(n_ok, 'run')} completed"
            if sweep.failed:
                runs += f", {len(sweep.failed)} failed"
            table.add_row("—", escape(sweep.experiment), runs, *(["—"] if with_ref else []))
            continue
        for v in sweep.verdicts:
            cell = f"{_lab_status(v)}\n{_lab_effect(v)}\n{counted(int(v.n_seeds), 'seed')}"
            row = [escape(v.claim), escape(sweep.experiment), cell]
            if with_ref:
                row.append(_lab_reference_cell(reference, sweep.experiment, v.claim))
            table.add_row(*row)
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
    reference = _lab_reference()
    console.print(_lab_closing_table(result, reference))
    decisive = "full" if reference is None else reference.profile
    if profile != decisive:
        where = (
            "the reference column, shipped with elulab"
            if reference is not None and reference.experiments
            else f"none is shipped with this elulab yet: `elulab reproduce --profile {decisive}`"
        )
        console.print(
            f"The {profile} profile checks that everything runs; its verdicts are not the "
            f"decisive ones. The decisive verdicts are the {decisive} profile's ({where}).",
            highlight=False,
        )
    if result.costs:
        console.print(
            _lab_costs_table(
                result.costs, profile, "costs.md beside the report" if result.costs_path else ""
            )
        )
    where = str(result.report) if result.report is not None else "not built (see below)"
    console.print(f"report: {where}", markup=False, highlight=False, soft_wrap=True)
    _lab_report_problems(result.problems)


def _lab_costs_table(costs: list[Any], profile: str, where: str = "") -> Any:
    """The stored run time of one profile's experiments, with the total and its target;
    readable at 80 columns."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .lab.costs import format_duration, profile_total, target_cell, total_target_cell

    rows = [c for c in costs if c.profile == profile]
    total = profile_total(rows, profile)
    table = Table(
        title=escape(f"run time, {profile} profile (target: {total.target_text()})"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_footer=True,
        caption=escape(
            "serial: the runs' durations added up (one worker); wall: the time some run "
            "of it was in flight; workers: the most runs at once"
            + (f"; also in {where}" if where else "")
        ),
        caption_justify="left",
    )

    def mark(text: str) -> str:
        return f"[red]{text}[/]" if text == "over" else text

    verdict = total_target_cell(total)
    table.add_column("experiment", "total", no_wrap=True)
    table.add_column("seeds", str(total.seeds), justify="right")
    table.add_column("serial", format_duration(total.serial_s), justify="right", no_wrap=True)
    table.add_column("wall", format_duration(total.wall_s), justify="right", no_wrap=True)
    table.add_column("per seed", "", justify="right", no_wrap=True)
    table.add_column("workers", "", justify="right")
    table.add_column("target", mark(verdict), no_wrap=True)
    for c in rows:
        table.add_row(
            escape(c.experiment),
            str(c.seeds),
            format_duration(c.serial_s),
            format_duration(c.wall_s),
            format_duration(c.mean_s),
            str(c.workers),
            mark(target_cell(c)),
        )
    return table


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


@app.command("reference")
def reference_cmd(
    store: list[Path] = typer.Option(
        [_DEFAULT_STORE], "--store", help="Result store (SQLite); repeat to merge several."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Reference file to write; default: the one shipped in the package."
    ),
    profile: str = typer.Option("full", "--profile", help="Profile whose verdicts to take."),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="Keep the experiments of the existing reference that the store(s) lack; "
        "an entry from a store replaces its experiment's only when summarised later.",
    ),
) -> None:
    """Write the reference verdicts (newest full-profile summary per experiment).

    Each entry keeps the code revision and elulab version behind it. Without --merge
    the reference holds exactly the experiments of the given store(s)."""
    report = _lab_report_module()
    try:
        refs = [report.load_reference(out)] if merge else []
        for path_ in store:
            _lab_store(path_, readonly=True).close()
            refs.append(report.build_reference(path_, profile=profile))
        ref = report.merge_references(refs)
        path = report.write_reference(ref, out)
    except (report.ReferenceError, OSError) as e:
        fail(str(e))
    from .lab.reproduce import counted

    n = sum(len(e.verdicts) for e in ref.experiments.values())
    console.print(
        f"reference: {counted(n, 'verdict')} of {counted(len(ref.experiments), 'experiment')} "
        f"({profile} profile) written to {path.absolute()}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if not ref.experiments:
        err_console.print(
            f"warning: the store has no {profile}-profile summary; the reference is empty",
            highlight=False,
        )


@app.command("ledger")
def ledger_cmd(
    fmt: str = typer.Option("markdown", "--format", help="markdown or json."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Reference file; default: the one shipped with elulab."
    ),
    update: Path | None = typer.Option(
        None,
        "--update",
        help="Replace the table between <!-- verdicts:begin --> and <!-- verdicts:end --> "
        "in this file (e.g. README.md) instead of printing it.",
    ),
) -> None:
    """Print the verdict table of the reference (the README's table), never typed by hand."""
    report = _lab_report_module()
    if fmt not in ("markdown", "json"):
        fail(f"unknown format {fmt!r}; allowed: markdown, json")
    if update is not None and fmt != "markdown":
        fail("--update writes the markdown table; use it with --format markdown")
    try:
        ref = report.load_reference(reference)
    except report.ReferenceError as e:
        fail(str(e))
    if fmt == "json":
        print_json(ref.to_json())
        return
    expected = {n: (tuple(e.claims), e.version) for n, e in _lab_registry().items()}
    text = report.ledger_markdown(ref, [c.id for c in report.parse_claims().claims], expected)
    _write_between_markers(text, update, report.replace_between_markers, "verdict table")


def _write_between_markers(
    text: str, update: Path | None, replace: Callable[[str, str], str], what: str
) -> None:
    """Print ``text``, or put it between the markers of file ``update`` (``replace``)."""
    if update is None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    try:
        old = update.read_text(encoding="utf-8")
        new = replace(old, text)
        if new != old:
            update.write_text(new, encoding="utf-8")
    except ValueError as e:  # the markers (ReferenceError is a ValueError)
        fail(f"{update}: {e}")
    except OSError as e:
        fail(f"--update: cannot rewrite {update}: {e.strerror or e}")
    state = "updated" if new != old else "already up to date"
    console.print(f"{update}: {what} {state}", markup=False, highlight=False, soft_wrap=True)


@app.command("costs")
def costs_cmd(
    store: list[Path] = typer.Option(
        [_DEFAULT_STORE], "--store", help="Result store (SQLite); repeat to merge several."
    ),
    profile: str = typer.Option("all", "--profile", help="quick, full, or all."),
    fmt: str = typer.Option("table", "--format", help="table or markdown."),
    update: Path | None = typer.Option(
        None,
        "--update",
        help="Replace the table between <!-- costs:begin --> and <!-- costs:end --> in this "
        "file (e.g. docs/lab.md) instead of printing it.",
    ),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="With --update: keep the rows of the file's table for the (experiment, "
        "profile) pairs the store(s) lack, and say so under the table.",
    ),
) -> None:
    """The stored run time of each experiment's profile: serial, wall, per seed, targets.

    Per (experiment, profile) the runs of its config summarised last; with several
    stores, the one summarised last."""
    from .lab.costs import (
        between_markers,
        costs_markdown,
        merge_costs,
        parse_costs_markdown,
        profiles_of,
        replace_between_markers,
        store_costs,
    )

    if fmt not in ("table", "markdown"):
        fail(f"unknown format {fmt!r}; allowed: table, markdown")
    if profile not in ("quick", "full", "all"):
        fail(f"unknown profile {profile!r}; allowed: quick, full, all")
    if merge and update is None:
        fail("--merge keeps rows of the table in the --update FILE; give --update FILE")
    groups = []
    for path in store:
        st = _lab_store(path, readonly=True)
        try:
            groups.append(store_costs(st, None if profile == "all" else profile))
        finally:
            st.close()
    measured = {(c.experiment, c.profile) for g in groups for c in g}
    kept = []
    if merge and update is not None:
        try:
            previous = parse_costs_markdown(between_markers(update.read_text(encoding="utf-8")))
        except ValueError as e:
            fail(f"{update}: {e}")
        except OSError as e:
            fail(f"--update: cannot read {update}: {e.strerror or e}")
        kept = [c for c in previous if (c.experiment, c.profile) not in measured]
    costs = merge_costs([kept, *groups])
    if update is not None or fmt == "markdown":
        text = costs_markdown(costs, [p.name for p in store], kept=kept)
        _write_between_markers(text, update, replace_between_markers, "cost table")
        return
    if not costs:
        console.print(
            "No summarised runs in the store(s)"
            + ("" if profile == "all" else f" of the {profile} profile"),
            highlight=False,
        )
        return
    for i, prof in enumerate(profiles_of(costs)):
        if i:
            console.print()
        console.print(_lab_costs_table(costs, prof))


@app.command("results")
def results_cmd(
    experiment: str = typer.Argument(..., help="Experiment name (or module:Class)."),
    fmt: str = typer.Option("csv", "--format", help="csv, json, or parquet (needs pyarrow)."),
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
    out: Path | None = typer.Option(
        None, "--out", help="Write to this file (needed for parquet); default: stdout."
    ),
) -> None:
    """Export the stored runs of one experiment: one row per (config, seed).

    Each row has the experiment version and git revision of its run, the resolved
    config and ISO 8601 UTC timestamps."""
    from .lab.store import export_parquet, export_runs

    if fmt not in ("csv", "json", "parquet"):
        fail(f"unknown format {fmt!r}; allowed: csv, json, parquet")
    if fmt == "parquet":
        if out is None:
            fail("--format parquet writes a binary file: give it --out FILE.parquet")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            fail(
                "--format parquet needs pyarrow (pip install pyarrow); allowed without it: csv, json"
            )
    name = _lab_experiment(experiment).name if ":" in experiment else experiment
    st = _lab_store(store, readonly=True)
    try:
        known = sorted(set(_lab_registry()) | set(st.experiments()))
        if name not in known:
            fail(f"unknown experiment {name!r}; allowed: {', '.join(known) or '(none)'}")
        runs = st.runs(name, status=None)
    finally:
        st.close()
    try:
        if fmt == "parquet":
            assert out is not None
            export_parquet(runs, out)
        elif out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(export_runs(runs, fmt), encoding="utf-8")
        else:
            sys.stdout.write(export_runs(runs, fmt))
            sys.stdout.flush()
    except OSError as e:
        fail(f"--out: cannot write {out}: {e.strerror or e}")
    if out is not None:
        err_console.print(
            f"wrote {len(runs)} run{'s' if len(runs) != 1 else ''} to {out.absolute()}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


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
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .lab.stats import format_number

    acc = "" if result.eval_accuracy is None else f", held-out accuracy {result.eval_accuracy:.3f}"
    table = Table(
        title=escape(
            f"{spec} on {data}: {result.steps} steps, audit loss "
            f"{format_number(result.eval_loss)}{acc}"
        ),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
        pad_edge=False,
    )
    # the gain of a Linear/Conv followed by its activation is exactly 1 (one tensor):
    # shown only where it says something, and dropped when it never does
    gains = [s.grad_gain for s in result.layers]
    show_gain = any(g is not None and g != 1.0 for g in gains)
    columns = ["layer", "kind", "units", "dead", "sat.", "mean", "var", "grad norm"]
    for col in columns + (["gain"] if show_gain else []):
        left = col in ("layer", "kind")
        table.add_column(
            col, justify="left" if left else "right", overflow="fold", no_wrap=not left
        )
    for s in result.layers:
        row = [
            escape(s.name),
            escape(s.kind),
            str(s.units),
            f"{s.dead_fraction:.3f}",
            f"{s.saturated_fraction:.3f}",
            format_number(s.mean),
            format_number(s.var),
            format_number(s.grad_norm),
        ]
        if show_gain:
            row.append(
                "" if s.grad_gain is None or s.grad_gain == 1.0 else format_number(s.grad_gain)
            )
        table.add_row(*row)
    console.print(table)
    console.print(
        "dead: share of units with zero gradient at the pre-activation for every held-out "
        f"sample; sat. (saturated): not dead, |f'(x)| < {eps:g} for every sample; conv units "
        "are channels; grad norm: of the loss gradient at the layer's pre-activation"
        + (
            "; gain: grad norm over the next layer's, the factor by which the gradient "
            "shrinks (< 1) or grows (> 1) passing back through the layer (blank where it is "
            "1 by construction: the next layer reads this one's output as is)"
            if show_gain
            else ""
        )
        + (f"; wrote {out}/audit.html and audit.json" if out is not None else ""),
        highlight=False,
    )


def main() -> None:
    """Entry point of the ``elulab`` console script."""
    app()


if __name__ == "__main__":
    main()
