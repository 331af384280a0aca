"""The snn_uci experiment: its protocol on real data, the verdict rule on synthetic results."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from elulab.data import stratified_split
from elulab.experiments.snn_uci import PAPER_GRID, SnnUci, _grid
from elulab.lab.api import ConfigError, RunContext, RunResult
from elulab.lab.backends import seed_everything
from elulab.lab.stats import average_ranks, holm, wilcoxon

METHODS = ("snn", "relu_bn", "relu")
TIMING = ("seconds", "cpu_seconds", "uci_seconds")
#: a config whose grid covers the paper's, every point tried: only epochs can fall short
PAPER = {"grid_depth": "2,3,4,8,16,32", "grid_width": "256,512,1024", "grid_lr": "0.01,0.1,1",
         "grid_alpha_dropout": "0,0.05"}  # fmt: skip


def _config(**over: object):
    base = {"methods": ",".join(METHODS)}
    return SnnUci().resolve_config("quick", {**base, **over})


def _results(*accs: np.ndarray, epochs: float = 100.0, diverged=(), htru2=None) -> list[RunResult]:
    """One RunResult per ``(datasets, methods)`` accuracy table (one per seed); ``diverged``:
    (set, method) index pairs whose run had a diverged fold (in every seed)."""
    out = []
    for a in accs:
        rows = [{"dataset": f"d{i}", "method": m, "accuracy": float(a[i, j]), "epochs": epochs,
                 "diverged_folds": int((i, j) in diverged), "diverged_selection": 0}
                for i in range(a.shape[0]) for j, m in enumerate(METHODS)]  # fmt: skip
        out.append(RunResult(tables={"uci": rows, **({"htru2": htru2} if htru2 else {})}))
    return out


def _verdict(acc: np.ndarray, cfg=None, **kw):
    (v,) = SnnUci().verdict(cfg or _config(**PAPER), _results(acc, **kw))
    return v


def _table(n: int, snn: float, bn: float, seed: int = 0) -> np.ndarray:
    """Accuracies: relu at a base, snn and relu_bn shifted (with distinct differences)."""
    base = np.random.default_rng(seed).uniform(0.6, 0.85, (n, 1))
    step = 0.001 * np.arange(1, n + 1)[:, None]
    return np.hstack([base + snn + np.sign(snn) * step, base + bn + np.sign(bn) * step, base])


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
    with pytest.raises(ConfigError, match="alpha must be"):
        exp.resolve_config("quick", {"alpha": 1.5})
    assert exp.resolve_config("quick", {"datasets": "iris,wine"}).datasets == ("iris", "wine")


def test_each_method_has_its_own_grid_drawn_per_set_and_seed() -> None:
    cfg = _config(grid_depth="2,4,8", grid_width="8,16", grid_lr="0.01,0.1", grid_samples=3)
    assert {p["dropout"] for p in _grid(_config(), "snn", 0, "iris")} == {0.0, 0.05}
    assert {p["dropout"] for p in _grid(_config(), "relu", 0, "iris")} == {0.0, 0.5}
    snn = _grid(cfg, "snn", 0, "iris")
    assert len(snn) == 3 and _grid(cfg, "snn", 0, "iris") == snn  # a function of its stream
    draws = {str(_grid(cfg, "relu", s, d)) for s in range(3) for d in ("iris", "wine", "pima")}
    assert len(draws) > 5  # a new draw per set and seed
    assert len({str(_grid(cfg, m, 0, "iris")) for m in ("relu", "relu_bn", "elu")}) > 1
    assert len(_grid(_config(grid_depth="2,4"), "relu", 5, "x")) == 4  # 0: the whole grid


def test_stratified_split_keeps_class_shares() -> None:
    y = np.r_[np.zeros(90, int), np.ones(11, int)]
    tr, va, te = stratified_split(y, seed=5)
    assert sorted(np.r_[tr, va, te].tolist()) == list(range(101))  # a partition
    # per class: round(0.6 n), round(0.2 n), the rest (90 -> 54/18/18, 11 -> 7/2/2)
    assert [int(y[p].sum()) for p in (tr, va, te)] == [7, 2, 2]
    assert [len(p) for p in (tr, va, te)] == [61, 20, 20]
    assert all(np.all(np.diff(p) > 0) for p in (tr, va, te))  # sorted
    assert np.array_equal(stratified_split(y, seed=5)[2], te)
    assert not np.array_equal(stratified_split(y, seed=6)[2], te)


# -- the verdict rule on synthetic results, at the paper's budget ------------------------


def test_snn_significantly_above_every_method_is_supported() -> None:
    acc = _table(8, 0.05, 0.02)
    v = _verdict(acc)
    assert v.status == "supported" and v.qualifier == "" and v.n_seeds == 1
    assert [c.status for c in v.checks] == ["supported", "supported"]
    # 8 positive differences: exact two-sided p = 2/2^8, Holm doubles the smaller
    assert f"Wilcoxon p={2 / 256:.2g}, Holm p={4 / 256:.2g}" in v.checks[0].note
    # headline: SNN minus the best other by rank (relu_bn): the pseudo-median, in pp
    d = 100 * (acc[:, 0] - acc[:, 1])
    walsh = [(a + b) / 2 for a, b in itertools.combinations_with_replacement(d, 2)]
    assert v.effect == pytest.approx(np.median(walsh), rel=1e-9) and "relu_bn" in v.effect_name
    assert v.checks[0].confidence == pytest.approx(1 - 0.05 / 2)
    assert "Klambauer" in v.summary and "not the source text" in v.summary


def test_a_method_significantly_above_snn_is_not_supported() -> None:
    v = _verdict(_table(8, -0.02, 0.03))
    assert v.status == "not supported" and v.qualifier == ""
    assert [c.status for c in v.checks] == ["not supported", "not supported"]
    assert v.effect < 0 and v.interval.high < 0


def test_above_some_and_level_with_others_is_mixed() -> None:
    acc = _table(8, 0.05, 0.0)
    acc[:, 1] = acc[:, 0] + np.r_[0.01, -0.01, 0.02, -0.02, 0.03, -0.03, 0.001, -0.002]
    v = _verdict(acc)
    assert [c.status for c in v.checks] == ["inconclusive", "supported"]
    assert v.status == "mixed"


def test_holm_correction_can_remove_significance() -> None:
    # 6 sets, all positive: exact p = 2/64 = 0.031 for both, Holm: 0.0625 for both
    acc = _table(6, 0.05, 0.02)
    assert wilcoxon(acc[:, 0], acc[:, 2]).pvalue == pytest.approx(2 / 64, rel=1e-12)
    assert holm([2 / 64, 2 / 64]).tolist() == [2 / 32, 2 / 32]
    v = _verdict(acc)
    assert [c.status for c in v.checks] == ["inconclusive", "inconclusive"]
    assert v.status == "inconclusive" and v.qualifier == ""


def test_a_diverged_run_is_left_out_and_counted_not_scored_zero() -> None:
    acc = _table(9, 0.05, 0.02)
    acc[0, 0] = 0.0  # scored 0 this would be SNN's worst set; left out, it changes nothing
    v = _verdict(acc, diverged={(0, 0)})
    assert [c.n for c in v.checks] == [8, 8] and "1 sets left out" in v.checks[0].note
    assert v.status == "supported" and "snn 1, relu_bn 0, relu 0" in v.summary
    assert "over 8 of 9 UCI sets without divergence" in v.summary
    # the effect is that of the 8 sets left
    assert v.effect == pytest.approx(_verdict(acc[1:]).effect, rel=1e-12)
    # a competitor's divergence leaves only its own comparison short
    v = _verdict(acc, diverged={(3, 1)})
    assert [c.n for c in v.checks] == [8, 9]


# -- below the paper's budget: short of supported is inconclusive (at our budget) --------


def test_below_the_papers_budget_a_loss_is_inconclusive_at_our_budget() -> None:
    acc = _table(8, -0.02, 0.03)
    v = _verdict(acc, cfg=_config())  # the quick grid: depth 3, width 128, lr 0.1
    assert (v.status, v.qualifier, v.label) == (
        "inconclusive", "at our budget", "inconclusive (at our budget)")  # fmt: skip
    assert "At our budget the rule gives: not supported" in v.summary
    assert "depth lacks 2, 4, 8, 16, 32" in v.summary and "lr lacks 0.01, 1" in v.summary
    # the paper's grid but too few epochs on 3 of 8 sets
    res = _results(acc)
    for r in res[0].tables["uci"][: 3 * 3]:
        r["epochs"] = 12.5
    (v,) = SnnUci().verdict(_config(**PAPER), res)
    assert v.label == "inconclusive (at our budget)" and "3 of 8 sets under 100 epochs" in v.summary
    # a sampled grid is below the paper's as well
    v = _verdict(acc, cfg=_config(**PAPER, grid_samples=10))
    assert v.qualifier == "at our budget" and "10 of 108 grid points" in v.summary
    assert set(PAPER_GRID) == {"depth", "width", "lr", "dropout"}


def test_below_the_papers_budget_a_win_stays_supported() -> None:
    v = _verdict(_table(8, 0.05, 0.02), cfg=_config())
    assert (v.status, v.qualifier) == ("supported", "") and "SNN wins even so" in v.summary


def test_accuracies_are_averaged_over_seeds_and_incomplete_sets_dropped() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 1.0, (6, 3)), rng.uniform(0.5, 1.0, (6, 3))
    results = _results(a, b, diverged={(2, 1)})
    rows = [r for res in results for r in res.tables["uci"]]
    names, acc, div = SnnUci.accuracy_matrix(_config(), rows)
    assert names == [f"d{i}" for i in range(6)]
    np.testing.assert_allclose(acc, (a + b) / 2, rtol=1e-15)
    assert div.sum() == 1 and div[2, 1]
    rows[18]["accuracy"] = None  # every fold of seed 1 diverged on d0: seed 0's score is left
    names, acc, div = SnnUci.accuracy_matrix(_config(), rows)
    assert acc[0, 0] == a[0, 0] and div[0, 0]
    # data sets lacking a method drop out; fewer than 5 complete sets: inconclusive
    cut = [RunResult(tables={"uci": r.tables["uci"][:13]}) for r in results]  # d4: snn only
    assert SnnUci.accuracy_matrix(_config(), rows[:13] + rows[18:31])[0] == ["d0", "d1", "d2", "d3"]
    (v,) = SnnUci().verdict(_config(), cut)
    assert v.status == "inconclusive" and "only 4 data sets" in v.summary and v.n_seeds == 2


def test_htru2_note_bootstrap_for_one_seed_t_interval_clipped_for_several() -> None:
    acc = _table(6, 0.0, 0.0)
    row = {"method": "snn", "auc": 0.97, "auc_low": 0.95, "auc_high": 0.985}
    assert "HTRU2 AUC: SNN 0.97 [0.95, 0.985]." in _verdict(acc, htru2=[row]).summary
    rows = [[{**row, "auc": 0.99}], [{**row, "auc": 0.999}], [{**row, "auc": None}]]
    results = [
        RunResult(tables={**r.tables, "htru2": h})
        for r, h in zip(_results(acc, acc, acc), rows, strict=True)
    ]
    (v,) = SnnUci().verdict(_config(), results)
    assert "HTRU2 AUC: SNN 0.9945 [0.9373, 1]." in v.summary  # the diverged seed left out


def test_figures_from_synthetic_results(tmp_path: Path) -> None:
    acc = np.random.default_rng(2).uniform(0.5, 1.0, (7, 3))
    figs = SnnUci().figures(_config(), _results(acc, diverged={(0, 0)}), tmp_path)
    assert [f.path.name for f in figs] == ["snn_uci_ranks.png", "snn_uci_scatter.png"]
    assert all(f.path.is_file() and f.path.stat().st_size > 1000 for f in figs)
    assert SnnUci().figures(_config(), [], tmp_path) == []


# -- a small real run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, RunResult]:
    cfg = _config(datasets="iris,wine,seeds,hayes-roth,balloons", grid_dropout="0.5",
                  grid_alpha_dropout="0.05", max_steps=60, htru2=True, n_boot=200)  # fmt: skip
    seed_everything(0)
    return cfg, SnnUci().run(cfg, 0, RunContext(workdir=tmp_path_factory.mktemp("w")))


def test_small_run_tables_and_metrics(small_run) -> None:
    cfg, res = small_run
    rows = res.tables["uci"]
    assert len(rows) == 5 * 3
    by = {(r["dataset"], r["method"]): r for r in rows}
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and len(r["fold_accuracies"]) == 4
        assert r["diverged_folds"] == 0 and r["diverged_selection"] == 0
        assert r["accuracy"] == pytest.approx(np.mean(r["fold_accuracies"]), rel=1e-15)
        assert r["official_test_accuracy"] is None or 0 <= r["official_test_accuracy"] <= 1
        drop = 0.05 if r["method"] == "snn" else 0.5
        assert (r["depth"], r["width"], r["lr"], r["dropout"]) == (3, 128, 0.1, drop)
        per = r["steps"] / r["chosen_epochs"]  # steps per epoch: a whole number of batches
        assert per >= 1 and per == round(per)
        total = round(per * r["epochs"])  # steps of the selection run (max_steps = 60)
        every = max(1, total // cfg.evals)  # the chosen step is one of its evaluations
        assert r["steps"] == total or (r["steps"] % every == 0 and 0 < r["steps"] < total)
    # epochs, honestly: iris's 75 selection rows make 1 batch of 64 an epoch (the tail is
    # dropped), balloons' 8 rows 1 batch of 8: 100 epochs would be 100 steps, capped at 60
    assert by[("iris", "snn")]["epochs"] == 60.0 and by[("balloons", "snn")]["epochs"] == 60.0
    assert res.metrics["n_sets_under_100_epochs"] == 5.0
    # hayes-roth has an official test file, iris does not
    assert by[("hayes-roth", "snn")]["official_test_accuracy"] is not None
    assert by[("iris", "snn")]["official_test_accuracy"] is None
    acc = np.array([[by[(n, m)]["accuracy"] for m in cfg.methods] for n in cfg.datasets])
    ranks = average_ranks(acc)
    for j, m in enumerate(cfg.methods):
        assert res.metrics[f"average_rank/{m}"] == ranks[j]
        assert res.metrics[f"mean_accuracy/{m}"] == pytest.approx(acc[:, j].mean(), rel=1e-15)
        assert res.metrics[f"diverged_sets/{m}"] == 0.0
    assert [d["sets"] for d in res.tables["divergence"]] == [0, 0, 0]
    assert res.metrics["n_datasets"] == 5.0
    # iris is easy: every method is well above chance (1/3) even with 60 steps
    assert all(by[("iris", m)]["accuracy"] > 0.6 for m in cfg.methods)
    for h in res.tables["htru2"]:
        assert h["auc_low"] <= h["auc"] <= h["auc_high"] and not h["diverged"]
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
