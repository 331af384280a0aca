"""Tests of the lab's cost (``elulab.lab.costs``): wall and serial time from stored runs,
the docs' table and its update, ``elulab costs``, ``reproduce`` and the report's index."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import elulab.experiments
import elulab.report
from elulab.cli import app
from elulab.lab.api import RunResult, Verdict
from elulab.lab.costs import (
    BEGIN_MARKER,
    END_MARKER,
    ExperimentCost,
    costs_markdown,
    format_duration,
    max_overlap,
    merge_costs,
    parse_costs_markdown,
    parse_duration,
    profile_total,
    replace_between_markers,
    run_cost,
    store_costs,
    union_length,
)
from elulab.lab.reproduce import reproduce
from elulab.lab.store import Store
from elulab.report import Reference, build_report
from elulab.report import _reference as report_reference
from lab_toy import Toy

T0 = 1_760_000_000.0
ENV = {"device": "cpu", "elulab": "0.1.0", "git": "abc1234"}


def _run(seed: int, start: float, end: float, duration: float | None = None) -> Any:
    seconds = end - start if duration is None else duration
    return SimpleNamespace(seed=seed, started_at=start, finished_at=end, duration_s=seconds)


def test_wall_is_the_union_of_the_run_intervals() -> None:
    assert union_length([(0, 10)]) == 10.0  # single
    assert union_length([(0, 10), (5, 15)]) == 15.0  # overlap: counted once
    assert union_length([(0, 10), (86_400, 86_410)]) == 20.0  # a day's gap: not counted
    assert union_length([(0, 100), (10, 20), (30, 40)]) == 100.0  # nested
    assert union_length([(20, 30), (0, 10), (10, 20)]) == 30.0  # touching, unsorted
    assert union_length([(5, 3)]) == 0.0 and union_length([]) == 0.0
    assert max_overlap([(0, 10), (5, 15), (6, 7)]) == 3
    assert max_overlap([(0, 10), (10, 20)]) == 1  # touching intervals do not overlap
    with pytest.raises(ValueError, match="finite"):
        union_length([(0.0, math.nan)])


def test_serial_is_the_sum_of_durations_and_wall_the_union() -> None:
    # two workers: seeds 0 and 1 together, seed 2 after a gap of an hour
    runs = [_run(0, 0, 100), _run(1, 10, 90), _run(2, 3700, 3750)]
    c = run_cost(runs, experiment="x", profile="full")
    assert (c.seeds, c.serial_s, c.wall_s, c.workers) == (3, 230.0, 150.0, 2)
    assert c.mean_s == pytest.approx(230 / 3)
    only = run_cost([*runs, _run(0, 5000, 6000)], experiment="x", profile="full", seeds=[0, 2])
    assert (only.seeds, only.serial_s, only.wall_s) == (2, 150.0, 150.0)  # first run per seed
    # serial comes from duration_s, not from the interval
    assert run_cost([_run(0, 0, 10, duration=7.5)], experiment="x", profile="quick").serial_s == 7.5
    empty = run_cost([], experiment="x", profile="full")
    assert empty.seeds == 0 and math.isnan(empty.mean_s) and format_duration(empty.mean_s) == "—"


def test_targets_quick_total_and_each_full_experiment() -> None:
    quick = [ExperimentCost(n, "quick", 2, 160.0, 160.0, 1) for n in ("a", "b")]
    assert profile_total(quick, "quick").over_target  # 320 s > 5 min
    assert not profile_total(quick[:1], "quick").over_target
    full = [
        ExperimentCost("a", "full", 5, 9000.0, 5000.0, 2),
        ExperimentCost("b", "full", 5, 5500.0, 5500.0, 1),
    ]
    assert [c.over_target for c in full] == [False, True]  # wall, not serial, decides
    total = profile_total(full, "full")
    assert total.over_target and total.wall_s == 10_500.0 and total.serial_s == 14_500.0
    assert not profile_total(full[:1], "full").over_target
    assert [format_duration(s) for s in (0.25, 59.4, 60.0, 3599.0, 5400.0)] == [
        "0.2 s",
        "59 s",
        "1m 00s",
        "1h 00m",
        "1h 30m",
    ]


def _summary(store: Store, exp: str, chash: str, profile: str, seeds: list[int], at: float) -> None:
    store.record_summary(
        experiment=exp,
        title=exp,
        claims=["C1"],
        config_hash=chash,
        profile=profile,
        config={"steps": 1},
        seeds=seeds,
        verdicts=[Verdict("C1", "supported", 1.0, 0.5, 1.5, len(seeds), "ok", "effect")],
        env=ENV,
        created_at=at,
    )


def _record(store: Store, exp: str, chash: str, seed: int, start: float, seconds: float) -> None:
    store.record_run(
        exp,
        chash,
        {"steps": 1},
        seed,
        status="completed",
        result=RunResult(metrics={"m": float(seed)}),
        started_at=start,
        finished_at=start + seconds,
        env=ENV,
    )


def make_store(path: Path) -> Path:
    """``toy``: an old quick config, a newer quick config (2 seeds on 2 workers, 100 s
    each) and a full one (3 seeds, one after another, 1000 s each, a day apart);
    ``other``: a quick config whose summary used seed 0 only."""
    with Store(path) as store:
        _record(store, "toy", "old0000000000000", 0, T0 - 9000, 500)
        _summary(store, "toy", "old0000000000000", "quick", [0], T0 - 8000)
        for seed in (0, 1):
            _record(store, "toy", "new0000000000000", seed, T0 + seed * 10, 100)
        _summary(store, "toy", "new0000000000000", "quick", [0, 1], T0 + 200)
        for seed in range(3):
            _record(store, "toy", "full000000000000", seed, T0 + 1000 + seed * 86_400, 1000)
        _summary(store, "toy", "full000000000000", "full", [0, 1, 2], T0 + 200_000)
        for seed in (0, 1):
            _record(store, "other", "oth0000000000000", seed, T0 + 300 + seed * 40, 40)
        _summary(store, "other", "oth0000000000000", "quick", [0], T0 + 400)
    return path


def test_store_costs_take_the_latest_config_per_experiment_and_profile(tmp_path: Path) -> None:
    with Store(make_store(tmp_path / "s.sqlite"), readonly=True) as store:
        costs = store_costs(store)
        quick_only = store_costs(store, "quick")
    got = [(c.experiment, c.profile, c.config_hash[:3], c.seeds, c.serial_s, c.wall_s, c.workers)
           for c in costs]  # fmt: skip
    assert got == [
        ("other", "quick", "oth", 1, 40.0, 40.0, 1),  # the summary's seeds only
        ("toy", "quick", "new", 2, 200.0, 110.0, 2),  # not the old config's 500 s
        ("toy", "full", "ful", 3, 3000.0, 3000.0, 1),  # the days between seeds do not count
    ]
    assert [c.profile for c in quick_only] == ["quick", "quick"]
    # several stores: per (experiment, profile) the one summarised last
    newer = ExperimentCost("toy", "full", 6, 1.0, 1.0, 1, summarised=T0 + 300_000)
    older = ExperimentCost("toy", "quick", 9, 1.0, 1.0, 1, summarised=0.0)
    merged = merge_costs([costs, [newer, older]])
    assert [(c.experiment, c.profile, c.seeds) for c in merged] == [
        ("other", "quick", 1),
        ("toy", "quick", 2),
        ("toy", "full", 6),
    ]


def test_markdown_table_and_the_update_round_trip(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.sqlite")
    with Store(store, readonly=True) as st:
        text = costs_markdown(store_costs(st), ["s.sqlite"])
    lines = text.splitlines()
    assert lines[0].startswith("**quick profile** (target: the whole lab under 5 min)")
    assert "| `toy` | 2 | 3m 20s | 1m 50s | 1m 40s | 2 |  |" in lines
    assert "| **total** | 3 | 4m 00s | 2m 30s | | | **ok** |" in lines
    assert "| `toy` | 3 | 50m 00s | 50m 00s | 16m 40s | 1 | ok |" in lines
    assert "from the stored runs of `s.sqlite`" in lines[-1]
    doc = tmp_path / "lab.md"
    doc.write_text(f"# Lab\n\nbefore\n\n{BEGIN_MARKER}\nold table\n{END_MARKER}\n\nafter\n")
    first = CliRunner().invoke(app, ["costs", "--store", str(store), "--update", str(doc)])
    assert first.exit_code == 0, first.output
    assert "cost table updated" in first.stdout
    updated = doc.read_text()
    assert updated.startswith("# Lab\n\nbefore\n\n") and updated.endswith("\n\nafter\n")
    assert updated.split(BEGIN_MARKER)[1].split(END_MARKER)[0].strip() == text
    again = CliRunner().invoke(app, ["costs", "--store", str(store), "--update", str(doc)])
    assert "already up to date" in again.stdout and doc.read_text() == updated
    printed = CliRunner().invoke(app, ["costs", "--store", str(store), "--format", "markdown"])
    assert printed.exit_code == 0 and printed.stdout.strip() == text
    with pytest.raises(ValueError, match="exactly one"):
        replace_between_markers("no markers here", "x")
    with pytest.raises(ValueError, match="comes before"):
        replace_between_markers(f"{END_MARKER}\n{BEGIN_MARKER}", "x")


def test_parse_reads_back_the_table_to_its_precision() -> None:
    rows = [ExperimentCost("a", "quick", 2, 13.6, 13.6, 1),
            ExperimentCost("b", "full", 6, 1520.6, 1520.6, 1),
            ExperimentCost("c|d", "full", 4, 15312.0, 7750.0, 2)]  # fmt: skip
    text = costs_markdown(rows, ["s.sqlite"])
    back = parse_costs_markdown(text)
    assert [(c.experiment, c.profile, c.seeds, c.workers) for c in back] == [
        ("a", "quick", 2, 1), ("b", "full", 6, 1), ("c|d", "full", 4, 2)]  # fmt: skip
    # each serial time lies within the rounding of both its cell and its per-seed cell
    for old, new in zip(rows, back, strict=True):
        assert abs(new.serial_s - old.serial_s) <= {"a": 0.1, "b": 0.5, "c|d": 30}[old.experiment]

    def rows_of(md: str) -> list[str]:
        return [line for line in md.splitlines() if line.startswith("| `")]

    assert rows_of(costs_markdown(back)) == rows_of(text)  # the same rows (totals: +-1 min)
    assert [parse_duration(format_duration(s)) for s in (9.84, 41.2, 561.0, 7732.0)] == [
        9.8, 41.0, 561.0, 7740.0]  # fmt: skip
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("3 minutes")
    with pytest.raises(ValueError, match="does not parse"):
        parse_costs_markdown("**full profile**\n\n| `x` | five | 1 s |")


def test_costs_update_merge_keeps_the_rows_the_stores_lack(tmp_path: Path) -> None:
    store = str(make_store(tmp_path / "s.sqlite"))  # toy quick + full, other quick
    earlier = [ExperimentCost("toy", "full", 9, 9000.0, 9000.0, 1),  # measured again now
               ExperimentCost("kept", "full", 5, 600.0, 320.0, 2)]  # fmt: skip
    doc = tmp_path / "lab.md"
    doc.write_text(f"{BEGIN_MARKER}\n{costs_markdown(earlier, ['old.sqlite'])}\n{END_MARKER}\n")
    run = CliRunner().invoke(app, ["costs", "--store", store, "--update", str(doc), "--merge"])
    assert run.exit_code == 0, run.output
    table = doc.read_text()
    assert "| `kept` | 5 | 10m 00s | 5m 20s | 2m 00s | 2 | ok |" in table
    assert "| `toy` | 3 | 50m 00s | 50m 00s | 16m 40s | 1 | ok |" in table  # the store's
    assert "| `toy` | 9 |" not in table
    assert "the rows of `kept` (full) are kept from the table this one replaced" in table
    assert "| **total** | 8 | 1h 00m | 55m 20s | | | **ok** |" in table
    plain = CliRunner().invoke(app, ["costs", "--store", store, "--update", str(doc)])
    assert plain.exit_code == 0 and "`kept`" not in doc.read_text()  # without --merge: gone
    _one_line_error(CliRunner().invoke(app, ["costs", "--store", store, "--merge"]), "--update")


def _one_line_error(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]


def test_costs_command_table_and_bad_input(tmp_path: Path) -> None:
    store = str(make_store(tmp_path / "s.sqlite"))
    result = CliRunner().invoke(app, ["costs", "--store", store], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "run time, quick profile" in lines[0] and "run time, full profile" in result.stdout
    total = next(line for line in lines if line.split()[:1] == ["total"])
    assert total.split() == ["total", "3", "4m", "00s", "2m", "30s", "ok"]
    full = CliRunner().invoke(app, ["costs", "--store", store, "--profile", "full"])
    assert "quick" not in full.stdout and "50m 00s" in full.stdout
    invoke = CliRunner().invoke
    _one_line_error(invoke(app, ["costs", "--store", str(tmp_path / "none.sqlite")]), "not exist")
    _one_line_error(invoke(app, ["costs", "--store", store, "--profile", "smoke"]), "allowed")
    _one_line_error(invoke(app, ["costs", "--store", store, "--format", "html"]), "table, markdown")
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("nothing\n")
    _one_line_error(
        invoke(app, ["costs", "--store", store, "--update", str(no_markers)]), "costs:begin"
    )
    assert no_markers.read_text() == "nothing\n"


def test_report_index_shows_the_total_run_time(tmp_path: Path) -> None:
    index = build_report(
        make_store(tmp_path / "s.sqlite"), tmp_path / "site", reference=Reference()
    )
    html = index.read_text(encoding="utf-8")
    # the report shows the newest summary of each experiment: toy full, other quick
    line = html.split('id="run-time">', 1)[1].split("</p>", 1)[0]
    assert re.sub(r"<[^>]+>", "", line).startswith(
        "Run time of the 4 runs shown: 50m 40s wall, 50m 40s serial"
    )
    assert '<td class="num" title="serial 50m 00s">50m 00s</td>' in html


def test_reproduce_writes_and_prints_the_cost_of_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_build_report(store_path: Path, out_dir: Path) -> Path:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / ".elulab-report").write_text("")
        (Path(out_dir) / "index.html").write_text("<html></html>")
        return Path(out_dir) / "index.html"

    with Store(tmp_path / "lab.sqlite") as store:
        out = reproduce(
            [Toy()], store=store, out_dir=tmp_path / "a", build_report=fake_build_report
        )
    (cost,) = out.costs
    assert (cost.experiment, cost.profile, cost.seeds, cost.workers) == ("lab_toy", "quick", 3, 1)
    assert 0 < cost.wall_s <= cost.serial_s + 1e-6
    assert out.costs_path == (tmp_path / "a" / "costs.md").absolute()
    assert "| `lab_toy` | 3 |" in out.costs_path.read_text()
    # the command prints the table before the report's path, which stays the last line
    monkeypatch.setattr(elulab.experiments, "EXPERIMENTS", {"lab_toy": Toy})
    monkeypatch.setattr(report_reference, "bundled_reference_path", lambda: tmp_path / "no.json")
    monkeypatch.setattr(elulab.report, "build_report", fake_build_report)
    result = CliRunner().invoke(
        app,
        ["reproduce", "--store", str(tmp_path / "lab.sqlite"), "--out", str(tmp_path / "b")],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("report: ")
    assert max(len(line) for line in lines[:-1]) <= 80
    assert any(line.startswith("run time, quick profile") for line in lines)
    assert any(line.split()[:2] == ["lab_toy", "3"] for line in lines)
    assert (tmp_path / "b" / "costs.md").is_file()
