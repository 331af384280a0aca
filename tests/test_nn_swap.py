"""Tests of elulab.nn.swap_activations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from elulab.nn import ELU, swap_activations


def _net() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Linear(4, 2)
    )


def test_replaces_in_place_and_returns_replaced():
    net = _net()
    old = [net[1], net[2][1]]
    replaced = swap_activations(net, nn.ReLU, nn.ELU)
    assert list(replaced) == ["1", "2.1"]
    assert [replaced["1"], replaced["2.1"]] == old
    assert isinstance(net[1], nn.ELU) and isinstance(net[2][1], nn.ELU)
    assert net[1] is not net[2][1]
    x = torch.randn(5, 3)
    expected = net[3](nn.functional.elu(net[2][0](nn.functional.elu(net[0](x)))))
    assert torch.equal(net(x), expected)


@pytest.mark.parametrize(
    "new",
    ["elu", ELU, ELU(alpha=0.5), lambda: ELU(alpha=0.5)],
    ids=["name", "class", "instance", "callable"],
)
def test_every_form_of_new(new):
    net = _net()
    swap_activations(net, nn.ReLU, new)
    assert isinstance(net[1], ELU) and isinstance(net[2][1], ELU)
    assert net[1] is not net[2][1]  # an instance is copied per site


def test_shared_module_stays_shared_and_tuple_of_classes():
    act = nn.ReLU()
    net = nn.Sequential(nn.Linear(2, 2), act, nn.Linear(2, 2), act, nn.Tanh())
    replaced = swap_activations(net, (nn.ReLU, nn.Tanh), nn.GELU)
    assert list(replaced) == ["1", "3", "4"]
    assert net[1] is net[3] and isinstance(net[1], nn.GELU) and isinstance(net[4], nn.GELU)


def test_training_mode_device_and_nothing_to_replace():
    net = _net().eval()
    swap_activations(net, nn.ReLU, nn.PReLU)
    assert not net[1].training
    assert net[1].weight.dtype == net[0].weight.dtype
    assert swap_activations(net, nn.ReLU, nn.ELU) == {}


def test_errors():
    with pytest.raises(TypeError, match="model"):
        swap_activations("net", nn.ReLU, nn.ELU)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="old"):
        swap_activations(_net(), "relu", nn.ELU)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="new"):
        swap_activations(_net(), nn.ReLU, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="build"):
        swap_activations(_net(), nn.ReLU, lambda: 3)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="build"):
        swap_activations(_net(), nn.ReLU, int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="root"):
        swap_activations(nn.ReLU(), nn.ReLU, nn.ELU)
    with pytest.raises(ValueError, match="allowed"):
        swap_activations(_net(), nn.ReLU, "no-such-activation")
