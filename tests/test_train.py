"""Tests of elulab.train: seeded batches, the one training loop, the MLP helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from elulab.train import (
    FitResult,
    accuracy,
    batches,
    build_mlp,
    fit,
    generator,
    predict_proba,
    seeded,
    stream_seed,
    train_classifier,
)

# -- streams ---------------------------------------------------------------------------


def test_stream_seed_is_the_seed_without_a_name_and_differs_per_name():
    assert stream_seed(7) == 7
    names = ["batches", "init", "dropout", ("init", "mlp"), ("init", "cnn")]
    seeds = {stream_seed(7, *(n if isinstance(n, tuple) else (n,))) for n in names}
    assert len(seeds) == len(names)
    assert all(0 <= s < 2**63 for s in seeds)
    assert stream_seed(7, "a") == stream_seed(7, "a")
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        stream_seed(-1)


def test_generator_without_stream_matches_manual_seed():
    a = torch.randperm(50, generator=generator(3)).tolist()
    b = torch.randperm(50, generator=torch.Generator().manual_seed(3)).tolist()
    assert a == b


def test_seeded_restores_the_global_state_and_is_reproducible():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    with seeded(4, "dropout"):
        a = torch.rand(5)
    assert torch.equal(torch.random.get_rng_state(), before)
    with seeded(4, "dropout"):
        b = torch.rand(5)
    with seeded(4, "other"):
        c = torch.rand(5)
    assert torch.equal(a, b) and not torch.equal(a, c)


# -- batches ---------------------------------------------------------------------------


def test_batches_epochs_cover_every_row_once():
    got = list(batches(10, 3, seed=0, epochs=2, drop_last=False))
    assert [len(b) for b in got] == [3, 3, 3, 1] * 2
    for e in range(2):
        rows = torch.cat(got[4 * e : 4 * e + 4]).sort().values
        assert rows.tolist() == list(range(10))


def test_batches_drop_last_matches_a_fresh_permutation_per_epoch():
    got = list(batches(10, 3, seed=5, steps=7))
    g = torch.Generator().manual_seed(5)
    want = []
    while len(want) < 7:
        perm = torch.randperm(10, generator=g)
        want += [perm[i : i + 3] for i in range(0, 8, 3)]
    assert [b.tolist() for b in got] == [w.tolist() for w in want[:7]]


def test_batches_with_replacement_and_bad_arguments():
    got = list(batches(5, 4, seed=1, steps=3, replacement=True))
    assert len(got) == 3 and all(len(b) == 4 and int(b.max()) < 5 for b in got)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        next(batches(5, 0, seed=0))
    with pytest.raises(ValueError, match="exactly one of seed and generator"):
        next(batches(5, 2))
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        next(batches(5, 2, seed=0, epochs=0))


# -- fit -------------------------------------------------------------------------------


def _regression(n: int = 64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return X, y


def test_fit_equals_the_hand_written_loop_bitwise():
    X, y = _regression()

    def run(by_hand: bool) -> nn.Linear:
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        if by_hand:
            g = torch.Generator().manual_seed(2)
            for _ in range(5):
                perm = torch.randperm(64, generator=g)
                for i in range(0, 64, 16):
                    idx = perm[i : i + 16]
                    loss = ((model(X[idx]).squeeze(1) - y[idx]) ** 2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        else:

            def mse(m, idx):
                return ((m(X[idx]).squeeze(1) - y[idx]) ** 2).mean()

            res = fit(model, mse, batches(64, 16, seed=2, epochs=5), optimizer=opt)
            assert res.steps == 20 and not res.diverged and len(res.losses) == 20
        return model

    a, b = run(True), run(False)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_fit_logs_hooks_and_steps():
    X, y = _regression()
    model = nn.Linear(3, 1)
    seen: list[int] = []
    grads: list[float] = []

    def loss_fn(m, idx):
        loss = ((m(X[idx]).squeeze(1) - y[idx]) ** 2).mean()
        return loss, {"batch_rows": float(len(idx))}

    def after(state):
        grads.append(float(state.model.weight.grad.norm()))

    res = fit(
        model,
        loss_fn,
        batches(64, 8, seed=0),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        steps=12,
        after_backward=after,
        on_step=lambda s: seen.append(s.step),
    )
    assert seen == list(range(1, 13)) and len(grads) == 12
    assert res.logs["batch_rows"] == [8.0] * 12 and res.mean_log("batch_rows") == 8.0
    assert math.isnan(res.mean_log("absent"))


def test_fit_stops_or_skips_on_a_nonfinite_loss():
    model = nn.Linear(1, 1)
    calls = iter([1.0, float("nan"), 2.0, 3.0])

    def loss_fn(m, _):
        return m.weight.sum() * 0 + next(calls)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    stop = fit(model, loss_fn, range(4), optimizer=opt)
    assert stop.diverged and stop.steps == 1 and stop.final_loss == 1.0
    calls = iter([1.0, float("inf"), 2.0, 3.0])
    skip = fit(model, loss_fn, range(4), optimizer=opt, on_nonfinite="skip")
    assert not skip.diverged and skip.skipped == 1 and skip.steps == 3
    assert skip.losses == [1.0, 2.0, 3.0]


def test_after_backward_false_stops_as_diverged():
    X, y = _regression()
    model = nn.Linear(3, 1)
    res = fit(
        model,
        lambda m, idx: ((m(X[idx]).squeeze(1) - y[idx]) ** 2).mean(),
        batches(64, 8, seed=0),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        steps=10,
        after_backward=lambda s: s.step < 4,
    )
    assert res.diverged and res.steps == 3


def test_clip_grad_norm_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, lambda m, _: -1000.0 * m.weight.sum(), range(1), optimizer=opt, clip_grad_norm=0.5)
    assert float(model.weight.detach()) == pytest.approx(0.5, rel=1e-6)


def test_keep_best_smoothing_and_restore():
    model = nn.Linear(1, 1, bias=False)
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.35, 0.4])
    weights: list[float] = []

    def evaluate(m):
        weights.append(float(m.weight.detach()))
        return next(scores)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = fit(
        model,
        lambda m, _: m.weight.sum(),
        range(6),
        optimizer=opt,
        evaluate=evaluate,
        eval_every=1,
        restore_best=True,
    )
    assert res.eval_steps == [1, 2, 3, 4, 5, 6]
    assert res.best_step == 2 and res.best_score == 0.9
    assert res.restored and float(model.weight.detach()) == pytest.approx(weights[1])
    # a centred window of 3 (truncated at the ends): 0.5, 0.4, 0.467, 0.283, 0.35, 0.375
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.35, 0.4])
    res = fit(
        model,
        lambda m, _: m.weight.sum(),
        range(6),
        optimizer=opt,
        evaluate=lambda m: next(scores),
        eval_every=1,
        smooth=3,
    )
    assert res.best_step == 1 and res.best_score == pytest.approx((0.1 + 0.9) / 2)


def test_fit_min_mode_and_final_evaluation():
    model = nn.Linear(1, 1, bias=False)
    scores = iter([3.0, 1.0, 2.0])
    res = fit(
        model,
        lambda m, _: m.weight.sum(),
        range(5),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        evaluate=lambda m: next(scores),
        eval_every=2,
        best="min",
    )
    assert res.eval_steps == [2, 4, 5] and res.best_step == 4 and res.best_score == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": -1}, "steps must be"),
        ({"eval_every": 2}, "need an evaluate"),
        ({"best": "up"}, "best must be"),
        ({"on_nonfinite": "ignore"}, "on_nonfinite must be"),
        ({"clip_grad_norm": 0.0}, "clip_grad_norm must be"),
    ],
)
def test_fit_bad_arguments_are_named(kwargs, match):
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match=match):
        fit(
            model,
            lambda m, _: m.weight.sum(),
            range(1),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            **kwargs,
        )


def test_fit_seed_fixes_dropout_masks_and_restores_the_global_state():
    X = torch.ones(8, 4)

    def run() -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        state = torch.random.get_rng_state()
        res = fit(model, lambda m, idx: m(X[idx]).pow(2).mean(), batches(8, 4, seed=0, steps=3),
                  optimizer=opt, seed=11)  # fmt: skip
        assert isinstance(res, FitResult)
        assert torch.equal(torch.random.get_rng_state(), state)
        return model[0].weight.detach().clone()

    assert torch.equal(run(), run())


# -- MLP helpers -------------------------------------------------------------------------


def test_build_mlp_layout_and_inits():
    net = build_mlp(5, 3, depth=2, width=8, activation="elu", norm="batch", dropout=0.1, seed=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "ELU", "Dropout"] * 2 + ["Linear"]
    lecun = build_mlp(2000, 1, depth=1, width=2000, init="lecun", seed=1)
    var = float(lecun[0].weight.detach().var())
    assert var == pytest.approx(1 / 2000, rel=0.01)  # 4e6 draws: relative sd 7e-4
    assert float(lecun[0].bias.detach().abs().max()) == 0.0
    with pytest.raises(ValueError, match="norm must be one of"):
        build_mlp(2, 2, depth=1, width=2, norm="group")
    with pytest.raises(ValueError, match="init must be one of"):
        build_mlp(2, 2, depth=1, width=2, init="xavier")


def test_train_classifier_learns_and_reports_best_step():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 2, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    net = build_mlp(2, 2, depth=1, width=16, activation="elu", seed=0)
    res = train_classifier(
        net, X[:300], y[:300], steps=200, lr=0.1, batch_size=32,
        X_val=X[300:], y_val=y[300:], eval_every=20, seed=0,
    )  # fmt: skip
    assert res.steps == 200 and not res.diverged
    assert res.eval_steps[-1] == 200 and len(res.eval_steps) == 10
    assert accuracy(net, X[300:], y[300:]) > 0.9
    p = predict_proba(net, X[:5])
    assert p.shape == (5, 2) and abs(p.sum(1) - 1).max() < 1e-6
    with pytest.raises(ValueError, match="give both X_val and y_val"):
        train_classifier(net, X, y, steps=1, lr=0.1, X_val=X)
    with pytest.raises(ValueError, match="accuracy of an empty set"):
        accuracy(net, X[:0], y[:0])
