"""Figures without global state: panels, mean-and-band curves, one colour per label, save.

Everything draws on :class:`matplotlib.figure.Figure` with the Agg canvas: the
process-wide backend is never switched and pyplot is never imported, so drawing in a
worker, a test or a notebook changes nothing else. Used by the experiments'
``figures`` hooks and by the report.

* :func:`panels`: a figure and a flat list of axes;
* :func:`band`: the mean over seeds of curves ``(seeds, points)`` with a band
  (range, or a t-interval) around it;
* :func:`colour`: the colour of a label (one per activation across every figure);
* :func:`save`: write the PNG and free the figure.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> fig, (ax,) = panels(1)
    >>> _ = band(ax, [0, 1, 2], np.array([[1.0, 2, 3], [1.5, 2.5, 3.5]]), "elu")
    >>> save(fig, pathlib.Path(tempfile.mkdtemp()) / "f.png").suffix
    '.png'
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["PALETTE", "band", "colour", "curves", "legend_outside", "panels", "save"]

#: Okabe-Ito (colour-blind safe) and its extension; one fixed colour per activation.
PALETTE: dict[str, str] = {
    "relu": "#D55E00",
    "elu": "#0072B2",
    "selu": "#009E73",
    "celu": "#56B4E9",
    "gelu": "#CC79A7",
    "mish": "#E69F00",
    "leaky_relu": "#8C564B",
    "leakyrelu": "#8C564B",
    "tanh": "#000000",
    "silu": "#7F7F7F",
    "softplus": "#BCBD22",
    "sin": "#17BECF",
    "linear": "#999999",
    "identity": "#999999",
}
# fallback colours for labels that are not activations: none of them is in PALETTE
_CYCLE = ("#332288", "#117733", "#882255", "#AA4499", "#44AA99", "#999933", "#661100", "#6699CC")


def _shade(hex_colour: str, amount: float) -> str:
    """Mix ``hex_colour`` with white (``amount > 0``) or black (``amount < 0``)."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


def colour(label: str) -> str:
    """The colour of ``label``: one fixed colour per activation, shades for its variants.

    * an activation name (:data:`PALETTE`, any case): its colour;
    * a variant, i.e. an activation name followed by ``_``, ``+``, ``-`` or a space
      (``"relu_bn"``, ``"elu_tail"``, ``"SELU+LeCun"``): a lighter or darker shade of
      that activation's colour, fixed per label, so the family is recognisable and
      the variant is told apart from the plain activation;
    * anything else: a stable colour from a cycle that shares none of the
      activations' colours.

    Example:
        >>> colour("elu") == colour("ELU") == PALETTE["elu"]
        True
        >>> colour("relu_bn") != colour("relu"), colour("relu_bn") == colour("relu_bn")
        (True, True)
    """
    s = str(label).strip().lower()
    if s in PALETTE:
        return PALETTE[s]
    heads = [k for k in PALETTE if len(s) > len(k) and s.startswith(k) and s[len(k)] in "_+- "]
    if heads:
        base = PALETTE[max(heads, key=len)]
        amount = (0.45, -0.35, 0.25, -0.55)[zlib.crc32(s.encode()) % 4]
        return _shade(base, amount)
    return _CYCLE[zlib.crc32(s.encode()) % len(_CYCLE)]


def panels(
    n: int, *, ncols: int | None = None, width: float = 4.6, height: float = 3.4
) -> tuple[Any, list[Any]]:
    """A figure with ``n`` axes on a grid (``ncols`` per row, default up to 3).

    Args:
        n: the number of panels (>= 1).
        ncols: panels per row.
        width, height: inches per panel.

    Returns:
        ``(figure, axes)`` with ``axes`` a flat list of length ``n`` (extra grid cells
        removed).
    """
    from matplotlib.figure import Figure

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    cols = min(n, 3) if ncols is None else max(1, min(int(ncols), n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def band(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    ys: Sequence[Sequence[float]] | np.ndarray,
    label: str,
    *,
    kind: Literal["range", "std", "none"] = "range",
    colour_of: str | None = None,
    **line: Any,
) -> Any:
    """Draw the mean over seeds of ``ys`` (``(seeds, points)``) with a band.

    Args:
        ax: the axes.
        x: the x values (``points``).
        ys: one curve per seed; NaNs are ignored point-wise.
        label: the legend label (and the colour, via :func:`colour`).
        kind: ``"range"`` (min..max over seeds), ``"std"`` (one standard deviation)
            or ``"none"``.
        colour_of: take the colour of this label instead of ``label``'s.
        line: passed to ``ax.plot`` (e.g. ``marker="o"``).

    Returns:
        the line.
    """
    arr = np.atleast_2d(np.asarray(ys, dtype=np.float64))
    xs = np.asarray(x, dtype=np.float64)
    if arr.shape[1] != xs.size:
        raise ValueError(f"ys has {arr.shape[1]} points per curve, x has {xs.size}")
    with warnings.catch_warnings():  # an all-nan column (a diverged point) is drawn as a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(arr, axis=0)
        lo, hi = np.nanmin(arr, axis=0), np.nanmax(arr, axis=0)
        if kind == "std":
            sd = np.nanstd(arr, axis=0, ddof=1) if arr.shape[0] > 1 else np.zeros_like(mean)
            lo, hi = mean - sd, mean + sd
    c = colour(colour_of or label)
    (ln,) = ax.plot(xs, mean, label=label, color=c, **line)
    if kind != "none" and arr.shape[0] > 1:
        ax.fill_between(xs, lo, hi, color=c, alpha=0.15, linewidth=0)
    return ln


def curves(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    ys: dict[str, Sequence[Sequence[float]] | np.ndarray],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    integer_x: bool = False,
    logx: bool = False,
    logy: bool = False,
    kind: Literal["range", "std", "none"] = "range",
    legend: bool = True,
    **line: Any,
) -> list[str]:
    """Draw one :func:`band` per label; labels whose curves are all zero are named, not drawn.

    Five identical all-zero curves drawn on top of each other say nothing: they are
    listed in one line inside the axes ("all zero: elu, mish") instead.

    Args:
        ax: the axes.
        x: the shared x values.
        ys: ``{label: curves (seeds, points)}``.
        title, xlabel, ylabel: in words.
        integer_x: integer ticks on x (epochs, layers, steps).
        logx, logy: log axes (for parameters spanning decades).
        kind: the band (see :func:`band`).
        legend: draw a legend beside the axes (:func:`legend_outside`).
        line: passed to ``ax.plot``.

    Returns:
        the labels found all zero.
    """
    zero = []
    for label, arr in ys.items():
        a = np.asarray(arr, dtype=np.float64)
        if a.size and np.all(np.nan_to_num(a, nan=0.0) == 0.0):
            zero.append(label)
            continue
        band(ax, x, a, label, kind=kind, **line)
    if zero:
        ax.text(0.02, 0.97, "all zero: " + ", ".join(zero), transform=ax.transAxes,
                va="top", fontsize=8, color="#444444")  # fmt: skip
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if legend and len(ys) > len(zero):
        legend_outside(ax)
    return zero


def legend_outside(ax: Any, **kw: Any) -> Any:
    """A legend to the right of the axes, where it cannot cover data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, **kw)


def save(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG, parent folders made) on the Agg canvas; return it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    fig.clear()
    return path
