r"""A vanilla (Elman) RNN classifier with an orthogonal recurrent matrix.

.. math::
    h_0 = 0, \qquad h_t = f(W h_{t-1} + U x_t + b), \qquad \text{logits} = V h_T + c

Initialisation, in this order from one generator: :math:`W = g\,Q` with ``Q``
Haar-orthogonal (:func:`elulab.nn.orthogonal`; every singular value of ``W`` is ``g``),
:math:`U_{ij} \sim \mathcal N(0, \mathrm{input\_var}/d)` (so one unit of :math:`U x` has
variance ``input_var`` for a standardised input), :math:`b = 0`,
:math:`V_{ij} \sim \mathcal U(-1/\sqrt n, 1/\sqrt n)`, :math:`c = 0`. The parameters are
``w``, ``u``, ``b`` and the read-out ``out`` (an ``nn.Linear``), in that order, so that
:func:`elulab.diagnostics.gain_probe` can probe the trained ``w``, ``u``, ``b``.

References:
    | Finding Structure in Time (Elman, 1990), Cognitive Science 14(2)

    | On the difficulty of training recurrent neural networks (Pascanu, Mikolov and
    | Bengio, 2013), https://arxiv.org/abs/1211.5063
"""

from __future__ import annotations

import math

import torch
from torch import nn

from elulab.functional import activation_function

from ._init import orthogonal

__all__ = ["VanillaRNN"]


class VanillaRNN(nn.Module):
    r"""Vanilla RNN read out from its last hidden state (module docstring).

    Arguments:
        input_size: ``d``, features per step.
        hidden_size: ``n``, hidden units.
        out_features: read-out size (e.g. 10 classes).
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        gain: the spectral norm ``g`` of the initial ``W`` (> 0).
        input_var: the variance of one unit of ``U x`` for unit-variance inputs (> 0).
        generator: draws every initial weight (default: a fresh unseeded one).
        params: the activation's keyword parameters (e.g. ``alpha=1.0`` for ``elu``).

    Shape:
        Input ``(B, T, d)``; output ``(B, out_features)``.

    Example:
        >>> rnn = VanillaRNN(3, 8, 2, "elu", generator=torch.Generator().manual_seed(0))
        >>> rnn(torch.zeros(5, 4, 3)).shape
        torch.Size([5, 2])
        >>> s = torch.linalg.matrix_norm(rnn.w.detach().double(), ord=2)
        >>> round(float(s), 5)
        1.0
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        out_features: int,
        activation: str,
        *,
        gain: float = 1.0,
        input_var: float = 1.0,
        generator: torch.Generator | None = None,
        **params: float,
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("out_features", out_features)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"VanillaRNN: {name} must be an int >= 1, got {v!r}")
        for name, v in (("gain", gain), ("input_var", input_var)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise ValueError(f"VanillaRNN: {name} must be a positive finite number, got {v!r}")
        gen = torch.Generator() if generator is None else generator
        n, d = hidden_size, input_size
        self.f, self.params = activation_function(activation), dict(params)
        self.w = nn.Parameter(gain * orthogonal(n, gen, torch.float32))
        self.u = nn.Parameter(torch.randn(n, d, generator=gen) * math.sqrt(input_var / d))
        self.b = nn.Parameter(torch.zeros(n))
        self.out = nn.Linear(n, out_features)
        with torch.no_grad():
            self.out.weight.uniform_(-1.0 / math.sqrt(n), 1.0 / math.sqrt(n), generator=gen)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.u.shape[1]:
            raise ValueError(
                f"VanillaRNN expects input (B, T, {self.u.shape[1]}), got {tuple(x.shape)}"
            )
        h = x.new_zeros(x.shape[0], self.w.shape[0])
        xu = x @ self.u.T + self.b  # (B, T, n), every step at once
        for t in range(x.shape[1]):
            h = self.f(h @ self.w.T + xu[:, t], **self.params)
        return self.out(h)
