"""The snn_fixed_point experiment: constants, Jacobian, per-layer statistics against their
predicted bands, and the verdict rule (each sub-check both ways, on synthetic runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from scipy.stats import norm

from elulab.diagnostics import layer_statistics
from elulab.experiments.snn_fixed_point import CONTROLS, SELU_LECUN, SnnFixedPoint, band_z
from elulab.lab.api import ConfigError, RunContext, RunResult
from elulab.lab.backends import seed_everything

SMALL = {"depth": 32, "width": 128, "n_inputs": 256, "burn_in": 12}  # ~10 s for 2 seeds


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    exp = SnnFixedPoint()
    cfg = exp.resolve_config("quick", SMALL)
    results = []
    for seed in range(cfg.seeds):
        seed_everything(seed)
        results.append(exp.run(cfg, seed, RunContext(workdir=tmp_path_factory.mktemp("w"))))
    return exp, cfg, results


def test_constants_and_jacobian(small) -> None:
    _, _, results = small
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
    # Kaiming's SELU gain: normalised weights (omega = 0) and random ones disagree
    assert m["kaiming_selu_fixed_point_var"] == pytest.approx(0.02676, abs=1e-5)
    assert m["kaiming_selu_random_weights_fixed_point_var"] == pytest.approx(0.03983, abs=1e-5)
    flow = results[0].tables["flow"]
    assert len(flow) == 15 * 15 and len(results[0].tables["basin"]) == 40 * 40
    # the flow vanishes at the fixed point's variance and points toward it
    assert all((row["dnu"] > 0) == (row["nu"] < 1.0) for row in flow if abs(row["nu"] - 1) > 0.1)


def test_measured_nets_sit_in_their_predicted_bands(small, tmp_path: Path) -> None:
    exp, cfg, results = small
    z, rms = band_z(cfg, len(results)), []
    for r in results:
        assert len(r.series["var"].x) == cfg.depth
        for lab in SELU_LECUN + CONTROLS:
            assert max(r.metrics[f"max_z_{s}/{lab}"] for s in ("mean", "var")) <= z, lab
            rms += [r.metrics[f"rms_z_{s}/{lab}"] for s in ("mean", "var")]
        # the controls sit far from (0, 1): Kaiming's gain collapses the variance, plain
        # dropout inflates it, as predicted
        assert r.metrics["pred_final_var/selu_kaiming_selu"] < 0.06
        assert r.metrics["pred_final_var/selu_lecun+standard_dropout"] > 1.5
        assert r.metrics["final_var/selu_lecun+standard_dropout"] > 1.3
    # calibration: the deviations from the prediction are about one predicted sd. Each rms
    # is over 21 layers of an AR(1) (J 0.6 to 0.95: a few independent values), so only
    # their mean over set-ups, statistics and seeds is tight (+-0.4)
    assert 0.6 < sum(rms) / len(rms) < 1.4
    (v,) = exp.verdict(cfg, results)
    assert v.status == "supported" and v.n_seeds == 2
    assert len(v.checks) == 2 + len(SELU_LECUN) + len(CONTROLS)
    figs = exp.figures(cfg, results, tmp_path)
    names = ["snn_flow_field.png", "snn_layer_var.png", "snn_layer_mean.png", "snn_band_z.png"]
    assert [f.path.name for f in figs] == names
    assert all(f.path.stat().st_size > 1000 for f in figs)


def test_band_z_is_bonferroni_over_layers_statistics_and_seeds() -> None:
    cfg = SnnFixedPoint().resolve_config("quick")  # layers 16..64, two statistics, 2 sides
    assert band_z(cfg, 2) == pytest.approx(norm.isf(0.01 / (4 * 49 * 2)), rel=1e-12)
    assert band_z(cfg, 2) == pytest.approx(4.05, abs=0.01)
    assert band_z(cfg, 5) > band_z(cfg, 2)
    loose = SnnFixedPoint().resolve_config("quick", {"false_alarm": 0.1})
    assert band_z(loose, 2) < band_z(cfg, 2)


# -- the verdict rule on synthetic runs ---------------------------------------------------


def _synthetic(
    n: int,
    *,
    z: dict[str, float] | None = None,
    err: float = 3e-16,
    rho: float = 0.79,
    worst: float = 0.05,
) -> list[RunResult]:
    """Runs in which every banded set-up's largest |z| is 1.5 (+ 0.1 per seed) unless
    ``z`` says otherwise for a label (seed 0 only), and SELU+LeCun's largest |var - 1|
    is ``worst`` + 0.01 per seed."""
    runs = []
    for i in range(n):
        m = {"lambda_abs_error": err, "alpha_abs_error": err, "jacobian_spectral_norm": rho}
        for lab in SELU_LECUN + CONTROLS:
            zi = (z or {}).get(lab, 1.5) if i == 0 else 1.5 + 0.1 * i
            m |= {f"max_z_mean/{lab}": 1.0, f"max_z_var/{lab}": zi}
            m |= {f"rms_z_mean/{lab}": 1.0, f"rms_z_var/{lab}": 1.0}
            m |= {f"max_abs_var_dev/{lab}": worst + 0.01 * i, f"sd_final_var/{lab}": 0.02}
        runs.append(RunResult(metrics=m))
    return runs


Z3 = band_z(SnnFixedPoint().resolve_config("quick"), 3)


@pytest.mark.parametrize(
    "runs, status",
    [
        (_synthetic(3), "supported"),
        (_synthetic(1), "inconclusive"),  # one seed never supports the claim
        (_synthetic(3, err=1e-9), "not supported"),  # constants not derived to 1e-12
        (_synthetic(3, rho=1.01), "not supported"),  # the fixed point does not attract
        # SELU + LeCun leaves its band around (0, 1) in one seed and one layer
        (_synthetic(3, z={"selu_lecun": Z3 + 0.01}), "not supported"),
        (_synthetic(3, z={"selu_lecun": Z3 - 0.01}), "supported"),
        (_synthetic(3, z={"selu_lecun+alphadropout": Z3 + 0.01}), "not supported"),
        # SELU holds, but a control contradicts its prediction: the band is in doubt
        *[(_synthetic(3, z={c: Z3 + 0.01}), "mixed") for c in CONTROLS],
        *[(_synthetic(3, z={c: Z3 - 0.01}), "supported") for c in CONTROLS],
        # a control failing cannot rescue a failed claim
        (_synthetic(3, z={"selu_lecun": 9.0, "elu_lecun": 9.0}), "not supported"),
    ],
)
def test_verdict_rule(runs, status) -> None:
    exp = SnnFixedPoint()
    (v,) = exp.verdict(exp.resolve_config("quick"), runs)
    assert v.status == status, v.summary
    # the effect: the mean over seeds of SELU+LeCun's largest |var - 1| (either dropout)
    worst = [r.metrics["max_abs_var_dev/selu_lecun"] for r in runs]
    assert v.effect == pytest.approx(sum(worst) / len(worst))
    assert len(v.checks) == 8 and v.n_seeds == len(runs)


def test_verdict_names_the_failing_control_and_its_calibration() -> None:
    exp = SnnFixedPoint()
    (v,) = exp.verdict(exp.resolve_config("quick"), _synthetic(2, z={"elu_lecun": 7.0}))
    (bad,) = [c for c in v.checks if c.status != "supported"]
    assert bad.label.startswith("elu_lecun") and bad.effect.value == 7.0
    assert "rms deviation from the prediction 1.00 sd" in bad.note
    assert "z = 4.05" in v.summary  # two seeds: Bonferroni over 2 x 49 layers x 2 x 2


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
