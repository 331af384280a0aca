"""Tests of the C1 experiment (dead neurons): mechanism, measurement, training, verdict logic."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from elulab.experiments.dead_neurons import (
    Config,
    DeadNeurons,
    _one,
    build_model,
    calibrate_negative_bias,
    dead_fractions,
)
from elulab.lab.api import RunContext, RunResult
from elulab.lab.verdicts import key


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
    out = model[-1]
    torch.manual_seed(0)
    fresh = build_model(arch, "relu", 32)[-1]
    assert torch.equal(out.bias, fresh.bias)  # the output layer is left alone


def test_mlp_is_the_old_hand_written_mlp():
    """build_model("mlp") draws the same default init as the explicit 784-w-w-10 stack."""
    torch.manual_seed(3)
    new = build_model("mlp", "elu", 16)
    torch.manual_seed(3)
    old = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 16), nn.ELU(), nn.Linear(16, 16), nn.ELU(), nn.Linear(16, 10)
    )
    assert len(new) == len(old) and isinstance(new[0], nn.Flatten)
    for a, b in zip(new.parameters(), old.parameters(), strict=True):
        assert torch.equal(a, b)


def test_dead_fractions_count_units_dead_over_the_whole_pass():
    torch.manual_seed(1)
    model = build_model("mlp", "relu", 16)
    with torch.no_grad():
        model[1].bias[:4] = -1e4  # dead on every sample
        model[1].bias[4:] = 1e3  # alive on every sample
        model[3].bias[:] = 1e3
    x, y = torch.rand(300, 1, 28, 28), torch.randint(0, 10, (300,))
    dead, sat = dead_fractions(model, x, y, eps=0.01, chunk=100)
    assert dead == 4 / 32 and sat == 0.0
    for act in ("elu", "mish"):
        torch.manual_seed(1)
        m = build_model("mlp", act, 16)
        with torch.no_grad():
            m[1].bias[:4] = -10.0  # plateau, not dead
        dead, sat = dead_fractions(m, x, y, eps=0.01, chunk=100)
        assert dead == 0.0 and sat == pytest.approx(4 / 32)


def _data(n: int = 40) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    return x, y, x[:10], y[:10]


def test_one_model_measures_after_every_epoch():
    cfg = Config(n_train=40, epochs=3, batch_size=16, mlp_width=8, calib_size=20)
    row, dead, sat = _one(cfg, "mlp", "relu", _data(), seed=0)
    assert len(dead) == len(sat) == cfg.epochs + 1  # init, then one per epoch (3 batches each)
    assert row["dead_init"] == dead[0] and row["dead_final"] == dead[-1]
    assert row["diverged"] == 0.0 and 0.0 <= row["acc"] <= 1.0
    again, _, _ = _one(cfg, "mlp", "relu", _data(), seed=0)
    assert again == row  # seeded: weights and batches


def test_one_model_diverged_stops_and_scores_chance():
    cfg = Config(n_train=40, epochs=3, batch_size=16, mlp_width=8, calib_size=20, lr=1e30)
    row, dead, _ = _one(cfg, "mlp", "elu", _data(), seed=0)
    assert row["diverged"] == 1.0 and row["acc"] == 0.1
    assert len(dead) < cfg.epochs + 1 and all(math.isfinite(v) for v in dead)


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
                    key(arch, act, "dead_final"): d,
                    key(arch, act, "saturated_final"): 0.0,
                    key(arch, act, "acc"): 0.9,
                    key(arch, act, "neg_preact_init"): neg,
                }
            )
    return RunResult(metrics=m)


def test_verdict_logic():
    exp, cfg = DeadNeurons(), Config()
    sup = exp.verdict(cfg, [_fake(0.30 + 0.01 * i, 0.0, 0.0) for i in range(5)])[0]
    assert sup.status == "supported" and sup.effect == pytest.approx(0.32)
    assert sup.ci_low < sup.effect < sup.ci_high
    assert [c.status for c in sup.checks] == ["supported"] * 3
    contra = exp.verdict(cfg, [_fake(0.01 + 0.001 * i, 0.2 + 0.01 * i, 0.3) for i in range(5)])[0]
    assert contra.status == "not supported"
    mixed = exp.verdict(cfg, [_fake(0.02 + 0.001 * i, 0.0, 0.0) for i in range(5)])[0]
    assert mixed.status == "mixed"
    one = exp.verdict(cfg, [_fake(0.3, 0.0, 0.0)])[0]
    assert one.status == "inconclusive" and math.isnan(one.ci_low)
    assert one.effect == pytest.approx(0.3)
    broken = exp.verdict(cfg, [_fake(0.3 + 0.01 * i, 0.0, 0.0, neg=0.6) for i in range(5)])[0]
    assert broken.status == "inconclusive" and "mechanism failed" in broken.summary
    few = exp.verdict(Config(activations=("relu", "elu")), [_fake(0.3, 0.0, 0.0)])[0]
    assert few.status == "inconclusive" and "needs runs with relu, elu and mish" in few.summary


def test_verdict_pools_over_the_architectures():
    """The rule is on the mean of MLP and CNN: one architecture alone may be below."""
    runs = []
    for i in range(5):
        r = _fake(0.0, 0.0, 0.0)
        r.metrics[key("mlp", "relu", "dead_final")] = 0.02 + 0.001 * i
        r.metrics[key("cnn", "relu", "dead_final")] = 0.40
        runs.append(r)
    v = DeadNeurons().verdict(Config(), runs)[0]
    assert v.status == "supported" and v.effect == pytest.approx(0.211)


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    """A reduced run on real MNIST: the measurement holds what the definitions promise."""
    exp = DeadNeurons()
    cfg = exp.resolve_config(
        "quick", {"activations": "relu,elu", "n_train": 400, "n_test": 200, "epochs": 1}
    )
    res = exp.run(cfg, 0, RunContext(tmp_path))
    for arch in cfg.archs:
        assert res.metrics[key(arch, "elu", "dead_final")] == 0.0  # f' = e^x > 0: never zero
        assert res.metrics[key(arch, "relu", "neg_preact_init")] > 0.95
        for act in cfg.activations:
            assert 0.0 <= res.metrics[key(arch, act, "dead_final")] <= 1.0
            assert 0.0 <= res.metrics[key(arch, act, "acc")] <= 1.0
        assert len(res.series[key("dead", arch)].ys["relu"]) == cfg.epochs + 1
    # ReLU with 99% negative pre-activations: some units are dead already at init
    assert res.metrics[key("mlp", "relu", "dead_init")] > 0.0
    figs = exp.figures(cfg, [res, res], tmp_path / "figs")
    assert len(figs) == 2 and all(f.path.is_file() for f in figs)
