"""GCN, GAT, GraphSAGE and MLP with the activation on the update or the message."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from ..nn import ACTIVATIONS, get_activation

try:  # PyG 2.8 calls torch.jit.script at import, deprecated in torch 2.9: not ours to fix
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        from torch_geometric import nn as gnn
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "elulab.gnn needs PyTorch Geometric: pip install 'elulab[gnn]' (or `make setup`)"
    ) from e

__all__ = ["GNN", "KINDS", "PLACEMENTS"]

KINDS: tuple[str, ...] = ("gcn", "gat", "sage", "mlp")
PLACEMENTS: tuple[str, ...] = ("update", "message")


def _conv(kind: str, d_in: int, d_out: int, heads: int, self_term: bool) -> nn.Module:
    """The layer's aggregation; ``self_term=False`` leaves the node's own term out."""
    if kind == "gcn":
        return gnn.GCNConv(d_in, d_out, add_self_loops=self_term)
    if kind == "gat":
        if d_out % heads:
            raise ValueError(f"GNN: width {d_out} must be a multiple of heads={heads}")
        return gnn.GATConv(d_in, d_out // heads, heads=heads, add_self_loops=self_term)
    if kind == "sage":
        return gnn.SAGEConv(d_in, d_out, root_weight=self_term)
    return nn.Linear(d_in, d_out)


class _Layer(nn.Module):
    """One graph layer with its activation (``None`` for the output layer)."""

    def __init__(
        self, kind: str, d_in: int, d_out: int, activation: str | None, placement: str, heads: int
    ) -> None:
        super().__init__()
        self.kind, self.placement = kind, placement
        self.glu = activation == "glu"
        width = 2 * d_out if self.glu else d_out
        message = placement == "message" and kind != "mlp" and activation is not None
        self.conv = _conv(kind, d_in, width, heads, self_term=not message)
        self.self_lin = nn.Linear(d_in, d_out, bias=False) if message else None
        self.act = None if activation in (None, "glu") else get_activation(activation)
        self.has_act = activation is not None

    def _f(self, h: torch.Tensor) -> torch.Tensor:
        if not self.has_act:
            return h
        return F.glu(h, dim=-1) if self.glu else self.act(h)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h = self.conv(x) if self.kind == "mlp" else self.conv(x, edge_index)
        if self.self_lin is not None:  # message placement: f on the neighbour aggregate
            return self.self_lin(x) + self._f(h)
        return self._f(h)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout, ``x * (U >= p) / (1 - p)`` with ``U ~ Uniform[0, 1)``.

    The distribution of ``F.dropout``; on CPU its Bernoulli draw is about 3x slower than
    this uniform draw (torch 2.13, one thread, 800 x 1000: 17.8 vs 5.5 ms), and it was
    over half of a CSBM epoch. On other devices ``F.dropout`` (a fused kernel) is used.
    """
    if not training or p == 0.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    return x * (torch.rand_like(x) >= p) * (1.0 / (1.0 - p))


class GNN(nn.Module):
    """A node classifier: ``layers`` graph layers, dropout between them.

    Args:
        kind: ``"gcn"``, ``"gat"``, ``"sage"`` or ``"mlp"`` (ignores the graph).
        in_features, hidden, out_features: widths.
        layers: number of layers (>= 1); the last has no activation.
        activation: a name of :data:`elulab.nn.ACTIVATIONS` or ``"glu"``.
        placement: ``"update"`` (standard) or ``"message"`` (see the package docstring).
        dropout: dropout probability on every layer's input (Kipf and Welling 2017).
        heads: attention heads of GAT (``hidden`` must be a multiple of it).

    Raises:
        ValueError: an unknown kind, placement or activation (listing the allowed ones),
            or bad sizes.
    """

    def __init__(
        self,
        kind: str,
        in_features: int,
        hidden: int,
        out_features: int,
        *,
        layers: int = 2,
        activation: str = "relu",
        placement: str = "update",
        dropout: float = 0.5,
        heads: int = 8,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"GNN: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
        if placement not in PLACEMENTS:
            raise ValueError(
                f"GNN: unknown placement {placement!r}; allowed: {', '.join(PLACEMENTS)}"
            )
        names = {a.lower().replace("-", "_") for a in ACTIVATIONS}
        if activation != "glu" and activation.lower().replace("-", "_") not in names:
            raise ValueError(
                f"GNN: unknown activation {activation!r}; allowed: glu, {', '.join(ACTIVATIONS)}"
            )
        if layers < 1 or min(in_features, hidden, out_features) < 1 or not 0 <= dropout < 1:
            raise ValueError(
                "GNN: need layers >= 1, positive widths and 0 <= dropout < 1; got "
                f"layers={layers}, widths=({in_features}, {hidden}, {out_features}), "
                f"dropout={dropout}"
            )
        dims = [in_features] + [hidden] * (layers - 1) + [out_features]
        self.kind, self.activation, self.placement, self.dropout = (
            kind,
            activation,
            placement,
            dropout,
        )
        self.layers = nn.ModuleList(
            _Layer(
                kind,
                dims[i],
                dims[i + 1],
                activation if i < layers - 1 else None,
                placement,
                heads if kind == "gat" and i < layers - 1 else 1,
            )
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_features)``.

        ``x`` may be a sparse COO tensor (bag-of-words features: the first layer's
        product is then sparse, about 3x faster on Cora-sized graphs); its dropout acts
        on the stored values, which has the dense dropout's distribution.
        """
        for layer in self.layers:
            if x.is_sparse:
                x = x.coalesce()
                vals = _dropout(x.values(), self.dropout, self.training)
                x = torch.sparse_coo_tensor(
                    x.indices(), vals, x.shape, is_coalesced=True, check_invariants=False
                )
                if self.kind == "sage":  # SAGE aggregates the raw input: no sparse path
                    x = x.to_dense()
            else:
                x = _dropout(x, self.dropout, self.training)
            x = layer(x, edge_index)
        return x
