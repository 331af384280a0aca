"""Hyper-parameter selection: a grid (whole or sampled) and early stopping on validation.

The protocol of the SNN paper's UCI benchmark (Klambauer et al., 2017, appendix A4):
for each method, every point of a grid (depth, width, learning rate, dropout, ...) is
trained on a training part while its validation accuracy is tracked; the point with the
best (smoothed) validation score wins, together with the step where that score was
reached (early stopping). Retraining the winner on more data reuses that step,
rescaled to the same number of epochs (:func:`steps_per_epoch`).

* :func:`grid_points`: the product of named axes, or a seeded sample of it;
* :func:`steps_per_epoch`: minibatches per epoch of :func:`elulab.train.batches`;
* :func:`select`: train every point through a callback and pick the best
  (:class:`Selection`; diverged runs never win);
* :func:`select_and_refit`: that protocol for classifiers end to end: select on a
  (train, validation) split, retrain the winner on each (train, test) part.

Example:
    >>> pts = grid_points({"depth": (2, 4), "lr": (0.1, 0.01)})
    >>> [tuple(p.values()) for p in pts]
    [(2, 0.1), (2, 0.01), (4, 0.1), (4, 0.01)]
    >>> len(grid_points({"depth": (2, 4), "lr": (0.1, 0.01)}, samples=3, seed=0))
    3
    >>> steps_per_epoch(1000, 64), steps_per_epoch(40, 64)
    (15, 1)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._mlp import TrainResult, train_classifier

__all__ = ["Refit", "Selection", "grid_points", "select", "select_and_refit", "steps_per_epoch"]


def grid_points(
    axes: Mapping[str, Sequence[Any]], samples: int = 0, seed: int = 0
) -> list[dict[str, Any]]:
    """The points of the grid ``axes`` (product order), or ``samples`` of them.

    Args:
        axes: ``{name: values}``, each non-empty; the last axis varies fastest.
        samples: how many points to draw without replacement (``numpy`` generator
            seeded with ``seed``; kept in grid order); 0 or at least the grid's size:
            every point.
        seed: seeds the draw.

    Returns:
        one ``{name: value}`` dict per point.
    """
    if not axes or any(len(v) == 0 for v in axes.values()):
        raise ValueError(f"every grid axis needs at least one value, got {dict(axes)}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ValueError(f"samples must be an integer >= 0, got {samples!r}")
    full = [dict(zip(axes, p, strict=True)) for p in itertools.product(*axes.values())]
    if samples == 0 or samples >= len(full):
        return full
    pick = np.random.default_rng(seed).choice(len(full), samples, replace=False)
    return [full[i] for i in sorted(pick)]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in one epoch of ``batches(n, batch_size)``: ``n // min(batch_size, n)``.

    The short tail is dropped (``drop_last``), so one epoch is this many steps and
    ``steps / steps_per_epoch(n, batch_size)`` is the number of epochs trained.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be >= 1, got n={n}, batch_size={batch_size}")
    return n // min(batch_size, n)


@dataclass
class Selection:
    """What :func:`select` returns.

    Args:
        point: the winning grid point.
        best_step: its step with the best smoothed validation score (>= 1).
        score: that score (nan when every run diverged: then ``point`` is the first).
        scores: the best score of every point tried (nan for a diverged run).
        diverged: how many runs diverged.
    """

    point: dict[str, Any]
    best_step: int
    score: float
    scores: list[float] = field(default_factory=list)
    diverged: int = 0


def select(
    train: Callable[[dict[str, Any], int], TrainResult],
    points: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    stride: int = 31,
) -> Selection:
    """Train every point and keep the best one on validation (early stopping).

    Arguments:
        train: ``train(point, seed)`` trains a fresh model on the training part with
            validation data and returns its :class:`elulab.train.TrainResult`
            (``best_val_accuracy``, ``best_step``, ``diverged``).
        points: the grid points (e.g. :func:`grid_points`), at least one.
        seed: point ``j`` is trained with seed ``seed + stride * j``.
        stride: see ``seed``.

    Returns:
        a :class:`Selection`: the highest score wins, the first on ties; a diverged run
        never wins unless every run diverged.
    """
    if not points:
        raise ValueError("select needs at least one grid point")
    scores, steps = [], []
    for j, point in enumerate(points):
        res = train(point, seed + stride * j)
        scores.append(math.nan if res.diverged else float(res.best_val_accuracy))
        steps.append(max(1, int(res.best_step)))
    ok = [j for j, s in enumerate(scores) if not math.isnan(s)]
    best = max(ok, key=lambda j: (scores[j], -j)) if ok else 0
    return Selection(dict(points[best]), steps[best], scores[best], scores, len(points) - len(ok))


@dataclass
class Refit:
    """What :func:`select_and_refit` returns.

    Args:
        selection: the grid search (:class:`Selection`).
        steps: the step budget of each selection run.
        epochs: that budget in epochs of the selection's training part.
        fits: per part, ``(model, TrainResult, test indices)`` of the retrained winner.
    """

    selection: Selection
    steps: int
    epochs: float
    fits: list[tuple[nn.Module, TrainResult, torch.Tensor]]


def select_and_refit(
    build: Callable[[dict[str, Any], int], nn.Module],
    points: Sequence[dict[str, Any]],
    X: torch.Tensor,
    y: torch.Tensor,
    split: tuple[Sequence[int], Sequence[int]],
    parts: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    max_epochs: int,
    max_steps: int | None = None,
    batch_size: int = 64,
    evals: int = 20,
    optimizer: str = "sgd",
    seed: int = 0,
) -> Refit:
    """Grid search with early stopping, then the winner retrained for the same epochs.

    Each point (a dict with ``"lr"`` and whatever ``build`` reads) is trained by
    :func:`elulab.train.train_classifier` on ``X[split[0]]`` for
    ``min(max_epochs * steps_per_epoch, max_steps)`` steps, scored on ``X[split[1]]``
    ``evals`` times; :func:`select` picks the point and its best step. The winner is
    retrained on each part's training rows for the same number of epochs (best step
    times the ratio of :func:`steps_per_epoch`), without validation.

    Arguments:
        build: ``build(point, seed)`` returns a fresh model (initial weights from seed).
        points: the grid points.
        X, y: all rows; float features and int64 classes.
        split: (training, validation) row indices of the selection.
        parts: (training, test) row indices to retrain and test on.
        max_epochs, max_steps: the selection runs' length (``max_steps`` None: no cap).
        batch_size, evals, optimizer: as in :func:`elulab.train.train_classifier`.
        seed: point ``j`` trains with seed ``seed + 31 j``; part ``f`` with ``seed +
            1000 + f`` (initial weights, minibatch order and dropout).
    """

    def train(p, rows, sd, steps, val=(None, None)):
        net = build(p, sd)
        every = max(1, steps // evals) if val[0] is not None else 0
        res = train_classifier(net, X[rows], y[rows], steps=steps, lr=p["lr"],
                               batch_size=batch_size, optimizer=optimizer, X_val=val[0],
                               y_val=val[1], eval_every=every, seed=sd)  # fmt: skip
        return net, res

    tr, va = (torch.as_tensor(np.array(i, dtype=np.int64)) for i in split)
    per = steps_per_epoch(len(tr), batch_size)
    steps = min(max_epochs * per, max_steps or max_epochs * per)
    sel = select(lambda p, sd: train(p, tr, sd, steps, (X[va], y[va]))[1], points, seed=seed)
    fits = []
    for f, (ptr, pte) in enumerate(parts):
        ptr, pte = (torch.as_tensor(np.array(i, dtype=np.int64)) for i in (ptr, pte))
        n = max(1, round(sel.best_step / per * steps_per_epoch(len(ptr), batch_size)))
        fits.append((*train(sel.point, ptr, seed + 1000 + f, n), pte))
    return Refit(sel, steps, steps / per, fits)
