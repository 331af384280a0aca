"""Tests of elulab.lab.stats against scipy, known values and Monte Carlo coverage."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from elulab.lab.stats import (
    auc_ci,
    average_ranks,
    bootstrap_ci,
    combine,
    critical_difference,
    crossing,
    decide,
    holm,
    mean_ci,
    paired_ci,
    wilcoxon,
)


def test_mean_ci_known_value() -> None:
    # x = 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.302652729749464 (tables / scipy).
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729749464 / math.sqrt(3)
    assert m == 2.0
    assert lo == pytest.approx(2.0 - half, rel=1e-12)
    assert hi == pytest.approx(2.0 + half, rel=1e-12)


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
@pytest.mark.parametrize("n", [2, 5, 30])
def test_mean_ci_matches_scipy_t_interval(n: int, confidence: float) -> None:
    x = np.random.default_rng(n).normal(1.0, 2.0, size=n)
    m, lo, hi = mean_ci(x, confidence)
    ref_lo, ref_hi = sps.t.interval(confidence, n - 1, loc=x.mean(), scale=sps.sem(x))
    # Same formula, two implementations: agreement to float rounding.
    assert m == pytest.approx(x.mean(), rel=1e-14)
    assert lo == pytest.approx(ref_lo, rel=1e-12, abs=1e-12)
    assert hi == pytest.approx(ref_hi, rel=1e-12, abs=1e-12)


def test_mean_ci_coverage_monte_carlo() -> None:
    # 4000 normal samples of size 5: the 95% t-interval covers the true mean in 95% of
    # them. Binomial sd = sqrt(.95*.05/4000) = 0.0034; allow 4 sd.
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(4000):
        _, lo, hi = mean_ci(rng.normal(3.0, 1.5, size=5))
        hits += lo < 3.0 < hi
    assert abs(hits / 4000 - 0.95) < 4 * 0.0034


def test_mean_ci_single_and_constant() -> None:
    m, lo, hi = mean_ci([0.25])
    assert m == 0.25 and math.isnan(lo) and math.isnan(hi)
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


@pytest.mark.parametrize(
    ("values", "exc", "word"),
    [
        ([], ValueError, "empty"),
        ([1.0, float("nan")], ValueError, "finite"),
        ([1.0, float("inf")], ValueError, "finite"),
        ([[1.0, 2.0]], ValueError, "one-dimensional"),
        (["a", "b"], TypeError, "numbers"),
    ],
)
def test_mean_ci_bad_input(values: object, exc: type[Exception], word: str) -> None:
    with pytest.raises(exc, match=word):
        mean_ci(values)  # type: ignore[arg-type]


def test_bad_confidence() -> None:
    for c in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="confidence"):
            mean_ci([1.0, 2.0], c)


def test_paired_ci_is_mean_ci_of_differences() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=8)
    b = a - 0.3 + 0.01 * rng.normal(size=8)
    assert paired_ci(a, b) == mean_ci(a - b)
    ref = sps.ttest_rel(a, b).confidence_interval(0.95)
    _, lo, hi = paired_ci(a, b)
    assert lo == pytest.approx(ref.low, rel=1e-10)
    assert hi == pytest.approx(ref.high, rel=1e-10)
    with pytest.raises(ValueError, match="same length"):
        paired_ci([1.0, 2.0], [1.0])


def test_bootstrap_ci_matches_scipy_percentile() -> None:
    x = np.random.default_rng(2).exponential(size=20)
    s, lo, hi = bootstrap_ci(x, n_boot=20000, seed=3)
    ref = sps.bootstrap(
        (x,), np.mean, confidence_level=0.95, n_resamples=20000, method="percentile", rng=4
    ).confidence_interval
    assert s == pytest.approx(x.mean(), rel=1e-14)
    # Two independent Monte Carlo estimates of the same quantiles: the Monte Carlo error
    # of a 2.5% quantile with 20000 resamples is about 1% of the interval width.
    width = ref.high - ref.low
    assert abs(lo - ref.low) < 0.05 * width
    assert abs(hi - ref.high) < 0.05 * width


def test_bootstrap_ci_deterministic_and_non_vectorised_statistic() -> None:
    x = [0.3, 1.2, 0.7, 2.5, 1.1, 0.9]
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7)
    assert bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)
    # a statistic without an ``axis`` argument takes the slow path, same answer
    fast = bootstrap_ci(x, np.median, n_boot=500, seed=1)
    slow = bootstrap_ci(x, lambda v: float(np.median(v)), n_boot=500, seed=1)
    assert fast == pytest.approx(slow, rel=1e-14)
    s, lo, hi = bootstrap_ci([1.0])
    assert s == 1.0 and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(x, n_boot=10)


@pytest.mark.parametrize(
    ("low", "high", "threshold", "direction", "n", "expected"),
    [
        (0.1, 0.5, 0.0, "greater", 5, "supported"),
        (-0.5, -0.1, 0.0, "greater", 5, "not supported"),
        (-0.1, 0.5, 0.0, "greater", 5, "inconclusive"),
        (0.0, 0.5, 0.0, "greater", 5, "inconclusive"),  # touching is not beyond
        (0.1, 0.5, 0.0, "less", 5, "not supported"),
        (-0.5, -0.1, 0.0, "less", 5, "supported"),
        (1.1, 1.3, 1.0, "greater", 5, "supported"),
        (0.9, 1.3, 1.0, "less", 5, "inconclusive"),
        (0.1, 0.5, 0.0, "greater", 1, "inconclusive"),
        (float("nan"), float("nan"), 0.0, "greater", 5, "inconclusive"),
    ],
)
def test_decide(
    low: float, high: float, threshold: float, direction: str, n: int, expected: str
) -> None:
    assert decide(low, high, threshold=threshold, direction=direction, n_seeds=n) == expected  # type: ignore[arg-type]


def test_decide_bad_input() -> None:
    with pytest.raises(ValueError, match="direction"):
        decide(0.0, 1.0, direction="up", n_seeds=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low"):
        decide(1.0, 0.0, n_seeds=3)
    with pytest.raises(ValueError, match="n_seeds"):
        decide(0.0, 1.0, n_seeds=-1)


@pytest.mark.parametrize(
    ("subs", "expected"),
    [
        (["supported"], "supported"),
        (["supported", "supported", "supported"], "supported"),
        (["not supported", "not supported"], "not supported"),
        (["supported", "not supported"], "mixed"),
        (["supported", "mixed"], "mixed"),
        (["supported", "inconclusive"], "inconclusive"),
        (["not supported", "inconclusive"], "inconclusive"),
        (["inconclusive"], "inconclusive"),
    ],
)
def test_combine(subs: list[str], expected: str) -> None:
    assert combine(subs) == expected


def test_combine_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        combine([])
    with pytest.raises(ValueError, match="unknown status 'yes'"):
        combine(["supported", "yes"])


# -- comparing methods over data sets ----------------------------------------------------


def test_average_ranks_ties_and_order() -> None:
    acc = np.array([[0.9, 0.8, 0.7], [0.5, 0.5, 0.6], [0.1, 0.3, 0.2]])
    # row ranks, 1 = highest: (1, 2, 3), (2.5, 2.5, 1), (3, 1, 2)
    r = average_ranks(acc)
    np.testing.assert_allclose(r, [6.5 / 3, 5.5 / 3, 2.0], rtol=1e-15)
    assert r.sum() == pytest.approx(6.0, rel=1e-15)  # k(k+1)/2 per row, k = 3
    # lower is better: (3, 2, 1), (1.5, 1.5, 3), (1, 3, 2)
    np.testing.assert_allclose(
        average_ranks(acc, higher_is_better=False), [5.5 / 3, 6.5 / 3, 2.0], rtol=1e-15
    )
    assert average_ranks([[0.7, 0.7, 0.7, 0.7]]).tolist() == [2.5] * 4  # all tied


@pytest.mark.parametrize(
    ("scores", "word"),
    [([0.1, 0.2], "non-empty \\(datasets, methods\\)"), ([[0.1, float("nan")]], "finite")],
)
def test_average_ranks_bad_input(scores: object, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        average_ranks(scores)  # type: ignore[arg-type]


def test_critical_difference_matches_demsar_table() -> None:
    # Demsar (2006), Table 5a, Nemenyi q_0.05: k=2 1.960, k=3 2.343, k=5 2.728, k=10 3.164
    # (the table gives three decimals, truncated: k=3 is 2.3437 -> 2.343; tolerance 1e-3 in q)
    n = 30
    for k, q in ((2, 1.960), (3, 2.343), (5, 2.728), (10, 3.164)):
        scale = math.sqrt(k * (k + 1) / (6 * n))
        assert critical_difference(k, n) == pytest.approx(q * scale, abs=1e-3 * scale)
    with pytest.raises(ValueError, match="k >= 2"):
        critical_difference(1, 10)
    with pytest.raises(ValueError, match="alpha"):
        critical_difference(3, 10, alpha=1.5)


def _exact_signed_rank_p(d: np.ndarray) -> tuple[float, float]:
    """min(W+, W-) and its exact two-sided p-value, by enumerating all 2^n sign patterns."""
    ranks = sps.rankdata(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    t = min(w_plus, float(ranks.sum()) - w_plus)
    null = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product((0, 1), repeat=len(d))
    ]
    null_t = np.minimum(null, ranks.sum() - np.asarray(null))
    return t, float(np.mean(null_t <= t))


def test_wilcoxon_against_exact_enumeration_and_scipy() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0.8, 0.05, size=9)
    b = a - rng.normal(0.02, 0.03, size=9)  # distinct |differences|, no zeros: exact test
    res = wilcoxon(a, b)
    t, p = _exact_signed_rank_p(a - b)
    assert res.statistic == t
    assert res.pvalue == pytest.approx(p, rel=1e-12)
    assert res.median_diff == float(np.median(a - b)) and res.mean_diff == float(np.mean(a - b))
    # zero differences: zsplit, exactly what scipy computes
    a2, b2 = np.r_[a, 0.5, 0.5], np.r_[b, 0.5, 0.5]
    ref = sps.wilcoxon(a2, b2, zero_method="zsplit")
    res2 = wilcoxon(a2, b2)
    assert (res2.statistic, res2.pvalue) == (float(ref.statistic), float(ref.pvalue))
    # one-sided: half the two-sided p-value here (the differences are mostly positive)
    assert wilcoxon(a, b, alternative="greater").pvalue == pytest.approx(p / 2, rel=1e-12)


def test_wilcoxon_all_ties_and_bad_input() -> None:
    res = wilcoxon([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert math.isnan(res.statistic) and res.pvalue == 1.0 and res.median_diff == 0.0
    with pytest.raises(ValueError, match="same length"):
        wilcoxon([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="finite"):
        wilcoxon([0.1, float("nan")], [0.1, 0.2])


def test_holm_hand_computed() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running
    # max 0.02, 0.03, 0.06, 0.06; back in the input order:
    np.testing.assert_allclose(
        holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-15
    )
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]  # 2 * 0.5 = 1, capped at 1
    np.testing.assert_allclose(holm([0.3, 0.2, 0.9]), [0.6, 0.6, 0.9], rtol=1e-15)
    assert holm([0.04]).tolist() == [0.04]  # one test: unadjusted
    assert holm([0.02, 0.02]).tolist() == [0.04, 0.04]  # ties share the value


def _statsmodels_holm(pvals: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels.stats.multitest.multipletests(method="holm"), written out (v0.14)."""
    sortind = np.argsort(pvals)
    pvals = np.take(pvals, sortind)
    ntests = len(pvals)
    notreject = pvals > alpha / np.arange(ntests, 0, -1)
    nr_index = np.nonzero(notreject)[0]
    notrejectmin = len(pvals) if nr_index.size == 0 else np.min(nr_index)
    notreject[notrejectmin:] = True
    reject = ~notreject
    pvals_corrected = np.maximum.accumulate(pvals * np.arange(ntests, 0, -1))
    pvals_corrected[pvals_corrected > 1] = 1
    out_p, out_r = np.empty_like(pvals_corrected), np.empty_like(reject)
    out_p[sortind], out_r[sortind] = pvals_corrected, reject
    return out_r, out_p


@pytest.mark.parametrize("m", [1, 2, 5, 17])
def test_holm_matches_statsmodels_definition(m: int) -> None:
    rng = np.random.default_rng(m)
    p = rng.uniform(0, 0.2, size=m) ** 2
    p[: m // 3] = p[0]  # some ties
    reject, ref = _statsmodels_holm(p.copy(), 0.05)
    adj = holm(p)
    np.testing.assert_array_equal(adj, ref)  # the same products and running max: exact
    np.testing.assert_array_equal(adj <= 0.05, reject)
    bonferroni = np.minimum(1.0, m * p)
    assert np.all(p <= adj) and np.all(adj <= bonferroni)  # between raw and Bonferroni


def test_holm_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.2, 1.5])
    with pytest.raises(ValueError, match="empty"):
        holm([])


def _auc_mann_whitney(y: np.ndarray, s: np.ndarray) -> float:
    """AUC = U / (n+ n-), with U the Mann-Whitney statistic of the positives (scipy)."""
    pos, neg = s[y == 1], s[y == 0]
    return float(sps.mannwhitneyu(pos, neg).statistic) / (pos.size * neg.size)


def test_auc_ci_point_is_the_mann_whitney_auc_and_interval_the_row_bootstrap() -> None:
    rng = np.random.default_rng(4)
    y = np.r_[np.ones(3), np.zeros(37)]  # few positives: some resamples have none
    s = np.round(rng.normal(size=40) + y, 1)  # rounded: tied scores
    auc, lo, hi = auc_ci(y, s, n_boot=300, seed=9)
    assert auc == pytest.approx(_auc_mann_whitney(y, s), rel=1e-12)
    # the percentile bootstrap over rows, written out; a one-class resample counts as auc
    idx = np.random.default_rng(9).integers(0, 40, size=(300, 40))
    boot = [auc if y[i].min() == y[i].max() else _auc_mann_whitney(y[i], s[i]) for i in idx]
    assert any(y[i].max() == 0 for i in idx)  # the guard is exercised
    ref_lo, ref_hi = np.quantile(boot, [0.025, 0.975])
    assert (lo, hi) == (pytest.approx(ref_lo, rel=1e-12), pytest.approx(ref_hi, rel=1e-12))


def test_auc_ci_bad_input() -> None:
    with pytest.raises(ValueError, match="0/1 with both classes"):
        auc_ci([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0/1 with both classes"):
        auc_ci([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same length"):
        auc_ci([0, 1], [0.1, 0.2, 0.3])


# -- crossing ---------------------------------------------------------------------------


def test_crossing_is_exact_on_a_line_in_log_x() -> None:
    # y = 2 log10 x + 1 on a grid: the level 0 is crossed at x = 10^-0.5, exactly
    xs = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    ys = [2 * math.log10(x) + 1 for x in xs]
    assert crossing(xs, ys, 0.0) == pytest.approx(10**-0.5, rel=1e-12)
    assert crossing(xs[::-1], ys[::-1], 0.0) == pytest.approx(10**-0.5, rel=1e-12)  # order
    assert crossing(xs, ys, ys[2]) == xs[2]  # on a grid point: that point
    # linear in x instead: between 2 (y = 1) and 4 (y = 3), y = 2 is at 3
    assert crossing([2.0, 4.0], [1.0, 3.0], 2.0, log_x=False) == pytest.approx(3.0, rel=1e-15)


def test_crossing_first_segment_nan_and_dropped_points() -> None:
    # a curve that crosses 0.5 twice: the first crossing (smaller x) is returned
    assert crossing([1.0, 10.0, 100.0], [0.0, 1.0, 0.0], 0.5) == pytest.approx(10**0.5)
    assert math.isnan(crossing([1.0, 10.0], [0.0, 0.4], 0.5))  # never reached: no extrapolation
    # x <= 0 is off the log axis, a NaN y is skipped (the segment 1 -> 100 then brackets)
    assert crossing([0.0, 1.0, 10.0, 100.0], [9.0, 0.0, math.nan, 2.0], 1.0) == pytest.approx(10.0)
    assert crossing([-1.0, 1.0], [0.0, 2.0], 1.0, log_x=False) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same length"):
        crossing([1.0, 2.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="level must be finite"):
        crossing([1.0, 2.0], [1.0, 2.0], math.nan)
