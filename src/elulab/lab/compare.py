"""One method against each other one, over many data sets (Demsar, 2006).

With one score per data set and method, :func:`versus` tests a reference method ``r``
against each of the :math:`m` others, ``j``: over the data sets where neither score is
left out (e.g. a diverged run: left out, not scored 0),

* the two-sided Wilcoxon signed-rank test of :math:`d_i = s_{ir} - s_{ij}`
  (:func:`elulab.lab.stats.wilcoxon`, ties split), Holm-corrected over the :math:`m`
  comparisons (:func:`elulab.lab.stats.holm`) at family-wise level ``alpha``;
* the effect: the Hodges-Lehmann pseudo-median of :math:`d`, the location the
  signed-rank test is about, with its signed-rank interval at :math:`1 - \\alpha/m`
  (:func:`elulab.lab.stats.hodges_lehmann`; Bonferroni, so the :math:`m` intervals
  hold together);
* the status: ``"supported"`` (``r`` above ``j``) when the Holm-adjusted p is below
  ``alpha`` and the pseudo-median is positive, ``"not supported"`` when it is below
  ``alpha`` and negative, else ``"inconclusive"`` (also with fewer than ``min_sets``
  data sets).

:func:`score_table` builds the table from one row per (data set, method, seed);
:func:`status` combines the checks into the status of "the reference beats every other
method"; :func:`clean_ranks` gives average ranks over the data sets with nothing left out;
:func:`rank_figure` and :func:`scatter_figure` draw average ranks with the Nemenyi
critical difference, and the reference against each other method per data set.

References:
    Statistical Comparisons of Classifiers over Multiple Data Sets (Demsar, 2006),
    JMLR 7; Holm (1979); Hodges, Lehmann (1963).

Example:
    >>> import numpy as np
    >>> s = np.c_[np.linspace(0.6, 0.9, 8) + 0.05, np.linspace(0.6, 0.9, 8)]
    >>> [c.status for c in versus(s, ["a", "b"], "a")]
    ['supported']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import plots, stats
from .verdicts import Check

__all__ = ["clean_ranks", "rank_figure", "scatter_figure", "score_table", "status", "versus"]


def _kept(exclude: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool) if exclude is None else np.asarray(exclude, bool)
    if out.shape != shape:
        raise ValueError(f"exclude must have the scores' shape {shape}, got {out.shape}")
    return ~out


def score_table(
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    *,
    score: str = "score",
    failed: str = "failed",
    unit: str = "dataset",
    label: str = "method",
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(data sets, scores, excluded)`` from one row per (data set, method, seed).

    ``scores[i, j]`` is the mean over seeds of ``row[score]`` (None: no score; nan if no
    seed has one); ``excluded[i, j]`` is True when a row of that cell has no score or a
    truthy ``row[failed]`` (e.g. a diverged run). Data sets lacking a method are dropped.

    Example:
        >>> rows = [{"dataset": "d", "method": m, "score": s} for m, s in (("a", 1), ("b", 2))]
        >>> names, s, ex = score_table(rows, ["a", "b"])
        >>> names, s.tolist(), ex.tolist()
        (['d'], [[1.0, 2.0]], [[False, False]])
    """
    per: dict[tuple[str, str], list[float]] = {}
    bad: set[tuple[str, str]] = set()
    for r in rows:
        k = (r[unit], r[label])
        per.setdefault(k, []).extend([] if r[score] is None else [float(r[score])])
        bad |= {k} if r.get(failed) or r[score] is None else set()
    names = [n for n in dict.fromkeys(n for n, _ in per) if all((n, m) in per for m in labels)]
    shape = (len(names), len(labels))
    s = [[np.mean(per[n, m]) if per[n, m] else np.nan for m in labels] for n in names]
    ex = [[(n, m) in bad for m in labels] for n in names]
    return names, np.reshape(np.array(s, float), shape), np.reshape(np.array(ex, bool), shape)


def clean_ranks(scores: np.ndarray, exclude: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Average ranks (:func:`elulab.lab.stats.average_ranks`, 1 = best) over the data sets
    with no score excluded, and how many there are (ranks all nan when none)."""
    s = np.asarray(scores, np.float64)
    clean = _kept(exclude, s.shape).all(1)
    if not clean.any():
        return np.full(s.shape[1], np.nan), 0
    return stats.average_ranks(s[clean]), int(clean.sum())


def versus(
    scores: np.ndarray,
    labels: Sequence[str],
    ref: str,
    *,
    alpha: float = 0.05,
    exclude: np.ndarray | None = None,
    scale: float = 1.0,
    unit: str = "",
    min_sets: int = 5,
) -> list[Check]:
    """One :class:`~elulab.lab.verdicts.Check` per other method: ``ref`` minus it.

    Args:
        scores: ``(data sets, methods)``, higher is better (nan only where excluded).
        labels: the methods' names, one per column; ``ref`` is one of them.
        alpha: the family-wise level (Holm) of the tests, in (0, 1).
        exclude: ``(data sets, methods)`` bool, True where a score is left out.
        scale, unit: differences are reported times ``scale`` in ``unit`` (e.g. 100, "pp").
        min_sets: fewer pairs than this: ``"inconclusive"``.

    Returns:
        the checks, in the order of ``labels`` without ``ref``.
    """
    s, labels = np.asarray(scores, np.float64), list(labels)
    if s.ndim != 2 or s.shape[1] != len(labels) or ref not in labels or len(labels) < 2:
        raise ValueError(f"scores must be (data sets, {len(labels)}) with {ref!r} in {labels}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    kept, r = _kept(exclude, s.shape), labels.index(ref)
    others = [j for j in range(len(labels)) if j != r]
    pairs = {j: kept[:, r] & kept[:, j] for j in others}
    if any(not np.isfinite(s[k][:, [r, j]]).all() for j, k in pairs.items()):
        raise ValueError("scores must be finite wherever they are not excluded")
    raw = [stats.wilcoxon(s[k, r], s[k, j]).pvalue if k.sum() >= min_sets else 1.0
           for j, k in pairs.items()]  # fmt: skip
    conf, checks = 1.0 - alpha / len(others), []
    for j, p, q in zip(others, raw, stats.holm(raw), strict=True):
        k, nan = pairs[j], float("nan")
        d = np.round(scale * (s[k, r] - s[k, j]), 12)  # equal scores: exactly 0
        eff = stats.hodges_lehmann(d, confidence=conf) if d.size else stats.Effect(nan, nan, nan)
        sig = q < alpha and d.size >= min_sets
        status = "inconclusive" if not sig or eff.value == 0 else (
            "supported" if eff.value > 0 else "not supported")  # fmt: skip
        note = f"Wilcoxon p={p:.2g}, Holm p={q:.2g}, {int((~k).sum())} sets left out" + (
            f"; {d.size} sets: too few for a {conf:.4g} interval" if np.isnan(eff.low) else ""
        )
        label = f"{ref} minus {labels[j]}" + (f" ({unit}, pseudo-median)" if unit else "")
        checks.append(Check(label, status, eff, int(d.size), 0.0, "greater", conf, note))
    return checks


def status(checks: Sequence[Check], ref_ranks_best: bool) -> str:
    """The status of "the reference beats every other method" from :func:`versus`' checks.

    ``"supported"``: every check supported and the reference has the best average rank;
    ``"not supported"``: some other method is significantly above it; ``"mixed"``: it is
    significantly above some, none above it; else ``"inconclusive"``.
    """
    st = {c.status for c in checks}
    if st == {"supported"} and ref_ranks_best:
        return "supported"
    return "not supported" if "not supported" in st else "mixed" if "supported" in st else (
        "inconclusive")  # fmt: skip


def rank_figure(
    path: str | Path, labels: Sequence[str], ranks: np.ndarray, n_sets: int, colours: Sequence[str]
) -> Path:
    """Horizontal bars of average ranks (best on top) with best + Nemenyi CD dashed."""
    ranks, cd = np.asarray(ranks, float), stats.critical_difference(len(labels), n_sets)
    order = list(np.argsort(ranks, kind="stable"))[::-1]
    fig, (ax,) = plots.panels(1, width=6.5, height=2.2 + 0.25 * len(labels))
    ax.barh([labels[i] for i in order], ranks[order], color=[colours[i] for i in order])
    ax.axvline(ranks.min() + cd, color="crimson", ls="--", label=f"best + CD ({cd:.2f})")
    ax.set(xlabel=f"average rank over {n_sets} data sets (1 = best)", xlim=(1, len(labels)),
           title="Average rank per method")  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    return plots.save(fig, path, dpi=120)


def scatter_figure(
    path: str | Path,
    scores: np.ndarray,
    labels: Sequence[str],
    ref: str,
    *,
    exclude: np.ndarray | None = None,
    colour: str = "C0",
    what: str = "score",
) -> Path:
    """One panel per other method: its score (x) against ``ref``'s (y), per data set."""
    s, labels = np.asarray(scores, float), list(labels)
    kept, r = _kept(exclude, s.shape), labels.index(ref)
    others = [j for j in range(len(labels)) if j != r]
    fig, axes = plots.panels(len(others), ncols=len(others), width=3.2, height=3.2)
    for ax, j in zip(axes, others, strict=True):
        k = kept[:, r] & kept[:, j]
        a, b = s[k, r], s[k, j]
        ax.scatter(b, a, s=10, alpha=0.7, color=colour)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set(xlabel=f"{labels[j]} {what}", ylabel=f"{ref} {what}",
               title=f"{ref} wins {np.sum(a > b)}, loses {np.sum(a < b)}")  # fmt: skip
    return plots.save(fig, path, dpi=120)
