"""Tests of elulab.dp: per-sample norms against torch.func, Opacus's epsilon, bad input.

The per-sample gradient norms are checked against an independent float64 reference
(``torch.func.vmap(grad(...))`` over single samples, no Opacus); the epsilon recorded by
:func:`train_private` against Opacus's RDP and PRV accountants built here directly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from torch import nn
from torch.func import functional_call, grad, vmap

from elulab.dp import (
    EXPECTED_WARNINGS,
    expected_warnings,
    noise_multiplier,
    per_sample_grad_norms,
    spent_epsilon,
    suggest_clip,
    train_private,
)


class LearnableELU(nn.Module):
    """ELU with a learnable alpha: no Opacus grad sampler, so functorch computes its part."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(0.7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self.alpha * torch.expm1(x))


def _net(custom: bool) -> nn.Sequential:
    act = LearnableELU() if custom else nn.ELU()
    return nn.Sequential(nn.Linear(5, 7), act, nn.Linear(7, 3)).double()


def _xent(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(m(batch[0]), batch[1])


def _reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample squared gradient norms per parameter, torch.func in float64."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xi, yi):
        return nn.functional.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

    g = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    return {k: (v.reshape(len(x), -1) ** 2).sum(1) for k, v in g.items()}


@pytest.mark.parametrize("mode", ["ghost", "hooks", "functorch"])
@pytest.mark.parametrize("custom", [False, True])
def test_per_sample_norms_match_torch_func(mode: str, custom: bool) -> None:
    torch.manual_seed(1)
    model = _net(custom)
    x, y = torch.randn(12, 5, dtype=torch.float64), torch.randint(0, 3, (12,))
    before = [p.detach().clone() for p in model.parameters()]
    got = per_sample_grad_norms(
        model, _xent, [(x[:5], y[:5]), (x[5:], y[5:])], grad_sample_mode=mode
    )
    ref = _reference(model, x, y)
    total = torch.sqrt(sum(ref.values()))
    np.testing.assert_allclose(got.total, total.numpy(), rtol=1e-12, atol=1e-14)
    layer0 = torch.sqrt(ref["0.weight"] + ref["0.bias"])
    np.testing.assert_allclose(got.layers["0"], layer0.numpy(), rtol=1e-12)
    if custom:  # the learnable alpha is a layer of its own
        np.testing.assert_allclose(got.layers["1"], ref["1.alpha"].sqrt().numpy(), rtol=1e-12)
    np.testing.assert_allclose(sum(v**2 for v in got.layers.values()), got.total**2, rtol=1e-12)
    # the model is left as it was: same weights, no Opacus hooks or attributes
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(not hasattr(p, "grad_sample") for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_suggest_clip_is_the_quantile_of_the_totals() -> None:
    torch.manual_seed(2)
    model = _net(False)
    x, y = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, 3, (20,))
    total = torch.sqrt(sum(_reference(model, x, y).values())).numpy()
    for q in (0.25, 0.5, 0.9):
        assert suggest_clip(model, _xent, [(x, y)], quantile=q) == pytest.approx(
            np.quantile(total, q), rel=1e-12
        )
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\], got 0"):
        suggest_clip(model, _xent, [(x, y)], quantile=0)


# Opacus's get_noise_multiplier, called here directly, bisects from sigma = 20, whose best
# RDP order is the largest of Opacus's grid: a loose bound on a trial sigma, expected.
BISECTION = pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha:UserWarning")


@BISECTION
@pytest.mark.parametrize("custom", [False, True])
def test_recorded_epsilon_is_opacus_accountants_and_within_budget(custom: bool) -> None:
    torch.manual_seed(3)
    x = torch.randn(160, 5, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    model = _net(custom)
    res = train_private(model, (x, y), 2.0, 1e-5, epochs=3, batch_size=20, max_grad_norm=0.5,
                        lr=0.5, seed=4)  # fmt: skip
    q, steps = 1 / 8, 24
    assert (res.sample_rate, res.steps) == (q, steps)
    sigma = get_noise_multiplier(target_epsilon=2.0, target_delta=1e-5, sample_rate=q,
                                 steps=steps, accountant="rdp")  # fmt: skip
    assert res.noise_multiplier == sigma
    assert res.history == [(sigma, q, steps)]
    rdp, prv = RDPAccountant(), PRVAccountant()
    rdp.history, prv.history = [(sigma, q, steps)], [(sigma, q, steps)]
    assert res.epsilon == res.epsilon_rdp == rdp.get_epsilon(delta=1e-5)
    assert res.epsilon_prv == prv.get_epsilon(delta=1e-5)
    assert 2.0 - 0.01 <= res.epsilon <= 2.0  # the bisection's tolerance, from below
    assert res.epsilon_prv < res.epsilon  # PRV is the tighter accountant here
    assert res.model is model and all(not hasattr(p, "grad_sample") for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    assert res.fit.steps == steps and not res.fit.diverged


def test_training_is_seeded_and_learns() -> None:
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()

    def once(seed: int) -> tuple[torch.Tensor, float]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.ELU(), nn.Linear(8, 2))
        res = train_private(model, (x, y), 8.0, 1e-5, epochs=8, batch_size=25,
                            max_grad_norm=1.0, lr=0.5, record_norms=True, seed=seed)  # fmt: skip
        acc = float((model(x).argmax(1) == y).float().mean())
        assert 0.0 <= min(res.fit.logs["clipped"]) <= max(res.fit.logs["clipped"]) <= 1.0
        return next(model.parameters()).detach().clone(), acc

    (w0, acc0), (w0b, _), (w1, _) = once(0), once(0), once(1)
    assert torch.equal(w0, w0b) and not torch.equal(w0, w1)
    assert acc0 > 0.85  # a linear rule, weak noise: DP-SGD learns it


@BISECTION
def test_noise_multiplier_and_spent_epsilon_are_opacus() -> None:
    sigma = noise_multiplier(3.0, 1e-5, 1 / 24, 240)
    assert sigma == get_noise_multiplier(target_epsilon=3.0, target_delta=1e-5,
                                         sample_rate=1 / 24, steps=240)  # fmt: skip
    acc = RDPAccountant()
    acc.history = [(sigma, 1 / 24, 240)]
    assert spent_epsilon([(sigma, 1 / 24, 240)], 1e-5, "rdp") == acc.get_epsilon(delta=1e-5)
    assert spent_epsilon([], 1e-5, "rdp") == 0.0


@pytest.mark.parametrize(
    ("eps", "delta", "message"),
    [
        (0.0, 1e-5, r"^epsilon must be a finite number > 0, got 0.0$"),
        (-1.0, 1e-5, r"^epsilon must be a finite number > 0, got -1.0$"),
        (math.inf, 1e-5, r"^epsilon must be a finite number > 0, got inf$"),
        (3.0, 0.0, r"^delta must be in \(0, 1\), got 0.0$"),
        (3.0, 1.0, r"^delta must be in \(0, 1\), got 1.0$"),
    ],
)
def test_bad_budget_is_one_line(eps: float, delta: float, message: str) -> None:
    x, y = torch.randn(8, 5), torch.zeros(8, dtype=torch.long)
    model = nn.Sequential(nn.Linear(5, 2))
    with pytest.raises(ValueError, match=message):
        train_private(model, (x, y), eps, delta, epochs=1, batch_size=4, max_grad_norm=1.0, lr=0.1)


def test_model_opacus_rejects_names_the_module() -> None:
    x, y = torch.randn(8, 5), torch.zeros(8, dtype=torch.long)
    model = nn.Sequential(nn.Linear(5, 4), nn.ELU(), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(ValueError) as info:
        train_private(model, (x, y), 3.0, 1e-5, epochs=1, batch_size=4, max_grad_norm=1.0, lr=0.1)
    msg = str(info.value)
    assert "\n" not in msg and "module '2' (BatchNorm1d)" in msg
    with pytest.raises(ValueError, match=r"module '2' \(BatchNorm1d\)"):
        per_sample_grad_norms(model, _xent, [(x, y)])


def test_expected_warnings_are_real_and_only_those_are_ignored() -> None:
    """Opacus and torch raise each listed warning on a plain DP step (the list is not stale)."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    model = nn.Sequential(nn.Linear(5, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(32, 5), torch.zeros(32, dtype=torch.long)), 8)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        engine = PrivacyEngine(accountant="rdp")
        m, o, crit, dl = engine.make_private(
            module=model, optimizer=opt, data_loader=loader, criterion=nn.CrossEntropyLoss(),
            noise_multiplier=30.0, max_grad_norm=1.0, grad_sample_mode="ghost",
        )  # fmt: skip
        xb, yb = next(iter(dl))
        crit(m(xb), yb).backward()
        o.step()
        get_noise_multiplier(target_epsilon=3.0, target_delta=1e-5, sample_rate=0.1, steps=10)
    messages = [str(w.message) for w in seen]
    for start, _category, _reason in EXPECTED_WARNINGS:
        assert any(s.startswith(start) for s in messages), start
    with pytest.warns(UserWarning, match="an unrelated warning"), expected_warnings():
        warnings.warn("Secure RNG turned off", UserWarning, stacklevel=1)  # ignored
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)  # still raised
