"""Tests of the C3 experiment (double backpropagation): the penalty gradient, lambda*, verdict."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from elulab.experiments.double_backprop import (
    Config,
    DoubleBackprop,
    build_model,
    lambda_for_share,
    penalty_step,
)
from elulab.lab.api import RunContext, RunResult
from elulab.lab.verdicts import key
from elulab.train import batches, fit


@pytest.mark.parametrize("act", ["relu", "elu", "tanh", "gelu"])
def test_penalty_gradient_against_finite_differences(act):
    """grad_theta R (via create_graph) matches a central difference in float64."""
    torch.manual_seed(0)
    model = build_model(act, 8).double()
    x, y = torch.rand(6, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (6,))
    lam = 0.7
    model.zero_grad()
    _, logs = penalty_step(model, x, y, lam)
    assert logs["grad_penalty"] > 0.0  # the penalty reaches the weights, ReLU included

    def objective() -> float:
        xr = x.clone().requires_grad_(True)
        losses = nn.functional.cross_entropy(model(xr), y, reduction="none")
        (gx,) = torch.autograd.grad(losses.sum(), xr)
        return float((losses.mean() + lam * gx.pow(2).flatten(1).sum(1).mean()).detach())

    w = model[3].weight
    h = 1e-6
    for idx in [(0, 0), (3, 5), (7, 2)]:
        with torch.no_grad():
            w[idx] += h
        up = objective()
        with torch.no_grad():
            w[idx] -= 2 * h
        down = objective()
        with torch.no_grad():
            w[idx] += h
        # central difference in float64: error ~h^2 * f''' plus 1e-16/h rounding
        assert float(w.grad[idx]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_relu_penalty_gradient_is_nonzero_though_f2_is_zero():
    """ReLU: f'' = 0 a.e., but R = |W1^T D1 W2^T D2 W3^T (p - y)|^2 depends on every W."""
    torch.manual_seed(1)
    model = build_model("relu", 16)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    _, logs = penalty_step(model, x, y, 1.0)
    grads = [p.grad for p in model.parameters()]
    assert logs["grad_penalty"] > 1e-3 and all(torch.isfinite(g).all() for g in grads)


def test_share_and_ratio_follow_their_definitions():
    torch.manual_seed(2)
    model = build_model("elu", 8)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    lam = 0.3
    loss, logs = penalty_step(model, x, y, lam)
    nt, npen = logs["grad_task"], logs["grad_penalty"]
    assert logs["share"] == pytest.approx(lam * npen / (nt + lam * npen), rel=1e-12)
    assert logs["ratio"] == pytest.approx(npen / nt, rel=1e-12)
    with torch.no_grad():
        task = float(nn.functional.cross_entropy(model(x), y))
    assert not loss.requires_grad and float(loss) == pytest.approx(task, rel=1e-6)
    _, logs0 = penalty_step(model, x, y, 0.0)
    assert logs0["share"] == 0.0 and logs0["ratio"] == pytest.approx(logs["ratio"], rel=1e-12)


def test_fit_without_backward_is_the_hand_written_loop():
    """fit(backward=False) with penalty_step: the weights of the old explicit loop, bit for bit."""
    x, y = torch.rand(50, 1, 28, 28), torch.randint(0, 10, (50,))
    lam, steps = 0.5, 5

    def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(4)
        m = build_model("tanh", 8)
        return m, torch.optim.Adam(m.parameters(), lr=1e-2)

    old, opt = fresh()
    gen = torch.Generator().manual_seed(7)
    shares = []
    for _ in range(steps):
        idx = torch.randint(0, len(y), (10,), generator=gen)
        opt.zero_grad(set_to_none=True)
        shares.append(penalty_step(old, x[idx], y[idx], lam)[1]["share"])
        opt.step()
    new, opt = fresh()
    res = fit(
        new,
        lambda m, idx: penalty_step(m, x[idx], y[idx], lam),
        batches(len(y), 10, seed=7, steps=steps, replacement=True),
        optimizer=opt,
        backward=False,
    )
    assert res.steps == steps and res.logs["share"] == shares
    for a, b in zip(old.parameters(), new.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lambda_for_share():
    lam, extra = lambda_for_share([0.1, 1.0, 10.0], [0.1, 0.3, 0.6], 0.3)
    assert lam == pytest.approx(1.0) and not extra
    # fixed weights: logit(s) = log(lam) + c exactly, so interpolation is exact
    c = math.log(0.2)
    shares = [1 / (1 + math.exp(-(math.log(v) + c))) for v in (0.01, 0.1, 1.0)]
    lam, extra = lambda_for_share([0.01, 0.1, 1.0], shares, 0.5)
    assert lam == pytest.approx(5.0) and extra  # beyond the grid: slope-1 extrapolation
    lam, extra = lambda_for_share([0.0, 0.1], [0.0, 0.2], 0.2)
    assert lam == pytest.approx(0.1) and not extra
    assert math.isnan(lambda_for_share([0.0], [0.0], 0.5)[0])


def _fake(relu: float, elu: float, tanh: float) -> RunResult:
    m = {}
    for act, lam in (("relu", relu), ("elu", elu), ("tanh", tanh), ("gelu", elu)):
        m.update(
            {
                key(act, "lambda_star"): lam,
                key(act, "lambda_star_extrapolated"): 0.0,
                key(act, "ratio_at_lambda0"): 1.0,
            }
        )
    return RunResult(metrics=m)


def test_verdict_logic():
    exp, cfg = DoubleBackprop(), Config()
    v = exp.verdict(cfg, [_fake(10.0 * (1 + 0.1 * i), 1.0, 1.0) for i in range(5)])[0]
    assert v.status == "supported" and v.effect > 0.9 and len(v.checks) == 2
    v = exp.verdict(cfg, [_fake(0.1 * (1 + 0.1 * i), 1.0, 1.0) for i in range(5)])[0]
    assert v.status == "not supported"
    v = exp.verdict(cfg, [_fake(10.0 * (1 + 0.1 * i), 1.0, 100.0) for i in range(5)])[0]
    assert v.status == "mixed"
    one = exp.verdict(cfg, [_fake(10.0, 1.0, 1.0)])[0]
    assert one.status == "inconclusive" and one.effect == pytest.approx(1.0)
    assert math.isnan(one.ci_low)
    nan = exp.verdict(cfg, [_fake(10.0 * (1 + 0.1 * i), math.nan, 1.0) for i in range(5)])[0]
    assert nan.status == "inconclusive" and "non-finite" in nan.summary
    few = exp.verdict(Config(activations=("relu", "elu")), [_fake(10.0, 1.0, 1.0)])[0]
    assert few.status == "inconclusive" and "needs runs with relu, elu and tanh" in few.summary


@pytest.mark.slow
def test_reduced_run_end_to_end(tmp_path):
    exp = DoubleBackprop()
    cfg = exp.resolve_config(
        "quick", {"n_train": 300, "n_test": 200, "steps": 15, "lambdas": "0,0.1,10"}
    )
    res = exp.run(cfg, 0, RunContext(tmp_path))
    for act in cfg.activations:
        assert res.metrics[key(act, 0.0, "share")] == 0.0
        assert 0.0 < res.metrics[key(act, 0.1, "share")] < res.metrics[key(act, 10.0, "share")] < 1
        assert res.metrics[key(act, "ratio_at_lambda0")] > 0.0
        assert res.metrics[key(act, "lambda_star")] > 0.0
        assert 0.0 <= res.metrics[key(act, 10.0, "fgsm_acc")] <= 1.0
        assert res.metrics[key(act, 10.0, "diverged")] == 0.0
    figs = exp.figures(cfg, [res, res], tmp_path / "figs")
    assert len(figs) == 1 and figs[0].path.is_file()
