"""Imports point one way: every ``import`` under ``src/elulab`` respects the layer order.

``functional`` <- ``theory`` <- ``nn`` <- ``flows`` <- ``pinn`` <- ``gnn`` <- ``train`` <- ``dp`` <-
``diagnostics`` <- ``experiments`` <- ``cli``: a layer imports only layers to its left. ``data`` (loaders)
and ``lab`` (runner, store, backends, statistics, verdicts, plots) sit beside the chain
and import no other layer; ``data`` is used from ``train`` up, the ``lab`` from
``experiments`` up (experiments through the kit: ``lab.api``, ``lab.stats``,
``lab.verdicts``, ``lab.plots``, never the runner, store or backends that run them);
``report`` reads the store, so it imports the ``lab`` only. The root package
``elulab`` (``__version__``) may be imported by every layer and imports none.

Every module is parsed with :mod:`ast`, so the check sees module-level and function-level
(lazy) imports, ``if TYPE_CHECKING:`` blocks, relative and absolute forms, and
``importlib.import_module("elulab....")`` with a constant name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "elulab"

#: The chain, bottom to top: each layer may import the layers before it.
CHAIN: tuple[str, ...] = (
    "functional",
    "theory",
    "nn",
    "flows",
    "pinn",
    "gnn",
    "train",
    "dp",
    "diagnostics",
    "experiments",
    "cli",
)
_ABOVE_NN = CHAIN[CHAIN.index("train") :]
_ABOVE_DIAGNOSTICS = CHAIN[CHAIN.index("experiments") :]

#: layer -> the other layers it may import (the root package ``elulab`` aside).
ALLOWED: dict[str, frozenset[str]] = {
    **{
        layer: frozenset(CHAIN[:i])
        | ({"data"} if layer in _ABOVE_NN else set())
        | ({"lab"} if layer in _ABOVE_DIAGNOSTICS else set())
        for i, layer in enumerate(CHAIN)
    },
    "data": frozenset(),
    "lab": frozenset(),
    "report": frozenset({"lab"}),
}
ALLOWED["cli"] = ALLOWED["cli"] | {"report"}

#: lab modules an experiment may use (the kit); the others run experiments.
LAB_KIT: frozenset[str] = frozenset(
    {"elulab.lab", "elulab.lab.api", "elulab.lab.stats", "elulab.lab.verdicts", "elulab.lab.plots"}
) | {"elulab.lab.compare"}

ROOT = "elulab"


@dataclass(frozen=True)
class Import:
    """One imported elulab module: where (file, line) and what (dotted name)."""

    file: Path
    line: int
    target: str


def module_name(path: Path, src: Path = SRC) -> str:
    """``src/elulab/nn/_snn.py`` -> ``elulab.nn._snn``; ``.../__init__.py`` -> the package."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package under ``src``: dotted name -> file."""
    return {module_name(p, src): p for p in sorted((src / ROOT).rglob("*.py"))}


def imports_of(
    path: Path, known: set[str], source: str | None = None, src: Path = SRC
) -> list[Import]:
    """The elulab modules imported anywhere in the file (any depth of the syntax tree).

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module of
    ``known``, else ``pkg``.
    """
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    found: list[Import] = []

    def add(node: ast.AST, target: str) -> None:
        if target == ROOT or target.startswith(ROOT + "."):
            found.append(Import(path, node.lineno, target))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise AssertionError(
                        f"{path}:{node.lineno}: relative import beyond the top-level package"
                    )
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(node, sub if sub in known else base)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
        ):
            add(node, node.args[0].value)
    return found


def layer_of(module: str) -> str:
    """The layer of a dotted module name: ``elulab.nn._snn`` -> ``nn``."""
    if module == ROOT:
        return ROOT
    top = module.split(".")[1]
    return "cli" if top == "__main__" else top


def violations(modules: dict[str, Path], root: Path = SRC) -> list[str]:
    known = set(modules)
    out: list[str] = []
    for name, path in modules.items():
        layer = layer_of(name)
        where = path.relative_to(root.parent)
        for imp in imports_of(path, known, src=root):
            dst = layer_of(imp.target)
            at = f"{where}:{imp.line}"
            if layer == ROOT:
                if dst != ROOT:
                    out.append(f"{at}: the root package imports {imp.target} (it imports no layer)")
                continue
            if dst in (layer, ROOT) or layer not in ALLOWED:  # unknown: the test above
                continue
            if dst not in ALLOWED:
                out.append(f"{at}: {imp.target} is in no layer (add {dst!r} to the table)")
            elif dst not in ALLOWED[layer]:
                may = ", ".join(sorted(ALLOWED[layer])) or "no other layer"
                out.append(f"{at}: {layer} imports {imp.target} ({layer} may import: {may})")
            elif layer == "experiments" and dst == "lab" and imp.target not in LAB_KIT:
                kit = ", ".join(sorted(LAB_KIT))
                out.append(f"{at}: experiments import {imp.target} (the lab kit is: {kit})")
    return out


# -- the tree ------------------------------------------------------------------------------


def test_every_module_is_in_a_layer() -> None:
    modules = all_modules()
    assert len(modules) > 20, f"found only {len(modules)} modules under {PACKAGE}"
    unknown = sorted(
        f"{p.relative_to(SRC.parent)}: layer {layer_of(m)!r}"
        for m, p in modules.items()
        if layer_of(m) != ROOT and layer_of(m) not in ALLOWED
    )
    assert not unknown, "modules in no layer (add them to ALLOWED):\n" + "\n".join(unknown)


def test_imports_point_one_way() -> None:
    bad = violations(all_modules())
    assert not bad, f"{len(bad)} import(s) point the wrong way:\n" + "\n".join(bad)


# -- the checker itself can fail ------------------------------------------------------------

_SAMPLE = """
from __future__ import annotations
import importlib
from typing import TYPE_CHECKING
import torch
from ..functional import elu
from . import _init
if TYPE_CHECKING:
    from elulab.diagnostics import Diagnostics

def lazy():
    from ..train import fit
    import elulab.experiments.dead_neurons
    return importlib.import_module("elulab.cli")
"""


def test_checker_sees_every_form_of_import() -> None:
    known = {"elulab", "elulab.functional", "elulab.nn", "elulab.nn._init", "elulab.train"}
    fake = PACKAGE / "nn" / "_sample.py"  # never written: the source is given
    got = {(i.line, i.target) for i in imports_of(fake, known, source=_SAMPLE)}
    assert got == {
        (6, "elulab.functional"),
        (7, "elulab.nn._init"),
        (9, "elulab.diagnostics"),
        (12, "elulab.train"),
        (13, "elulab.experiments.dead_neurons"),
        (14, "elulab.cli"),
    }


def test_checker_reports_upward_imports_with_file_and_line(tmp_path: Path) -> None:
    pkg = tmp_path / "elulab"
    (pkg / "nn").mkdir(parents=True)
    (pkg / "lab").mkdir()
    (pkg / "experiments").mkdir()
    for f in ("__init__.py", "nn/__init__.py", "lab/__init__.py", "experiments/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "functional.py").write_text("")
    (pkg / "nn" / "_bad.py").write_text("import torch\n\ndef f():\n    from ..train import fit\n")
    (pkg / "lab" / "_bad.py").write_text("from elulab.experiments import EXPERIMENTS\n")
    (pkg / "experiments" / "_bad.py").write_text("from ..lab.store import Store\n")
    (pkg / "experiments" / "_good.py").write_text(
        "from ..lab.api import Experiment\nfrom ..nn import _bad\nfrom .. import functional\n"
    )
    bad = violations(all_modules(tmp_path), tmp_path)
    assert len(bad) == 3, bad
    assert "elulab/experiments/_bad.py:1: experiments import elulab.lab.store" in bad[0]
    assert "elulab/lab/_bad.py:1: lab imports elulab.experiments" in bad[1]
    assert "elulab/nn/_bad.py:4: nn imports elulab.train" in bad[2]


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("theory", "functional", True),
        ("functional", "theory", False),
        ("nn", "theory", True),
        ("nn", "flows", False),
        ("flows", "nn", True),
        ("nn", "train", False),
        ("train", "data", True),
        ("nn", "data", False),
        ("diagnostics", "lab", False),
        ("experiments", "lab", True),
        ("lab", "experiments", False),
        ("lab", "cli", False),
        ("lab", "functional", False),
        ("data", "nn", False),
        ("report", "lab", True),
        ("report", "experiments", False),
        ("cli", "report", True),
        ("cli", "experiments", True),
    ],
)
def test_layer_table(src: str, dst: str, ok: bool) -> None:
    assert (dst in ALLOWED[src]) is ok
