"""The ``elulab`` command: parses arguments and hands off to the library and the lab.

Every command prints a rich table for people, or JSON with ``--json``. Bad input
exits with code 2 and one line naming what is allowed; no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

__all__ = ["app", "main"]

app = typer.Typer(
    name="elulab",
    help="The ELU family, its exact math, and a lab that checks every claim about it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
        table.add_row(key, f"{value:.17g}" if isinstance(value, float) else str(value))
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


# --- section: the lab (list, run, results, reproduce, report) ---

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


def _lab_verdict_table(experiment: Any, outcome: Any) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{experiment.name}: {experiment.title}"), title_justify="left")
    for col in ("claim", "status", "effect", "95% CI", "seeds", "summary"):
        table.add_column(col, overflow="fold")
    for v in outcome.verdicts:
        style = _STATUS_STYLE.get(v.status, "")
        table.add_row(
            v.claim,
            f"[{style}]{v.status}[/]" if style else v.status,
            f"{v.effect:.4g}",
            f"[{v.ci_low:.4g}, {v.ci_high:.4g}]",
            str(v.n_seeds),
            escape(v.summary),
        )
    return table


def _lab_outcome_json(experiment: Any, outcome: Any) -> dict[str, Any]:
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "claims": list(experiment.claims),
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
        "figures": [] if outcome.summary is None else outcome.summary.figures,
        "errors": outcome.errors,
    }


def _lab_sweep(
    experiment: Any,
    *,
    store: Any,
    backend: Any,
    profile: str,
    overrides: dict[str, str],
    seeds: int | None,
    as_json: bool,
) -> tuple[Any, list[str]]:
    """Run one sweep with progress bars; return the outcome and its problems."""
    from .lab.runner import run_experiment

    with _LabProgress() as progress:
        outcome = run_experiment(
            experiment,
            store=store,
            profile=profile,
            overrides=overrides,
            seeds=seeds,
            backend=backend,
            on_event=progress,
        )
    problems = [f"{experiment.name} seed {s}: {e}" for s, e in sorted(outcome.failed.items())]
    problems += [f"{experiment.name}: {e}" for e in outcome.errors]
    if not as_json:
        if outcome.verdicts:
            console.print(_lab_verdict_table(experiment, outcome))
        console.print(
            f"{experiment.name}: {len(outcome.completed)} runs completed, "
            f"{len(outcome.skipped)} already stored, {len(outcome.failed)} failed "
            f"(config {outcome.config_hash})",
            highlight=False,
        )
    return outcome, problems


def _lab_report_problems(problems: list[str]) -> None:
    if problems:
        err_console.print(f"{len(problems)} problem(s):", highlight=False)
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
    try:
        outcome, problems = _lab_sweep(
            exp,
            store=st,
            backend=be,
            profile=profile,
            overrides=overrides,
            seeds=n_seeds,
            as_json=as_json,
        )
    except ConfigError as e:
        fail(str(e))
    except KeyboardInterrupt:
        _lab_interrupted()
    finally:
        be.close()
        st.close()
    if as_json:
        print_json(_lab_outcome_json(exp, outcome))
    _lab_report_problems(problems)


def _lab_build_report(store: Path, out: Path) -> Path:
    try:
        from . import report
    except ImportError as e:
        fail(f"the report builder is not available: {e}")
    report_error = getattr(report, "ReportError", None) or RuntimeError
    try:
        return Path(report.build_report(store, out))
    except report_error as e:
        fail(str(e))


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

    n_workers = _lab_positive_int("--workers", workers)
    experiments = [cls() for cls in _lab_registry().values()]
    if not experiments:
        fail("no experiments are registered")
    for exp in experiments:
        try:
            exp.resolve_config(profile)
        except ConfigError as e:
            fail(str(e))
    st = _lab_store(store)
    be = _lab_backend(backend, n_workers, address)
    problems: list[str] = []
    try:
        for exp in experiments:
            _, found = _lab_sweep(
                exp,
                store=st,
                backend=be,
                profile=profile,
                overrides={},
                seeds=None,
                as_json=False,
            )
            problems += found
    except KeyboardInterrupt:
        _lab_interrupted()
    finally:
        be.close()
        st.close()
    index = _lab_build_report(store, out)
    console.print(f"report: {index}", highlight=False)
    _lab_report_problems(problems)


@app.command("report")
def report_cmd(
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
    out: Path = typer.Option(_DEFAULT_REPORT, "--out", help="Report folder."),
) -> None:
    """Build the HTML report from the result store."""
    _lab_store(store, readonly=True).close()
    index = _lab_build_report(store, out)
    console.print(f"report: {index}", highlight=False)


@app.command("results")
def results_cmd(
    experiment: str = typer.Argument(..., help="Experiment name (or module:Class)."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    store: Path = typer.Option(_DEFAULT_STORE, "--store", help="Result store (SQLite)."),
) -> None:
    """Export the stored runs of one experiment: one row per (config, seed)."""
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
    from pathlib import Path

    from .diagnostics import (
        FactoryError,
        ModelDataMismatch,
        audit_dataset,
        build_model,
        render_html,
    )

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
    payload = result.to_json()
    if out is not None:
        out_dir = Path(out)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "audit.json").write_text(
                json.dumps(payload, indent=2, allow_nan=False) + "\n"
            )
            (out_dir / "audit.html").write_text(render_html(result, f"Activation audit: {spec}"))
        except OSError as e:
            fail(f"cannot write to --out {out}: {e.strerror or e}")
    if as_json:
        print_json(payload)
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
