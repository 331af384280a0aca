"""Grid search with early stopping (elulab.train.grid_points, select, select_and_refit)."""

from __future__ import annotations

import math

import pytest
import torch

from elulab.train import (
    TrainResult,
    batches,
    build_mlp,
    grid_points,
    select,
    select_and_refit,
    steps_per_epoch,
)


def test_grid_points_product_order_and_seeded_samples() -> None:
    axes = {"depth": (2, 4, 8), "width": (8, 16), "lr": (0.1,)}
    full = grid_points(axes)
    assert len(full) == 6 and full[1] == {"depth": 2, "width": 16, "lr": 0.1}
    picks = [grid_points(axes, 3, seed=s) for s in range(8)]
    assert all(len(p) == 3 and all(q in full for q in p) for p in picks)
    assert all(p == sorted(p, key=full.index) for p in picks)  # kept in grid order
    assert grid_points(axes, 3, seed=5) == picks[5] and len({str(p) for p in picks}) > 1
    assert grid_points(axes, 6, seed=1) == grid_points(axes, 99) == full
    with pytest.raises(ValueError, match="at least one value"):
        grid_points({"depth": ()})
    with pytest.raises(ValueError, match="samples must be"):
        grid_points(axes, -1)


def test_steps_per_epoch_matches_the_batch_iterator() -> None:
    for n, bs in ((1000, 64), (127, 64), (128, 64), (40, 64), (1, 1)):
        one_epoch = sum(1 for _ in batches(n, bs, seed=0, epochs=1))
        assert steps_per_epoch(n, bs) == one_epoch
    with pytest.raises(ValueError, match="must be >= 1"):
        steps_per_epoch(0, 64)


def _result(score: float, step: int, diverged: bool = False) -> TrainResult:
    return TrainResult(steps=step, best_step=step, best_val_accuracy=score, diverged=diverged)


def test_select_keeps_the_best_first_on_ties_and_never_a_diverged_run() -> None:
    out = {0: _result(0.7, 10), 1: _result(0.9, 20), 2: _result(0.99, 5, True), 3: _result(0.9, 7)}
    seeds = []

    def train(point: dict, seed: int) -> TrainResult:
        seeds.append(seed)
        return out[point["i"]]

    s = select(train, [{"i": i} for i in range(4)], seed=3)
    assert s.point == {"i": 1} and s.best_step == 20 and s.score == 0.9
    assert s.diverged == 1 and math.isnan(s.scores[2]) and seeds == [3, 34, 65, 96]
    s = select(lambda p, sd: _result(0.5, 0, True), [{"i": 0}, {"i": 1}])
    assert s.point == {"i": 0} and math.isnan(s.score) and s.diverged == 2 and s.best_step == 1


def test_select_and_refit_retrains_for_the_same_epochs() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 4, generator=g)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).long()
    built = []

    def build(p: dict, seed: int) -> torch.nn.Module:
        built.append(seed)
        return build_mlp(4, 2, depth=p["depth"], width=8, seed=seed)

    pts = grid_points({"depth": (1, 2), "lr": (0.1,)})
    parts = [(range(0, 300), range(300, 400)), (range(100, 400), range(0, 100))]
    r = select_and_refit(build, pts, X, y, (range(0, 128), range(128, 256)), parts,
                         max_epochs=30, max_steps=50, batch_size=16, evals=5, seed=2)  # fmt: skip
    assert r.steps == 50 and r.epochs == 50 / 8  # 128 rows / 16: 8 steps per epoch, capped
    assert built == [2, 33, 1002, 1003] and r.selection.point in pts
    for _, res, te in r.fits:  # 300 rows: 18 steps per epoch, the same epochs as selected
        assert res.steps == max(1, round(r.selection.best_step / 8 * 18)) and len(te) == 100
    assert 0.5 < r.selection.score <= 1.0
    r2 = select_and_refit(build, pts, X, y, (range(0, 128), range(128, 256)), parts,
                          max_epochs=2, batch_size=16, evals=5, seed=2)  # fmt: skip
    assert r2.steps == 16 and r2.epochs == 2.0  # no cap: exactly max_epochs
