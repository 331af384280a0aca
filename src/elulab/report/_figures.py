"""Figures the report draws itself from stored :class:`~elulab.lab.api.Series`.

Every experiment gets pictures even without a ``figures`` hook: for each series
name, the curves of all seeds are averaged per label and drawn as the mean with a
band of one standard deviation over seeds (``logy`` honoured). Each activation has
one colour across the whole site (:func:`elulab.lab.plots.colour`); labels of one
activation (``"elu"``, ``"elu pred"``) differ by line style. The legend sits beside
the axes, never on the data; the title is in words (:func:`series_title`); x values
that span decades on a geometric grid get a log axis; integer x values (epochs,
layers) get integer ticks; labels whose every value is zero are not drawn (the
caption names them). Drawing uses the object-oriented matplotlib API
(:class:`matplotlib.figure.Figure` on the Agg canvas), so no global pyplot state is
touched and nothing is shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..lab.api import Series
from ..lab.plots import PALETTE, colour

__all__ = [
    "FIGURE_DPI",
    "FIGURE_SIZE",
    "SeriesStats",
    "activation_of",
    "draw_series",
    "key_words",
    "series_stats",
    "series_title",
    "use_log_x",
]

#: inches and dots per inch of a drawn series: 528 px wide, the width of one of the two
#: figure columns of a claim page at 1280 px, so the browser never shrinks its text.
FIGURE_SIZE = (4.8, 3.2)
FIGURE_DPI = 110
_STYLES = ("-", "--", ":", "-.")
#: words for the parts of series keys that are abbreviations
_WORDS = {
    "acc": "accuracy",
    "cnn": "CNN",
    "fgsm": "FGSM",
    "gnorm": "input-gradient norm",
    "htru2": "HTRU2",
    "lr": "learning rate",
    "mlp": "MLP",
    "nll": "NLL",
    "rnn": "RNN",
    "std": "standard deviation",
    "uci": "UCI",
    "var": "variance",
}


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
        all_zero: labels whose every finite value, over every seed, is exactly 0.
        log_mean, log_std: ``{label: array}``, mean and standard deviation over seeds
            of ``log(y)`` where ``y > 0`` (what a log axis shows: a geometric mean and
            a band of one geometric standard deviation).
    """

    x: np.ndarray
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    n: dict[str, int]
    xlabel: str
    ylabel: str
    logy: bool
    skipped: int = 0
    all_zero: list[str] = field(default_factory=list)
    log_mean: dict[str, np.ndarray] = field(default_factory=dict)
    log_std: dict[str, np.ndarray] = field(default_factory=dict)


def _as_float_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def series_stats(series: Sequence[Series]) -> SeriesStats:
    """Average a list of series (one per seed) per label.

    Seeds whose ``x`` differs from the first seed's are skipped and counted.

    Raises:
        ValueError: for an empty list, or a series whose ``ys`` lengths differ from ``x``.

    Example:
        >>> s = series_stats([Series(x=[0, 1], ys={"a": [1.0, 2.0], "z": [0.0, 0.0]}),
        ...                   Series(x=[0, 1], ys={"a": [3.0, 4.0], "z": [0.0, 0.0]})])
        >>> s.mean["a"].tolist(), s.n["a"], s.all_zero
        ([2.0, 3.0], 2, ['z'])
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
    log_mean: dict[str, np.ndarray] = {}
    log_std: dict[str, np.ndarray] = {}
    n: dict[str, int] = {}
    all_zero: list[str] = []
    for label, ys in stacks.items():
        a = np.vstack(ys)
        mean[label], std[label] = _mean_std(a)
        with np.errstate(invalid="ignore", divide="ignore"):
            logs = np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), math.nan)
        log_mean[label], log_std[label] = _mean_std(logs)
        n[label] = len(ys)
        finite = np.isfinite(a)
        if finite.any() and np.all(a[finite] == 0.0):
            all_zero.append(label)
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
        all_zero=all_zero,
        log_mean=log_mean,
        log_std=log_std,
    )


def _mean_std(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise mean and sample standard deviation over the finite values of ``a``."""
    finite = np.isfinite(a)
    count = finite.sum(axis=0)
    total = np.where(finite, a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(count > 0, total / np.maximum(count, 1), math.nan)
        dev = np.where(finite, a - m, 0.0)
        var = (dev**2).sum(axis=0) / np.maximum(count - 1, 1)
    return m, np.where(count > 1, np.sqrt(var), math.nan)


def activation_of(label: str) -> str:
    """The activation a curve label names (its first word, or the longest ``_`` prefix
    that is an activation of :data:`elulab.lab.plots.PALETTE`), else the label.

    Example:
        >>> activation_of("selu_lecun+alphadropout"), activation_of("elu pred rms_fit")
        ('selu', 'elu')
        >>> activation_of("leaky_relu"), activation_of("coupling")
        ('leaky_relu', 'coupling')
    """
    s = str(label).strip().lower()
    head = re.split(r"[ +]", s, maxsplit=1)[0]
    parts = head.split("_")
    for k in range(len(parts), 0, -1):
        candidate = "_".join(parts[:k])
        if candidate in PALETTE:
            return candidate
    return s


def key_words(part: str) -> str:
    """One part of a series key in words (``"acc"`` -> ``"accuracy"``, ``_`` -> space)."""
    return _WORDS.get(part.lower(), part.replace("_", " "))


def series_title(name: str, ylabel: str = "") -> str:
    """A title in words for the series ``name``: the y label (without its remark in
    parentheses), then the parts of the key it does not already say.

    Example:
        >>> series_title("dead/cnn", "dead fraction (whole training split)")
        'Dead fraction · CNN'
        >>> series_title("acc", "")
        'Accuracy'
    """
    head = re.sub(r"\s*\([^()]*\)\s*$", "", ylabel.strip()).strip()
    parts = [p for p in str(name).split("/") if p]
    if head:  # the first part names the quantity, which the y label says in words
        parts = parts[1:]
    said = head.lower()
    context = [
        key_words(p) for p in parts if p.lower() not in said and key_words(p).lower() not in said
    ]
    if not head:
        head, context = (context[0], context[1:]) if context else (str(name), [])
    title = " · ".join([head, *context])
    return title[:1].upper() + title[1:]


def use_log_x(x: np.ndarray) -> bool:
    """True when ``x`` is positive, spans at least two decades, and is spaced more
    evenly in log than in linear scale (a grid like 0.01, 0.1, 1, 10).

    Example:
        >>> use_log_x(np.array([0.01, 0.1, 1.0, 10.0])), use_log_x(np.arange(1.0, 129.0))
        (True, False)
    """
    v = np.sort(x[np.isfinite(x)])
    if v.size < 3 or v[0] <= 0 or v[-1] / v[0] < 100:
        return False

    def spread(d: np.ndarray) -> float:
        return float(np.std(d) / np.mean(d)) if np.mean(d) > 0 else math.inf

    return spread(np.diff(np.log(v))) < spread(np.diff(v))


def _styles(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, line style) per label: colour by activation, style by order within it."""
    seen: dict[str, int] = {}
    out: dict[str, tuple[str, str]] = {}
    for label in labels:
        act = activation_of(label)
        i = seen.get(act, 0)
        seen[act] = i + 1
        out[label] = (colour(act), _STYLES[i % len(_STYLES)])
    return out


def _plain_log_ticks(axis: object, limits: tuple[float, float]) -> None:
    """On a log axis spanning less than two decades, label ticks as plain numbers
    (``0.2, 0.3``) rather than ``2 x 10^-1``."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from ..lab.stats import format_number

    lo, hi = sorted(limits)
    if lo > 0 and hi / lo < 100:
        plain = FuncFormatter(lambda v, _pos: format_number(v, 2))
        axis.set_major_formatter(plain)  # type: ignore[attr-defined]
        axis.set_minor_formatter(plain if hi / lo < 10 else NullFormatter())  # type: ignore[attr-defined]


def draw_series(stats: SeriesStats, title: str, path: Path) -> bool:
    """Draw ``stats`` as mean curves with a one-standard-deviation band; save a PNG.

    Labels in ``stats.all_zero`` are left out (the caller says so in words). On a log
    axis (``logy``) the curve is the geometric mean over seeds of the positive values
    and the band one geometric standard deviation (``exp(mean(log y) ± sd(log y))``).
    Returns False (and writes nothing) when there is nothing finite to draw.
    """
    import textwrap

    from matplotlib.figure import Figure  # heavy imports, only when drawing
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI, layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    x = stats.x
    labels = [label for label in stats.mean if label not in stats.all_zero]
    style = _styles(labels)
    ns = {stats.n[label] for label in labels}
    for label in labels:
        if stats.logy:
            lm, ls_ = stats.log_mean[label], stats.log_std[label]
            m_plot, lo, hi = np.exp(lm), np.exp(lm - ls_), np.exp(lm + ls_)
        else:
            m, s = stats.mean[label], stats.std[label]
            m_plot, lo, hi = m.copy(), m - s, m + s
        if not np.isfinite(m_plot).any():
            continue
        name = f"{label} (n={stats.n[label]})" if len(ns) > 1 else label
        c, ls = style[label]
        marker = "o" if np.isfinite(m_plot).sum() <= 12 else None
        ax.plot(x, m_plot, ls, color=c, lw=1.6, ms=3.5, marker=marker, label=name)
        band = np.isfinite(lo) & np.isfinite(hi)
        if band.any():
            ax.fill_between(x, lo, hi, where=band, color=c, alpha=0.15, lw=0)
        drawn += 1
    if not drawn:
        return False
    if stats.logy:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis, ax.get_ylim())
    if use_log_x(x):
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, ax.get_xlim())
    else:
        finite_x = x[np.isfinite(x)]
        if finite_x.size and np.all(finite_x == np.round(finite_x)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(textwrap.fill(stats.xlabel, 60), fontsize=9)
    ax.set_ylabel(textwrap.fill(stats.ylabel, 34), fontsize=9)
    # over the axes only (the legend has the column beside them), wrapped to their width
    ax.set_title(textwrap.fill(title, 44), fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3, lw=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if labels:  # beside the axes, never over the curves; even one curve is named
        fig.legend(loc="outside right upper", fontsize=7.5, frameon=False, handlelength=2.4)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return True
