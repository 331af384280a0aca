"""The snn_uci experiment: its protocol on real data, the verdict rule on synthetic results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from elulab.experiments.snn_uci import SnnUci, _grid, _stratified_split
from elulab.lab.api import ConfigError, RunContext, RunResult
from elulab.lab.backends import seed_everything
from elulab.lab.stats import average_ranks, bootstrap_ci, wilcoxon

METHODS = ("snn", "relu_bn", "relu")
TIMING = ("seconds", "cpu_seconds", "uci_seconds")


def _config(**over: object):
    base = {"methods": ",".join(METHODS)}
    return SnnUci().resolve_config("quick", {**base, **over})


def _results(*accs: np.ndarray, htru2: list[dict] | None = None) -> list[RunResult]:
    """One RunResult per ``(datasets, methods)`` accuracy table (one per seed)."""
    out = []
    for a in accs:
        rows = [
            {"dataset": f"d{i}", "method": m, "accuracy": float(a[i, j])}
            for i in range(a.shape[0])
            for j, m in enumerate(METHODS)
        ]
        out.append(RunResult(tables={"uci": rows, **({"htru2": htru2} if htru2 else {})}))
    return out


# -- configuration and the protocol's pieces ---------------------------------------------


def test_config_rules() -> None:
    exp = SnnUci()
    with pytest.raises(ConfigError, match="each item of methods must be one of snn, relu_bn"):
        exp.resolve_config("quick", {"methods": "snn,gelu"})
    with pytest.raises(ConfigError, match="methods must hold 'snn'"):
        exp.resolve_config("quick", {"methods": "relu,elu"})
    with pytest.raises(ConfigError, match="once each"):
        exp.resolve_config("quick", {"methods": "snn,relu,relu"})
    with pytest.raises(ConfigError, match="data_dir '/no/such/dir' does not exist"):
        exp.resolve_config("quick", {"data_dir": "/no/such/dir"})
    with pytest.raises(ConfigError, match="n_boot must be >= 100"):
        exp.resolve_config("quick", {"n_boot": 10})
    assert exp.resolve_config("quick", {"datasets": "iris,wine"}).datasets == ("iris", "wine")


def test_grid_sample_is_drawn_from_the_seed() -> None:
    cfg = _config(grid_depth="2,4", grid_width="8,16", grid_lr="0.1", grid_dropout="0.0")
    assert len(_grid(cfg, 0)) == 4  # grid_samples=0: the whole grid, in product order
    cfg = _config(grid_depth="2,4,8", grid_width="8,16", grid_samples=3)
    full = _grid(_config(grid_depth="2,4,8", grid_width="8,16"), 0)
    picks = [_grid(cfg, s) for s in range(6)]
    assert all(len(p) == 3 and set(p) <= set(full) for p in picks)
    assert all(p == sorted(p, key=full.index) for p in picks)  # kept in grid order
    assert _grid(cfg, 3) == picks[3] and len({tuple(p) for p in picks}) > 1


def test_stratified_split_keeps_class_shares() -> None:
    y = np.r_[np.zeros(90, int), np.ones(11, int)]
    tr, va, te = _stratified_split(y, seed=5)
    assert sorted(np.r_[tr, va, te].tolist()) == list(range(101))  # a partition
    # per class: round(0.6 n), round(0.2 n), the rest (90 -> 54/18/18, 11 -> 7/2/2)
    assert [int(y[p].sum()) for p in (tr, va, te)] == [7, 2, 2]
    assert [len(p) for p in (tr, va, te)] == [61, 20, 20]
    assert all(np.all(np.diff(p) > 0) for p in (tr, va, te))  # sorted
    assert np.array_equal(_stratified_split(y, seed=5)[2], te)
    assert not np.array_equal(_stratified_split(y, seed=6)[2], te)


# -- the verdict rule on synthetic results ------------------------------------------------


def test_snn_best_everywhere_is_supported() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, size=(8, 1))
    acc = np.hstack([base + 0.05, base + rng.uniform(0.0, 0.02, (8, 1)), base - 0.01])
    (v,) = SnnUci().verdict(_config(), _results(acc))
    assert v.status == "supported" and v.n_seeds == 1
    assert [c.status for c in v.checks] == ["supported", "supported"]
    # headline: SNN minus the best other by rank (relu_bn), in pp, bootstrap over data sets
    assert tuple(v.interval) == tuple(bootstrap_ci(100 * (acc[:, 0] - acc[:, 1]), n_boot=5000))
    assert "relu_bn" in v.effect_name and "snn 1.00" in v.summary
    # 8 positive differences: exact two-sided p = 2 / 2^8
    assert f"p={2 / 256:.2g}" in v.summary


def test_a_better_ranked_method_significantly_above_snn_is_not_supported() -> None:
    base = np.linspace(0.6, 0.9, 8)[:, None]
    acc = np.hstack([base, base + np.linspace(0.01, 0.05, 8)[:, None], base - 0.02])
    (v,) = SnnUci().verdict(_config(), _results(acc))
    assert v.status == "not supported"
    assert [c.status for c in v.checks] == ["not supported", "supported"]
    assert v.effect < 0 and v.interval.high < 0


def test_without_significance_the_verdict_is_mixed() -> None:
    # SNN ranks best on 5 sets, but 5 pairs cannot reach p < 0.05 (exact p >= 2/32)
    base = np.linspace(0.6, 0.9, 5)[:, None]
    acc = np.hstack([base + 0.03, base + 0.01, base])
    (v,) = SnnUci().verdict(_config(), _results(acc))
    assert v.status == "mixed"
    assert wilcoxon(acc[:, 0], acc[:, 1]).pvalue == pytest.approx(2 / 32, rel=1e-12)
    # a better-ranked method without significance: mixed as well
    acc2 = np.hstack([base, base + np.r_[0.02, 0.02, 0.02, -0.01, -0.01][:, None], base - 0.03])
    assert SnnUci().verdict(_config(), _results(acc2))[0].status == "mixed"


def test_accuracies_are_averaged_over_seeds_and_incomplete_sets_dropped() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 1.0, (6, 3)), rng.uniform(0.5, 1.0, (6, 3))
    results = _results(a, b)
    names, methods, acc = SnnUci.accuracy_matrix(_config(), results)
    assert names == [f"d{i}" for i in range(6)] and methods == list(METHODS)
    np.testing.assert_allclose(acc, (a + b) / 2, rtol=1e-15)
    # data sets lacking a method drop out; fewer than 5 complete sets: inconclusive
    cut = [RunResult(tables={"uci": r.tables["uci"][:13]}) for r in results]  # d4: snn only
    assert SnnUci.accuracy_matrix(_config(), cut)[0] == ["d0", "d1", "d2", "d3"]
    (v,) = SnnUci().verdict(_config(), cut)
    assert v.status == "inconclusive" and "only 4 data sets" in v.summary and v.n_seeds == 2


def test_htru2_note_bootstrap_for_one_seed_t_interval_clipped_for_several() -> None:
    acc = np.tile(np.linspace(0.6, 0.9, 6)[:, None], (1, 3))
    row = {"method": "snn", "auc": 0.97, "auc_low": 0.95, "auc_high": 0.985}
    (v,) = SnnUci().verdict(_config(), _results(acc, htru2=[row]))
    assert "HTRU2 AUC: SNN 0.97 [0.95, 0.985]." in v.summary
    rows = [[{**row, "auc": 0.99}], [{**row, "auc": 0.999}]]
    results = [
        RunResult(tables={**r.tables, "htru2": h})
        for r, h in zip(_results(acc, acc), rows, strict=True)
    ]
    (v,) = SnnUci().verdict(_config(), results)
    assert "HTRU2 AUC: SNN 0.9945 [0.9373, 1]." in v.summary  # mean 0.9945, t-interval cut at 1


def test_figures_from_synthetic_results(tmp_path: Path) -> None:
    acc = np.random.default_rng(2).uniform(0.5, 1.0, (7, 3))
    figs = SnnUci().figures(_config(), _results(acc), tmp_path)
    assert [f.path.name for f in figs] == ["snn_uci_ranks.png", "snn_uci_scatter.png"]
    assert all(f.path.is_file() and f.path.stat().st_size > 1000 for f in figs)
    assert SnnUci().figures(_config(), [], tmp_path) == []


# -- a small real run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, RunResult]:
    cfg = _config(datasets="iris,wine,seeds,hayes-roth,balloons", grid_dropout="0.05",
                  max_steps=60, htru2=True, n_boot=200)  # fmt: skip
    seed_everything(0)
    return cfg, SnnUci().run(cfg, 0, RunContext(workdir=tmp_path_factory.mktemp("w")))


def test_small_run_tables_and_metrics(small_run) -> None:
    cfg, res = small_run
    rows = res.tables["uci"]
    assert len(rows) == 5 * 3
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and len(r["fold_accuracies"]) == 4
        assert r["accuracy"] == pytest.approx(np.mean(r["fold_accuracies"]), rel=1e-15)
        assert r["official_test_accuracy"] is None or 0 <= r["official_test_accuracy"] <= 1
        assert (r["depth"], r["width"], r["lr"], r["dropout"]) == (3, 128, 0.1, 0.05)
        assert 1 <= r["steps"] <= 60
    # hayes-roth has an official test file, iris does not
    by = {(r["dataset"], r["method"]): r for r in rows}
    assert by[("hayes-roth", "snn")]["official_test_accuracy"] is not None
    assert by[("iris", "snn")]["official_test_accuracy"] is None
    acc = np.array([[by[(n, m)]["accuracy"] for m in cfg.methods] for n in cfg.datasets])
    ranks = average_ranks(acc)
    for j, m in enumerate(cfg.methods):
        assert res.metrics[f"average_rank/{m}"] == ranks[j]
        assert res.metrics[f"mean_accuracy/{m}"] == float(acc[:, j].mean())
    assert res.metrics["n_datasets"] == 5.0
    # iris is easy: every method is well above chance (1/3) even with 60 steps
    assert all(by[("iris", m)]["accuracy"] > 0.6 for m in cfg.methods)
    for h in res.tables["htru2"]:
        assert h["auc_low"] <= h["auc"] <= h["auc_high"]
        assert h["auc"] > 0.85  # HTRU2 is separable to AUC ~0.97 by a linear model
        assert res.metrics[f"htru2_auc/{h['method']}"] == h["auc"]


def test_a_run_is_a_function_of_its_seed(tmp_path: Path) -> None:
    exp = SnnUci()
    cfg = exp.resolve_config("smoke")

    def once(seed: int) -> dict[str, float]:
        seed_everything(123)  # the global state must not matter
        res = exp.run(cfg, seed, RunContext(workdir=tmp_path))
        return {k: v for k, v in res.metrics.items() if k not in TIMING}

    first = once(1)
    assert once(1) == first and once(2) != first
