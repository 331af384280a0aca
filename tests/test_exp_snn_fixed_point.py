"""The snn_fixed_point experiment, quick profile: constants, Jacobian, per-layer statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from elulab.experiments.snn_fixed_point import SnnFixedPoint, layer_statistics
from elulab.lab.api import ConfigError, RunContext
from elulab.lab.backends import seed_everything


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    exp = SnnFixedPoint()
    cfg = exp.resolve_config("quick")
    results = []
    for seed in range(cfg.seeds):
        seed_everything(seed)
        results.append(exp.run(cfg, seed, RunContext(workdir=tmp_path_factory.mktemp("w"))))
    return exp, cfg, results


def test_constants_and_jacobian(quick) -> None:
    _, _, results = quick
    m = results[0].metrics
    # the constants are derived, not copied: float64 rounding is the only error
    assert m["lambda_abs_error"] < 1e-12 and m["alpha_abs_error"] < 1e-12
    # the SNN paper reports the spectral norm 0.7877 at (0, 1) (Section "Stable and
    # attracting fixed point"), printed to 4 digits
    assert m["jacobian_spectral_norm"] == pytest.approx(0.7877, abs=1e-4)
    # torch's AlphaDropout constants for p = 0.1: a = 1/sqrt((1.7581^2 p + 1)(1 - p))
    a = 1 / ((1.7580993408473766**2 * 0.1 + 1) * 0.9) ** 0.5
    assert m["alpha_dropout_a/0.1"] == pytest.approx(a, rel=1e-12)
    assert m["basin_fraction"] == 1.0  # with omega = 0 every start point converges
    assert 0 < m["kaiming_selu_fixed_point_var"] < 0.05


def test_per_layer_statistics_and_verdict(quick, tmp_path: Path) -> None:
    exp, cfg, results = quick
    for r in results:
        assert len(r.series["var"].x) == cfg.depth == 64
        # SELU + LeCun: inside the band at depth, with and without AlphaDropout
        for lab in ("selu_lecun", "selu_lecun+alphadropout"):
            assert r.metrics[f"max_abs_mean/{lab}"] <= cfg.band_mean
            assert r.metrics[f"max_abs_var_dev/{lab}"] <= cfg.band_var
        # the two PyTorch mistakes leave it: Kaiming-SELU gain collapses the variance,
        # plain dropout inflates it
        assert r.metrics["final_var/selu_kaiming_selu"] < 0.1
        assert r.metrics["final_var/selu_lecun+standard_dropout"] > 1.3
    (v,) = exp.verdict(cfg, results)
    assert v.status == "supported" and v.n_seeds == 2
    assert v.effect <= cfg.band_var
    figs = exp.figures(cfg, results, tmp_path)
    assert [f.path.name for f in figs] == [
        "snn_flow_field.png",
        "snn_layer_var.png",
        "snn_layer_mean.png",
    ]
    assert all(f.path.stat().st_size > 1000 for f in figs)


def test_layer_statistics_inputs() -> None:
    x = torch.randn(128, 16, generator=torch.Generator().manual_seed(0))
    a = layer_statistics(x, activation="selu", depth=3, width=32, seed=1)
    b = layer_statistics(x, activation="selu", depth=3, width=32, seed=1)
    assert a == b  # seeded
    with pytest.raises(ValueError, match="dropout must be"):
        layer_statistics(x, activation="selu", depth=3, width=32, dropout="gaussian")
    with pytest.raises(ConfigError, match="burn_in"):
        SnnFixedPoint().resolve_config("quick", {"burn_in": 100})
