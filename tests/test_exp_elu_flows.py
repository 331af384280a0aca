"""Tests of C7 (ELU as a flow building block): config rules, verdict logic, a tiny run.

The exactness table (``elulab.flows.bijection_table``) is tested in
tests/test_flows_transforms.py, the training (``elulab.train.fit_flow``, ``tune_lr``) in
tests/test_train_flows.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from elulab.data import DataNotFoundError, load_htru2, load_uci
from elulab.experiments.elu_flows import EluFlows
from elulab.lab.api import ConfigError, RunContext, RunResult
from needs import missing

SETS, DEPTHS = ("htru2", "magic"), (2, 8)
ARMS = ("linear", "elu_tail", "elu_linear", "leaky_relu", "leaky_softplus")


def test_config_needs_the_arms_the_verdict_compares() -> None:
    exp = EluFlows()
    with pytest.raises(ConfigError, match="must include 'linear'"):
        exp.resolve_config("quick", {"arms": "elu_tail,leaky_relu"})
    with pytest.raises(ConfigError, match="must include"):
        exp.resolve_config("quick", {"arms": "linear,elu_tail,elu"})
    with pytest.raises(ConfigError, match="must include"):
        exp.resolve_config(
            "quick", {"elu_arms": "elu_linear", "arms": "linear,elu_tail,leaky_relu"}
        )
    with pytest.raises(ConfigError, match="elu_arms must be one of"):
        exp.resolve_config("quick", {"elu_arms": "elu"})  # the pure ELU cannot be scored
    with pytest.raises(ConfigError, match="depths must be >= 1"):
        exp.resolve_config("quick", {"depths": "0,2"})


def _cfg(**extra: str):
    over = {"datasets": ",".join(SETS), "depths": ",".join(map(str, DEPTHS)), **extra}
    return EluFlows().resolve_config("full", {"arms": ",".join(("elu", *ARMS)), **over})


def _results(
    nll: dict[str, list[float]], n: int = 5, errors=None, val=None, noise: float = 5e-4
) -> list[RunResult]:
    """n seeds; ``nll[arm]`` is one offset per seed added in every setting, plus noise."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        m = {f"correct/{b}/float64/{k}": 1e-16 for b in ("elu", "elu_tail", "elu_linear")
             for k in ("roundtrip_y_rel", "logdet_err")}  # fmt: skip
        m.update({"correct/flow/float64/layer_err": 1e-16,
                  "correct/flow/float64/flow_err_over_eps_cond": 0.05})  # fmt: skip
        for ds in SETS:
            m[f"below_alpha_rows/{ds}"] = 0.3
            for k in DEPTHS:
                base = 1.0 + rng.normal(0, 0.05)  # the split: shared by every arm of a seed
                for arm in ARMS:
                    v = base + nll.get(arm, [0.0] * n)[i] + rng.normal(0, noise)
                    m[f"nll/{ds}/{k}/{arm}"] = v
                    m[f"val/{ds}/{k}/{arm}"] = (val or {}).get(arm, v)
                m[f"outside_test/{ds}/{k}/elu"] = 0.001 * k
                m[f"outside_train/{ds}/{k}/elu"] = 0.01
        m.update(errors or {})
        out.append(RunResult(metrics=m))
    return out


GOOD = {"linear": [0.5] * 5, "leaky_relu": [0.02] * 5, "leaky_softplus": [0.0] * 5}


@pytest.mark.parametrize(
    ("nll", "errors", "status"),
    [
        (GOOD, {}, "supported"),  # within the margin of the best other, well below linear
        # non-inferiority fails: 0.2 nats/dim worse than leaky_softplus (margin 0.05)
        ({**GOOD, "leaky_softplus": [-0.2] * 5}, {}, "mixed"),
        # the nonlinearity does not help: linear-only is better everywhere
        ({**GOOD, "linear": [-0.3] * 5}, {}, "mixed"),
        # both fail everywhere
        ({"linear": [-0.3] * 5, "leaky_softplus": [-0.3] * 5}, {}, "not supported"),
        # the bijector is not exact: not supported whatever the NLLs say
        (GOOD, {"correct/elu/float64/logdet_err": 1e-8}, "not supported"),
        (GOOD, {"correct/flow/float64/flow_err_over_eps_cond": 1.5}, "not supported"),
        # float32 rows and the x-space round trip (conditioning) do not enter
        (GOOD, {"correct/elu/float32/logdet_err": 1.0}, "supported"),
        (GOOD, {"correct/elu/float64/roundtrip_x": 1e-3}, "supported"),
    ],
)
def test_verdict_logic(nll: dict[str, list[float]], errors: dict[str, float], status: str) -> None:
    exp = EluFlows()
    (v,) = exp.verdict(_cfg(), _results(nll, errors=errors))
    assert v.status == status, v.summary
    assert len(v.checks) == 2 * len(SETS) * len(DEPTHS) and v.n_seeds == 5
    assert all(c.confidence == pytest.approx(1 - 0.05 / 8) for c in v.checks)  # Bonferroni
    assert "Pure ELU" in v.summary and "0.80% at 8" in v.summary  # support failures reported
    assert v.ci_low <= v.effect <= v.ci_high


def test_margin_decides_non_inferiority_both_ways() -> None:
    """ELU 0.04 nats/dim worse than the best other: inside a 0.1 margin, outside a 0.01 one."""
    nll = {**GOOD, "leaky_softplus": [-0.04] * 5}
    exp = EluFlows()
    (wide,) = exp.verdict(_cfg(margin="0.1"), _results(nll))
    (narrow,) = exp.verdict(_cfg(margin="0.01"), _results(nll))
    assert wide.status == "supported"
    assert narrow.status == "mixed"
    assert all(c.status == "not supported" for c in narrow.checks[::2])
    assert narrow.effect == pytest.approx(0.04, abs=0.01)  # the headline: ELU minus best other


def test_best_other_arm_is_chosen_on_validation_not_test() -> None:
    # leaky_softplus is better on test, leaky_relu looks better on validation: the
    # comparator is leaky_relu, and ELU is then non-inferior
    nll = {**GOOD, "leaky_softplus": [-0.5] * 5}
    val = {"leaky_relu": 0.1, "leaky_softplus": 0.9}
    (v,) = EluFlows().verdict(_cfg(), _results(nll, val=val))
    assert all("leaky_relu's" in c.label for c in v.checks[::2])
    assert v.status == "supported"


def test_elu_variant_is_chosen_on_validation_too() -> None:
    # elu_linear is far better on test but looks worse on validation: elu_tail is tested
    nll = {**GOOD, "elu_linear": [-0.5] * 5, "leaky_softplus": [-0.2] * 5}
    val = {"elu_tail": 0.1, "elu_linear": 0.9, "leaky_relu": 0.5, "leaky_softplus": 0.2}
    (v,) = EluFlows().verdict(_cfg(), _results(nll, val=val))
    assert all(c.label.split(": ")[1].startswith("elu_tail") for c in v.checks)
    assert v.status == "mixed"  # elu_tail is 0.2 worse than leaky_softplus: not non-inferior
    # the other way round: elu_linear chosen, and it is non-inferior
    val.update(elu_tail=0.9, elu_linear=0.1)
    (v,) = EluFlows().verdict(_cfg(), _results(nll, val=val))
    assert all(c.label.split(": ")[1].startswith("elu_linear") for c in v.checks)
    assert v.status == "supported"


def test_bonferroni_turns_a_borderline_setting_inconclusive() -> None:
    """A gain over linear of 0.0047 (t = 4.1): decided at family 1, not across 8 checks."""
    nll = {**GOOD, "linear": [0.0077, 0.0017, 0.0067, 0.0027, 0.0047]}
    exp = EluFlows()
    one = exp.resolve_config("full", {"arms": ",".join(ARMS), "datasets": "htru2", "depths": "2"})
    res = _results(nll, noise=0.0)
    (v8,) = exp.verdict(_cfg(), res)
    (v1,) = exp.verdict(one, res)
    assert v1.checks[1].status == "supported"
    assert any(c.status == "inconclusive" for c in v8.checks[1::2]) and v8.status == "inconclusive"


def test_verdict_with_one_seed_is_inconclusive_unless_inexact() -> None:
    exp = EluFlows()
    assert exp.verdict(_cfg(), _results(GOOD, n=1))[0].status == "inconclusive"
    bad = _results(GOOD, n=1, errors={"correct/elu/float64/logdet_err": 1e-6})
    assert exp.verdict(_cfg(), bad)[0].status == "not supported"


def test_tiny_run_science(tmp_path: Path) -> None:
    try:
        load_htru2()
        load_uci("magic")
    except DataNotFoundError:
        missing("shared/data/htru2 or uci/magic not available")
    exp = EluFlows()
    cfg = exp.resolve_config("smoke")
    m = exp.run(cfg, 0, RunContext(workdir=tmp_path)).metrics
    for ds in ("htru2", "magic"):
        for k in cfg.depths:
            for arm in cfg.arms:
                assert np.isfinite(m[f"val/{ds}/{k}/{arm}"]), (ds, arm)
                assert m[f"lr/{ds}/{k}/{arm}"] in cfg.lrs
            assert all(np.isfinite(m[f"nll/{ds}/{k}/{a}"]) for a in cfg.arms if a != "elu")
            assert 0.0 <= m[f"outside_test/{ds}/{k}/elu"] < 0.5
            assert f"nll/{ds}/{k}/elu" not in m  # the pure ELU is never scored with the rest
        assert 0.0 < m[f"below_alpha_rows/{ds}"] < 1.0  # standardised data go below -1
        # the closed-form Gaussian beats independent standard normals on correlated features
        assert m[f"gaussian/{ds}"] < 0.5 * np.log(2 * np.pi * np.e)
    for b in ("elu", "elu_tail", "elu_linear"):  # the exactness part, float64
        assert m[f"correct/{b}/float64/roundtrip_y_rel"] <= 1e-12
        assert m[f"correct/{b}/float64/logdet_err"] <= 1e-12
    assert m["correct/flow/float64/layer_err"] <= 1e-12
