"""elulab.train's flow training: NLL per dimension, fit_flow (support penalty), tune_lr."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elulab.flows import make_flow
from elulab.train import fit_flow, flow_nll, tune_lr


def _gaussian_data(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return (z @ torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.float64) * 2.0 + 1.0).float()


def _gaussian_mle_nll(x: torch.Tensor) -> float:
    """NLL per dimension of the maximum-likelihood Gaussian of x, on x (independent of flows)."""
    a = x.double().numpy()
    cov = np.cov(a, rowvar=False, bias=True)
    d = a.shape[1]
    return 0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1] + d) / d


def test_flow_nll_of_an_untrained_stack_is_the_standard_normal_one() -> None:
    x = _gaussian_data(50)
    flow = make_flow(2, elementwise=None, blocks=2, coupling=False)  # a permutation at init
    nll, out = flow_nll(flow, x)
    ref = float((0.5 * x.double() ** 2 + 0.5 * math.log(2 * math.pi)).mean())
    assert nll == pytest.approx(ref, rel=1e-6) and out == 0.0


def test_flow_nll_counts_rows_outside_the_pure_elu_support() -> None:
    flow = make_flow(2, elementwise="elu", blocks=1, coupling=False)  # ELU sees x itself
    x = torch.tensor([[0.0, 0.0], [0.5, -2.0], [1.0, 1.0], [-1.0, 0.0]])
    nll, out = flow_nll(flow, x)
    assert out == 0.5  # rows 2 and 4 (an entry <= -1)
    assert nll == pytest.approx(float(-flow.log_prob(x[[0, 2]]).mean().detach()) / 2, rel=1e-6)
    assert flow_nll(flow, x[[1, 3]]) == (math.inf, 1.0)


def test_linear_stack_reaches_the_gaussian_maximum_likelihood() -> None:
    """The linear-only stack is a Gaussian: trained, its NLL meets the closed-form MLE's."""
    x = _gaussian_data(2000)
    torch.manual_seed(0)
    flow = make_flow(2, elementwise=None, blocks=2, coupling=False)
    res = fit_flow(flow, x, x, lr=3e-2, steps=300, batch=256, seed=0, eval_every=100)
    nll, _ = flow_nll(flow, x)
    ref = _gaussian_mle_nll(x)
    # the MLE is the minimum on these rows; 300 Adam steps of batch 256 get within 0.01
    assert ref - 1e-6 <= nll <= ref + 0.01
    assert res.score == pytest.approx(nll, abs=1e-9) and res.train_outside == 0.0


def test_pure_elu_training_keeps_the_rows_inside_its_support() -> None:
    """The penalty (a row outside costs more than any inside, with a pull back) holds them in."""
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(1500, 2, generator=g), -torch.rand(500, 2, generator=g) * 6])
    torch.manual_seed(0)
    flow = make_flow(2, elementwise="elu", blocks=4, coupling=False)
    res = fit_flow(flow, x, x, lr=1e-1, steps=200, batch=128, seed=0, eval_every=50)
    inside = flow.in_support(x)
    assert float(1 - inside.float().mean()) <= 0.01
    assert 0.0 <= res.train_outside < 0.05 and res.val_outside <= 0.01
    assert math.isfinite(res.score) and res.score == pytest.approx(
        res.val_nll + 100.0 * res.val_outside, rel=1e-9
    )


def test_tune_lr_starts_every_rate_from_the_same_weights_and_keeps_the_best() -> None:
    x = _gaussian_data(1200)
    built: list[torch.Tensor] = []

    def build():  # records the random permutation of the first LU layer
        flow = make_flow(2, elementwise="leaky_softplus", blocks=2, coupling=False)
        built.append(flow.layers[1].perm.clone())
        return flow

    lrs = (1e-4, 3e-2, 10.0)  # too small, sensible, far too large
    flow, res, fits = tune_lr(build, x[:800], x[800:], lrs, seed=5, steps=150, batch=128)
    assert len(built) == 3 and all(torch.equal(p, built[0]) for p in built)
    assert [f.lr for f in fits] == list(lrs)
    assert res.lr == 3e-2 and res.score == min(f.score for f in fits)
    assert flow_nll(flow, x[800:])[0] == pytest.approx(res.val_nll, abs=1e-9)
    with pytest.raises(ValueError, match="at least one"):
        tune_lr(build, x, x, (), seed=0, steps=1, batch=8)
