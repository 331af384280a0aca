"""Tests of the C1 experiment (dead neurons): mechanism, training, verdict logic.

The whole-pass measurements (dead fractions, float32 zeros of f') are tested in
``tests/test_diagnostics_whole_pass.py``."""

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
)
from elulab.lab.api import RunContext, RunResult
from elulab.lab.verdicts import check, key


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
    # ReLU: f' = 0 exactly where x <= 0; a unit with f' = 0 on every sample is dead
    assert 0.0 < row["zero_slope_share"] <= 1.0 and row["zero_slope_units"] <= row["dead_final"]
    assert math.isfinite(row["min_preact"])
    again, _, _ = _one(cfg, "mlp", "relu", _data(), seed=0)
    assert again == row  # seeded: weights and batches


def test_one_model_diverged_stops_and_scores_chance():
    cfg = Config(n_train=40, epochs=3, batch_size=16, mlp_width=8, calib_size=20, lr=1e30)
    row, dead, _ = _one(cfg, "mlp", "elu", _data(), seed=0)
    assert row["diverged"] == 1.0 and row["acc"] == 0.1
    assert len(dead) < cfg.epochs + 1 and all(math.isfinite(v) for v in dead)


ACTS = ("relu", "leaky_relu", "elu", "selu", "gelu", "mish")
X0 = {"elu": -103.97208404541016, "mish": -102.87346649169922}  # float32 zero-slope points


def _fake(relu, elu: float = 0.0, mish: float = 0.0, neg: float = 0.99) -> RunResult:
    """One seed; ``relu`` (and ``elu``) a number or ``{arch: number}``."""
    m = {key("float32", a, "zero_slope_point"): x for a, x in X0.items()}
    for arch in ("mlp", "cnn"):
        for act in ACTS:
            d = {"relu": relu, "elu": elu, "mish": mish}.get(act, 0.0)
            d = d[arch] if isinstance(d, dict) else d
            m.update(
                {
                    key(arch, act, "dead_final"): d,
                    key(arch, act, "saturated_final"): 0.0,
                    key(arch, act, "acc"): 0.9,
                    key(arch, act, "neg_preact_init"): neg,
                    key(arch, act, "zero_slope_share"): 0.0,
                    key(arch, act, "zero_slope_units"): d if act == "elu" else 0.0,
                    key(arch, act, "min_preact"): -20.0,
                }
            )
    return RunResult(metrics=m)


def _verdict(runs: list[RunResult], **cfg):
    return DeadNeurons().verdict(Config(**cfg), runs)[0]


def test_verdict_supported_in_both_architectures():
    v = _verdict([_fake(0.30 + 0.01 * i) for i in range(5)])
    assert v.status == "supported" and v.qualifier == "" and v.effect == pytest.approx(0.32)
    assert v.ci_low < v.effect < v.ci_high
    assert [c.label for c in v.checks] == [
        f"{a} final dead fraction ({arch})"
        for arch in ("MLP", "CNN")
        for a in ("ReLU", "ELU", "Mish")
    ]
    assert all(c.status == "supported" for c in v.checks)
    # Bonferroni over the six checks of the claim
    assert all(c.confidence == pytest.approx(1 - 0.05 / 6) for c in v.checks)
    assert "MLP supported; CNN supported" in v.summary


def test_verdict_is_decided_per_architecture_not_pooled():
    """MLP's ReLU below 'large', CNN's far above: the pooled mean (0.21) would pass."""
    runs = [_fake({"mlp": 0.02 + 0.001 * i, "cnn": 0.40 + 0.01 * i}) for i in range(5)]
    v = _verdict(runs)
    assert v.status == "mixed" and v.qualifier == "holds for CNN only"
    assert "MLP mixed: ReLU final dead fraction (MLP) not supported" in v.summary
    assert "CNN supported" in v.summary
    # the headline effect is the architecture with less dead ReLU, MLP here
    assert v.effect == pytest.approx(0.022) and "MLP" in v.effect_name
    # the other way round: the same rule
    runs = [_fake({"mlp": 0.40 + 0.01 * i, "cnn": 0.02 + 0.001 * i}) for i in range(5)]
    v = _verdict(runs)
    assert v.status == "mixed" and v.qualifier == "holds for MLP only" and "CNN" in v.effect_name


def test_verdict_undecided_architecture_is_inconclusive_and_says_where_it_holds():
    runs = [_fake({"mlp": x, "cnn": 0.40}) for x in (0.02, 0.25, 0.08, 0.18, 0.12)]
    v = _verdict(runs)
    assert v.status == "inconclusive" and v.qualifier == "holds for CNN only"
    assert "MLP inconclusive: ReLU final dead fraction (MLP) inconclusive" in v.summary


def test_bonferroni_decides_a_borderline_relu():
    """At 95% alone the interval clears 0.10; over the family of 6 it does not."""
    vals = [0.105, 0.145, 0.115, 0.135, 0.125]
    assert check("x", vals, above=0.10).status == "supported"
    v = _verdict([_fake(x) for x in vals])
    assert v.checks[0].status == "inconclusive" and v.status == "inconclusive"
    assert v.qualifier == ""  # it holds nowhere


def test_elu_checks_are_labelled_analytic_and_can_fail():
    ok = _verdict([_fake(0.3 + 0.01 * i) for i in range(5)])
    elu = [c for c in ok.checks if c.label.startswith("ELU")]
    assert all("analytic: f' > 0 in float32 unless x <= -103.97" in c.sentence for c in elu)
    assert "not an empirical finding" in ok.summary and "elu -103.9721" in ok.summary
    # ELU units dead (as by float32 underflow of e^x): its sub-claim fails, the verdict is mixed
    bad = _verdict([_fake(0.3 + 0.01 * i, elu=0.2 + 0.01 * i) for i in range(5)])
    assert [c.status for c in bad.checks if c.label.startswith("ELU")] == ["not supported"] * 2
    assert bad.status == "mixed"


def test_verdict_contradicted_one_seed_mechanism_and_missing_activations():
    contra = _verdict([_fake(0.01 + 0.001 * i, 0.2 + 0.01 * i, 0.3) for i in range(5)])
    assert contra.status == "not supported" and contra.qualifier == ""
    one = _verdict([_fake(0.3)])
    assert one.status == "inconclusive" and math.isnan(one.ci_low)
    assert one.effect == pytest.approx(0.3)
    broken = _verdict([_fake(0.3 + 0.01 * i, neg=0.6) for i in range(5)])
    assert broken.status == "inconclusive" and "mechanism failed" in broken.summary
    assert broken.qualifier == ""
    few = _verdict([_fake(0.3)], activations=("relu", "elu"))
    assert few.status == "inconclusive" and "needs runs with relu, elu and mish" in few.summary


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
        assert res.metrics[key(arch, "elu", "zero_slope_units")] == 0.0
        assert -103.97 < res.metrics[key(arch, "elu", "min_preact")] < 0.0
        assert res.metrics[key(arch, "relu", "neg_preact_init")] > 0.95
        for act in cfg.activations:
            assert 0.0 <= res.metrics[key(arch, act, "dead_final")] <= 1.0
            assert 0.0 <= res.metrics[key(arch, act, "acc")] <= 1.0
        assert len(res.series[key("dead", arch)].ys["relu"]) == cfg.epochs + 1
    # ReLU with 99% negative pre-activations: some units are dead already at init
    assert res.metrics[key("mlp", "relu", "dead_init")] > 0.0
    assert res.metrics[key("float32", "elu", "zero_slope_point")] == X0["elu"]
    figs = exp.figures(cfg, [res, res], tmp_path / "figs")
    assert len(figs) == 2 and all(f.path.is_file() for f in figs)
