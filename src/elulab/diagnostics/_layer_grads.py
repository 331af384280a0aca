r"""The spread of per-layer gradient variance across the layers of a deep network.

For parameter tensors :math:`W_1, \ldots, W_L` (one per layer, input to output) and a
scalar loss :math:`L`, the per-layer gradient variance is the variance of the entries of
:math:`\partial L / \partial W_l`,

.. math:: v_l = \frac{1}{n_l} \sum_{ij} \big(g_{l,ij} - \bar g_l\big)^2, \qquad
    g_l = \partial L / \partial W_l,

and its spread across layers is the coefficient of variation
:math:`\mathrm{CV} = \mathrm{std}_l(v_l) / \mathrm{mean}_l(v_l)` (population standard
deviation): 0 when every layer receives gradients of the same size, scale-free (the
same for :math:`cL`), large when a few layers dominate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["gradient_cv", "layer_gradient_variance"]


def layer_gradient_variance(loss: torch.Tensor, weights: Sequence[torch.Tensor]) -> np.ndarray:
    """:math:`v_l`, the variance of the entries of ``dloss/dW_l`` for each tensor, in order.

    Uses :func:`torch.autograd.grad`: the parameters' ``.grad`` are left untouched.

    Arguments:
        loss: a scalar tensor.
        weights: the tensors ``W_l`` (each requiring grad and reached by ``loss``).

    Example:
        >>> w = [torch.tensor([1.0, 2.0], requires_grad=True), torch.ones(3, requires_grad=True)]
        >>> layer_gradient_variance((w[0] ** 2).sum() + (w[1] * torch.arange(3.0)).sum(), w)
        array([1.        , 0.66666667])
    """
    grads = torch.autograd.grad(loss, list(weights))
    return np.array([float(g.detach().double().var(unbiased=False)) for g in grads])


def gradient_cv(v: Sequence[float] | np.ndarray) -> float:
    """The coefficient of variation ``std(v) / mean(v)`` (population std) of ``v_l``.

    Example:
        >>> gradient_cv([1.0, 1.0, 4.0])
        0.7071067811865476
    """
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.all(arr >= 0):
        raise ValueError(f"gradient_cv needs >= 2 non-negative variances, got {arr!r}")
    return float(np.std(arr) / np.mean(arr))
