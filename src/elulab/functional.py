"""Tensor math for the ELU family: activations, closed-form derivatives, inverse, log-det.

(Skeleton: the name table below is the single source of truth for the activations
the project knows; ``elulab.nn.get_activation`` and ``elulab.theory.gaussian`` both
read it.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["ACTIVATION_NAMES", "activation_function"]


def _sin(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x)


# name -> elementwise function with default parameters (alpha = 1 for elu/celu,
# negative_slope = 0.01 for leaky_relu, the exact erf form for gelu).
_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "celu": F.celu,
    "selu": F.selu,
    "gelu": F.gelu,
    "silu": F.silu,
    "mish": F.mish,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "sin": _sin,
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_FUNCTIONS)


def activation_function(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the elementwise function registered as ``name`` (default parameters).

    Raises:
        ValueError: for an unknown name, listing the allowed ones.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in _FUNCTIONS:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATION_NAMES)}")
    return _FUNCTIONS[key]
