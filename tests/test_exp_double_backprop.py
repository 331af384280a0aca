"""Tests of the C3 experiment (double backpropagation): the penalty gradient, lambda*, verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from elulab.experiments.double_backprop import (
    Config,
    DoubleBackprop,
    build_model,
    lambda_for_share,
    lambda_needed,
    versions,
)
from elulab.lab.api import RunContext, RunResult
from elulab.lab.verdicts import check, key
from elulab.train import batches, double_backprop_step, fit

penalty_step = double_backprop_step  # the experiment's training step


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


def test_lambda_needed_is_exact_for_power_laws():
    """log gnorm linear in log lambda (gnorm = c lambda^-p): both norm versions exact."""
    lams = [0.0, 0.01, 0.1, 1.0, 10.0]
    c, p = 0.5, 0.4  # gnorm = 0.5 lambda^-0.4 for lambda > 0; reference at 0: 2.0
    gn = [2.0] + [c * lam**-p for lam in lams[1:]]
    shares = [0.0, 0.02, 0.1, 0.3, 0.45]
    cfg = Config(share_targets=(0.25, 0.1), gnorm_fraction=0.5, target_gnorm=0.25)
    got = lambda_needed(cfg, lams, shares, gn)
    assert list(got) == ["share_0.25", "share_0.1", "gnorm_x0.5", "gnorm_0.25"]
    assert got["share_0.1"] == (pytest.approx(0.1, rel=1e-12), False)  # on a grid point
    assert got["share_0.25"] == (lambda_for_share(lams, shares, 0.25)[0], False)
    # 0.5 lam^-0.4 = 1.0 (half of 2.0) <=> lam = 0.5^2.5; = 0.25 <=> lam = 2^2.5
    assert got["gnorm_x0.5"] == (pytest.approx(0.5**2.5, rel=1e-12), False)
    assert got["gnorm_0.25"] == (pytest.approx(2.0**2.5, rel=1e-12), False)
    # never reached (flat norm) or already passed at the smallest lambda > 0: NaN, flagged
    lam, out = lambda_needed(cfg, lams, shares, [2.0, 1.9, 1.8, 1.7, 1.6])["gnorm_x0.5"]
    assert math.isnan(lam) and out
    lam, out = lambda_needed(cfg, lams, shares, [2.0, 0.2, 0.1, 0.05, 0.01])["gnorm_0.25"]
    assert math.isnan(lam) and out


def test_versions_and_config_rules():
    assert [w for _, w in versions(Config())] == [
        "share 0.25",
        "share 0.1",
        "share 0.4",
        "|grad_x| x0.5",
        "|grad_x| = 0.25",
    ]
    exp = DoubleBackprop()
    with pytest.raises(ValueError, match="lambdas must hold 0"):
        exp.resolve_config("quick", {"lambdas": "0.1,1"})
    with pytest.raises(ValueError, match="share_targets"):
        exp.resolve_config("quick", {"share_targets": "0.25,0.5"})  # 0.5: every lambda
    with pytest.raises(ValueError, match="min_ratio"):
        exp.resolve_config("quick", {"min_ratio": 1.0})


VERSIONS = [v for v, _ in versions(Config())]


def _fakes(ratio, n: int = 5, outside: frozenset = frozenset()) -> list[RunResult]:
    """n seeds; ``ratio[v] = (ReLU/ELU, ReLU/tanh)`` lambda ratio per version (one number:
    every version, both); per seed a jitter of up to x1.2, ELU and tanh at 0.1."""
    ratio = ratio if isinstance(ratio, dict) else dict.fromkeys(VERSIONS, ratio)
    out = []
    for i in range(n):
        m = {}
        for v in VERSIONS:
            r = ratio[v] if isinstance(ratio[v], tuple) else (ratio[v], ratio[v])
            vals = {"relu": 0.1 * r[0] * (1 + 0.05 * i), "elu": 0.1, "tanh": 0.1 * r[0] / r[1]}
            vals["gelu"] = 0.1
            for act, lam in vals.items():
                m[key(act, "lambda", v)] = math.nan if (act, v) in outside else lam
                m[key(act, "lambda", v, "outside")] = float((act, v) in outside)
        out.append(RunResult(metrics=m | {key(a, "ratio_at_lambda0"): 1.0 for a in vals}))
    return out


def _v(results, **cfg):
    return DoubleBackprop().verdict(Config(**cfg), results)[0]


def test_verdict_supported_only_above_the_minimum_ratio():
    big = _v(_fakes(10.0))  # log10 ratio ~1.04, far above log10 2 = 0.30
    assert (big.status, big.qualifier, big.label) == ("supported", "", "supported")
    assert len(big.checks) == 10 and big.effect == pytest.approx(1.0 + np.log10(1.1), abs=0.01)
    assert all(c.confidence == pytest.approx(1 - 0.05 / 10) for c in big.checks)  # Bonferroni
    assert "not above" not in big.summary and "ratio 11 [9.17, 13.1]" in big.checks[0].sentence
    small = _v(_fakes(1.3))  # above 1 (ELU needs less), under the 2x minimum
    assert (small.status, small.qualifier) == ("supported", "small")
    assert small.label == "supported (small)"
    assert all("not above the 2x minimum" in c.note for c in small.checks)
    assert "share 0.25 supported (small)" in small.summary
    # the minimum is a Config threshold: at 1.1x the same data clear it
    assert _v(_fakes(1.3), min_ratio=1.1).qualifier == ""
    # one version large, the rest small: the claim is small, the large version says so
    one = _v(_fakes(dict.fromkeys(VERSIONS, 1.3) | {"share_0.1": 10.0}))
    assert (one.status, one.qualifier) == ("supported", "small")
    assert "share 0.1 supported;" in one.summary and "share 0.4 supported (small)" in one.summary


def test_verdict_mixed_when_versions_disagree():
    # the share versions say ReLU needs more, the outcome versions say less
    ratio = dict.fromkeys(VERSIONS[:3], 10.0) | dict.fromkeys(VERSIONS[3:], 0.1)
    v = _v(_fakes(ratio))
    assert (v.status, v.qualifier) == ("mixed", "")
    assert "|grad_x| x0.5 not supported" in v.summary and "share 0.25 supported;" in v.summary
    # one share target reversed is enough to make it mixed (robustness over targets)
    v = _v(_fakes(dict.fromkeys(VERSIONS, 10.0) | {"share_0.4": 0.1}))
    assert v.status == "mixed" and "share 0.4 not supported" in v.summary
    # ELU and tanh disagree within a version
    v = _v(_fakes(dict.fromkeys(VERSIONS, 10.0) | {"gnorm_0.25": (10.0, 0.1)}))
    assert v.status == "mixed" and "|grad_x| = 0.25 mixed" in v.summary


def test_verdict_not_supported_and_inconclusive():
    v = _v(_fakes(0.1))
    assert (v.status, v.qualifier) == ("not supported", "")
    # an interval that straddles 0 after the Bonferroni adjustment over the 10 checks,
    # though the unadjusted 95% interval lies above 0
    v = _v(_fakes(1.0))
    assert v.status == "inconclusive" and v.ci_low < 0.0 < v.ci_high
    d = np.log10([1 + 0.05 * i for i in range(5)])
    assert check("unadjusted", d, above=0.0).status == "supported"
    # a lambda outside the grid (a NaN) leaves its check inconclusive and says why
    v = _v(_fakes(10.0, outside=frozenset({("relu", "gnorm_0.25")})))
    assert v.status == "inconclusive" and "5 lambda(s) outside the grid" in v.summary
    assert "non-finite" in v.summary
    one = _v(_fakes(10.0, n=1))
    assert one.status == "inconclusive" and one.effect == pytest.approx(1.0)
    assert math.isnan(one.ci_low)
    few = _v(_fakes(10.0), activations=("relu", "elu"))
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
        for v, _ in versions(cfg):
            lam, out = (
                res.metrics[key(act, "lambda", v)],
                res.metrics[key(act, "lambda", v, "outside")],
            )
            assert (lam > 0.0) if v.startswith("share") or not out else math.isnan(lam)
        assert 0.0 <= res.metrics[key(act, 10.0, "fgsm_acc")] <= 1.0
        assert res.metrics[key(act, 10.0, "diverged")] == 0.0
    figs = exp.figures(cfg, [res, res], tmp_path / "figs")
    assert len(figs) == 1 and figs[0].path.is_file()
