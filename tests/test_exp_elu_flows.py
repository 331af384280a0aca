"""Tests of the C7 experiment (ELU flows): correctness table, verdict logic, a tiny run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from elulab.data import DataNotFoundError, load_htru2
from elulab.experiments import get_experiment
from elulab.experiments.elu_flows import (
    TOL_ELEMENTWISE,
    Config,
    EluFlows,
    correctness_table,
    flow_logdet_error,
)
from elulab.lab.api import STATUSES, ConfigError, RunContext, RunResult
from needs import missing

TINY = {"seeds": "2", "steps": "20", "hidden": "8", "blocks": "2", "train_rows": "500",
        "eval_every": "10", "correctness_n": "2000", "n_samples_figure": "50"}  # fmt: skip


def test_registered_and_profiles_valid() -> None:
    exp = get_experiment("elu_flows")
    assert isinstance(exp, EluFlows) and exp.claims == ("C7",)
    assert exp.resolve_config("full").seeds >= 5
    assert exp.resolve_config("quick").seeds >= 2
    with pytest.raises(ConfigError, match="unknown arm"):
        exp.resolve_config("quick", {"arms": "elu,relu"})
    with pytest.raises(ConfigError, match="needs data set"):
        exp.resolve_config("quick", {"datasets": "htru2_2d"})


def test_correctness_table_is_exact_in_float64() -> None:
    rows = correctness_table(1.0, 5000, seed=0)
    assert {r["dtype"] for r in rows} == {"float32", "float64"}
    for r in rows:
        if r["dtype"] == "float64":
            assert r["roundtrip_y_rel"] <= TOL_ELEMENTWISE and r["logdet_err"] <= TOL_ELEMENTWISE
        else:  # float32: a few units of roundoff (1.2e-7)
            assert r["roundtrip_y_rel"] < 1e-6 and r["logdet_err"] < 1e-5
    errs = flow_logdet_error(1.0, dim=4, points=2)
    assert errs["layer_err"] <= TOL_ELEMENTWISE and errs["flow_err_over_eps_cond"] <= 1.0


def _fake(metrics: dict[str, float]) -> RunResult:
    base = {
        f"correct/{b}/float64/{k}": 1e-16
        for b in ("elu", "elu_tail", "elu_linear")
        for k in ("roundtrip_y_rel", "logdet_err")
    }
    base.update({"correct/flow_logdet_layer_err_float64": 1e-16,
                 "correct/flow_logdet_flow_err_over_eps_cond_float64": 0.05,
                 "below_alpha_rows/htru2": 0.3,
                 "elu_outside_test/htru2": 0.01, "nll/htru2/elu": 0.0})  # fmt: skip
    base.update(metrics)
    return RunResult(metrics=base)


@pytest.mark.parametrize(
    ("ours", "coupling", "exact_err", "status"),
    [
        ([-2.0, -2.1, -2.2, -2.05, -2.15], [-1.0, -1.1, -1.0, -1.05, -0.9], 1e-16, "supported"),
        ([1.0, 1.1, 1.2, 1.05, 1.15], [-1.0, -1.1, -1.0, -1.05, -0.9], 1e-16, "mixed"),
        ([-2.0, -2.1, -2.2, -2.05, -2.15], [-1.0, -1.1, -1.0, -1.05, -0.9], 1e-8, "not supported"),
    ],
)
def test_verdict_logic(
    ours: list[float], coupling: list[float], exact_err: float, status: str
) -> None:
    exp = EluFlows()
    cfg = exp.resolve_config("full", {"arms": "elu,elu_tail,coupling"})
    results = [
        _fake(
            {
                "nll/htru2/elu_tail": a,
                "nll/htru2/coupling": b,
                "correct/elu/float64/logdet_err": exact_err,
            }
        )
        for a, b in zip(ours, coupling, strict=True)
    ]
    (v,) = exp.verdict(cfg, results)
    assert v.status == status and v.n_seeds == 5
    assert v.effect == pytest.approx(np.mean(np.subtract(ours, coupling)))
    assert v.ci_low <= v.effect <= v.ci_high


def test_tiny_end_to_end_run(tmp_path: Path) -> None:
    try:
        load_htru2()
    except DataNotFoundError:
        missing("shared/data/htru2 not available")
    exp = EluFlows()
    cfg: Config = exp.resolve_config("quick", TINY)
    results = [exp.run(cfg, s, RunContext(workdir=tmp_path)) for s in range(cfg.seeds)]
    m = results[0].metrics
    for ds in cfg.datasets:
        for arm in (*cfg.arms, "gaussian"):
            assert np.isfinite(m[f"nll/{ds}/{arm}"]), (ds, arm)
        assert 0.0 <= m[f"elu_outside_test/{ds}"] <= 1.0
        assert 0.0 < m[f"below_alpha_rows/{ds}"] < 1.0  # standardised data do go below -1
    # the fitted Gaussian's NLL of standardised 8-D data is below an independent Gaussian's
    assert m["nll/htru2/gaussian"] < 8 * 0.5 * np.log(2 * np.pi * np.e)
    (v,) = exp.verdict(cfg, results)
    assert v.status in STATUSES and v.claim == "C7" and "restricted image" in v.summary
    figs = exp.figures(cfg, results, tmp_path)
    assert len(figs) == 2 and all(f.path.is_file() and f.path.stat().st_size > 1000 for f in figs)
