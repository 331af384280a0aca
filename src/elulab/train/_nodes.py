"""Full-batch node classification on one split of a graph, on :func:`fit`.

The protocol of Geom-GCN / GloGNN / Platonov et al. 2023: train on the split's train
nodes with Adam and weight decay, evaluate on its validation nodes every epoch, keep
the parameters of the best validation score, and report the test score of those.
The score is accuracy, or ROC AUC for binary sets (Platonov et al. report ROC AUC on
minesweeper, tolokers and questions).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._fit import fit

__all__ = ["NodeResult", "fit_nodes", "node_score"]


class NodeResult(NamedTuple):
    """Scores of the parameters with the best validation score."""

    test: float
    val: float
    best_epoch: int
    diverged: bool


def node_score(logits: torch.Tensor, y: torch.Tensor, metric: str) -> float:
    """Accuracy (``argmax == y``), or ROC AUC of the class-1 logit margin for ``"roc_auc"``.

    Example:
        >>> node_score(torch.tensor([[0.0, 1.0], [2.0, 0.0]]), torch.tensor([1, 1]), "accuracy")
        0.5
    """
    if metric == "accuracy":
        return float((logits.argmax(1) == y).double().mean())
    if metric == "roc_auc":
        from sklearn.metrics import roc_auc_score

        if logits.shape[1] != 2 or y.unique().numel() != 2:
            raise ValueError("node_score: roc_auc needs two classes present and 2 logits")
        return float(roc_auc_score(y.numpy(), (logits[:, 1] - logits[:, 0]).numpy()))
    raise ValueError(f"node_score: unknown metric {metric!r}; allowed: accuracy, roc_auc")


def fit_nodes(
    model: nn.Module,
    graph: Any,
    split: int,
    *,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    epochs: int = 200,
    sparse: bool = False,
    on_step: Callable[[Any], None] | None = None,
) -> NodeResult:
    """Train ``model(x, edge_index)`` on split ``split`` of ``graph``; keep the best val.

    Args:
        model: a node classifier (e.g. :class:`elulab.gnn.GNN`).
        graph: an :class:`elulab.data.graphs.Graph` (``x, y, edge_index``, masks,
            ``metric``).
        split: which of the graph's standard splits.
        lr, weight_decay: Adam's.
        epochs: full-batch steps; the validation score is read after every one.
        sparse: feed the features as a sparse COO tensor (for bag-of-words features;
            the model must accept it, as :class:`elulab.gnn.GNN` does).
        on_step: called after every optimiser step (see :func:`fit`).

    Example:
        >>> from elulab.data.csbm import csbm
        >>> from elulab.gnn import GNN
        >>> g = csbm(0.5, n=200, features=50)
        >>> r = fit_nodes(GNN("gcn", 50, 16, 2), g, 0, epochs=50)
        >>> 0.5 < r.test <= 1.0
        True
    """
    if not 0 <= split < graph.num_splits:
        raise ValueError(f"fit_nodes: split must be in [0, {graph.num_splits}), got {split}")
    tr, va, te = graph.train_masks[split], graph.val_masks[split], graph.test_masks[split]
    x, edges, y = graph.x, graph.edge_index, graph.y
    x = x.to_sparse() if sparse else x
    tests: list[float] = []  # the test score at each evaluation, in order

    def loss_fn(m: nn.Module, _: object) -> torch.Tensor:
        return F.cross_entropy(m(x, edges)[tr], y[tr])

    def evaluate(m: nn.Module) -> float:
        was = m.training
        m.eval()
        with torch.no_grad():
            out = m(x, edges)
        m.train(was)
        val = node_score(out[va], y[va], graph.metric)
        tests.append(node_score(out[te], y[te], graph.metric))
        return val

    res = fit(
        model,
        loss_fn,
        itertools.repeat(None, epochs),
        optimizer=torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay),
        evaluate=evaluate,
        eval_every=1,
        best="max",
        on_step=on_step,
    )
    if res.best_step is None or not np.isfinite(res.best_score):
        return NodeResult(float("nan"), float("nan"), 0, True)
    best = int(np.argmax(res.eval_scores))  # the first best, as fit's best_step
    return NodeResult(
        test=tests[best],
        val=float(res.eval_scores[best]),
        best_epoch=int(res.eval_steps[best]),
        diverged=bool(res.diverged),
    )
