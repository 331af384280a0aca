"""Tests of the lab commands of the CLI: list, run, results, reproduce, report."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

import elulab.experiments
import elulab.report
from elulab.cli import app
from elulab.lab.api import param
from elulab.lab.store import Store
from elulab.report import _reference as report_reference
from lab_toy import Toy


@pytest.fixture(autouse=True)
def no_bundled_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The commands see no shipped reference unless a test writes one here."""
    path = tmp_path / "bundled-reference.json"
    monkeypatch.setattr(report_reference, "bundled_reference_path", lambda: path)
    return path


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The registry with only the toy experiment in it."""
    reg: dict[str, Any] = {"lab_toy": Toy}
    monkeypatch.setattr(elulab.experiments, "EXPERIMENTS", reg)
    return reg


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _one_line_error(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]


def test_list_json(registry: dict[str, Any]) -> None:
    result = invoke("list", "--json")
    assert result.exit_code == 0
    (entry,) = json.loads(result.stdout)
    assert entry["name"] == "lab_toy" and entry["claims"] == ["T1"]
    assert entry["title"] == Toy.title
    assert entry["profiles"] == ["full", "quick"] and entry["seeds"] == {"quick": 3, "full": 5}
    table = invoke("list")
    assert table.exit_code == 0 and "lab_toy" in table.stdout


def test_run_json_then_skip_then_results(registry: dict[str, Any], tmp_path: Path) -> None:
    store = str(tmp_path / "r" / "s.sqlite")
    first = invoke("run", "lab_toy", "--store", store, "--seeds", "3", "--json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)  # stdout holds only the JSON object
    assert out["experiment"] == "lab_toy"
    assert out["runs"] == {"completed": 3, "skipped": 0, "failed": 0}
    (v,) = out["verdicts"]
    assert set(v) >= {"claim", "status", "effect", "ci_low", "ci_high", "n_seeds", "summary"}
    assert v["claim"] == "T1" and v["n_seeds"] == 3
    again = json.loads(invoke("run", "lab_toy", "--store", store, "--seeds", "4", "--json").stdout)
    assert again["runs"] == {"completed": 1, "skipped": 3, "failed": 0}
    assert again["verdicts"][0]["n_seeds"] == 4
    # the human form: a verdict table
    human = invoke("run", "lab_toy", "--store", store, "--seeds", "4")
    assert human.exit_code == 0
    assert "T1" in human.stdout and "0 runs completed, 4 already stored" in human.stdout
    rows = list(csv.DictReader(io.StringIO(invoke("results", "lab_toy", "--store", store).stdout)))
    assert [int(r["seed"]) for r in rows] == [0, 1, 2, 3]
    assert {r["status"] for r in rows} == {"completed"} and all(r["py"] for r in rows)
    data = json.loads(invoke("results", "lab_toy", "--store", store, "--format", "json").stdout)
    with Store(store, readonly=True) as st:
        stored = {r.seed: r.result.metrics["py"] for r in st.runs() if r.result}
    assert {d["seed"]: d["metrics"]["py"] for d in data} == stored


def test_run_by_module_spec_and_failures_exit_1(registry: dict[str, Any], tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    result = invoke(
        "run", "lab_toy:Toy", "--store", store, "--seeds", "3", "--set", "fail_seeds=1", "--json"
    )
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["runs"] == {"completed": 2, "skipped": 0, "failed": 1}
    assert out["failures"] == [{"seed": 1, "error": "RuntimeError: seed 1 fails on purpose"}]
    assert "seed 1 fails on purpose" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "nope"], ["unknown experiment 'nope'", "allowed: lab_toy"]),
        (["run", "lab_toy", "--set", "nope=1"], ["unknown config key 'nope'", "steps"]),
        (["run", "lab_toy", "--set", "steps=many"], ["steps expects int", "'many'"]),
        (["run", "lab_toy", "--set", "figure=maybe"], ["figure expects bool"]),
        (["run", "lab_toy", "--set", "steps"], ["--set expects key=value"]),
        (["run", "lab_toy", "--profile", "medium"], ["unknown profile 'medium'", "quick, full"]),
        (["run", "lab_toy", "--seeds", "0"], ["--seeds expects an integer >= 1"]),
        (["run", "lab_toy", "--seeds", "x"], ["--seeds expects an integer >= 1"]),
        (["run", "lab_toy", "--workers", "-2"], ["--workers expects an integer >= 1"]),
        (["run", "lab_toy", "--backend", "slurm"], ["unknown backend 'slurm'", "local, ray"]),
        (["run", "lab_toy", "--address", "auto"], ["--address is only for the ray backend"]),
        (["run", "no_such_module_xyz:Exp"], ["cannot import 'no_such_module_xyz'"]),
        (["results", "nope"], ["unknown experiment 'nope'", "lab_toy"]),
        (["results", "lab_toy", "--format", "xml"], ["unknown format 'xml'", "csv, json"]),
        (["reproduce", "--profile", "medium"], ["unknown profile 'medium'"]),
    ],
)
def test_bad_input_exits_2_with_one_line(
    registry: dict[str, Any], tmp_path: Path, args: list[str], words: list[str]
) -> None:
    store = tmp_path / "s.sqlite"
    Store(store).close()
    result = invoke(*args, "--store", str(store))
    _one_line_error(result, *words)
    with Store(store, readonly=True) as st:
        assert st.runs(status=None) == []


def test_ray_missing_is_a_clear_error(
    registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = invoke("run", "lab_toy", "--backend", "ray", "--store", str(tmp_path / "s.sqlite"))
    _one_line_error(result, "pip install 'elulab[ray]'")


def test_foreign_stores_are_refused_and_untouched(registry: dict[str, Any], tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    _one_line_error(invoke("run", "lab_toy", "--store", str(text)), "not an elulab store")
    assert text.read_text() == "hello\n"
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for args in (["run", "lab_toy"], ["results", "lab_toy"], ["report"]):
        _one_line_error(invoke(*args, "--store", str(db)), "not an elulab store")
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "notes.txt"]
    blocker = tmp_path / "notes.txt" / "s.sqlite"  # its folder is a file: cannot be created
    _one_line_error(invoke("run", "lab_toy", "--store", str(blocker)), "cannot create")


def test_reproduce_runs_everything_then_builds_the_report(
    registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Other(Toy):
        name = "lab_toy_other"

    registry["lab_toy_other"] = Other
    calls: list[tuple[Path, Path, list[str]]] = []

    def fake_build_report(store_path: Path, out_dir: Path) -> Path:
        with Store(store_path, readonly=True) as st:
            calls.append((Path(store_path), Path(out_dir), [s.experiment for s in st.summaries()]))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / ".elulab-report").write_text("")  # a report may replace it
        index = Path(out_dir) / "index.html"
        index.write_text("<html></html>")
        return index

    monkeypatch.setattr(elulab.report, "build_report", fake_build_report)
    store, out = tmp_path / "s.sqlite", tmp_path / "site"
    result = invoke("reproduce", "--store", str(store), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert calls == [(store, out, ["lab_toy_other", "lab_toy"])]
    assert str(out / "index.html") in result.stdout.replace("\n", "")
    # the closing summary: a table of every experiment and claim, then the report's path
    tail = result.stdout[result.stdout.index("verdicts") :].splitlines()
    body = [line for line in tail if line.startswith("│")]
    cells = [[c.strip() for c in line.split("│")[1:3]] for line in body if "T1" in line]
    assert cells == [["T1", "lab_toy"], ["T1", "lab_toy_other"]]  # in the order they ran
    assert sum("3 seeds" in line for line in body) == 2 and "(s)" not in result.stdout
    assert "reference" not in tail[2]  # no reference shipped: no reference column
    assert tail[-1] == f"report: {(out / 'index.html').absolute()}"
    with Store(store, readonly=True) as st:
        assert len(st.runs("lab_toy")) == 3 and len(st.runs("lab_toy_other")) == 3
    # `elulab report` only builds the report; a missing store is a one-line error
    calls.clear()
    assert invoke("report", "--store", str(store), "--out", str(out)).exit_code == 0
    assert len(calls) == 1
    _one_line_error(invoke("report", "--store", str(tmp_path / "none.sqlite")), "does not exist")


def test_version() -> None:
    from elulab import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"elulab {__version__}"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run"], ["Missing argument", "elulab run --help"]),
        (["run", "lab_toy", "--frobnicate"], ["No such option: --frobnicate"]),
        (["nope"], ["No such command 'nope'"]),
        (["constants", "alpha-dropout"], ["Missing option '--rate'"]),
    ],
)
def test_usage_errors_are_one_line(registry: dict[str, Any], args: list[str], words: list[str]):
    result = invoke(*args)
    _one_line_error(result, *words)
    assert "╭" not in result.output  # not typer's box


@dataclass(frozen=True)
class _DescribedConfig:
    seeds: int = param(3, "independent seeds", ge=1)
    learning_rate_schedule_warmup: int = param(
        100,
        "optimiser steps of linear learning-rate warm-up before the cosine decay starts, "
        "counted from the first step of every seed",
        ge=0,
    )
    activations: tuple[str, ...] = param(
        ("relu", "leaky_relu", "elu", "selu", "gelu", "mish"),
        "activations compared, each trained from the same initial weights",
        choices=("relu", "leaky_relu", "elu", "selu", "gelu", "mish"),
        nonempty=True,
    )
    lr: float = param(0.05, "SGD learning rate", gt=0.0)


class _Described(Toy):
    name = "lab_described"
    Config = _DescribedConfig  # type: ignore[assignment]
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 2, "learning_rate_schedule_warmup": 10},
        "full": {"seeds": 5},
        "smoke": {"seeds": 2, "activations": ("elu",), "lr": 0.1},
    }


def test_show_json_lists_every_key(registry: dict[str, Any]) -> None:
    registry["lab_described"] = _Described
    result = invoke("show", "lab_described", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["experiment"] == "lab_described" and data["version"] == 1
    assert data["profiles"] == ["quick", "full", "smoke"]
    rows = {r["name"]: r for r in data["config"]}
    assert list(rows) == ["seeds", "learning_rate_schedule_warmup", "activations", "lr"]
    warmup = rows["learning_rate_schedule_warmup"]
    assert (warmup["type"], warmup["default"], warmup["quick"], warmup["full"]) == (
        "int",
        100,
        10,
        100,
    )
    assert warmup["allowed"] == ">= 0" and warmup["help"].startswith("optimiser steps")
    assert rows["lr"]["smoke"] == 0.1 and rows["activations"]["smoke"] == ["elu"]
    assert rows["activations"]["allowed"].startswith("non-empty, one of relu")


def test_show_table_is_readable_at_80_columns(registry: dict[str, Any]) -> None:
    registry["lab_described"] = _Described
    result = CliRunner().invoke(app, ["show", "lab_described"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = " ".join(result.stdout.split())
    # every key whole on one line (never folded), with its type
    for key in ("seeds", "learning_rate_schedule_warmup", "activations", "lr"):
        assert any(f" {key} " in line for line in lines), key
    assert "tuple[str, ...]" in result.stdout
    # the meaning and the rule of each key, wrapped but whole words
    cells = [line.split("│")[3].strip() for line in lines if line.count("│") == 4]
    meaning = " ".join(c for c in cells if c)
    assert "optimiser steps of linear learning-rate warm-up before the cosine decay" in meaning
    assert ">= 0" in meaning and "> 0" in meaning
    # profile values that differ from the default, named by profile
    assert "quick 10" in text and "smoke 0.1" in text and "smoke elu" in text
    assert "version 1" in text


def test_show_unknown_experiment(registry: dict[str, Any]) -> None:
    _one_line_error(invoke("show", "nope"), "unknown experiment 'nope'", "allowed: lab_toy")


@pytest.mark.parametrize("command", ["reproduce", "report"])
def test_unwritable_out_fails_before_anything_runs(
    registry: dict[str, Any], tmp_path: Path, command: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = tmp_path / "s.sqlite"
    Store(store).close()
    result = invoke(command, "--store", str(store), "--out", str(blocker / "site"))
    _one_line_error(result, "cannot write the report folder", "is not a folder")
    with Store(store, readonly=True) as st:
        assert st.runs(status=None) == [] and st.summaries() == []
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    result = invoke(command, "--store", str(store), "--out", str(foreign))
    _one_line_error(result, "is not an elulab report")
    assert (foreign / "notes.txt").read_text() == "keep"


def test_counts_and_numbers_read_well(registry: dict[str, Any], tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    one = invoke("run", "lab_toy", "--store", store, "--seeds", "1", "--set", "fail_seeds=1")
    assert one.exit_code == 0, one.output
    assert "1 run completed, 0 already stored, 0 failed" in one.stdout
    two = invoke("run", "lab_toy", "--store", store, "--seeds", "3", "--set", "fail_seeds=1")
    assert two.exit_code == 1
    assert "1 run completed, 1 already stored, 1 failed" in two.stdout
    assert "1 problem:" in two.stderr and "(s)" not in two.output
    rate = invoke("constants", "alpha-dropout", "--rate", "0.05")
    assert rate.exit_code == 0 and " 0.05 " in rate.stdout
    assert "0.050000000000000003" not in rate.stdout


def test_results_carry_version_and_revision(registry: dict[str, Any], tmp_path: Path) -> None:
    from elulab.lab.backends import environment

    store = str(tmp_path / "s.sqlite")
    assert invoke("run", "lab_toy", "--store", store, "--seeds", "2").exit_code == 0
    text = invoke("results", "lab_toy", "--store", store).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    git = environment()["git"] or ""
    assert [(r["version"], r["git"]) for r in rows] == [("1", git), ("1", git)]
    assert rows[0]["started_at"].endswith("Z") and "T" in rows[0]["started_at"]
    assert rows[0]["config.size"] == "16" and rows[0]["config.fail_seeds"] == "[]"
    data = json.loads(invoke("results", "lab_toy", "--store", store, "--format", "json").stdout)
    assert {(d["version"], d["git"] or "") for d in data} == {(1, git)}


# -- the reference: the full-profile verdicts beside a quick run -------------------------------


def _full_reference(tmp_path: Path, into: Path) -> None:
    """Run the toy's full profile and write its reference to ``into`` through the CLI."""
    full = str(tmp_path / "full.sqlite")
    assert invoke("run", "lab_toy", "--profile", "full", "--store", full).exit_code == 0
    made = invoke("reference", "--store", full, "--out", str(into))
    assert made.exit_code == 0, made.output
    assert "reference: 1 verdict of 1 experiment (full profile) written to" in made.stdout


def _whole_numbers(text: str) -> None:
    """Nothing cut: no ellipsis, every interval on one line."""
    assert "…" not in text
    for line in text.splitlines():
        assert line.count("[") == line.count("]"), line


def test_reproduce_closes_with_this_run_beside_the_reference(
    registry: dict[str, Any], tmp_path: Path, no_bundled_reference: Path
) -> None:
    _full_reference(tmp_path, no_bundled_reference)
    out = tmp_path / "site"
    result = CliRunner().invoke(
        app,
        ["reproduce", "--store", str(tmp_path / "quick.sqlite"), "--out", str(out)],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # every line fits, but the report's path, which stays whole to be copied
    assert max(len(line) for line in lines if not line.startswith("report: ")) <= 80
    _whole_numbers(result.stdout)
    tail = lines[[i for i, line in enumerate(lines) if line.startswith("verdicts")][-1] :]
    header = next(line for line in tail if line.startswith("┃"))
    assert "this run (quick)" in header and "reference (full)" in header
    text = " ".join("\n".join(tail).split())
    assert "3 seeds" in text and "5 seeds" in text  # quick beside full
    assert "not the decisive ones" in text and "the reference column" in text
    assert tail[-1] == f"report: {(out / 'index.html').absolute()}"
    # the report shows both, with the quick-profile banner
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="quick-banner"' in index and "col-ref" in index


def test_run_table_reads_at_80_columns(
    registry: dict[str, Any], tmp_path: Path, no_bundled_reference: Path
) -> None:
    store = str(tmp_path / "s.sqlite")
    plain = CliRunner().invoke(app, ["run", "lab_toy", "--store", store], env={"COLUMNS": "80"})
    assert plain.exit_code == 0, plain.output
    assert "reference" not in plain.stdout  # none shipped: no reference column
    assert "summary" not in plain.stdout.split("T1", 1)[0]  # no squeezed summary column
    _full_reference(tmp_path, no_bundled_reference)
    result = CliRunner().invoke(app, ["run", "lab_toy", "--store", store], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    _whole_numbers(result.stdout)
    header = next(line for line in lines if line.startswith("┃"))
    assert "this run (quick)" in header and "reference (full)" in header
    # the summary: whole words after the table, with what the effect measures
    after = result.stdout.split("└", 1)[1]
    assert "T1 (mean of U(0,1)): mean draw" in " ".join(after.split())
    assert "not the decisive" in " ".join(after.split())


def test_reference_and_ledger_commands(
    registry: dict[str, Any], tmp_path: Path, no_bundled_reference: Path
) -> None:
    quick = str(tmp_path / "quick.sqlite")
    assert invoke("run", "lab_toy", "--store", quick).exit_code == 0
    empty = invoke("reference", "--store", quick)  # default --out: the shipped file
    assert empty.exit_code == 0 and "0 verdicts of 0 experiments" in empty.stdout
    assert "no full-profile summary" in empty.stderr
    assert json.loads(no_bundled_reference.read_text())["experiments"] == {}
    # every registered experiment without a full run gets a row saying so
    assert "| T1 | `lab_toy` | — | no full-profile run yet |" in invoke("ledger").stdout
    _full_reference(tmp_path, no_bundled_reference)
    # --merge keeps what the reference has and the quick-only store lacks; without it,
    # the reference is rebuilt from the store alone
    kept = invoke("reference", "--store", quick, "--merge")
    assert kept.exit_code == 0 and "1 verdict of 1 experiment" in kept.stdout
    assert "lab_toy" in json.loads(no_bundled_reference.read_text())["experiments"]
    table = invoke("ledger", "--format", "markdown")
    assert table.exit_code == 0
    rows = [line for line in table.stdout.splitlines() if line.startswith("| T1")]
    assert len(rows) == 1 and "`lab_toy`" in rows[0] and "| 5 |" in rows[0]
    data = json.loads(invoke("ledger", "--format", "json").stdout)
    assert data["experiments"]["lab_toy"]["verdicts"][0]["n_seeds"] == 5
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- verdicts:begin -->\nold\n<!-- verdicts:end -->\nend\n")
    first = invoke("ledger", "--update", str(readme))
    assert first.exit_code == 0 and "verdict table updated" in first.stdout
    assert rows[0] in readme.read_text() and "old" not in readme.read_text()
    assert "already up to date" in invoke("ledger", "--update", str(readme)).stdout
    readme.write_text("no markers\n")
    _one_line_error(invoke("ledger", "--update", str(readme)), "verdicts:begin")
    _one_line_error(invoke("ledger", "--format", "html"), "allowed: markdown, json")
    _one_line_error(invoke("ledger", "--reference", str(tmp_path / "none.json")), "not found")
    _one_line_error(invoke("reference", "--store", str(tmp_path / "none.sqlite")), "does not exist")


def test_results_parquet_and_out(registry: dict[str, Any], tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    assert invoke("run", "lab_toy", "--store", store, "--seeds", "2").exit_code == 0
    written = invoke("results", "lab_toy", "--store", store, "--out", str(tmp_path / "r.csv"))
    assert written.exit_code == 0 and written.stdout == ""
    assert "wrote 2 runs to" in written.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert [r["seed"] for r in rows] == ["0", "1"] and rows[0]["config.size"] == "16"
    _one_line_error(invoke("results", "lab_toy", "--store", store, "--format", "xml"), "parquet")
    _one_line_error(
        invoke("results", "lab_toy", "--store", store, "--format", "parquet"), "--out FILE"
    )
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "r.parquet"
    result = invoke(
        "results", "lab_toy", "--store", store, "--format", "parquet", "--out", str(path)
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(path)
    assert table.column("seed").to_pylist() == [0, 1]
    assert str(table.schema.field("started_at").type) == "timestamp[ms, tz=UTC]"
    assert table.column("config.size").to_pylist() == ["16", "16"]
    assert str(table.schema.field("py").type) == "double"
    csv_py = [float(r["py"]) for r in rows]
    assert table.column("py").to_pylist() == csv_py  # the same numbers as the CSV


def test_results_parquet_without_pyarrow_is_one_line(
    registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "s.sqlite")
    assert invoke("run", "lab_toy", "--store", store, "--seeds", "1").exit_code == 0
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    result = invoke(
        "results", "lab_toy", "--store", store, "--format", "parquet", "--out", str(tmp_path / "x")
    )
    _one_line_error(result, "needs pyarrow", "pip install pyarrow", "csv, json")
    assert not (tmp_path / "x").exists()
