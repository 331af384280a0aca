"""The snn_uci experiment: rank statistics, a small real run, HTRU2 AUC, verdict, figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from elulab.train import build_mlp, train_classifier
from elulab.experiments.snn_uci import SnnUci, average_ranks, critical_difference
from elulab.lab.api import ConfigError, RunContext, RunResult
from elulab.lab.backends import seed_everything


def test_average_ranks_ties_and_order() -> None:
    acc = np.array([[0.9, 0.8, 0.7], [0.5, 0.5, 0.6], [0.1, 0.3, 0.2]])
    r = average_ranks(acc)
    # row ranks: (1,2,3), (2.5,2.5,1), (3,1,2)
    np.testing.assert_allclose(r, [6.5 / 3, 5.5 / 3, 2.0])
    assert r.sum() == pytest.approx(6.0)  # k(k+1)/2 for k = 3


def test_critical_difference_matches_demsar_table() -> None:
    # Demsar (2006), Table 5a, Nemenyi q_0.05: k=2 1.960, k=3 2.343, k=5 2.728, k=10 3.164
    for k, q in ((2, 1.960), (3, 2.343), (5, 2.728), (10, 3.164)):
        n = 30
        assert critical_difference(k, n) == pytest.approx(
            q * math.sqrt(k * (k + 1) / (6 * n)), abs=2e-3
        )


def test_trainer_learns_and_is_reproducible() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    out = []
    for _ in range(2):
        net = build_mlp(4, 2, depth=2, width=32, activation="relu", seed=1)
        res = train_classifier(net, X[:300], y[:300], steps=200, lr=0.1, batch_size=32,
                               X_val=X[300:], y_val=y[300:], seed=3)  # fmt: skip
        out.append(res)
    assert out[0].val_accuracy == out[1].val_accuracy  # same seed, same curve
    assert out[0].best_val_accuracy > 0.9
    with pytest.raises(ValueError, match="optimizer"):
        train_classifier(net, X, y, steps=1, lr=0.1, optimizer="rmsprop")


def test_config_validation() -> None:
    exp = SnnUci()
    with pytest.raises(ConfigError, match="unknown methods"):
        exp.resolve_config("quick", {"methods": "snn,gelu"})
    with pytest.raises(ConfigError, match="must include 'snn'"):
        exp.resolve_config("quick", {"methods": "relu,elu"})
    with pytest.raises(ConfigError, match="data_dir '/no/such/dir' does not exist"):
        exp.resolve_config("quick", {"data_dir": "/no/such/dir"})
    cfg = exp.resolve_config("quick", {"datasets": "iris,wine,seeds"})
    assert cfg.datasets == ("iris", "wine", "seeds")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SnnUci, object, list[RunResult]]:
    exp = SnnUci()
    cfg = exp.resolve_config(
        "quick",
        {
            "datasets": "iris,wine,seeds,hayes-roth,balloons",
            "methods": "snn,relu_bn,relu",
            "grid_dropout": "0.05",
            "max_steps": 60,
            "htru2": True,
            "n_boot": 200,
        },
    )
    results = []
    for seed in (0, 1):
        seed_everything(seed)
        results.append(exp.run(cfg, seed, RunContext(workdir=tmp_path_factory.mktemp("w"))))
    return exp, cfg, results


def test_small_run_tables_and_metrics(small_run) -> None:
    _exp, cfg, results = small_run
    rows = results[0].tables["uci"]
    assert len(rows) == 5 * 3
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and len(r["fold_accuracies"]) == 4
        assert r["official_test_accuracy"] is None or 0 <= r["official_test_accuracy"] <= 1
    # hayes-roth has an official test file, iris does not
    by = {(r["dataset"], r["method"]): r for r in rows}
    assert by[("hayes-roth", "snn")]["official_test_accuracy"] is not None
    assert by[("iris", "snn")]["official_test_accuracy"] is None
    ranks = [results[0].metrics[f"average_rank/{m}"] for m in cfg.methods]
    assert sum(ranks) == pytest.approx(6.0)
    # iris is easy: every method is well above chance (1/3) even with 60 steps
    assert all(by[("iris", m)]["accuracy"] > 0.6 for m in cfg.methods)
    for h in results[0].tables["htru2"]:
        assert h["auc_low"] <= h["auc"] <= h["auc_high"]
        assert h["auc"] > 0.85  # HTRU2 is separable to AUC ~0.97 by a linear model


def test_small_run_verdict_and_figures(small_run, tmp_path: Path) -> None:
    exp, cfg, results = small_run
    _names, methods, acc = exp.accuracy_matrix(cfg, results)
    assert acc.shape == (5, 3)
    tests = exp.wilcoxon(acc, methods)
    from scipy.stats import wilcoxon

    for j, m in enumerate(methods[1:], 1):
        if np.any(acc[:, 0] != acc[:, j]):
            assert tests[m]["p"] == pytest.approx(
                wilcoxon(acc[:, 0], acc[:, j], zero_method="zsplit").pvalue
            )
    (v,) = exp.verdict(cfg, results)
    assert v.claim == "C5" and v.n_seeds == 2
    # with 5 data sets the Wilcoxon test cannot reach p < 0.05 against all methods,
    # so "supported" is impossible here
    assert v.status in ("mixed", "not supported")
    assert "HTRU2 AUC" in v.summary
    figs = exp.figures(cfg, results, tmp_path)
    assert len(figs) == 2 and all(f.path.is_file() and f.path.stat().st_size > 1000 for f in figs)


def test_too_few_datasets_is_inconclusive(small_run) -> None:
    exp, cfg, results = small_run
    cut = [RunResult(metrics=r.metrics, tables={"uci": r.tables["uci"][:9]}) for r in results]
    (v,) = exp.verdict(cfg, cut)
    assert v.status == "inconclusive"
