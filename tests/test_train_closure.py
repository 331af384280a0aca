"""fit(closure=True): optimisers that re-evaluate the loss (L-BFGS)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from elulab.train import fit


def _problem():
    X = torch.randn(32, 3, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    model = torch.nn.Linear(3, 1).double()
    evals = []

    def mse(m, _):
        evals.append(1)
        loss = (m(X).squeeze(1) - y).square().mean()
        return loss, {"twice": 2 * loss.detach()}

    return model, mse, evals


def test_lbfgs_through_fit_solves_least_squares_and_logs_first_evaluations() -> None:
    model, mse, evals = _problem()
    opt = torch.optim.LBFGS(model.parameters(), max_iter=5, line_search_fn="strong_wolfe")
    res = fit(model, mse, itertools.repeat(None), optimizer=opt, steps=6, closure=True)
    assert res.steps == 6 and not res.diverged and len(res.losses) == 6
    assert len(evals) > 6  # the closure ran more than once per step
    assert res.losses[0] > 1.0 and res.final_loss < 1e-12
    assert res.logs["twice"] == pytest.approx([2 * v for v in res.losses], rel=1e-12)
    # without closure=True, L-BFGS cannot be driven: its step needs the closure
    with pytest.raises(TypeError):
        fit(model, mse, itertools.repeat(None), optimizer=opt, steps=1)


def test_nonfinite_first_loss_aborts_before_the_optimiser_moves() -> None:
    model, mse, _ = _problem()
    opt = torch.optim.LBFGS(model.parameters(), max_iter=1)  # one evaluation per step
    calls = itertools.count()

    def sometimes_nan(m, b):
        loss, logs = mse(m, b)
        return (loss * math.nan if next(calls) >= 4 else loss), logs

    res = fit(model, sometimes_nan, itertools.repeat(None), optimizer=opt, steps=10, closure=True)
    assert res.diverged and res.steps == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())
    stop = fit(model, mse, itertools.repeat(None), optimizer=opt, steps=5, closure=True,
               after_backward=lambda s: s.step < 3)  # fmt: skip
    assert stop.diverged and stop.steps == 2


def test_closure_with_adam_is_the_plain_loop() -> None:
    torch.manual_seed(0)
    a, mse_a, _ = _problem()
    torch.manual_seed(0)
    b, mse_b, _ = _problem()
    ra = fit(a, mse_a, itertools.repeat(None), optimizer=torch.optim.Adam(a.parameters()), steps=5)
    rb = fit(b, mse_b, itertools.repeat(None), optimizer=torch.optim.Adam(b.parameters()), steps=5,
             closure=True)  # fmt: skip
    assert ra.losses == rb.losses
    with pytest.raises(ValueError, match="closure must be a bool"):
        fit(a, mse_a, [None], optimizer=torch.optim.Adam(a.parameters()), closure="yes")
