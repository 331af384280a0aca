"""Statistics for verdicts: confidence intervals over seeds and the decision rule.

Every verdict in elulab is a confidence interval over independent seeds, compared
with a threshold in the direction the claim states:

* :func:`mean_ci`: the Student-t interval of a mean,
  :math:`\\bar x \\pm t_{1-(1-c)/2,\\,n-1}\\, s/\\sqrt n`;
* :func:`paired_ci`: the same interval on paired differences :math:`a_i - b_i`
  (two arms run with the same seeds);
* :func:`bootstrap_ci`: a percentile bootstrap interval of any statistic;
  :func:`auc_ci`: the ROC AUC with its bootstrap interval over rows;
* :func:`decide`: ``"supported"`` / ``"not supported"`` / ``"inconclusive"``.

Comparing methods over many data sets (one score per data set and method):

* :func:`average_ranks` (ties averaged) and :func:`critical_difference` (Nemenyi);
* :func:`wilcoxon`: the signed-rank test of two methods paired by data set;
* :func:`holm`: Holm-Bonferroni adjusted p-values of a family of tests;
* :func:`hodges_lehmann`: the location the signed-rank test is about (the median of
  Walsh averages) with the confidence interval that inverts the test.

Reading a dose off a dose-response curve: :func:`crossing` (where a sampled curve
first reaches a level, interpolated in log x).

References:
    An Introduction to the Bootstrap (Efron, Tibshirani, 1993), ch. 13 (percentile
    intervals).

    Statistical Comparisons of Classifiers over Multiple Data Sets (Demsar, 2006),
    JMLR 7 (average ranks, Wilcoxon, Nemenyi).

    A Simple Sequentially Rejective Multiple Test Procedure (Holm, 1979),
    Scandinavian Journal of Statistics 6(2).

Example:
    >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    >>> round(m, 3), round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    >>> decide(lo, hi, threshold=0.0, direction="greater", n_seeds=3)
    'inconclusive'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import numpy as np
from scipy import stats as _sps

__all__ = [
    "STATUSES",
    "Effect",
    "SignedRank",
    "auc_ci",
    "average_ranks",
    "bootstrap_ci",
    "combine",
    "critical_difference",
    "crossing",
    "decide",
    "format_number",
    "hodges_lehmann",
    "holm",
    "mean_ci",
    "paired_ci",
    "wilcoxon",
]

Direction = Literal["greater", "less"]
_NAN = float("nan")

#: The statuses a verdict or sub-claim can have: the one list, used everywhere.
STATUSES: tuple[str, ...] = ("supported", "not supported", "mixed", "inconclusive")


class Effect(NamedTuple):
    """An effect and its confidence interval: ``(value, low, high)``.

    A named tuple, so ``m, lo, hi = mean_ci(x)`` unpacks it; ``low``/``high`` are nan
    where no interval exists (one seed).

    Example:
        >>> e = Effect(0.148, 0.116, 0.179)
        >>> e.format(), e.excludes(0.1), Effect(1.0, float("nan"), float("nan")).format()
        ('0.148 [0.116, 0.179]', True, '1 (one value, no interval)')
    """

    value: float
    low: float
    high: float

    @property
    def has_interval(self) -> bool:
        """Both bounds are numbers."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    def excludes(self, x: float) -> bool:
        """The interval lies strictly on one side of ``x``."""
        return self.has_interval and (self.low > x or self.high < x)

    def format(self, digits: int = 3, *, signed: bool = False) -> str:
        """``"value [low, high]"``, each to ``digits`` significant digits (``signed``: +/-)."""
        if not self.has_interval:
            return f"{format_number(self.value, digits, signed=signed)} (one value, no interval)"
        v, lo, hi = (format_number(x, digits, signed=signed) for x in self)
        return f"{v} [{lo}, {hi}]"


def format_number(x: float, digits: int = 3, *, signed: bool = False) -> str:
    """``x`` to ``digits`` significant digits, without float noise.

    Example:
        >>> format_number(0.050000000000000003), format_number(1234.5), format_number(-2e-7, signed=True)
        ('0.05', '1.23e+03', '-2e-07')
    """
    x = float(x)
    if math.isnan(x):
        return "nan"
    return format(x, f"{'+' if signed else ''}.{max(int(digits), 1)}g")


def _as_values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    """Return a 1-d float64 array, or raise naming what was wrong."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty; need at least one value")
    if not np.all(np.isfinite(x)):
        bad = [i for i, v in enumerate(x.tolist()) if not math.isfinite(v)]
        raise ValueError(f"{name} must be finite; non-finite at positions {bad}")
    return x


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return c


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Effect:
    """The mean of ``values`` and its Student-t confidence interval.

    .. math:: \\bar x \\pm t_{1-(1-c)/2,\\; n-1} \\; \\frac{s}{\\sqrt n},
        \\qquad s^2 = \\frac{1}{n-1} \\sum_i (x_i - \\bar x)^2.

    Args:
        values: one number per seed (finite).
        confidence: the coverage ``c`` of the interval.

    Returns:
        an :class:`Effect` ``(mean, low, high)``; with one value, ``(x, nan, nan)`` (no
        interval exists).

    Example:
        >>> mean_ci([0.5])
        Effect(value=0.5, low=nan, high=nan)
    """
    c = _check_confidence(confidence)
    x = _as_values(values)
    n = x.size
    mean = float(x.mean())
    if n < 2:
        return Effect(mean, _NAN, _NAN)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(_sps.t.ppf(0.5 + c / 2.0, n - 1)) * sem
    return Effect(mean, mean - half, mean + half)


def paired_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> Effect:
    """The mean paired difference ``a_i - b_i`` and its t-interval (see :func:`mean_ci`).

    Use when both arms ran with the same seeds: the pairing removes the variance the
    seed causes in both arms.

    Args:
        a, b: one number per seed each, same length, same seed order.
        confidence: the coverage of the interval.

    Example:
        >>> tuple(paired_ci([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]))
        (1.0, 1.0, 1.0)
    """
    xa, xb = _as_values(a, "a"), _as_values(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must have the same length, got {xa.size} and {xb.size}")
    return mean_ci(xa - xb, confidence)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = 0.95,
    n_boot: int = 10000,
    seed: int = 0,
) -> Effect:
    """A statistic of ``values`` and its percentile-bootstrap confidence interval.

    Resamples ``values`` with replacement ``n_boot`` times, computes ``statistic`` on
    each resample and returns the ``(1-c)/2`` and ``(1+c)/2`` quantiles.

    References:
        An Introduction to the Bootstrap (Efron, Tibshirani, 1993), ch. 13.

    Args:
        values: one number per seed (finite).
        statistic: maps a 1-d array to a number; it is called once per resample
            (it is vectorised over resamples with ``axis=1`` when it accepts ``axis``,
            as numpy reductions do).
        confidence: the coverage of the interval.
        n_boot: number of resamples (>= 100).
        seed: seed of the resampling generator (the result is deterministic).

    Returns:
        an :class:`Effect` ``(statistic(values), low, high)``; with one value,
        ``(stat, nan, nan)``.

    Example:
        >>> s, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0], n_boot=2000)
        >>> s, lo <= s <= hi
        (2.5, True)
    """
    c = _check_confidence(confidence)
    x = _as_values(values)
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 100:
        raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    point = float(statistic(x))
    if x.size < 2:
        return Effect(point, _NAN, _NAN)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(int(n_boot), x.size))
    samples = x[idx]
    try:
        stats = np.asarray(statistic(samples, axis=1), dtype=np.float64)  # type: ignore[call-arg]
        if stats.shape != (int(n_boot),):
            raise TypeError
    except TypeError:
        stats = np.array([float(statistic(s)) for s in samples])
    if not np.all(np.isfinite(stats)):
        raise ValueError("statistic returned a non-finite value on a bootstrap resample")
    low, high = np.quantile(stats, [(1.0 - c) / 2.0, (1.0 + c) / 2.0])
    return Effect(point, float(low), float(high))


def decide(
    low: float,
    high: float,
    *,
    threshold: float = 0.0,
    direction: Direction = "greater",
    n_seeds: int,
) -> str:
    """The verdict status of a claim "effect > threshold" (or "< threshold").

    * fewer than 2 seeds, or a NaN bound: ``"inconclusive"``;
    * the whole interval strictly beyond ``threshold`` in the claimed direction:
      ``"supported"``;
    * the whole interval strictly on the other side: ``"not supported"``;
    * otherwise (the interval contains the threshold): ``"inconclusive"``.

    Args:
        low, high: the confidence interval of the effect.
        threshold: the value the claim says the effect exceeds (or stays below).
        direction: ``"greater"`` (claim: effect > threshold) or ``"less"``.
        n_seeds: number of independent seeds behind the interval.

    Example:
        >>> decide(0.1, 0.4, n_seeds=5)
        'supported'
        >>> decide(-0.4, -0.1, n_seeds=5)
        'not supported'
        >>> decide(0.9, 1.2, threshold=1.0, direction="less", n_seeds=5)
        'inconclusive'
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 0:
        raise ValueError(f"n_seeds must be a non-negative integer, got {n_seeds!r}")
    lo, hi, t = float(low), float(high), float(threshold)
    if math.isnan(t):
        raise ValueError("threshold must not be NaN")
    if n_seeds < 2 or math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if lo > hi:
        raise ValueError(f"low ({lo}) must not exceed high ({hi})")
    above, below = lo > t, hi < t
    if direction == "greater":
        return "supported" if above else "not supported" if below else "inconclusive"
    return "supported" if below else "not supported" if above else "inconclusive"


def combine(statuses: Sequence[str]) -> str:
    """One status for a claim made of several sub-claims, each decided by :func:`decide`.

    * every sub-claim supported: ``"supported"``;
    * every sub-claim not supported: ``"not supported"``;
    * some supported and some not supported: ``"mixed"``;
    * otherwise (some undecided, none contradicting the rest): ``"inconclusive"``.

    Args:
        statuses: the sub-claims' statuses (at least one).

    Example:
        >>> combine(["supported", "supported"])
        'supported'
        >>> combine(["supported", "not supported", "inconclusive"])
        'mixed'
        >>> combine(["supported", "inconclusive"])
        'inconclusive'
    """
    allowed = STATUSES
    subs = list(statuses)
    if not subs:
        raise ValueError("combine needs at least one status")
    bad = [s for s in subs if s not in allowed]
    if bad:
        raise ValueError(f"unknown status {bad[0]!r}; allowed: {', '.join(allowed)}")
    if all(s == "supported" for s in subs):
        return "supported"
    if all(s == "not supported" for s in subs):
        return "not supported"
    if "mixed" in subs or ("supported" in subs and "not supported" in subs):
        return "mixed"
    return "inconclusive"


# -- comparing methods over data sets ----------------------------------------------------


def _as_table(scores: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Return a finite 2-d float64 ``(rows, columns)`` array, or raise naming the problem."""
    try:
        x = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"scores must be a table of numbers, got {scores!r}") from None
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"scores must be a non-empty (datasets, methods) table, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"scores must be finite; {int((~np.isfinite(x)).sum())} value(s) are not")
    return x


def average_ranks(
    scores: Sequence[Sequence[float]] | np.ndarray, *, higher_is_better: bool = True
) -> np.ndarray:
    """The average rank of each method (column) over the data sets (rows).

    .. math:: R_j = \\frac{1}{N} \\sum_{i=1}^{N} r_i^j,

    where :math:`r_i^j` is the rank of method :math:`j` on data set :math:`i` (1 = the
    best score of the row) and tied methods share the mean of the ranks they span
    (``scipy.stats.rankdata``, ``method="average"``). The ranks of a row sum to
    :math:`k(k+1)/2` for :math:`k` methods.

    References:
        Statistical Comparisons of Classifiers over Multiple Data Sets (Demsar, 2006),
        JMLR 7, section 3.2.2.

    Args:
        scores: ``(datasets, methods)``, finite.
        higher_is_better: rank 1 goes to the highest score (accuracy, AUC); False: to
            the lowest (error, loss).

    Returns:
        ``(methods,)`` float64 average ranks.

    Example:
        >>> average_ranks([[0.9, 0.8], [0.7, 0.7]]).tolist()
        [1.25, 1.75]
    """
    x = _as_table(scores)
    sign = -1.0 if higher_is_better else 1.0
    return np.mean([_sps.rankdata(sign * row) for row in x], axis=0)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """The Nemenyi critical difference of average ranks of ``k`` methods on ``n`` sets.

    .. math:: CD = q_\\alpha \\sqrt{\\frac{k(k+1)}{6n}},

    with :math:`q_\\alpha` the studentised range quantile (``k`` groups, infinite degrees
    of freedom) divided by :math:`\\sqrt 2`. Two methods whose average ranks differ by
    more than CD differ at level ``alpha`` by the Nemenyi test.

    References:
        Demsar (2006), section 3.2.2 and Table 5a (:math:`q_{0.05}` = 2.728 for k = 5).

    Args:
        k: the number of methods (>= 2).
        n: the number of data sets (>= 1).
        alpha: the significance level, in (0, 1).

    Example:
        >>> round(critical_difference(5, 96), 3)
        0.623
    """
    if k < 2 or n < 1:
        raise ValueError(f"need k >= 2 methods and n >= 1 data sets, got k={k}, n={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    q = float(_sps.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


class SignedRank(NamedTuple):
    """The outcome of :func:`wilcoxon`: ``(statistic, pvalue, median_diff, mean_diff)``.

    ``median_diff`` and ``mean_diff`` are of :math:`a_i - b_i`: the sign says which
    side the test found.
    """

    statistic: float
    pvalue: float
    median_diff: float
    mean_diff: float


def wilcoxon(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    zero_method: Literal["zsplit", "wilcox", "pratt"] = "zsplit",
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
) -> SignedRank:
    """The Wilcoxon signed-rank test of paired samples (``scipy.stats.wilcoxon``).

    With :math:`d_i = a_i - b_i` ranked by :math:`|d_i|` (ties averaged),

    .. math:: W^+ = \\sum_{d_i > 0} \\operatorname{rank}|d_i|, \\qquad
        W^- = \\sum_{d_i < 0} \\operatorname{rank}|d_i|,

    and the two-sided statistic is :math:`\\min(W^+, W^-)`. ``zero_method="zsplit"``
    ranks zero differences and splits their ranks evenly between :math:`W^+` and
    :math:`W^-` (Demsar's recommendation for classifier comparisons). When every
    difference is zero there is no evidence either way: statistic nan, p-value 1.

    References:
        Individual Comparisons by Ranking Methods (Wilcoxon, 1945), Biometrics
        Bulletin 1(6); Demsar (2006), section 3.2.1.

    Args:
        a, b: one score per data set each (same length, same order), finite.
        zero_method, alternative: as in ``scipy.stats.wilcoxon``.

    Example:
        >>> r = wilcoxon([0.9, 0.8, 0.7, 0.95, 0.6, 0.85], [0.8, 0.7, 0.72, 0.9, 0.5, 0.8])
        >>> r.statistic, round(r.pvalue, 4), r.median_diff > 0
        (1.0, 0.0625, True)
    """
    xa, xb = _as_values(a, "a"), _as_values(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must have the same length, got {xa.size} and {xb.size}")
    diff = xa - xb
    if np.all(diff == 0):
        return SignedRank(_NAN, 1.0, 0.0, 0.0)
    res = _sps.wilcoxon(xa, xb, zero_method=zero_method, alternative=alternative)
    return SignedRank(
        float(res.statistic), float(res.pvalue), float(np.median(diff)), float(np.mean(diff))
    )


def hodges_lehmann(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray | None = None,
    confidence: float = 0.95,
) -> Effect:
    """The Hodges-Lehmann estimate of paired differences and its signed-rank interval.

    With :math:`d_i = a_i - b_i` and the :math:`M = n(n+1)/2` Walsh averages
    :math:`w_{ij} = (d_i + d_j)/2,\\ i \\le j`, sorted :math:`w_{(1)} \\le \\dots \\le w_{(M)}`,

    .. math:: \\hat\\theta = \\operatorname{median}_{i \\le j} w_{ij}, \\qquad
        [w_{(c+1)},\\ w_{(M-c)}], \\quad
        c = \\max\\{t : P_0(T^+ \\le t) \\le (1-\\text{conf})/2\\},

    where :math:`T^+` is the signed-rank statistic under the null (exact distribution,
    all :math:`2^n` sign patterns equally likely). :math:`\\hat\\theta` is the
    pseudo-median, the location the Wilcoxon signed-rank test (:func:`wilcoxon`) is
    about; the interval holds exactly the shifts :math:`\\theta` that the two-sided exact
    test of :math:`d - \\theta` does not reject (coverage :math:`1 - 2P_0(T^+ \\le c)
    \\ge` ``confidence`` for continuous data; with ties it is approximate).

    References:
        Estimates of Location Based on Rank Tests (Hodges, Lehmann, 1963), Ann. Math.
        Statist. 34(2); Constructing Confidence Sets Using Rank Statistics (Bauer,
        1972), JASA 67(339); Hollander, Wolfe, Chicken, Nonparametric Statistical
        Methods (3rd ed., 2014), section 3.2.

    Args:
        a: the differences, or the first arm when ``b`` is given (finite).
        b: the paired second arm (same length), or None.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        ``Effect(estimate, low, high)``; the bounds are nan when no finite interval
        reaches ``confidence`` (:math:`2^{1-n} > 1 -` confidence, e.g. n < 6 at 95%).

    Example:
        >>> hodges_lehmann([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).format()
        '4.5 [2, 7]'
    """
    c = _check_confidence(confidence)
    d = _as_values(a, "a")
    if b is not None:
        xb = _as_values(b, "b")
        if xb.shape != d.shape:
            raise ValueError(f"a and b must have the same length, got {d.size} and {xb.size}")
        d = d - xb
    n = d.size
    i, j = np.triu_indices(n)
    w = np.sort((d[i] + d[j]) / 2.0)
    dist = np.ones(1)  # P0(T+ = t), t = 0..M, built one rank at a time
    for r in range(1, n + 1):
        dist = (np.r_[dist, np.zeros(r)] + np.r_[np.zeros(r), dist]) / 2.0
    cut = int(np.searchsorted(np.cumsum(dist), (1.0 - c) / 2.0 * (1 + 1e-12), side="right")) - 1
    if cut < 0:
        return Effect(float(np.median(w)), _NAN, _NAN)
    return Effect(float(np.median(w)), float(w[cut]), float(w[w.size - 1 - cut]))


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the order given.

    With the :math:`m` p-values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`,

    .. math:: \\tilde p_{(i)} = \\min\\Bigl(1,\\ \\max_{j \\le i}\\ (m - j + 1)\\, p_{(j)}\\Bigr).

    Rejecting every hypothesis with :math:`\\tilde p < \\alpha` is Holm's step-down
    procedure: it controls the family-wise error rate at :math:`\\alpha` under any
    dependence between the tests, and rejects at least what Bonferroni
    (:math:`m\\,p_i < \\alpha`) rejects.

    References:
        A Simple Sequentially Rejective Multiple Test Procedure (Holm, 1979),
        Scandinavian Journal of Statistics 6(2).

    Args:
        pvalues: the raw p-values of the family, each in [0, 1].

    Returns:
        float64 adjusted p-values, same order and length.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(6).tolist()
        [0.03, 0.06, 0.06]
    """
    p = _as_values(pvalues, "pvalues")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"pvalues must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum(stepped, 1.0)
    return out


def auc_ci(
    labels: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Effect:
    """The ROC AUC of ``scores`` for binary ``labels`` and its bootstrap interval over rows.

    .. math:: \\mathrm{AUC} = P(s^+ > s^-) + \\tfrac12 P(s^+ = s^-),

    the probability that a random positive outscores a random negative
    (``sklearn.metrics.roc_auc_score``; the Mann-Whitney :math:`U / (n_+ n_-)`). The
    interval is the percentile bootstrap of :func:`bootstrap_ci` over the
    ``(label, score)`` rows; a resample holding one class only has no AUC and counts
    as the full-sample AUC (rare unless a class has very few rows).

    References:
        The Meaning and Use of the Area under a ROC Curve (Hanley, McNeil, 1982),
        Radiology 143; Efron, Tibshirani (1993), ch. 13.

    Args:
        labels: 0/1 (or False/True) per row; both classes present.
        scores: a finite score per row (higher: more likely positive).
        confidence, n_boot, seed: as in :func:`bootstrap_ci`.

    Example:
        >>> round(auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9], n_boot=200).value, 4)
        0.8889
    """
    from sklearn.metrics import roc_auc_score

    y, s = _as_values(labels, "labels"), _as_values(scores, "scores")
    if y.shape != s.shape:
        raise ValueError(f"labels and scores must have the same length, got {y.size} and {s.size}")
    if not np.isin(y, (0.0, 1.0)).all() or y.min() == y.max():
        raise ValueError("labels must be 0/1 with both classes present")
    auc = float(roc_auc_score(y, s))
    pairs = np.stack([y, s], axis=1)

    def stat(idx: np.ndarray) -> float:
        r = pairs[idx.astype(np.int64)]
        return auc if r[:, 0].min() == r[:, 0].max() else float(roc_auc_score(r[:, 0], r[:, 1]))

    rows = np.arange(y.size, dtype=np.float64)
    _, low, high = bootstrap_ci(rows, stat, confidence=confidence, n_boot=n_boot, seed=seed)
    return Effect(auc, low, high)


# -- reading a level off a sampled curve ---------------------------------------------------


def crossing(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    level: float,
    *,
    log_x: bool = True,
) -> float:
    """The first ``x`` at which a curve sampled at ``(x_i, y_i)`` reaches ``level``.

    With the points sorted by ``x`` and :math:`u = \\log x` (``u = x`` when
    ``log_x=False``), on the first segment whose ends bracket the level,

    .. math:: u^* = u_i + (\\ell - y_i)\\,\\frac{u_{i+1} - u_i}{y_{i+1} - y_i},
        \\qquad x^* = e^{u^*},

    or ``x_i`` itself where :math:`y_i = \\ell`. Points with a non-finite coordinate
    (and, with ``log_x``, with :math:`x \\le 0`) are left out. It never extrapolates:
    NaN where no segment reaches the level. Transform ``y`` first so that the curve
    is close to a line in :math:`\\log x` (the logit of a share, the log of a norm).

    Args:
        x: where the curve was sampled (e.g. a grid of penalty weights).
        y: the curve's value at each ``x``, same length.
        level: the value sought (finite).
        log_x: interpolate in :math:`\\log x` (the default) or in ``x``.

    Example:
        >>> round(crossing([1.0, 10.0, 100.0], [0.0, 1.0, 2.0], 1.5), 6)
        31.622777
        >>> crossing([0.0, 1.0, 10.0], [5.0, 4.0, 3.0], 4.5)  # x = 0 is off the log axis
        nan
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    lev = float(level)
    if not math.isfinite(lev):
        raise ValueError(f"level must be finite, got {level!r}")
    keep = np.isfinite(xs) & np.isfinite(ys) & ((xs > 0) if log_x else True)
    pts = sorted(zip(xs[keep].tolist(), ys[keep].tolist(), strict=True))
    u = [math.log(a) if log_x else a for a, _ in pts]
    for i, (xi, yi) in enumerate(pts):
        if yi == lev:
            return xi
        if i + 1 < len(pts) and (yi - lev) * (pts[i + 1][1] - lev) < 0:
            ui = u[i] + (lev - yi) * (u[i + 1] - u[i]) / (pts[i + 1][1] - yi)
            return math.exp(ui) if log_x else ui
    return _NAN
