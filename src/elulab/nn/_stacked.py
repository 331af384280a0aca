"""Several MLPs of one shape in one module, each slot with its own activation.

``StackedMLP`` holds ``M`` independent MLPs ``sizes[0] -> ... -> sizes[-1]`` as stacked
weights ``(M, n_in, n_out)`` and evaluates them with one batched matmul per layer:

.. math:: h^{(l+1)}_i = f_i\\big(h^{(l)}_i W^{(l)}_i + b^{(l)}_i\\big), \\qquad i = 1..M,

no activation after the last layer. Minimising the *sum* of the slots' losses with an
elementwise optimiser (Adam, SGD) trains every slot exactly as if it were trained alone
(the gradient of the sum with respect to slot ``i`` is slot ``i``'s own gradient), at the
cost of about one small network: for tiny nets the per-step overhead, not the
arithmetic, dominates. Comparing activations on the same initial weights is
:meth:`StackedMLP.from_mlp` with the activations' names.

Example:
    >>> import torch
    >>> torch.manual_seed(0) is not None
    True
    >>> mlp = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> net = StackedMLP.from_mlp(mlp, ["relu", "elu", "elu"])
    >>> x = torch.randn(5, 2)
    >>> net(x).shape, torch.allclose(net(x)[0], mlp(x))
    (torch.Size([3, 5, 1]), True)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from ._activations import get_activation

__all__ = ["StackedMLP"]


class StackedMLP(nn.Module):
    """``M`` MLPs with layer sizes ``sizes``; slot ``i`` uses activation ``activations[i]``.

    Args:
        sizes: layer sizes, input first (at least two).
        activations: one activation name per slot (:func:`elulab.nn.get_activation`);
            slots with equal names next to each other share one call.

    Shapes: input ``(N, sizes[0])`` (the same rows for every slot) or
    ``(M, N, sizes[0])``; output ``(M, N, sizes[-1])``.
    """

    def __init__(self, sizes: Sequence[int], activations: Sequence[str]) -> None:
        super().__init__()
        if len(sizes) < 2 or min(sizes) < 1 or not activations:
            raise ValueError(f"need >= 2 positive sizes and >= 1 slot, got {sizes}, {activations}")
        self.slots, self.sizes = len(activations), tuple(int(s) for s in sizes)
        self.names = tuple(activations)
        pairs = list(itertools.pairwise(self.sizes))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(self.slots, a, b)) for a, b in pairs
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(self.slots, 1, b)) for _, b in pairs
        )
        runs = [(name, len(list(g))) for name, g in itertools.groupby(self.names)]
        self.acts = nn.ModuleList(get_activation(name) for name, _ in runs)
        self._runs = [n for _, n in runs]

    @classmethod
    def from_mlp(cls, mlp: nn.Module, activations: Sequence[str]) -> StackedMLP:
        """Every slot starts from the weights of ``mlp``'s ``nn.Linear`` layers (in order)."""
        lins = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
        net = cls([lins[0].in_features, *(m.out_features for m in lins)], activations)
        with torch.no_grad():
            for w, b, lin in zip(net.weights, net.biases, lins, strict=True):
                w.copy_(lin.weight.T.expand_as(w))
                b.copy_(lin.bias.expand_as(b))
        return net.to(lins[0].weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.slots, -1, -1) if x.dim() == 2 else x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if layer < last:
                h = torch.cat(
                    [f(part) for f, part in zip(self.acts, h.split(self._runs), strict=True)]
                )
        return h

    def member(self, i: int) -> nn.Sequential:
        """Slot ``i`` as a plain ``nn.Sequential`` of Linear and activation layers (a copy)."""
        layers: list[nn.Module] = []
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            lin = nn.Linear(w.shape[1], w.shape[2]).to(w.dtype)
            with torch.no_grad():
                lin.weight.copy_(w[i].T)
                lin.bias.copy_(b[i, 0])
            layers += [lin] + [get_activation(self.names[i])] * (layer < len(self.weights) - 1)
        return nn.Sequential(*layers)
