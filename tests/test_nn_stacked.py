"""StackedMLP and fit_regressors: M same-shape MLPs in one module train as M separate ones."""

from __future__ import annotations

import itertools

import pytest
import torch

from elulab.nn import StackedMLP
from elulab.train import batches, build_mlp, fit, fit_regressors, generator, relative_errors

ACTS = ["relu", "elu", "elu", "tanh", "gelu"]


def test_forward_and_members_match_plain_mlps():
    torch.manual_seed(0)
    mlp = build_mlp(3, 2, depth=2, width=7, init="torch").double()
    net = StackedMLP.from_mlp(mlp, ACTS)
    x = torch.randn(11, 3, dtype=torch.float64)
    out = net(x)
    assert out.shape == (5, 11, 2) and torch.equal(net(x.expand(5, -1, -1)), out)
    for i, act in enumerate(ACTS):
        plain = build_mlp(3, 2, depth=2, width=7, activation=act, init="torch").double()
        plain.load_state_dict(mlp.state_dict())
        torch.testing.assert_close(out[i], plain(x), rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(net.member(i)(x), plain(x), rtol=1e-14, atol=1e-14)


def test_training_the_sum_is_training_each_alone():
    """Adam on the sum of the slots' losses = Adam on each slot alone (float64, 30 steps)."""
    torch.manual_seed(1)
    x, y = torch.randn(64, 2, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    mlp = build_mlp(2, 1, depth=1, width=6, init="torch").double()
    net = StackedMLP.from_mlp(mlp, ACTS)

    def run(model, loss):
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        fit(model, loss, batches(64, 16, seed=3, steps=30, replacement=True), optimizer=opt)

    run(net, lambda m, i: ((m(x[i])[..., 0] - y[i]) ** 2).mean(-1).sum())
    for i, act in enumerate(ACTS):
        plain = build_mlp(2, 1, depth=1, width=6, activation=act, init="torch").double()
        plain.load_state_dict(mlp.state_dict())
        run(plain, lambda m, j: ((m(x[j])[:, 0] - y[j]) ** 2).mean())
        torch.testing.assert_close(net.member(i)(x), plain(x), rtol=1e-10, atol=1e-12)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="need >= 2 positive sizes"):
        StackedMLP([3], ["relu"])
    with pytest.raises(ValueError, match="need >= 2 positive sizes"):
        StackedMLP([3, 1], [])


def test_fit_regressors_is_one_cosine_adam_run_per_lr_and_activation():
    """Each (lr, activation) slot = a plain MLP trained alone: Adam(lr), cosine decay, same batches."""
    torch.manual_seed(2)
    x = torch.randn(80, 2, dtype=torch.float64)
    y = x[:, 0].abs() - x[:, 1]
    mlp = build_mlp(2, 1, depth=2, width=5, init="torch").double()
    lrs, acts, steps = (0.01, 0.05), ["relu", "elu", "tanh"], 25
    nets = fit_regressors(mlp, acts, lrs, x, y, steps=steps, batch_size=16, generator=generator(4))
    errs = relative_errors(nets, x, y)
    assert errs.shape == (2, 3)
    for (i, lr), (a, act) in itertools.product(enumerate(lrs), enumerate(acts)):
        plain = build_mlp(2, 1, depth=2, width=5, activation=act, init="torch").double()
        plain.load_state_dict(mlp.state_dict())
        opt = torch.optim.Adam(plain.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        fit(plain, lambda m, j: ((m(x[j])[:, 0] - y[j]) ** 2).mean(),
            batches(80, 16, generator=generator(4), steps=steps, replacement=True),
            optimizer=opt, on_step=lambda s, sched=sched: sched.step())  # fmt: skip
        torch.testing.assert_close(nets[i].member(a)(x), plain(x), rtol=1e-9, atol=1e-11)
        with torch.no_grad():
            rel = ((plain(x)[:, 0] - y) ** 2).mean() / ((y - y.mean()) ** 2).mean()
        assert errs[i, a] == pytest.approx(float(rel.sqrt()), rel=1e-9)
