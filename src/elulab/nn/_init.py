r"""Initialisers: LeCun-normal for self-normalising networks, Haar-orthogonal matrices.

LeCun-normal initialisation draws :math:`w_{ij} \sim \mathcal N(0, 1/n)` with
:math:`n` the fan-in, so that a unit's summed weight :math:`\omega = \sum_i w_i`
has mean 0 and its squared norm :math:`\tau = \sum_i w_i^2` is 1 on average: the
condition (:math:`\omega = 0, \tau = 1`) under which SELU's moment map has its
fixed point at mean 0, variance 1.

.. warning::
    PyTorch's ``torch.nn.init.calculate_gain("selu")`` is ``3/4``, so
    ``kaiming_normal_(w, nonlinearity="selu")`` draws with variance
    :math:`(3/4)^2 / n = 0.5625 / n`, not :math:`1/n`: :math:`\tau = 0.5625`, and
    activations drift away from (0, 1) layer after layer (the variance falls to about
    0.05 by layer 16 in 64-layer nets of width 256; measured in the
    ``snn_fixed_point`` experiment). Use :func:`lecun_normal_`,
    or ``kaiming_normal_(w, nonlinearity="linear")`` (gain 1, the same
    distribution). The default init of ``nn.Linear`` (Kaiming-uniform with
    ``a = sqrt(5)``, variance :math:`1/(3n)`) is also wrong for SNNs.

:func:`orthogonal` draws a Haar-random orthogonal matrix (every singular value 1), the
recurrent matrix ``W = g Q`` of an RNN whose spectral norm is exactly ``g``.

References:
    Efficient BackProp (LeCun, Bottou, Orr, Mueller, 1998), in Neural Networks: Tricks
    of the Trade.

    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515.

    How to generate random matrices from the classical compact groups (Mezzadri, 2007),
    arXiv:math-ph/0609050.
"""

from __future__ import annotations

import math

import torch

__all__ = ["lecun_normal_", "orthogonal"]


def lecun_normal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` in place with :math:`\mathcal N(0, \mathrm{gain}^2 / n)`.

    .. math:: w \sim \mathcal N\!\left(0, \frac{\mathrm{gain}^2}{n}\right),
        \qquad n = \text{fan-in (default) or fan-out}

    The fan-in of a ``Linear`` weight ``(out, in)`` is ``in``; of a convolution
    weight ``(out, in, *k)`` it is ``in * prod(k)``. With ``gain=1`` this is the
    initialisation that self-normalising networks (SELU) need.

    .. warning::
        Do not use ``torch.nn.init.kaiming_normal_(w, nonlinearity="selu")`` for a
        self-normalising network: its gain for SELU is ``3/4``, giving variance
        :math:`0.5625/n` instead of :math:`1/n`, which moves the fixed point.
        ``kaiming_normal_(w, nonlinearity="linear")`` equals this function.

    References:
        Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter,
        2017), arXiv:1706.02515.

    Arguments:
        tensor: a floating tensor with at least 2 dimensions (a weight).
        gain: multiplies the standard deviation; positive and finite.
        mode: ``"fan_in"`` (forward variance preserved) or ``"fan_out"``.
        generator: an optional ``torch.Generator`` for reproducible draws.

    Returns:
        ``tensor`` (filled in place).

    Example:
        >>> w = torch.empty(256, 1000)
        >>> _ = lecun_normal_(w, generator=torch.Generator().manual_seed(0))
        >>> round(w.var().item() * 1000, 1)
        1.0
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"lecun_normal_ expects a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"lecun_normal_ expects a floating tensor, got dtype {tensor.dtype}")
    if tensor.dim() < 2:
        raise ValueError(
            f"lecun_normal_ needs a weight with at least 2 dimensions (out, in, ...), "
            f"got shape {tuple(tensor.shape)}"
        )
    if isinstance(gain, bool) or not isinstance(gain, (int, float)):
        raise TypeError(f"gain must be a number, got {gain!r}")
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain must be positive and finite, got {gain!r}")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    receptive = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    fan = tensor.shape[1] * receptive if mode == "fan_in" else tensor.shape[0] * receptive
    if fan == 0:
        raise ValueError(f"lecun_normal_ cannot initialise a tensor with zero {mode}")
    std = gain / math.sqrt(fan)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def orthogonal(
    n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""A Haar-random ``n x n`` orthogonal matrix: QR of a Gaussian, with the signs fixed.

    .. math:: A_{ij} \sim \mathcal N(0, 1), \quad A = QR, \quad
        Q \leftarrow Q \, \mathrm{diag}(\mathrm{sign}\, R_{ii})

    Without the sign fix ``Q`` is not Haar-distributed (Mezzadri, 2007). The draw and
    the QR are in float64 (``n * n`` normals from ``generator``); the result is cast to
    ``dtype``. Every singular value of ``g * orthogonal(n, gen)`` is ``g``.

    References:
        How to generate random matrices from the classical compact groups (Mezzadri,
        2007), arXiv:math-ph/0609050.

    Arguments:
        n: the size (an int >= 1).
        generator: a ``torch.Generator`` (CPU) for the Gaussian draw.
        dtype: the floating dtype of the result.

    Example:
        >>> q = orthogonal(4, torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(q @ q.T, torch.eye(4, dtype=q.dtype)))
        True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"orthogonal: n must be an int >= 1, got {n!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"orthogonal: generator must be a torch.Generator, got {type(generator).__name__}"
        )
    if not dtype.is_floating_point:
        raise TypeError(f"orthogonal: dtype must be a floating dtype, got {dtype}")
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.to(dtype)
