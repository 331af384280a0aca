"""Tests of `elulab audit`: a real run on digits, and one-line exit-2 errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from elulab.cli import app

MODELS = str(Path(__file__).with_name("audit_models.py"))


def _run(*args: str):
    return CliRunner().invoke(app, ["audit", *args])


def test_real_run_on_digits_json_and_out(tmp_path):
    res = _run(
        f"{MODELS}:dead_cnn", "--data", "digits", "--steps", "20", "--json", "--out", str(tmp_path)
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    layers = payload["layers"]
    assert [(x["name"], x["kind"]) for x in layers] == [
        ("0", "Conv2d"),
        ("1", "ELU"),
        ("3", "Linear"),
        ("4", "ReLU"),
        ("5", "Linear"),
    ]
    for layer in layers:
        assert {
            "name",
            "kind",
            "dead_fraction",
            "saturated_fraction",
            "mean",
            "var",
            "grad_norm",
        } <= set(layer)
        assert 0.0 <= layer["dead_fraction"] <= 1.0
        assert 0.0 <= layer["saturated_fraction"] <= 1.0
    relu = layers[3]
    assert relu["dead_fraction"] == 6 / 24  # the forced-dead units, exactly
    assert layers[1]["dead_fraction"] == 0.0  # ELU: f' > 0 everywhere
    assert payload["meta"]["data"] == "digits" and payload["steps"] == 20
    assert 0.0 <= payload["eval_accuracy"] <= 1.0
    assert json.loads((tmp_path / "audit.json").read_text()) == payload
    page = (tmp_path / "audit.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "elulab-audit" in page
    assert "dead_cnn" in page and "<script" not in page


def test_table_output():
    res = _run(f"{MODELS}:dead_cnn", "--data", "digits", "--steps", "2")
    assert res.exit_code == 0, res.output
    assert "ReLU" in res.stdout and "dead" in res.stdout


def test_table_reads_at_80_columns():
    res = CliRunner().invoke(
        app,
        ["audit", f"{MODELS}:dead_cnn", "--data", "digits", "--steps", "2"],
        env={"COLUMNS": "80"},
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in res.stdout
    rows = [
        line.split() for line in lines if line.split()[:1] in (["0"], ["1"], ["3"], ["4"], ["5"])
    ]
    assert [r[1] for r in rows] == ["Conv2d", "ELU", "Linear", "ReLU", "Linear"]  # never folded
    for r in rows:
        for cell in r[3:]:
            float(cell)  # every number whole, to 3 significant digits
            assert len(cell.lstrip("-").replace(".", "").split("e")[0].lstrip("0")) <= 4, cell
    # the gain is shown where it says something (after an activation), and explained
    assert len(rows[1]) == 9 and len(rows[0]) == 8
    assert "gain: grad norm over the next layer's" in " ".join(res.stdout.split())


@pytest.mark.parametrize(
    ("spec", "data", "message"),
    [
        ("no_such_module_xyz:make", "digits", "cannot import module 'no_such_module_xyz'"),
        ("/no/such/file.py:make", "digits", "no such file"),
        (f"{MODELS}:missing", "digits", "has no attribute 'missing'"),
        (f"{MODELS}", "digits", "expected MODULE:FACTORY"),
        (f"{MODELS}:not_a_module", "digits", "not a torch.nn.Module"),
        (f"{MODELS}:broken", "digits", "factory exploded"),
        (f"{MODELS}:wrong_classes", "digits", "expected class scores (8, 10)"),
        (f"{MODELS}:wrong_input", "digits", "fails on digits inputs of shape (8, 1, 8, 8)"),
        (f"{MODELS}:dead_cnn", "cifar", "allowed: mnist, digits, mnist1d, uci:<name>"),
    ],
)
def test_bad_input_exits_2_with_one_line(spec, data, message):
    res = _run(spec, "--data", data, "--steps", "1")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in res.output


def test_unwritable_out_exits_2_naming_the_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = _run(f"{MODELS}:dead_cnn", "--data", "digits", "--steps", "1", "--out", str(blocker))
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: --out: cannot write the audit to {blocker}"
    )
