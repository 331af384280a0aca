"""Regression with every (activation, learning rate) pair from one initialisation, at once.

:func:`fit_regressors` copies one MLP into a :class:`elulab.nn.StackedMLP` per learning
rate (one slot per activation) and trains them all in one :func:`elulab.train.fit` loop
on the sum of the slots' mean squared errors: Adam with one parameter group per learning
rate, cosine decay to 0, the same minibatches for every slot. Each slot follows exactly
the trajectory it would follow alone (Adam is elementwise), so the activations are
compared on the same initial weights and batches. :func:`relative_errors` gives each
slot's relative L2 error :math:`\\|\\hat f - f\\| / \\|f - \\bar f\\|`.

Example:
    >>> import torch
    >>> from elulab.train import build_mlp, generator
    >>> x = torch.linspace(-1, 1, 64)[:, None]; y = x[:, 0].abs()
    >>> torch.manual_seed(0) is not None
    True
    >>> nets = fit_regressors(build_mlp(1, 1, depth=1, width=8, init="torch"), ["relu", "elu"],
    ...                       (0.01, 0.03), x, y, steps=200, batch_size=32, generator=generator(0))
    >>> errs = relative_errors(nets, x, y)
    >>> errs.shape, bool(errs[1, 0] < 0.1)  # |x| is one ReLU kink: ReLU at lr 0.03 fits it
    ((2, 2), True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..nn import StackedMLP
from ._fit import batches, fit

__all__ = ["fit_regressors", "relative_errors", "stacked_predict"]


def stacked_predict(nets: Sequence[StackedMLP], x: torch.Tensor) -> torch.Tensor:
    """``(learning rates, activations, N)``: the predictions of one-output stacks."""
    return torch.stack([net(x)[..., 0] for net in nets])


def fit_regressors(
    mlp: nn.Module,
    activations: Sequence[str],
    lrs: Sequence[float],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
) -> nn.ModuleList:
    """Train a copy of ``mlp`` per (lr, activation) on ``y ~ x`` (MSE, Adam, cosine decay).

    Args:
        mlp: the template (its ``nn.Linear`` layers; one output).
        activations: one slot per name.
        lrs: Adam learning rates, one :class:`StackedMLP` each.
        x, y: ``(N, d)`` inputs and ``(N,)`` targets.
        steps, batch_size: Adam steps and rows per minibatch (drawn with replacement).
        generator: the minibatch stream (the same batches for every slot).

    Returns:
        an ``nn.ModuleList`` of one :class:`StackedMLP` per learning rate. A slot whose
        loss turns non-finite drops out of the sum; the others train on.
    """
    nets = nn.ModuleList(StackedMLP.from_mlp(mlp, activations) for _ in lrs)
    opt = torch.optim.Adam(
        [{"params": n.parameters(), "lr": lr} for n, lr in zip(nets, lrs, strict=True)]
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def loss(m: nn.ModuleList, idx: torch.Tensor) -> torch.Tensor:
        per = ((stacked_predict(m, x[idx]) - y[idx]) ** 2).mean(-1)
        return per[torch.isfinite(per)].sum()

    draws = batches(len(y), batch_size, generator=generator, steps=steps, replacement=True)
    fit(nets, loss, draws, optimizer=opt, on_step=lambda s: sched.step())
    return nets


def relative_errors(nets: Sequence[StackedMLP], x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """``(learning rates, activations)`` relative L2 errors on ``(x, y)``; inf where not finite."""
    with torch.no_grad():
        e = ((stacked_predict(nets, x) - y) ** 2).mean(-1) / ((y - y.mean()) ** 2).mean()
    return np.nan_to_num(np.sqrt(e.double().numpy()), nan=np.inf)
