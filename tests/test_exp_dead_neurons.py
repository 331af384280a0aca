"""Tests of the C1 experiment (dead neurons): mechanism, measurement, verdict logic."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from elulab.experiments import get_experiment
from elulab.experiments.dead_neurons import (
    Config,
    DeadNeurons,
    _dead_pass,
    build_model,
    calibrate_negative_bias,
)
from elulab.lab.api import ConfigError, RunContext, RunResult


def test_registered_and_profiles():
    exp = get_experiment("dead_neurons")
    assert exp.claims == ("C1",)
    assert exp.resolve_config("full").seeds >= 5
    quick = exp.resolve_config("quick")
    assert quick.seeds >= 2 and set(quick.activations) >= {"relu", "elu", "mish"}
    with pytest.raises(ConfigError, match="unknown activation"):
        exp.resolve_config("quick", {"activations": "relu,swish"})


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_negative_bias_mechanism(arch):
    """After calibration every hidden unit has mean -shift*std on the calibration batch."""
    torch.manual_seed(0)
    model = build_model(arch, "relu", 32)
    x = torch.rand(256, 1, 28, 28)
    neg = calibrate_negative_bias(model, x, shift=3.0)
    assert neg > 0.95  # Phi(3) = 0.9987 for Gaussian pre-activations
    h = x
    for i, m in enumerate(model):
        z = m(h)
        if isinstance(m, (nn.Linear, nn.Conv2d)) and i + 1 < len(model) - 1:
            dims = (0,) if z.ndim == 2 else (0, 2, 3)
            ratio = z.mean(dim=dims) / z.std(dim=dims)
            torch.testing.assert_close(ratio, torch.full_like(ratio, -3.0), atol=1e-3, rtol=0)
        h = z


def test_dead_pass_counts_units_dead_over_the_whole_pass():
    torch.manual_seed(1)
    model = build_model("mlp", "relu", 16)
    with torch.no_grad():
        model[1].bias[:4] = -1e4  # dead on every sample
        model[1].bias[4:] = 1e3  # alive on every sample
        model[3].bias[:] = 1e3
    x, y = torch.rand(300, 1, 28, 28), torch.randint(0, 10, (300,))
    dead, sat = _dead_pass(model, x, y, eps=0.01, chunk=100)
    assert dead == 4 / 32 and sat == 0.0
    for act in ("elu", "mish"):
        torch.manual_seed(1)
        m = build_model("mlp", act, 16)
        with torch.no_grad():
            m[1].bias[:4] = -10.0  # plateau, not dead
        dead, sat = _dead_pass(m, x, y, eps=0.01, chunk=100)
        assert dead == 0.0 and sat == pytest.approx(4 / 32)


def _fake(relu: float, elu: float, mish: float, neg: float = 0.99) -> RunResult:
    m = {}
    for arch in ("mlp", "cnn"):
        for act, d in (
            ("relu", relu),
            ("leaky_relu", 0.0),
            ("elu", elu),
            ("selu", 0.0),
            ("gelu", 0.0),
            ("mish", mish),
        ):
            m.update(
                {
                    f"{arch}_{act}_dead_final": d,
                    f"{arch}_{act}_saturated_final": 0.0,
                    f"{arch}_{act}_acc": 0.9,
                    f"{arch}_{act}_neg_preact_init": neg,
                }
            )
    return RunResult(metrics=m)


def test_verdict_logic():
    exp, cfg = DeadNeurons(), Config()
    sup = exp.verdict(cfg, [_fake(0.30 + 0.01 * i, 0.0, 0.0) for i in range(5)])[0]
    assert sup.status == "supported" and sup.effect == pytest.approx(0.32)
    assert sup.ci_low < sup.effect < sup.ci_high
    contra = exp.verdict(cfg, [_fake(0.01 + 0.001 * i, 0.2 + 0.01 * i, 0.3) for i in range(5)])[0]
    assert contra.status == "not supported"
    mixed = exp.verdict(cfg, [_fake(0.02 + 0.001 * i, 0.0, 0.0) for i in range(5)])[0]
    assert mixed.status == "mixed"
    one = exp.verdict(cfg, [_fake(0.3, 0.0, 0.0)])[0]
    assert one.status == "inconclusive" and math.isnan(one.ci_low)
    broken = exp.verdict(cfg, [_fake(0.3 + 0.01 * i, 0.0, 0.0, neg=0.6) for i in range(5)])[0]
    assert broken.status == "inconclusive" and "mechanism failed" in broken.summary


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    """A reduced run on real MNIST: the measurement holds what the definitions promise."""
    exp = DeadNeurons()
    cfg = exp.resolve_config(
        "quick", {"activations": "relu,elu", "n_train": 400, "n_test": 200, "epochs": 1}
    )
    res = exp.run(cfg, 0, RunContext(tmp_path))
    for arch in cfg.archs:
        assert res.metrics[f"{arch}_elu_dead_final"] == 0.0  # f' = e^x > 0: never exactly zero
        assert res.metrics[f"{arch}_relu_neg_preact_init"] > 0.95
        for act in cfg.activations:
            assert 0.0 <= res.metrics[f"{arch}_{act}_dead_final"] <= 1.0
            assert 0.0 <= res.metrics[f"{arch}_{act}_acc"] <= 1.0
        assert len(res.series[f"dead_{arch}"].ys["relu"]) == cfg.epochs + 1
    # ReLU with 99% negative pre-activations: some units are dead already at init
    assert res.metrics["mlp_relu_dead_init"] > 0.0
    figs = exp.figures(cfg, [res, res], tmp_path / "figs")
    assert len(figs) == 2 and all(f.path.is_file() for f in figs)
