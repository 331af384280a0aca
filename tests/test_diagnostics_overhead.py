"""The audit's cheaper bookkeeping gives the numbers the definitions give.

A Linear layer whose output feeds only its activation reuses the reductions the
activation made of that same gradient; when the output is used elsewhere too, its
gradient is a different tensor and is reduced on its own. Both are checked against
the definitions computed by hand from autograd gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from elulab.diagnostics import Diagnostics


class _Skip(nn.Module):
    """Linear -> ELU, and the Linear's output also added to the result (two uses)."""

    def __init__(self, skip: bool) -> None:
        super().__init__()
        self.lin, self.act, self.head, self.skip = nn.Linear(6, 5), nn.ELU(), nn.Linear(5, 3), skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x)
        h = self.act(z)
        return self.head(h + z if self.skip else h)


@pytest.mark.parametrize("skip", [False, True], ids=["one-use", "two-uses"])
def test_layer_and_activation_rows_follow_the_definitions(skip: bool) -> None:
    torch.manual_seed(0)
    model = _Skip(skip)
    with torch.no_grad():
        model.lin.weight[1] = 0.0  # unit 1: zero pre-activation ...
        model.lin.bias[1] = -200.0  # ... deep on ELU's plateau (slope e^-200 = 0 in float32)
    x = torch.randn(16, 6)
    target = torch.randint(0, 3, (16,))
    # reference gradients at the Linear output (all uses) and at the ELU input (ELU only)
    z = model.lin(x).detach().requires_grad_()
    zin = z.clone().detach().requires_grad_()
    h = model.act(zin)
    out = model.head(h + z if skip else h + 0 * z)
    g_z, g_in = torch.autograd.grad(nn.functional.cross_entropy(out, target), (z, zin))
    g_lin = g_z + g_in  # the gradient at the Linear's output
    with Diagnostics(model) as diag:
        nn.functional.cross_entropy(model(x), target).backward()
        rows = {s.name: s for s in diag.step()}
    for name, g in (("lin", g_lin), ("act", g_in)):
        dead = float((g == 0).all(dim=0).double().mean())
        assert rows[name].dead_fraction == dead
        assert rows[name].grad_norm == pytest.approx(float(g.double().norm()), rel=1e-6)
    # unit 1 is dead at the ELU input; with the skip path the Linear's unit 1 is not
    assert rows["act"].dead_fraction == 1 / 5
    assert rows["lin"].dead_fraction == (0.0 if skip else 1 / 5)
    assert math.isfinite(rows["lin"].var) and rows["lin"].var >= 0
