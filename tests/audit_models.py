"""Model factories for tests/test_cli_audit.py (imported by path by `elulab audit`)."""

from __future__ import annotations

import torch
from torch import nn


def dead_cnn() -> nn.Module:
    """A CNN for digits (1, 8, 8) whose first Linear has exactly 6 of 24 units dead."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ELU(),
        nn.Flatten(),
        nn.Linear(8 * 64, 24),
        nn.ReLU(),
        nn.Linear(24, 10),
    )
    with torch.no_grad():
        model[3].bias[:6] = -1e4  # 20 Adam steps at lr 1e-3 move a bias by <= 0.02
        model[3].bias[6:] = 5.0  # the others are alive on every sample
    return model


def not_a_module() -> object:
    return [1, 2, 3]


def wrong_classes() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 4))


def wrong_input() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def broken() -> nn.Module:
    raise RuntimeError("factory exploded\nsecond line")
