r"""Signal propagation: each layer's activation mean and variance in a deep random MLP.

The measurement behind self-normalisation (Klambauer et al. 2017): push inputs through
``depth`` random layers :math:`h_l = D(f(W_l h_{l-1}))`, :math:`W_l \sim
\mathcal{N}(0, \text{gain}^2/n)`, zero biases, ``D`` a dropout in train mode, and record
the mean and variance of each layer's activations pooled over units and inputs. Their
prediction, and its spread over random nets, is :func:`elulab.theory.random_net_statistics`.

References:
    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515.
"""

from __future__ import annotations

import torch

from ..nn import AlphaDropout, get_activation, lecun_normal_
from ..train import generator, seeded

__all__ = ["layer_statistics"]


@torch.no_grad()
def layer_statistics(
    x: torch.Tensor,
    *,
    activation: str,
    depth: int,
    width: int,
    gain: float = 1.0,
    dropout: str = "none",
    rate: float = 0.1,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """Mean and variance of each layer's activations in a deep random MLP (train mode).

    ``h_l = drop(act(W_l h_{l-1}))``, ``W_l ~ N(0, gain^2 / n)`` from
    :func:`elulab.train.generator` ``(seed)``, zero biases; ``drop``: ``"none"``, ``"alpha"``
    (:class:`elulab.nn.AlphaDropout`) or ``"standard"`` (``nn.Dropout``) at ``rate``, masks
    from :func:`elulab.train.seeded` ``(seed + 1)`` (the caller's generator state is
    restored); pooled over units and inputs (``Tensor.var``, unbiased).

    Arguments:
        x: the inputs, ``(n, fan_in)``.
        activation: a name of :func:`elulab.nn.get_activation`.
        depth, width: layers and units per layer.
        gain: weights :math:`\\mathcal{N}(0, \\text{gain}^2/\\text{fan-in})`.
        dropout, rate: the dropout after each activation, and its rate.
        seed: the weights' stream (the masks use ``seed + 1``).

    Returns:
        ``(means, variances)``, one float per layer.

    Example:
        >>> m, v = layer_statistics(torch.randn(256, 32), activation="selu", depth=4,
        ...                         width=64)
        >>> len(m), len(v)
        (4, 4)
    """
    drops = {"none": None, "alpha": AlphaDropout, "standard": torch.nn.Dropout}
    if dropout not in drops:
        raise ValueError(f"dropout must be 'none', 'alpha' or 'standard', got {dropout!r}")
    gen, act = generator(seed), get_activation(activation)
    drop = None if drops[dropout] is None else drops[dropout](rate).train()
    means, variances = [], []
    with seeded(seed + 1):
        h = x.to(torch.float32)
        for _ in range(depth):
            w = lecun_normal_(torch.empty(width, h.shape[1]), gain=gain, generator=gen)
            h = act(h @ w.T)
            h = h if drop is None else drop(h)
            means.append(float(h.mean()))
            variances.append(float(h.var()))
    return means, variances
