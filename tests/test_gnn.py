"""elulab.gnn: shapes, where the activation acts (by hand on a tiny graph), fit_nodes."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("torch_geometric")

from elulab.data.csbm import csbm
from elulab.gnn import GNN, KINDS, PLACEMENTS
from elulab.nn import ACTIVATIONS
from elulab.train._nodes import fit_nodes, node_score

# a 4-node graph: 0-1, 1-2, 2-3 (both directions), node 3 also joined to 0
EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
ADJ = torch.zeros(4, 4)
ADJ[EDGES[1], EDGES[0]] = 1.0  # row i: the neighbours j that send to i


@pytest.mark.parametrize(
    ("kind", "placement", "activation"),
    list(itertools.product(KINDS, PLACEMENTS, (*ACTIVATIONS, "glu"))),
)
def test_output_shapes(kind: str, placement: str, activation: str) -> None:
    model = GNN(kind, 5, 16, 3, layers=3, activation=activation, placement=placement, heads=4)
    x = torch.randn(4, 5)
    out = model(x, EDGES)
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    out.sum().backward()  # every parameter is reached
    assert all(p.grad is not None for p in model.parameters())
    # sparse features give the same logits (no dropout in eval mode)
    model.eval()
    assert torch.allclose(model(x.to_sparse(), EDGES), model(x, EDGES), atol=1e-6)


def _gcn_norm(a: torch.Tensor) -> torch.Tensor:
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def test_message_placement_applies_f_to_the_neighbour_aggregate_only() -> None:
    model = GNN("gcn", 3, 4, 2, activation="relu", placement="message", dropout=0.0)
    layer = model.layers[0]
    x = torch.randn(4, 3, dtype=torch.float64)
    layer.double()
    w, b = layer.conv.lin.weight, layer.conv.bias
    agg = _gcn_norm(ADJ.double()) @ (x @ w.t()) + b  # no self-loop in the message
    want = x @ layer.self_lin.weight.t() + torch.relu(agg)
    assert torch.allclose(layer(x, EDGES), want, atol=1e-12)
    assert (agg < 0).any()  # the ReLU did drop negative aggregates here
    # the standard placement: f on the whole update, self-loop included
    std = GNN("gcn", 3, 4, 2, activation="relu", placement="update", dropout=0.0).layers[0]
    std.double()
    w, b = std.conv.lin.weight, std.conv.bias
    want = torch.relu(_gcn_norm(ADJ.double() + torch.eye(4)) @ (x @ w.t()) + b)
    assert torch.allclose(std(x, EDGES), want, atol=1e-12)


def test_message_placement_for_sage_and_glu() -> None:
    layer = GNN("sage", 3, 4, 2, activation="glu", placement="message").layers[0].double()
    x = torch.randn(4, 3, dtype=torch.float64)
    mean = (ADJ.double() / ADJ.sum(1, keepdim=True).double()) @ x
    h = mean @ layer.conv.lin_l.weight.t() + layer.conv.lin_l.bias  # 2 x 4 wide
    a, g = h[:, :4], h[:, 4:]
    want = x @ layer.self_lin.weight.t() + a * torch.sigmoid(g)
    assert torch.allclose(layer(x, EDGES), want, atol=1e-12)
    # ELU on the message keeps a negative aggregate, ReLU clips it to the self term
    elu = GNN("sage", 3, 4, 2, activation="elu", placement="message").layers[0].double()
    m = mean @ elu.conv.lin_l.weight.t() + elu.conv.lin_l.bias
    assert torch.allclose(elu(x, EDGES), x @ elu.self_lin.weight.t() + F.elu(m), atol=1e-12)


def test_mlp_ignores_the_graph() -> None:
    model = GNN("mlp", 3, 8, 2).eval()
    x = torch.randn(4, 3)
    assert torch.equal(model(x, EDGES), model(x, torch.zeros(2, 0, dtype=torch.long)))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="unknown kind 'gin'; allowed: gcn, gat, sage, mlp"):
        GNN("gin", 3, 4, 2)
    with pytest.raises(ValueError, match="unknown placement 'edge'; allowed: update, message"):
        GNN("gcn", 3, 4, 2, placement="edge")
    with pytest.raises(ValueError, match="unknown activation 'swish'; allowed: glu, relu"):
        GNN("gcn", 3, 4, 2, activation="swish")
    with pytest.raises(ValueError, match="multiple of heads=8"):
        GNN("gat", 3, 12, 2)
    with pytest.raises(ValueError, match="layers >= 1"):
        GNN("gcn", 3, 4, 2, layers=0)


def test_fit_nodes_learns_a_tiny_csbm() -> None:
    g = csbm(1.0, n=200, features=20, splits=2, seed=0)  # all signal in the graph
    gcn = fit_nodes(GNN("gcn", 20, 16, 2), g, 1, epochs=60)
    mlp = fit_nodes(GNN("mlp", 20, 16, 2), g, 1, epochs=60)
    assert gcn.test > 0.7 and mlp.test < 0.7 and not gcn.diverged  # mu = 0: MLP near chance
    assert 0 <= gcn.best_epoch <= 60 and 0.5 < gcn.val <= 1.0
    with pytest.raises(ValueError, match=r"split must be in \[0, 2\)"):
        fit_nodes(GNN("gcn", 20, 16, 2), g, 2)


def test_node_score_roc_auc_and_errors() -> None:
    logits = torch.tensor([[0.0, 0.1], [0.0, 0.9], [0.0, -0.3], [0.0, 0.5]])
    y = torch.tensor([0, 1, 0, 1])
    assert node_score(logits, y, "roc_auc") == 1.0
    assert node_score(logits, torch.tensor([1, 0, 0, 1]), "roc_auc") == 0.5
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        node_score(logits, y, "f1")


def test_cpu_dropout_is_inverted_bernoulli() -> None:
    """The uniform-draw dropout keeps 1 - p of the entries (5 sigma) and scales them."""
    from elulab.gnn._models import _dropout

    n, p = 200_000, 0.3
    y = _dropout(torch.ones(n), p, True)
    kept = y != 0
    assert torch.equal(y[kept], torch.full((int(kept.sum()),), 1 / (1 - p)))
    assert abs(kept.double().mean().item() - (1 - p)) < 5 * ((p * (1 - p) / n) ** 0.5)
    x = torch.randn(10)
    assert _dropout(x, p, False) is x and _dropout(x, 0.0, True) is x
