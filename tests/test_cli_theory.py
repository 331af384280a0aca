"""`elulab constants ...` and `elulab moments ...`: exit codes, JSON keys and values."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from elulab.cli import app
from elulab.functional import SELU_ALPHA, SELU_LAMBDA
from elulab.theory import alpha_dropout_parameters, gaussian_moments, solve_selu_parameters


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def as_json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_constants_selu_json():
    data = as_json("constants", "selu")
    assert {"lambda", "alpha", "jacobian_spectral_norm"} <= set(data)
    assert abs(data["lambda"] - SELU_LAMBDA) <= 1e-12 * SELU_LAMBDA
    assert abs(data["alpha"] - SELU_ALPHA) <= 1e-12 * SELU_ALPHA
    assert abs(data["jacobian_spectral_norm"] - 0.7876734) <= 5e-8
    assert len(data["jacobian"]) == 2


def test_constants_selu_custom_fixed_point_and_convention():
    data = as_json(
        "constants", "selu", "--mean", "-0.1", "--var", "2", "--omega", "1", "--tau", "1"
    )
    assert data["alpha"] == pytest.approx(1.97690219542420, rel=1e-13)
    assert data["lambda"] == pytest.approx(1.07385123961605, rel=1e-13)
    paper = as_json("constants", "selu", "--mean", "-0.1", "--var", "2")
    assert paper["alpha"] == pytest.approx(2.32699077881934, rel=1e-13)
    assert paper["omega"] == 0.0 and paper["tau"] == 1.0


def test_constants_selu_table():
    result = invoke("constants", "selu")
    assert result.exit_code == 0
    assert "lambda" in result.stdout and "1.0507009873554" in result.stdout


def test_constants_alpha_dropout():
    data = as_json("constants", "alpha-dropout", "--rate", "0.05")
    assert {"a", "b", "alpha_prime"} <= set(data)
    assert round(data["a"], 5) == 0.95484 and round(data["b"], 5) == 0.08394
    want = alpha_dropout_parameters(0.1, mean=0.2, var=1.5)
    got = as_json("constants", "alpha-dropout", "--rate", "0.1", "--mean", "0.2", "--var", "1.5")
    assert got["a"] == want.a and got["b"] == want.b and got["alpha_prime"] == want.alpha_prime
    assert invoke("constants", "alpha-dropout", "--rate", "0.05").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("elu", "--mean", "0", "--std", "1"),
        ("selu", "--mean", "-0.3", "--std", "2"),
        ("celu", "--alpha", "2", "--mean", "0.5", "--std", "0.1"),
        ("leaky_relu", "--negative-slope", "0.2", "--mean", "1", "--std", "3"),
        ("tanh", "--mean", "0.2", "--std", "1.5"),
    ],
)
def test_moments_json_matches_the_library(args):
    data = as_json("moments", *args)
    keys = {"mean", "second_moment", "variance", "mean_slope", "mean_slope_sq", "method"}
    assert keys <= set(data)
    opts = dict(zip(args[1::2], args[2::2], strict=True))
    params = {}
    if "--alpha" in opts:
        params["alpha"] = float(opts["--alpha"])
    if "--negative-slope" in opts:
        params["negative_slope"] = float(opts["--negative-slope"])
    want = gaussian_moments(args[0], float(opts["--mean"]), float(opts["--std"]), **params)
    for key in keys - {"method"}:
        assert data[key] == getattr(want, key)
    assert data["method"] == want.method


def test_moments_known_value_and_table():
    data = as_json("moments", "elu", "--mean", "0", "--std", "1")
    assert abs(data["mean_slope"] - 0.761578291865123371) <= 2.3e-16
    assert data["method"] == "closed form"
    assert as_json("moments", "relu", "--mean", "0", "--std", "1")["mean_slope"] == 0.5
    result = invoke("moments", "gelu", "--mean", "0", "--std", "1")
    assert result.exit_code == 0 and "quadrature" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("moments", "swish9", "--mean", "0", "--std", "1"), "allowed: relu, leaky_relu, elu"),
        (("moments", "elu", "--mean", "0", "--std", "0"), "--std must be a finite number > 0"),
        (("moments", "elu", "--mean", "0", "--std", "-2"), "--std must be a finite number > 0"),
        (("moments", "elu", "--mean", "nan", "--std", "1"), "--mean must be a finite number"),
        (("moments", "elu", "--alpha", "0", "--std", "1"), "alpha must be a finite number > 0"),
        (("moments", "elu", "--alpha", "-1", "--std", "1"), "alpha must be a finite number > 0"),
        (("moments", "relu", "--alpha", "2"), "alpha applies to elu, celu and selu only"),
        (("constants", "alpha-dropout", "--rate", "1"), "--rate must be in [0, 1)"),
        (("constants", "alpha-dropout", "--rate", "-0.1"), "--rate must be in [0, 1)"),
        (("constants", "selu", "--mean", "1", "--var", "0.01"), "must lie in ("),
        (("constants", "selu", "--var", "0"), "--var must be a finite number > 0"),
        (("constants", "selu", "--tau", "0"), "--tau must be a finite number > 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_missing_rate_is_a_usage_error():
    result = invoke("constants", "alpha-dropout")
    assert result.exit_code == 2
    assert "--rate" in result.stderr


def test_json_is_strict():
    """No NaN/Infinity in the JSON (print_json refuses them): every value is finite."""
    data = as_json("constants", "alpha-dropout", "--rate", "0.3", "--mean", "0.1", "--var", "0.8")
    assert all(math.isfinite(v) for v in data.values())
    solved = solve_selu_parameters(0.1, 0.8)
    assert data["lambda"] == solved.lam and data["alpha"] == solved.alpha


def test_kernel_json_matches_the_library_and_relu_arccos():
    from elulab.theory.kernels import elu_nngp_step, elu_ntk_step

    data = as_json("kernel", "elu", "--alpha", "2", "--s11", "1", "--s12", "0.3", "--s22", "1.5")
    assert data["nngp_step"] == float(elu_nngp_step(1.0, 0.3, 1.5, alpha=2.0))
    assert data["ntk_step"] == float(elu_ntk_step(1.0, 0.3, 1.5, alpha=2.0))
    relu = as_json("kernel", "relu", "--s11", "1", "--s12", "0", "--s22", "1")
    # arc-cosine kernel at rho = 0: 1/(2 pi); E[1{u>0} 1{v>0}] = 1/4
    assert relu["nngp_step"] == pytest.approx(1 / (2 * math.pi), rel=1e-14)
    assert relu["ntk_step"] == 0.25
    table = invoke("kernel", "elu", "--s11", "1", "--s12", "0.5", "--s22", "2")
    assert table.exit_code == 0 and "E[f(u) f(v)]" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--s11", "1", "--s12", "2", "--s22", "1"), "positive semi-definite"),
        (("--s11", "0", "--s12", "0", "--s22", "1"), "s11"),
        (("--s11", "1", "--s12", "0", "--s22", "1", "--alpha", "-1"), "alpha"),
    ],
)
def test_kernel_bad_covariance_exits_2_with_one_line(args, message):
    result = invoke("kernel", "elu", *args)
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
