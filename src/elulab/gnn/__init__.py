r"""Graph neural networks with any activation, placed where the claim puts it.

C8 says ReLU drops negative ("inhibitory") aggregated messages while ELU keeps them.
Standard models apply the activation after the update, to the sum of the node's own
and its neighbours' transformed features; the claim is about the aggregated messages
themselves. :class:`GNN` offers both, for GCN (Kipf and Welling 2017), GAT (Velickovic
et al. 2018), GraphSAGE (Hamilton et al. 2017) and an MLP baseline (no graph):

* ``placement="update"`` (standard): :math:`h' = f(W_s h_i + \mathrm{AGG}_j\, W h_j)`,
  i.e. ``f(conv(h))`` with the layer's own self term (GCN's self-loop, SAGE's root
  weight, GAT's self-attention);
* ``placement="message"``: :math:`h' = W_s h_i + f(\mathrm{AGG}_{j \in N(i)} W h_j)`:
  the activation acts on the aggregated neighbour message alone (the conv runs
  without self-loops / root weight) and the node's own term is added linearly.

``activation="glu"`` is the gated variant (Dauphin et al. 2017): the layer computes two
halves ``a, b`` (twice the width) and returns :math:`a \odot \sigma(b)`, on the update
or on the message as above. Any other name comes from :data:`elulab.nn.ACTIVATIONS`.

Needs PyTorch Geometric (the ``gnn`` extra).

Example:
    >>> import torch
    >>> model = GNN("gcn", 8, 16, 3, activation="elu", placement="message")
    >>> x, edges = torch.randn(5, 8), torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    >>> model(x, edges).shape
    torch.Size([5, 3])
"""

from __future__ import annotations

from ._models import GNN, KINDS, PLACEMENTS

__all__ = ["GNN", "KINDS", "PLACEMENTS"]
