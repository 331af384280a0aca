"""Closed-form second derivatives of the activation table against float64 nested autograd."""

from __future__ import annotations

import pytest
import torch

from elulab.functional import (
    ACTIVATION_NAMES,
    SECOND_DERIVATIVE_NAMES,
    activation_function,
    activation_second_derivative,
)

# the kink exactly, both zeros, the softplus threshold (beta x = 20) on both sides, and a
# spread of ordinary points
POINTS = [0.0, -0.0, 1e-300, -1e-300, -1e-8, 1e-8, -0.7, 0.3, 1.5, -3.0, 6.0, -30.0, 20.0]
POINTS += [19.999, 20.001, -700.0, 40.0]


def _second_by_autograd(f, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (d1,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x, allow_unused=True)
    return torch.zeros_like(x) if d2 is None else d2


@pytest.mark.parametrize("name", SECOND_DERIVATIVE_NAMES)
def test_second_derivative_equals_nested_autograd(name: str) -> None:
    x = torch.tensor(POINTS, dtype=torch.float64)
    ref = _second_by_autograd(activation_function(name), x)
    got = activation_second_derivative(name)(x)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-15)


def test_kink_convention_is_zero_at_zero() -> None:
    zero = torch.tensor([0.0, -0.0], dtype=torch.float64)
    for name in ("elu", "celu", "selu", "relu", "leaky_relu"):
        assert activation_second_derivative(name)(zero).tolist() == [0.0, 0.0], name


def test_every_activation_but_mish_has_one_and_mish_is_refused() -> None:
    want = {"elu", "celu", "selu", "tanh", "sin", "silu", "gelu", "softplus", "sigmoid", "relu"}
    assert want <= set(SECOND_DERIVATIVE_NAMES) <= set(ACTIVATION_NAMES)
    assert "mish" not in SECOND_DERIVATIVE_NAMES
    with pytest.raises(ValueError, match=r"'mish' has no closed-form second.*allowed: relu"):
        activation_second_derivative("mish")
