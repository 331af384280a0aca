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



def main() -> None:
    """Entry point of the ``elulab`` console script."""
    app()


if __name__ == "__main__":
    main()
