"""Tests of the C3 experiment (double backpropagation)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from elulab.experiments import get_experiment
from elulab.experiments.double_backprop import (
    Config,
    DoubleBackprop,
    _model,
    lambda_for_share,
    penalty_step,
)
from elulab.lab.api import RunContext, RunResult


def test_registered_and_profiles():
    exp = get_experiment("double_backprop")
    assert exp.claims == ("C3",)
    assert exp.resolve_config("full").seeds >= 5
    assert {"relu", "elu", "tanh", "gelu"} == set(exp.resolve_config("quick").activations)


@pytest.mark.parametrize("act", ["relu", "elu", "tanh", "gelu"])
def test_penalty_gradient_against_finite_differences(act):
    """grad_theta R (via create_graph) matches a central difference in float64."""
    torch.manual_seed(0)
    model = _model(act, 8).double()
    x, y = torch.rand(6, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (6,))
    lam = 0.7
    model.zero_grad()
    _, _, _, npen = penalty_step(model, x, y, lam)
    assert npen > 0.0  # the penalty reaches the weights, ReLU included

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
    model = _model("relu", 16)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    _, _, _, npen = penalty_step(model, x, y, 1.0)
    grads = [p.grad for p in model.parameters()]
    assert npen > 1e-3 and all(torch.isfinite(g).all() for g in grads)


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
                f"{act}_lambda_star": lam,
                f"{act}_lambda_star_extrapolated": 0.0,
                f"{act}_ratio_at_lambda0": 1.0,
            }
        )
    return RunResult(metrics=m)


def test_verdict_logic():
    exp, cfg = DoubleBackprop(), Config()
    v = exp.verdict(cfg, [_fake(10.0 * (1 + 0.1 * i), 1.0, 1.0) for i in range(5)])[0]
    assert v.status == "supported" and v.effect > 0.9
    v = exp.verdict(cfg, [_fake(0.1 * (1 + 0.1 * i), 1.0, 1.0) for i in range(5)])[0]
    assert v.status == "not supported"
    v = exp.verdict(cfg, [_fake(10.0 * (1 + 0.1 * i), 1.0, 100.0) for i in range(5)])[0]
    assert v.status == "mixed"
    assert exp.verdict(cfg, [_fake(10.0, 1.0, 1.0)])[0].status == "inconclusive"


@pytest.mark.slow
def test_reduced_run_end_to_end(tmp_path):
    exp = DoubleBackprop()
    cfg = exp.resolve_config(
        "quick", {"n_train": 300, "n_test": 200, "steps": 15, "lambdas": "0,0.1,10"}
    )
    res = exp.run(cfg, 0, RunContext(tmp_path))
    for act in cfg.activations:
        assert res.metrics[f"{act}_0_share"] == 0.0
        assert 0.0 < res.metrics[f"{act}_0.1_share"] < res.metrics[f"{act}_10_share"] < 1.0
        assert res.metrics[f"{act}_ratio_at_lambda0"] > 0.0
        assert res.metrics[f"{act}_lambda_star"] > 0.0
        assert 0.0 <= res.metrics[f"{act}_10_fgsm_acc"] <= 1.0
    figs = exp.figures(cfg, [res, res], tmp_path / "figs")
    assert len(figs) == 1 and figs[0].path.is_file()
