"""Predictions of the post-activation identity path: exact cases, quadrature, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm as gauss

from elulab.theory.residual import branch_variance, post_path_chain, post_path_meanfield


def _elu_slope_sq(m: float, s: float) -> float:
    """E[elu'(z)^2], z ~ N(m, s^2), by scipy quadrature."""
    neg = integrate.quad(lambda z: math.exp(2 * z) * gauss.pdf(z, m, s), -np.inf, 0.0)[0]
    return neg + gauss.sf(0.0, m, s)


def test_meanfield_one_block_relu_and_elu() -> None:
    got = post_path_meanfield("relu", "batch", 1, 0.3, 0.5, 1.0)[0]
    assert got == pytest.approx(0.5 * math.log10(gauss.cdf(0.3 / math.sqrt(1.5))), rel=1e-12)
    got = post_path_meanfield("elu", "batch", 1, -0.2, 0.7, 0.5)[0]
    want = 0.5 * math.log10(_elu_slope_sq(-0.2, math.sqrt(0.7 + 0.25)))
    assert got == pytest.approx(want, rel=1e-9)


def test_branch_variance_without_norm_by_quadrature() -> None:
    s = math.sqrt(2 * 0.8)  # h ~ N(0, 2 E x^2)
    second = integrate.quad(lambda h: (h if h > 0 else math.expm1(h)) ** 2 * gauss.pdf(h, 0, s),
                            -np.inf, np.inf)[0]  # fmt: skip
    assert branch_variance("elu", "none", 0.8) == pytest.approx(2 * second, rel=1e-9)
    with pytest.raises(ValueError, match="norm must be one of batch, none"):
        branch_variance("elu", "group", 1.0)


def test_chain_first_block_matches_meanfield_for_gaussian_start() -> None:
    """After one block the chain is E f'(z)^2 with z Gaussian: the two agree (Monte Carlo)."""
    n = 200_000
    x0 = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    chain = post_path_chain("elu", "batch", 1, x0, 1.0, torch.Generator().manual_seed(2))[0]
    mf = post_path_meanfield("elu", "batch", 1, 0.0, 1.0, 1.0)[0]
    # E f'^2 ~ 0.6, sd of f'^2 < 0.5: the standard error of the log10 is < 0.001
    assert abs(chain - mf) < 0.003


def test_chain_never_below_zero_is_lossless() -> None:
    x0 = torch.full((100,), 50.0)
    out = post_path_chain("relu", "batch", 5, x0, 1.0, torch.Generator().manual_seed(0))
    assert np.array_equal(out, np.zeros(5))
