"""Statistics for verdicts: confidence intervals over seeds and the decision rule.

Every verdict in elulab is a confidence interval over independent seeds, compared
with a threshold in the direction the claim states:

* :func:`mean_ci`: the Student-t interval of a mean,
  :math:`\\bar x \\pm t_{1-(1-c)/2,\\,n-1}\\, s/\\sqrt n`;
* :func:`paired_ci`: the same interval on paired differences :math:`a_i - b_i`
  (two arms run with the same seeds);
* :func:`bootstrap_ci`: a percentile bootstrap interval of any statistic;
* :func:`decide`: ``"supported"`` / ``"not supported"`` / ``"inconclusive"``.

References:
    An Introduction to the Bootstrap (Efron, Tibshirani, 1993), ch. 13 (percentile
    intervals).

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
    "bootstrap_ci",
    "combine",
    "decide",
    "format_number",
    "mean_ci",
    "paired_ci",
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
