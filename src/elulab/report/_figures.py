"""Figures the report draws itself from stored :class:`~elulab.lab.api.Series`.

Every experiment gets pictures even without a ``figures`` hook: for each series
name, the curves of all seeds are averaged per label and drawn as the mean with a
band of one standard deviation over seeds (``logy`` honoured). Drawing uses the
object-oriented matplotlib API (:class:`matplotlib.figure.Figure` on the Agg
canvas), so no global pyplot state is touched and nothing is shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..lab.api import Series

__all__ = ["SeriesStats", "draw_series", "series_stats"]

# a calm, colour-blind-friendly cycle (Okabe-Ito)
_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)


@dataclass
class SeriesStats:
    """Per-label mean and standard deviation over seeds of one series name.

    Args:
        x: the shared x values.
        mean, std: ``{label: array}`` of the same length as ``x`` (NaN where no seed
            has a finite value; std is NaN where fewer than two do).
        n: ``{label: number of seeds with this label}``.
        xlabel, ylabel, logy: from the first seed's series.
        skipped: seeds left out because their x values differ from the first seed's.
    """

    x: np.ndarray
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    n: dict[str, int]
    xlabel: str
    ylabel: str
    logy: bool
    skipped: int = 0


def _as_float_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def series_stats(series: Sequence[Series]) -> SeriesStats:
    """Average a list of series (one per seed) per label.

    Seeds whose ``x`` differs from the first seed's are skipped and counted.

    Raises:
        ValueError: for an empty list, or a series whose ``ys`` lengths differ from ``x``.

    Example:
        >>> s = series_stats([Series(x=[0, 1], ys={"a": [1.0, 2.0]}),
        ...                   Series(x=[0, 1], ys={"a": [3.0, 4.0]})])
        >>> s.mean["a"].tolist(), s.n["a"]
        ([2.0, 3.0], 2)
    """
    if not series:
        raise ValueError("series_stats needs at least one series")
    x = _as_float_array(series[0].x)
    stacks: dict[str, list[np.ndarray]] = {}
    skipped = 0
    for s in series:
        sx = _as_float_array(s.x)
        if sx.shape != x.shape or not np.allclose(sx, x, equal_nan=True):
            skipped += 1
            continue
        for label, ys in s.ys.items():
            y = _as_float_array(ys)
            if y.shape != x.shape:
                raise ValueError(
                    f"series label {label!r} has {y.size} values for {x.size} x values"
                )
            stacks.setdefault(label, []).append(y)
    mean: dict[str, np.ndarray] = {}
    std: dict[str, np.ndarray] = {}
    n: dict[str, int] = {}
    for label, ys in stacks.items():
        a = np.vstack(ys)
        finite = np.isfinite(a)
        count = finite.sum(axis=0)
        total = np.where(finite, a, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(count > 0, total / np.maximum(count, 1), math.nan)
            dev = np.where(finite, a - m, 0.0)
            var = (dev**2).sum(axis=0) / np.maximum(count - 1, 1)
        s = np.where(count > 1, np.sqrt(var), math.nan)
        mean[label], std[label], n[label] = m, s, len(ys)
    first = series[0]
    return SeriesStats(
        x=x,
        mean=mean,
        std=std,
        n=n,
        xlabel=first.xlabel,
        ylabel=first.ylabel,
        logy=bool(first.logy),
        skipped=skipped,
    )


def draw_series(stats: SeriesStats, title: str, path: Path) -> bool:
    """Draw ``stats`` as mean curves with a one-standard-deviation band; save a PNG.

    On a log axis the band is clipped to positive values and non-positive means
    are left out. Returns False (and writes nothing) when there is nothing finite
    to draw.
    """
    from matplotlib.figure import Figure  # heavy imports, only when drawing
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 3.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    drawn = False
    x = stats.x
    for i, (label, m) in enumerate(stats.mean.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        s = stats.std[label]
        m_plot = m.copy()
        lo, hi = m - s, m + s
        if stats.logy:
            m_plot[~(m_plot > 0)] = math.nan
            positive = m_plot[np.isfinite(m_plot)]
            floor = float(positive.min()) * 1e-3 if positive.size else 1e-300
            lo = np.where(np.isfinite(lo), np.maximum(lo, floor), math.nan)
            lo[~np.isfinite(m_plot)] = math.nan
            hi[~np.isfinite(m_plot)] = math.nan
        if not np.isfinite(m_plot).any():
            continue
        name = f"{label} (n={stats.n[label]})" if stats.n[label] > 1 else label
        style = "-o" if np.isfinite(m_plot).sum() <= 12 else "-"
        ax.plot(x, m_plot, style, color=colour, lw=1.6, ms=3.5, label=name)
        band = np.isfinite(lo) & np.isfinite(hi)
        if band.any():
            ax.fill_between(x, lo, hi, where=band, color=colour, alpha=0.18, lw=0)
        drawn = True
    if not drawn:
        return False
    if stats.logy:
        ax.set_yscale("log")
    finite_x = x[np.isfinite(x)]
    if finite_x.size and np.all(finite_x == np.round(finite_x)):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(stats.xlabel)
    ax.set_ylabel(stats.ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3, lw=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if len(stats.mean) > 1 or any(v > 1 for v in stats.n.values()):
        ax.legend(fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return True
