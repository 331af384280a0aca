"""The snn_fixed_point experiment: constants, Jacobian, per-layer statistics, verdict rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from elulab.experiments.snn_fixed_point import SnnFixedPoint, _variants, layer_statistics
from elulab.lab.api import ConfigError, RunContext, RunResult
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
    flow = results[0].tables["flow"]
    assert len(flow) == 15 * 15 and len(results[0].tables["basin"]) == 40 * 40
    # the flow vanishes at the fixed point's variance and points toward it
    assert all((row["dnu"] > 0) == (row["nu"] < 1.0) for row in flow if abs(row["nu"] - 1) > 0.1)


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


# -- the verdict rule on synthetic runs ---------------------------------------------------


def _synthetic(
    n: int, *, selu_var: float = 0.05, inside: tuple[str, ...] = (), err: float = 3e-16
) -> list[RunResult]:
    """Runs in which SELU+LeCun has |var - 1| = selu_var (+ 0.01 per seed), the labels in
    ``inside`` sit in the band as well, and every other set-up is far outside it."""
    runs = []
    for i in range(n):
        m = {"lambda_abs_error": err, "alpha_abs_error": err, "jacobian_spectral_norm": 0.79}
        for label, *_ in _variants():
            ok = label.startswith("selu_lecun+a") or label == "selu_lecun" or label in inside
            m[f"max_abs_mean/{label}"] = 0.01 if ok else 0.5
            m[f"max_abs_var_dev/{label}"] = (selu_var + 0.01 * i) if ok else 3.0
        runs.append(RunResult(metrics=m))
    return runs


@pytest.mark.parametrize(
    "runs, status",
    [
        (_synthetic(3), "supported"),
        (_synthetic(1), "inconclusive"),  # one seed never supports the claim
        (_synthetic(3, inside=("tanh_xavier",)), "mixed"),  # another set-up stays inside
        (_synthetic(3, selu_var=0.095), "not supported"),  # seed 2 leaves the band (0.115)
        (_synthetic(3, err=1e-9), "not supported"),  # constants not derived to 1e-12
    ],
)
def test_verdict_rule(runs, status) -> None:
    exp = SnnFixedPoint()
    cfg = exp.resolve_config("quick")
    (v,) = exp.verdict(cfg, runs)
    assert v.status == status, v.summary
    # the effect: the mean over seeds of SELU+LeCun's largest |var - 1|
    worst = [r.metrics["max_abs_var_dev/selu_lecun"] for r in runs]
    assert v.effect == pytest.approx(sum(worst) / len(worst))
    assert len(v.checks) == 4 and v.n_seeds == len(runs)


def test_verdict_names_the_set_ups_that_stay_inside() -> None:
    exp = SnnFixedPoint()
    (v,) = exp.verdict(exp.resolve_config("quick"), _synthetic(2, inside=("relu_he",)))
    assert v.checks[3].status == "not supported" and v.checks[3].note == "relu_he"


# -- the propagation mechanism ------------------------------------------------------------


def test_layer_statistics_is_seeded_and_leaves_the_global_generator_alone() -> None:
    x = torch.randn(128, 16, generator=torch.Generator().manual_seed(0))
    before = torch.random.get_rng_state()
    a = layer_statistics(x, activation="selu", depth=3, width=32, dropout="alpha", seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = layer_statistics(x, activation="selu", depth=3, width=32, dropout="alpha", seed=1)
    c = layer_statistics(x, activation="selu", depth=3, width=32, dropout="alpha", seed=2)
    assert a == b and a != c


def test_layer_statistics_inputs() -> None:
    x = torch.randn(128, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="dropout must be"):
        layer_statistics(x, activation="selu", depth=3, width=32, dropout="gaussian")
    with pytest.raises(ConfigError, match="burn_in"):
        SnnFixedPoint().resolve_config("quick", {"burn_in": 100})
