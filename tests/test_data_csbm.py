"""The contextual SBM's statistics against its formulas, and the sign task's labels."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")

from elulab.data.csbm import csbm, csbm_homophily, csbm_parameters, sign_task


@pytest.mark.parametrize("phi", [-1.0, -0.5, 0.0, 0.5, 1.0])
def test_measured_homophily_follows_the_formula(phi: float) -> None:
    # 6 graphs of n = 800, d = 5 (~2,000 edges each): the mean over graphs is within 4
    # standard errors of 1/2 + lambda / (2 sqrt d) (the small finite-n bias, from the
    # n/2 - 1 vs n/2 pairs per node, is < 0.002, well inside)
    h = np.array([csbm(phi, features=4, seed=s).edge_homophily() for s in range(6)])
    se = h.std(ddof=1) / math.sqrt(len(h))
    assert abs(h.mean() - csbm_homophily(phi)) < 4 * max(se, 0.004)


def test_homophily_is_monotone_in_phi_with_the_published_ends() -> None:
    hs = [csbm_homophily(p) for p in np.linspace(-1, 1, 9)]
    assert all(a < b for a, b in itertools.pairwise(hs))
    assert (round(hs[0], 3), hs[4], round(hs[-1], 3)) == (0.039, 0.5, 0.961)


@pytest.mark.parametrize("phi", [-1.0, -0.3, 0.0, 0.6, 1.0])
def test_parameters_satisfy_the_constraint(phi: float) -> None:
    n, feats, eps = 800, 1000, 3.25
    lam, mu = csbm_parameters(phi, n, feats, eps)
    assert lam**2 + mu**2 / (n / feats) == pytest.approx(1 + eps, rel=1e-12)
    assert math.copysign(1, lam) == math.copysign(1, phi) or phi == 0


@pytest.mark.parametrize("phi", [0.0, 1.0])
def test_class_mean_gap_matches_the_feature_model(phi: float) -> None:
    # b_i = sqrt(mu/n) v_i u + Z_i/sqrt(F): the two class means differ by 2 sqrt(mu/n) u
    # plus noise, so E|mean_0 - mean_1|^2 = 4 mu/n E|u|^2 + 2 (F / (n/2)) / F = 4 (mu + 1)/n;
    # chi-square with F = 1000 dof: relative sd ~ sqrt(2/F) = 4.5% per graph
    n, feats = 800, 1000
    _, mu = csbm_parameters(phi, n, feats, 3.25)
    gaps = []
    for s in range(3):
        g = csbm(phi, n=n, features=feats, seed=s)
        d = g.x[g.y == 0].mean(0) - g.x[g.y == 1].mean(0)
        gaps.append(float(d.double().square().sum()))
    assert np.mean(gaps) == pytest.approx(4 * (mu + 1) / n, rel=0.12)


def test_balanced_classes_splits_and_determinism() -> None:
    g = csbm(0.3, n=100, features=8, splits=3, seed=4)
    assert g.y.tolist() == [0] * 50 + [1] * 50 and g.num_splits == 3
    assert g.train_masks.sum(1).tolist() == [60] * 3 and g.val_masks.sum(1).tolist() == [20] * 3
    assert int((g.train_masks.int() + g.val_masks.int() + g.test_masks.int()).max()) == 1
    h = csbm(0.3, n=100, features=8, splits=3, seed=4)
    assert torch.equal(g.x, h.x) and torch.equal(g.edge_index, h.edge_index)
    assert not torch.equal(g.x, csbm(0.3, n=100, features=8, splits=3, seed=5).x)


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match=r"phi must be in \[-1, 1\], got 1.5"):
        csbm(1.5)
    with pytest.raises(ValueError, match="raise degree"):
        csbm(1.0, degree=2.0)  # c_out = 2 - sqrt(2) * 2.06 < 0
    with pytest.raises(ValueError, match="degree must be > 0"):
        csbm_homophily(0.0, degree=0.0)
    with pytest.raises(ValueError, match="eps must be > -1"):
        csbm_parameters(0.0, 10, 10, -1.0)
    with pytest.raises(ValueError, match="sign_task"):
        sign_task(n=10, degree=20)


def test_sign_task_labels_are_the_sign_of_the_neighbour_sum() -> None:
    g = sign_task(n=300, features=4, degree=6.0, seed=2)
    a = torch.zeros(300, 300)
    a[g.edge_index[0], g.edge_index[1]] = 1.0
    agg = a.t() @ g.x[:, 0]
    isolated = a.sum(0) == 0
    agg[isolated] = g.x[isolated, 0]
    assert torch.equal(g.y, (agg < 0).long())
    assert 0.35 < g.y.float().mean() < 0.65 and g.num_classes == 2
