"""The ``elulab`` command: parses arguments and hands off to the library and the lab.

Every command prints a rich table for people, or JSON with ``--json``. Bad input
exits with code 2 and one line naming what is allowed; no traceback.
"""

from __future__ import annotations

import json
import sys
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


# --- section: the lab (list, run, results, reproduce, report) ---


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
    """Train a model a few steps on a built-in data set and report, per layer, dead and
    saturated units, activation mean/variance and gradient flow."""
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
    from rich.table import Table

    acc = "" if result.eval_accuracy is None else f", held-out accuracy {result.eval_accuracy:.4f}"
    table = Table(
        title=f"{spec} on {data}: {result.steps} steps, audit loss {result.eval_loss:.4g}{acc}"
    )
    for col in ("layer", "kind", "units", "dead", "saturated", "mean", "var", "grad norm", "gain"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    for s in result.layers:
        table.add_row(
            s.name,
            s.kind,
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
