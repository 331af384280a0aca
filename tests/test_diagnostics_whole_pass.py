"""Tests of the whole-pass counts: dead fractions, float32 zeros of f' (elulab.diagnostics).

References independent of the code under test: a hand-set bias makes a unit's inputs
known; ``numpy``'s float32 ``exp`` (ELU's slope is ``e^x`` for ``x <= 0``) and a dense
scan of consecutive float32 values check the bisection of :func:`zero_slope_point`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from elulab.diagnostics import ZeroSlope, dead_fractions, zero_slope_point, zero_slope_stats
from elulab.diagnostics._whole_pass import _slope
from elulab.nn import get_activation

LN2 = math.log(2.0)


def _mlp(act: str, width: int = 16) -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, width),
        get_activation(act),
        nn.Linear(width, width),
        get_activation(act),
        nn.Linear(width, 10),
    )


def _xy(n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_dead_fractions_count_units_dead_over_the_whole_pass():
    model = _mlp("relu")
    with torch.no_grad():
        model[1].bias[:4] = -1e4  # dead on every sample
        model[1].bias[4:] = 1e3  # alive on every sample
        model[3].bias[:] = 1e3
    x, y = _xy()
    dead, sat = dead_fractions(model, x, y, eps=0.01, chunk=100)
    assert dead == 4 / 32 and sat == 0.0
    for act in ("elu", "mish"):
        m = _mlp(act)
        with torch.no_grad():
            m[1].bias[:4] = -10.0  # plateau, not dead
        dead, sat = dead_fractions(m, x, y, eps=0.01, chunk=100)
        assert dead == 0.0 and sat == pytest.approx(4 / 32)


def _f32(x: float) -> np.float32:
    return np.float32(x)


def _scan(module: nn.Module, x0: float, n: int, ulps: int = 300) -> None:
    """Around ``x0``: f' == 0 exactly at and below it, != 0 above (consecutive floats)."""
    below = np.nextafter(_f32(x0), _f32(-np.inf))
    vals = [_f32(x0)]
    up, down = _f32(x0), _f32(x0)
    for _ in range(ulps):
        up, down = np.nextafter(up, _f32(0)), np.nextafter(down, _f32(-np.inf))
        vals += [up, down]
    for v in vals:
        g = _slope(module, torch.full((n,), float(v), dtype=torch.float32))
        assert bool((g == 0).all()) == bool(v <= x0), (float(v), n)
    assert below < x0


@pytest.mark.parametrize("n", [64, 1])
@pytest.mark.parametrize("name", ["elu", "selu", "celu", "mish", "gelu", "silu"])
def test_zero_slope_point_is_the_edge_of_an_exact_zero_tail(name: str, n: int):
    module = get_activation(name)
    x0 = zero_slope_point(module, n=n)
    assert -1e4 < x0 < 0
    _scan(module, x0, n)
    # far below: still exactly zero (the tail the bisection assumes)
    for v in (x0 - 1.0, x0 - 50.0, -1e3):
        assert bool((_slope(module, torch.full((n,), v)) == 0).all())


def test_elu_zero_slope_point_is_where_float32_exp_underflows():
    """f' = e^x for x <= 0: exactly 0 once e^x < 2^-150 (half the smallest subnormal)."""
    x0 = zero_slope_point(nn.ELU())
    edge = -150 * LN2  # = -103.972077...
    assert x0 == pytest.approx(edge, abs=1e-4)
    assert x0 < edge < float(np.nextafter(_f32(x0), _f32(0)))  # the float just below it
    with np.errstate(under="ignore"):
        assert np.exp(_f32(x0)) == 0 and np.exp(np.nextafter(_f32(x0), _f32(0))) > 0
    # the same in float64: e^x < 2^-1075
    assert zero_slope_point(nn.ELU(), torch.float64) == pytest.approx(-1075 * LN2, abs=1e-9)
    assert zero_slope_point(get_activation("selu")) == x0  # lambda alpha e^x: the same edge


def test_zero_slope_point_without_a_tail():
    assert zero_slope_point(nn.ReLU()) == 0.0  # f'(0) = 0 in torch
    assert zero_slope_point(nn.LeakyReLU(0.01)) == -math.inf
    assert zero_slope_point(nn.Identity()) == -math.inf
    with pytest.raises(ValueError, match=r"dtype must be torch\.float32 or torch\.float64"):
        zero_slope_point(nn.ELU(), torch.float16)


def test_zero_slope_stats_counts_exact_zeros_and_the_lowest_input():
    model = _mlp("elu")
    with torch.no_grad():
        model[1].bias[:3] = -300.0  # e^x underflows on every sample: f' = 0, dead
        model[1].bias[3:6] = -60.0  # e^-60 > 0 in float32: not zero, saturated
    x, y = _xy()
    first, second = zero_slope_stats(model, x, chunk=70)
    assert (first.name, first.kind, first.units, first.inputs) == ("2", "ELU", 16, 300 * 16)
    # the reference: the first layer's inputs, and numpy's float32 exp
    with torch.no_grad():
        z = model[1](model[0](x)).numpy()
    with np.errstate(under="ignore"):
        zero = np.exp(np.minimum(z, 0)) == 0
    assert first.zeros == int(zero.sum()) and first.zero_units == zero.all(axis=0).mean()
    assert first.zero_units == 3 / 16 and first.min_input == pytest.approx(float(z.min()))
    assert second.zeros == 0 and second.zero_units == 0.0
    pooled = ZeroSlope.pool([first, second])
    assert (
        pooled.units == 32
        and pooled.zero_units == 3 / 32
        and pooled.zero_share == (first.zeros / (2 * 300 * 16))
    )
    # units with f' = 0 everywhere pass no gradient: dead; the e^-60 ones are saturated
    dead, sat = dead_fractions(model, x, y, eps=0.01)
    assert dead == 3 / 32 and sat == pytest.approx(3 / 32)
    assert not any(m._forward_pre_hooks for m in model.modules())  # hooks removed


def test_zero_slope_stats_relu_conv_channels_and_nan():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 2))
    with torch.no_grad():
        net[0].bias[:] = torch.tensor([-1e3, 1e3, 1e3, 1e3])
    (s,) = zero_slope_stats(net, torch.rand(20, 1, 28, 28))
    assert s.units == 4 and s.inputs == 20 * 4 * 26 * 26 and s.zero_units == 0.25
    x = torch.rand(5, 1, 28, 28)
    x[2, 0, 3, 3] = math.nan
    assert math.isnan(zero_slope_stats(net, x, chunk=2)[0].min_input)
