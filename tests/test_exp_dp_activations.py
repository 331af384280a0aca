"""Tests of the C10 experiment (DP-SGD): Opacus's epsilon per run, models, verdict, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.validators import ModuleValidator
from typer.testing import CliRunner

from elulab.cli import app
from elulab.experiments.dp_activations import ACTIVATIONS, DPActivations, build_model
from elulab.lab.api import ConfigError, RunContext, RunResult
from elulab.lab.verdicts import key

EXP = DPActivations()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_models_are_opacus_compatible_and_shaped(model: str, act: str) -> None:
    net = build_model(model, act, width=8)
    assert ModuleValidator.validate(net, strict=False) == []
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_every_run_records_opacus_epsilon_within_budget(tmp_path) -> None:
    """Each run's epsilon is the RDP accountant's for (sigma, q, steps) and <= the target."""
    cfg = EXP.resolve_config("smoke", {"models": ("mlp",)})
    res = EXP.run(cfg, 0, RunContext(tmp_path))
    q, steps = 1 / 8, 2 * 8  # ceil(256 / 32) batches per epoch, 2 epochs
    for act in cfg.activations:
        sigma = res.metrics[key("mlp", act, "sigma")]
        acc = RDPAccountant()
        acc.history = [(sigma, q, steps)]
        for c in cfg.clips:
            eps = res.metrics[key("mlp", act, c, "eps")]
            assert eps == acc.get_epsilon(delta=cfg.delta)
            assert eps <= cfg.epsilon
    assert res.metrics["epsilon_max"] <= cfg.epsilon
    assert res.metrics["epsilon_prv_max"] <= res.metrics["epsilon_max"]


def _results(gain_relu: list[float], gain_tanh: list[float], models=("mlp", "cnn")) -> list:
    """Synthetic runs: ELU's accuracy minus ReLU's / tanh's per seed (same at best and small C)."""
    out = []
    for s, (gr, gt) in enumerate(zip(gain_relu, gain_tanh, strict=True)):
        m = {"epsilon_max": 2.99, "epsilon_prv_max": 2.7}
        for model in models:
            base = 0.8 + 0.01 * s
            accs = {"elu": base, "relu": base - gr, "tanh": base - gt, "selu": base, "gelu": base}
            for a, v in accs.items():
                m |= {key(model, a, "best"): v, key(model, a, "small"): v - 0.01}
                m |= {key(model, a, "best_clip"): 1.0, key(model, a, "nonprivate"): 0.95}
                m[key(model, a, "init_q", 0.5)] = 2.0
        out.append(RunResult(metrics=m))
    return out


@pytest.mark.parametrize(
    ("relu", "tanh", "status"),
    [
        ([0.03, 0.031, 0.029, 0.03], [0.02, 0.021, 0.019, 0.02], "supported"),
        ([-0.03, -0.031, -0.029, -0.03], [-0.02, -0.021, -0.019, -0.02], "not supported"),
        ([0.03, 0.031, 0.029, 0.03], [-0.02, -0.021, -0.019, -0.02], "mixed"),
        ([0.03, -0.03, 0.01, -0.01], [0.02, -0.02, 0.0, 0.01], "inconclusive"),
    ],
)
def test_verdict_statuses(relu: list[float], tanh: list[float], status: str) -> None:
    cfg = EXP.resolve_config("full")
    (v,) = EXP.verdict(cfg, _results(relu, tanh))
    assert v.status == status
    assert len(v.checks) == 8 and all(abs(c.confidence - (1 - 0.05 / 8)) < 1e-12 for c in v.checks)
    assert v.effect == pytest.approx(np.mean(relu))  # ELU - ReLU at the best C, MLP
    assert "Largest epsilon spent (Opacus RDP) 2.9900 <= 3" in v.summary


def test_verdict_needs_elu_relu_tanh() -> None:
    cfg = dataclasses.replace(EXP.resolve_config("full"), activations=("elu", "relu"))
    (v,) = EXP.verdict(cfg, _results([0.1, 0.1], [0.1, 0.1]))
    assert v.status == "inconclusive" and "needs runs with elu, relu and tanh" in v.summary


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"epsilon": "0"}, "dp_activations: epsilon must be > 0, got 0.0"),
        ({"delta": "1"}, "dp_activations: delta must be < 1, got 1.0"),
        ({"small_clip": "0.5"}, "dp_activations: small_clip must be one of clips"),
    ],
)
def test_bad_config_is_one_line(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        EXP.resolve_config("quick", override)


def test_cli_bad_budget_exits_2_with_one_line(tmp_path) -> None:
    store = str(tmp_path / "s.sqlite")
    args = ["run", "dp_activations", "--set", "epsilon=-1", "--store", store]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "epsilon must be > 0, got -1.0" in lines[0]


def test_without_opacus_the_config_check_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from elulab.experiments import get_experiment
    from elulab.lab.api import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "opacus" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs Opacus: pip install 'elulab\[dp\]'"):
        get_experiment("dp_activations").resolve_config("quick")
