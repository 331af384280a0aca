"""Residual blocks and ResNets: shapes, errors, and the identity-path gradient in float64."""

from __future__ import annotations

import math

import pytest
import torch

from elulab.functional import elu_derivative
from elulab.nn import ResidualBlock, ResNet, identity_path_only, trunk_gain


@pytest.mark.parametrize("kind", ["pre", "post"])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_shapes(kind: str, norm: str) -> None:
    mlp = ResNet(4, width=6, in_features=12, num_classes=3, kind=kind, norm=norm)
    assert mlp(torch.randn(5, 12)).shape == (5, 3) and len(mlp.blocks) == 4
    conv = ResNet(3, channels=(2, 4, 8), layer="conv", kind=kind, norm=norm, stem_stride=2)
    assert conv(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    down = ResidualBlock(3, out_width=5, stride=2, layer="conv", kind=kind, norm=norm)
    assert down(torch.randn(2, 3, 7, 7)).shape == (2, 5, 4, 4)


def test_branch_scale_default() -> None:
    assert ResNet(9, width=4, in_features=4, norm="none").blocks[0].branch_scale == pytest.approx(
        1 / 3
    )
    assert ResNet(9, width=4, in_features=4, norm="batch").blocks[0].branch_scale == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "mid"}, "kind must be one of pre, post; got 'mid'"),
        ({"norm": "layer"}, "norm must be one of batch, none; got 'layer'"),
        ({"layer": "rnn"}, "layer must be one of linear, conv; got 'rnn'"),
        ({"branch_scale": 0.0}, "branch_scale must be a finite number > 0"),
        ({"stride": 2}, "only a conv block may change width"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ResidualBlock(4, **kwargs)


def test_bad_depth() -> None:
    with pytest.raises(ValueError, match="blocks must be a positive multiple of 3, got 4"):
        ResNet(4, layer="conv")
    with pytest.raises(ValueError, match="kind must be one of pre, post"):
        ResNet(2, kind="both")


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_pre_with_zero_branch_is_identity(norm: str) -> None:
    net = ResNet(5, width=7, in_features=7, kind="pre", norm=norm, activation="elu").double()
    for b in net.blocks:
        torch.nn.init.zeros_(b.w2.weight)  # the branch ends in w2: F = 0
    x0 = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    out = net.trunk(x0)
    assert torch.equal(out, x0)
    (g,) = torch.autograd.grad(out.sum(), x0)
    assert torch.equal(g, torch.ones_like(g))


def test_pre_identity_path_gain_is_exactly_one() -> None:
    net = ResNet(20, width=8, in_features=8, kind="pre", norm="batch")
    assert trunk_gain(net, torch.randn(16, 8), torch.randn(16, 8), identity=True) == 0.0


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_post_elu_identity_path_is_product_of_slopes(norm: str) -> None:
    """Autograd through the identity path equals G * prod_l elu'(z_l), z_l recorded."""
    net = ResNet(12, width=9, in_features=9, kind="post", norm=norm, activation="elu").double()
    zs: list[torch.Tensor] = []
    hooks = [
        b.act2.register_forward_hook(lambda m, a, o: zs.append(a[0].detach())) for b in net.blocks
    ]
    x0 = torch.randn(10, 9, dtype=torch.float64, requires_grad=True)
    head = torch.randn(10, 9, dtype=torch.float64)
    with identity_path_only(net):
        (g,) = torch.autograd.grad((head * net.trunk(x0)).sum(), x0)
    for h in hooks:
        h.remove()
    expected = head * torch.stack([elu_derivative(z) for z in zs]).prod(0)
    assert len(zs) == 12 and bool((torch.stack(zs) < 0).any())
    torch.testing.assert_close(g, expected, rtol=1e-13, atol=0.0)
    assert not any(b.detach_branch for b in net.blocks)  # restored


def test_post_block_jacobian_formula() -> None:
    """One post block: d x_{l+1}/d x_l = diag f'(z) (I + s dF/dx), against autograd."""
    block = ResidualBlock(5, kind="post", norm="none", activation="elu", branch_scale=0.7).double()
    x = torch.randn(5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: block(v[None])[0], x)
    jf = torch.autograd.functional.jacobian(lambda v: block.branch(v[None])[0], x)
    z = x + 0.7 * block.branch(x[None])[0]
    expected = torch.diag(elu_derivative(z)) @ (torch.eye(5, dtype=torch.float64) + 0.7 * jf)
    torch.testing.assert_close(jac, expected, rtol=1e-13, atol=1e-15)


def test_identity_path_keeps_forward_values() -> None:
    net = ResNet(6, width=5, in_features=5, kind="post", norm="none").double()
    x0 = torch.randn(4, 5, dtype=torch.float64)
    with identity_path_only(net):
        a = net.trunk(x0)
    assert torch.equal(a, net.trunk(x0))
    full = trunk_gain(net, x0, torch.ones(4, 5, dtype=torch.float64))
    assert math.isfinite(full)
