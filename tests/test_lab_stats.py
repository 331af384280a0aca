"""Tests of elulab.lab.stats against scipy, known values and Monte Carlo coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from elulab.lab.stats import bootstrap_ci, combine, decide, mean_ci, paired_ci


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
