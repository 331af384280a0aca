"""Comparing methods over data sets: the Hodges-Lehmann interval and lab.compare.versus."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from elulab.lab.compare import (
    clean_ranks,
    rank_figure,
    scatter_figure,
    score_table,
    status,
    versus,
)
from elulab.lab.stats import hodges_lehmann, holm, wilcoxon
from elulab.lab.verdicts import Check


def _walsh_median(d: np.ndarray) -> float:
    return float(np.median([(a + b) / 2 for a, b in itertools.combinations_with_replacement(d, 2)]))


def test_hodges_lehmann_is_the_median_of_walsh_averages() -> None:
    d = np.random.default_rng(0).normal(0.3, 1.0, 15)
    assert hodges_lehmann(d).value == pytest.approx(_walsh_median(d), abs=1e-15)
    b = np.random.default_rng(1).normal(size=15)
    assert hodges_lehmann(d + b, b) == pytest.approx(hodges_lehmann(d), abs=1e-14)
    assert hodges_lehmann(d + 2.0).value == pytest.approx(hodges_lehmann(d).value + 2.0)


@pytest.mark.parametrize(("n", "confidence"), [(9, 0.95), (14, 0.9), (20, 0.99)])
def test_the_interval_inverts_the_exact_signed_rank_test(n: int, confidence: float) -> None:
    # the interval holds exactly the shifts theta whose exact two-sided test keeps H0
    d = np.random.default_rng(n).normal(0.5, 1.0, n)
    lo, hi = hodges_lehmann(d, confidence=confidence)[1:]
    walsh = np.sort([(a + b) / 2 for a, b in itertools.combinations_with_replacement(d, 2)])
    gap = np.diff(walsh).min() / 4  # stay between neighbouring Walsh averages

    def p(theta: float) -> float:
        return float(sps.wilcoxon(d - theta, method="exact").pvalue)

    alpha = 1 - confidence
    assert p(lo + gap) > alpha and p(hi - gap) > alpha
    assert p(lo - gap) <= alpha and p(hi + gap) <= alpha


def test_coverage_is_at_least_nominal_by_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    hits = sum(lo <= 0.0 <= hi for lo, hi in
               (hodges_lehmann(rng.standard_t(3, 12))[1:] for _ in range(2000)))  # fmt: skip
    # exact coverage 1 - 2 P(T+ <= 13) = 0.9575 for n = 12; 2000 draws: SE 0.0045
    assert 0.9575 - 0.015 < hits / 2000 < 0.9575 + 0.015


def test_too_few_pairs_have_no_interval_and_bad_input_is_named() -> None:
    v, lo, hi = hodges_lehmann([1.0, 2.0, 3.0, 4.0, 5.0])  # 2^-5 > 0.025: no 95% interval
    assert v == 3.0 and np.isnan(lo) and np.isnan(hi)
    assert not np.isnan(hodges_lehmann([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])[1])  # 2^-6 < 0.025
    with pytest.raises(ValueError, match="same length"):
        hodges_lehmann([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        hodges_lehmann([1.0, 2.0], confidence=1.5)


def _table(n: int, shifts: list[float], seed: int = 0) -> np.ndarray:
    base = np.random.default_rng(seed).uniform(0.6, 0.9, n)
    return np.stack([base + s + 0.001 * np.arange(n) * (s != 0) for s in shifts], axis=1)


def test_versus_holm_corrects_and_uses_the_pseudo_median() -> None:
    s = _table(8, [0.0, -0.03, -0.01])  # column 0 above both on every set
    c1, c2 = versus(s, ["a", "b", "c"], "a", scale=100, unit="pp")
    assert c1.status == c2.status == "supported" and c1.n == 8
    d = 100 * (s[:, 0] - s[:, 1])
    # differences are rounded to 1e-12 (equal scores give exact zeros)
    assert tuple(c1.effect) == pytest.approx(hodges_lehmann(d, confidence=0.975), abs=1e-11)
    assert c1.confidence == pytest.approx(0.975) and c1.label == "a minus b (pp, pseudo-median)"
    q = holm([wilcoxon(s[:, 0], s[:, j]).pvalue for j in (1, 2)])
    assert f"Holm p={q[0]:.2g}" in c1.note and "0 sets left out" in c1.note
    # 6 sets, all positive: exact p = 2/64 = 0.031 each, but Holm doubles the smaller
    s6 = _table(6, [0.0, -0.03, -0.01])
    assert [c.status for c in versus(s6, ["a", "b", "c"], "a")] == ["inconclusive"] * 2
    assert [c.status for c in versus(s6[:, :2], ["a", "b"], "a")] == ["supported"]  # m = 1
    # below the other method: not supported
    assert versus(_table(8, [0.0, 0.02]), ["a", "b"], "a")[0].status == "not supported"


def test_versus_leaves_excluded_sets_out_rather_than_scoring_them() -> None:
    s = _table(9, [0.0, -0.02, -0.02])
    ex = np.zeros_like(s, bool)
    ex[0, 0], ex[1, 2] = True, True  # "a" diverged on set 0, "c" on set 1
    s[0, 0] = s[1, 2] = np.nan  # excluded cells may be nan
    c1, c2 = versus(s, ["a", "b", "c"], "a", exclude=ex)
    assert (c1.n, c2.n) == (8, 7) and "1 sets left out" in c1.note and "2 sets" in c2.note
    assert c1.effect.value == pytest.approx(hodges_lehmann(s[1:, 0] - s[1:, 1]).value)
    with pytest.raises(ValueError, match="finite"):
        versus(s, ["a", "b", "c"], "a")  # nan not excluded
    few = versus(s[:4], ["a", "b", "c"], "a", exclude=ex[:4])
    assert all(c.status == "inconclusive" for c in few)  # fewer than min_sets pairs
    with pytest.raises(ValueError, match="with 'z' in"):
        versus(s, ["a", "b", "c"], "z")


def test_figures_are_written(tmp_path: Path) -> None:
    s = _table(7, [0.0, -0.01, 0.01])
    p1 = rank_figure(tmp_path / "r.png", ["a", "b", "c"], np.array([1.5, 2.5, 2.0]), 7,
                     ["C0", "C1", "C2"])  # fmt: skip
    p2 = scatter_figure(tmp_path / "s.png", s, ["a", "b", "c"], "a", what="accuracy")
    assert p1.stat().st_size > 1000 and p2.stat().st_size > 1000


def test_score_table_averages_seeds_and_flags_failures() -> None:
    rows = [{"dataset": d, "method": m, "score": v, "failed": f} for d, m, v, f in (
        ("x", "a", 0.5, 0), ("x", "a", 0.7, 0), ("x", "b", 0.9, 1), ("x", "b", 0.8, 0),
        ("y", "a", None, 0), ("y", "a", 0.4, 0), ("y", "b", 0.3, 0), ("z", "a", 1.0, 0))]  # fmt: skip
    names, s, ex = score_table(rows, ["a", "b"])
    assert names == ["x", "y"]  # z lacks b
    np.testing.assert_allclose(s, [[0.6, 0.85], [0.4, 0.3]], rtol=1e-15)
    assert ex.tolist() == [[False, True], [True, False]]  # b failed once on x; a scoreless on y
    assert score_table([], ["a"])[1].shape == (0, 1)


def test_clean_ranks_and_status() -> None:
    s = np.array([[0.9, 0.8], [0.7, 0.8], [0.6, 0.5]])
    ranks, n = clean_ranks(s, np.array([[False, False], [True, False], [False, False]]))
    assert n == 2 and ranks.tolist() == [1.0, 2.0]
    assert np.isnan(clean_ranks(s, np.ones_like(s, bool))[0]).all()

    def c(st: str) -> Check:
        return Check("x", st, (0.0, 0.0, 0.0), 5, 0.0, "greater")  # type: ignore[arg-type]

    sup, no, inc = c("supported"), c("not supported"), c("inconclusive")
    assert status([sup, sup], True) == "supported" and status([sup, sup], False) == "mixed"
    assert status([sup, no], True) == "not supported" and status([sup, inc], True) == "mixed"
    assert status([inc, inc], True) == "inconclusive"
