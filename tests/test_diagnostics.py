"""Tests of elulab.diagnostics: known-truth models, hook hygiene, errors, the audit API.

The reference for "dead" is independent of the hooks: the pre-activation tensor of a
hand-written forward pass keeps its gradient (``retain_grad``) and a unit is dead when
that gradient is exactly zero at every sample and position.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import pytest
import torch
from torch import nn

from elulab.diagnostics import (
    AuditResult,
    Diagnostics,
    audit,
    html_section,
    render_html,
)
from elulab.diagnostics._slopes import KNOWN_ACTIVATIONS, flat_units


def _ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


def _hooks_of(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _mlp(act1: nn.Module, act2: nn.Module, act3: nn.Module, width: int = 20) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(10, width),
        act1,
        nn.Linear(width, width),
        act2,
        nn.Linear(width, width),
        act3,
        nn.Linear(width, 3),
    )


def _run_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw) -> list:
    with Diagnostics(model, **kw) as diag:
        _ce(model(x), y).backward()
        return diag.step()


def _reference_dead(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Dead fraction of each activation's input, by retain_grad on a manual forward."""
    pre = []
    h = x
    for layer in model:
        if isinstance(layer, nn.Linear):
            h = layer(h)
        else:
            h.retain_grad()
            pre.append(h)
            h = layer(h.clone())  # the clone keeps h intact under in-place activations
    _ce(h, y).backward()
    return [float((p.grad == 0).all(dim=0).float().mean()) for p in pre]


@pytest.fixture
def known_truth() -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """Layer 1: ReLU with 5 of 20 units forced dead (bias -1000). Layer 2: ELU with 7 of
    20 units on the plateau (bias -50: slope e^-50 ~ 2e-22, small but not zero). Layer
    3: a healthy ReLU layer (zero bias, inputs of unit scale)."""
    torch.manual_seed(0)
    model = _mlp(nn.ReLU(), nn.ELU(), nn.ReLU())
    with torch.no_grad():
        for lin in (model[0], model[2], model[4]):
            lin.bias.zero_()
        model[0].bias[:5] = -1000.0
        model[2].bias[:7] = -50.0
        # the healthy layer barely weighs the 7 constant plateau outputs (nonzero weight:
        # a zero weight would cut their gradient and make them dead)
        model[4].weight.normal_(0.0, 1.0)
        model[4].weight[:, :7] = 1e-3
    x = torch.randn(256, 10)
    y = torch.randint(0, 3, (256,))
    return model, x, y


def test_known_truth_dead_saturated_healthy(known_truth):
    model, x, y = known_truth
    stats = {s.name: s for s in _run_step(model, x, y)}
    assert [s for s in stats] == ["0", "1", "2", "3", "4", "5", "6"]
    assert stats["1"].kind == "ReLU" and stats["1"].dead_fraction == 5 / 20
    assert stats["1"].saturated_fraction == 0.0
    assert stats["0"].dead_fraction == 5 / 20  # the Linear feeding it sees the same zeros
    assert stats["3"].kind == "ELU" and stats["3"].dead_fraction == 0.0
    assert stats["3"].saturated_fraction == 7 / 20
    assert stats["5"].dead_fraction == 0.0 and stats["5"].saturated_fraction == 0.0
    assert stats["6"].dead_fraction == 0.0  # logits always get a gradient from CE
    assert all(s.saturated_fraction == 0.0 for s in stats.values() if s.kind == "Linear")


def test_dead_matches_retain_grad_reference(known_truth):
    model, x, y = known_truth
    acts = [s for s in _run_step(model, x, y) if s.kind != "Linear"]
    model.zero_grad()
    assert [s.dead_fraction for s in acts] == _reference_dead(model, x, y)


@pytest.mark.parametrize("seed", range(4))
def test_random_models_agree_with_reference_and_fractions_in_unit_interval(seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = _mlp(nn.ReLU(), nn.ReLU(inplace=True), nn.LeakyReLU(0.0), width=16)
    with torch.no_grad():
        for lin in (model[0], model[2], model[4]):
            lin.bias.copy_(torch.randn(16, generator=gen) * 3 - 2)
    x = torch.randn(32, 10, generator=gen)
    y = torch.randint(0, 3, (32,), generator=gen)
    stats = _run_step(model, x, y)
    for s in stats:
        assert 0.0 <= s.dead_fraction <= 1.0 and 0.0 <= s.saturated_fraction <= 1.0
        assert s.dead_fraction + s.saturated_fraction <= 1.0
        assert math.isfinite(s.grad_norm) and s.var >= 0.0
    model.zero_grad()
    acts = [s.dead_fraction for s in stats if s.kind != "Linear"]
    assert acts == _reference_dead(model, x, y)


def test_conv_units_are_channels():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4)
    )
    with torch.no_grad():
        model[0].bias.zero_()
        model[0].bias[:3] = -1000.0
    stats = _run_step(model, torch.randn(16, 1, 6, 6), torch.randint(0, 4, (16,)))
    conv, relu = stats[0], stats[1]
    assert (conv.kind, conv.units, relu.units) == ("Conv2d", 8, 8)
    assert conv.dead_fraction == relu.dead_fraction == 3 / 8


def test_pre_activation_used_twice_counts_only_the_activation_path():
    """h feeds a dead ReLU and a live skip path: the ReLU is dead, the Linear is not."""

    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.act, self.head = nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.lin(x)
            return self.head(self.act(h) + h)

    torch.manual_seed(2)
    model = Skip()
    with torch.no_grad():
        model.lin.bias.fill_(-1000.0)
    stats = {s.name: s for s in _run_step(model, torch.randn(8, 4), torch.randint(0, 2, (8,)))}
    assert stats["act"].dead_fraction == 1.0
    assert stats["lin"].dead_fraction == 0.0


def test_elu_plateau_is_not_dead_even_where_squares_underflow():
    """Gradients of ~1e-25 are not zero: their squares underflow in float32, the test
    for "dead" must not square them."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.ELU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].bias.fill_(-55.0)  # slope e^-55 ~ 1.3e-24
    stats = _run_step(model, torch.randn(8, 3), torch.randint(0, 2, (8,)))
    assert stats[1].dead_fraction == 0.0 and stats[1].saturated_fraction == 1.0
    assert 0.0 < stats[1].grad_norm < 1e-20


def test_inplace_and_out_of_place_relu_agree(known_truth):
    model, x, y = known_truth
    a = _run_step(model, x, y)
    model.zero_grad()
    model[1] = nn.ReLU(inplace=True)
    b = _run_step(model, x, y)
    for s, t in zip(a, b, strict=True):
        assert (s.dead_fraction, s.saturated_fraction) == (t.dead_fraction, t.saturated_fraction)
        assert s.grad_norm == pytest.approx(t.grad_norm, rel=1e-6)
        assert s.mean == pytest.approx(t.mean, rel=1e-6, abs=1e-9)


def test_mean_var_grad_norm_and_gain_against_direct_computation():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    stats = _run_step(model, x, y)
    h = model[0](x)
    h.retain_grad()
    a = torch.tanh(h)
    a.retain_grad()
    out = model[2](a)
    out.retain_grad()
    _ce(out, y).backward()
    # float32 sums over 448 elements: relative error ~1e-6
    assert stats[0].mean == pytest.approx(float(h.detach().mean()), rel=1e-5, abs=1e-7)
    assert stats[1].var == pytest.approx(float(a.detach().var(unbiased=False)), rel=1e-5)
    assert stats[1].grad_norm == pytest.approx(float(h.grad.norm()), rel=1e-5)
    assert stats[2].grad_norm == pytest.approx(float(out.grad.norm()), rel=1e-5)
    assert stats[1].grad_gain == pytest.approx(float(h.grad.norm() / out.grad.norm()), rel=1e-5)
    assert stats[2].grad_gain is None


@pytest.mark.parametrize("cls", list(KNOWN_ACTIVATIONS), ids=lambda c: c.__name__)
def test_flat_units_against_autograd_slope(cls):
    """Closed-form flat regions agree with |f'(x)| < eps computed by autograd."""
    module = nn.PReLU(init=0.001) if cls is nn.PReLU else cls()
    gen = torch.Generator().manual_seed(5)
    shift = torch.linspace(-60, 20, 24)  # one shift per unit: some units flat, some not
    x = torch.randn(50, 24, generator=gen) * 0.5 + shift
    eps = 1e-2
    leaf = x.clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(module(leaf.clone()).sum(), leaf)
    expected = (slope.abs() < eps).all(dim=0)
    from elulab.diagnostics._slopes import activation_table

    got = flat_units(module, x, eps, activation_table()[cls], (0,))
    assert torch.equal(got, expected)


def test_hooks_removed_on_exit_and_on_error(known_truth):
    model, x, _ = known_truth
    before = _hooks_of(model)
    with Diagnostics(model) as diag:
        assert diag.attached and _hooks_of(model) > before
    assert _hooks_of(model) == before
    with pytest.raises(ZeroDivisionError), Diagnostics(model):
        model(x)
        raise ZeroDivisionError
    assert _hooks_of(model) == before
    with pytest.raises(RuntimeError, match="no gradient"), Diagnostics(model) as diag:
        model(x)
        diag.step()
    assert _hooks_of(model) == before


def test_disabled_attaches_nothing(known_truth):
    model, x, y = known_truth
    before = _hooks_of(model)
    with Diagnostics(model, enabled=False) as diag:
        assert _hooks_of(model) == before and not diag.attached
        _ce(model(x), y).backward()
        assert diag.step() == []


def test_no_grad_forward_is_ignored_and_repeated_calls_get_indices():
    act = nn.ELU()
    model = nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act, nn.Linear(3, 2))
    with Diagnostics(model) as diag:
        with torch.no_grad():
            model(torch.randn(4, 3))
        _ce(model(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1])).backward()
        names = [s.name for s in diag.step()]
    assert names == ["0", "1", "2", "1[1]", "4"]


def test_window_dead_over_all_steps():
    """A unit alive on one batch only is dead per step on the others, not over the window."""
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[0].bias.zero_()
    pos, neg = torch.ones(4, 1), -torch.ones(4, 1)
    y = torch.zeros(4, dtype=torch.long)
    with Diagnostics(model) as diag:
        per_step = []
        for xb in (pos, neg, pos):
            model.zero_grad()
            _ce(model(xb), y).backward()
            per_step.append(diag.step()[1].dead_fraction)
        window = diag.window()[1]
        diag.reset_window()
        model.zero_grad()
        _ce(model(pos), y).backward()
        diag.step()
        after_reset = diag.window()[1]
    assert per_step == [0.5, 0.5, 0.5]
    assert window.dead_fraction == 0.0 and window.steps == 3
    assert after_reset.dead_fraction == 0.5 and after_reset.steps == 1
    assert len(diag.history) == 4


def test_unsupported_use_errors():
    with pytest.raises(TypeError, match=r"nn\.Module"):
        Diagnostics(lambda x: x)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    with pytest.raises(TypeError, match="TorchScript"):
        Diagnostics(scripted)
    with pytest.raises(ValueError, match="no module the diagnostics can watch"):
        Diagnostics(nn.Sequential(nn.Flatten(), nn.Dropout()))
    with pytest.raises(ValueError, match="eps"):
        Diagnostics(nn.Linear(2, 2), eps=1.5)
    with pytest.raises(TypeError, match="activations"):
        Diagnostics(nn.Linear(2, 2), activations=(int,))  # type: ignore[arg-type]
    diag = Diagnostics(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="outside"):
        diag.step()
    with diag, pytest.raises(RuntimeError, match="no forward pass"):
        diag.step()
    with diag, pytest.raises(RuntimeError, match="entered twice"), diag:
        pass
    with pytest.raises(RuntimeError, match="no step"):
        Diagnostics(nn.Linear(2, 2)).window()

    class TwoArgs(nn.ReLU):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return torch.relu(a + b)

    class Uses(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.act = nn.Linear(2, 2), TwoArgs()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.lin(x)
            return self.act(h, h)

    wrapper = Uses()
    with pytest.raises(TypeError, match="one tensor"), Diagnostics(wrapper):
        wrapper(torch.randn(2, 2))
    assert _hooks_of(wrapper) == 0


def test_audit_api_trains_and_reports(known_truth):
    model, x, y = known_truth
    data = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
    result = audit(model, data, _ce, steps=6, lr=1e-3)
    assert isinstance(result, AuditResult)
    assert len(result.history) == 6 and len(result.train_loss) == 6
    by_name = {s.name: s for s in result.layers}
    assert by_name["1"].dead_fraction == 5 / 20  # forced-dead units stay dead
    assert by_name["3"].saturated_fraction == 7 / 20
    assert by_name["1"].steps == 4  # one audit pass over the 4 batches
    assert result.eval_accuracy is not None and 0.0 <= result.eval_accuracy <= 1.0
    payload = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert [layer["name"] for layer in payload["layers"]] == list(by_name)
    for layer in payload["layers"]:
        assert {
            "name",
            "kind",
            "dead_fraction",
            "saturated_fraction",
            "mean",
            "var",
            "grad_norm",
        } <= set(layer)
        assert 0.0 <= layer["dead_fraction"] <= 1.0 and 0.0 <= layer["saturated_fraction"] <= 1.0
    assert len(payload["dead_fraction_history"]["1"]) == 6
    assert _hooks_of(model) == 0


def test_audit_bad_input():
    model = nn.Sequential(nn.Linear(2, 2))
    data = [(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))]
    with pytest.raises(ValueError, match="steps"):
        audit(model, data, _ce, steps=-1)
    with pytest.raises(ValueError, match="lr"):
        audit(model, data, _ce, lr=0.0)
    with pytest.raises(TypeError, match="pair"):
        audit(model, [torch.randn(4, 2)], _ce, steps=1)
    with pytest.raises(TypeError, match="scalar"):
        audit(model, data, lambda o, t: o, steps=1)
    with pytest.raises(ValueError, match="no batch"):
        audit(model, [], _ce, steps=1)


def test_html_is_escaped_and_standalone():
    model = nn.Sequential()
    model.add_module("<script>x</script>", nn.Linear(2, 2))
    data = [(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))]
    result = audit(model, data, _ce, steps=1)
    page = render_html(result, title="a & b")
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "a &amp; b" in page
    assert html_section(result).startswith('<section class="elulab-audit">')
    assert "http" not in page  # no external resources


def test_audit_result_save_writes_json_and_page(tmp_path):
    data = [(torch.randn(8, 2), torch.tensor([0, 1] * 4))]
    result = audit(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)), data, _ce, steps=2)
    result.meta["model"] = "pkg.models:<net>"
    paths = result.save(tmp_path / "new" / "dir")  # parents are created
    assert [p.name for p in paths] == ["audit.json", "audit.html"]
    assert json.loads(paths[0].read_text()) == json.loads(json.dumps(result.to_json()))
    page = paths[1].read_text()
    assert "<title>Activation audit: pkg.models:&lt;net&gt;</title>" in page
    assert page == render_html(result, "Activation audit: pkg.models:<net>")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=re.escape(f"cannot write the audit to {blocker / 'sub'}: ")):
        result.save(blocker / "sub")


def test_every_k_audits_steps_0_k_2k_exactly_and_skips_the_rest():
    """every=2 gives, on steps 0 and 2, the stats of auditing every step; [] between."""
    model = _mlp(nn.ELU(), nn.ReLU(), nn.Tanh())
    data = [(torch.randn(16, 10), torch.randint(0, 3, (16,))) for _ in range(4)]
    per_step = {}
    for every in (1, 2):
        with Diagnostics(model, every=every) as diag:
            got = []
            for x, y in data:
                model.zero_grad()
                _ce(model(x), y).backward()
                got.append(diag.step())
            per_step[every] = (got, len(diag.history), diag.window())
    full, half = per_step[1][0], per_step[2][0]
    assert half[1] == [] and half[3] == [] and per_step[2][1] == 2 and per_step[1][1] == 4
    assert half[0] == full[0] and half[2] == full[2]
    # the window is over the audited steps: the mean of their gradient norms
    w_half = {s.name: s for s in per_step[2][2]}
    for s0, s2 in zip(full[0], full[2], strict=True):
        assert w_half[s0.name].grad_norm == pytest.approx((s0.grad_norm + s2.grad_norm) / 2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_every_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Diagnostics(_mlp(nn.ELU(), nn.ELU(), nn.ELU()), every=bad)
