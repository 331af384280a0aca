"""Classifiers on tensors: :func:`build_mlp`, :func:`train_classifier`, evaluation.

* :func:`build_mlp`: ``depth`` x (Linear -> [BatchNorm|LayerNorm] -> activation ->
  dropout), then Linear, with a named initialisation;
* :func:`train_classifier`: cross-entropy on minibatches for a fixed number of steps,
  through :func:`elulab.train.fit`; with validation data it records the validation
  accuracy every ``eval_every`` steps and returns the (smoothed) best step: early
  stopping whose stopping point can be reused when retraining on more data;
* :func:`predict_proba` and :func:`accuracy`: evaluation in eval mode, in chunks.

Every random draw (initialisation from ``build_mlp``'s seed; minibatch order and dropout
from ``train_classifier``'s) comes from a seed argument, so a call is reproducible.

Example:
    >>> import torch
    >>> X = torch.randn(64, 5); y = (X[:, 0] > 0).long()
    >>> net = build_mlp(5, 2, depth=2, width=16, activation="relu", seed=0)
    >>> res = train_classifier(net, X, y, steps=50, lr=0.1, batch_size=16, seed=0)
    >>> res.steps
    50
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._fit import batches, fit
from ._rng import generator

__all__ = [
    "INITS",
    "NORMS",
    "TrainResult",
    "accuracy",
    "batch_cross_entropy",
    "build_mlp",
    "predict_proba",
    "train_classifier",
]

NORMS = ("none", "batch", "layer")
INITS = ("lecun", "kaiming", "kaiming_selu", "torch")


def batch_cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of ``model`` on an ``(inputs, labels)`` batch: a ``fit`` loss.

    Example:
        >>> m = nn.Linear(2, 3)
        >>> batch_cross_entropy(m, (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))).shape
        torch.Size([])
    """
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


def build_mlp(
    in_features: int,
    out_features: int,
    *,
    depth: int,
    width: int,
    activation: str = "relu",
    norm: str = "none",
    dropout: float = 0.0,
    init: str = "kaiming",
    seed: int = 0,
) -> nn.Sequential:
    """An MLP: ``depth`` x (Linear -> norm -> activation -> Dropout), then Linear.

    Arguments:
        in_features, out_features: input and output sizes.
        depth, width: hidden layers and their width.
        activation: a name :func:`elulab.nn.get_activation` knows.
        norm: ``"none"``, ``"batch"`` (BatchNorm1d) or ``"layer"`` (LayerNorm), before
            the activation.
        dropout: standard dropout rate after each activation (0: none). For SELU
            networks use :class:`elulab.nn.SNN`, which uses AlphaDropout.
        init: ``"lecun"`` (N(0, 1/n)), ``"kaiming"`` (N(0, 2/n), He et al. 2015),
            ``"kaiming_selu"`` (``kaiming_normal_(nonlinearity="selu")``: N(0, 0.5625/n),
            the common PyTorch mistake) or ``"torch"`` (nn.Linear's default);
            biases are zero except for ``"torch"``.
        seed: seeds the initial weights.
    """
    from ..nn import get_activation, lecun_normal_

    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    gen = generator(int(seed))
    layers: list[nn.Module] = []
    n_in = in_features
    for _ in range(depth):
        layers.append(nn.Linear(n_in, width))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append(get_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, out_features))
    net = nn.Sequential(*layers)
    if init != "torch":
        for m in net.modules():
            if isinstance(m, nn.Linear):
                gain = {"lecun": 1.0, "kaiming": math.sqrt(2.0), "kaiming_selu": 0.75}[init]
                lecun_normal_(m.weight, gain=gain, generator=gen)
                with torch.no_grad():
                    m.bias.zero_()
    return net


@dataclass
class TrainResult:
    """What :func:`train_classifier` returns.

    Args:
        steps: the number of optimiser steps taken.
        best_step: the step with the best smoothed validation accuracy (``steps``
            without validation data).
        best_val_accuracy: the smoothed validation accuracy there (nan without).
        eval_steps, val_accuracy: the validation curve (raw).
        final_loss: the training loss of the last minibatch.
        diverged: True if the loss became non-finite (training stopped there).
    """

    steps: int
    best_step: int
    best_val_accuracy: float
    eval_steps: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    final_loss: float = float("nan")
    diverged: bool = False


@torch.no_grad()
def predict_proba(model: nn.Module, X: torch.Tensor, chunk: int = 8192) -> np.ndarray:
    """Class probabilities ``(N, C)`` in eval mode (the model's mode is restored)."""
    was = model.training
    model.eval()
    try:
        out = [torch.softmax(model(X[i : i + chunk]), dim=1) for i in range(0, len(X), chunk)]
    finally:
        model.train(was)
    return torch.cat(out).double().numpy()


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows whose arg-max class equals ``y`` (eval mode)."""
    if len(X) == 0:
        raise ValueError("accuracy of an empty set")
    p = predict_proba(model, X)
    return float((p.argmax(1) == y.numpy()).mean())


def train_classifier(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    batch_size: int = 128,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    X_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    eval_every: int = 0,
    smooth: int = 3,
    seed: int = 0,
) -> TrainResult:
    """Train ``model`` in place with cross-entropy and minibatches (:func:`fit`).

    Minibatches are drawn epoch by epoch from a permutation seeded with ``seed``;
    dropout masks come from stream ``seed + 1`` of torch's global generator (the
    caller's global state is restored). With validation data, the accuracy is
    measured every ``eval_every`` steps (and at the end); the curve is smoothed by a
    centred moving average of ``smooth`` points (as the SNN paper smoothed its
    learning curves before picking the stopping point) and the best step is
    returned. The model is left at its *last* step.

    Arguments:
        model: the network (its output: logits).
        X, y: float features ``(N, D)`` and int64 classes ``(N,)``.
        steps: optimiser steps (>= 1).
        lr: learning rate (> 0).
        batch_size: minibatch size (capped at N).
        optimizer: ``"sgd"`` or ``"adam"``.
        momentum, weight_decay: for SGD / both.
        X_val, y_val: optional validation data.
        eval_every: steps between validation checks (0: ``max(1, steps // 20)``).
        smooth: moving-average window for the validation curve (odd, >= 1).
        seed: seeds the minibatch order and any dropout.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must be non-empty with equal length, got {len(X)} and {len(y)}")
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    has_bn = any(isinstance(m, nn.BatchNorm1d) for m in model.modules())

    def loss_fn(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        if len(idx) == 1 and has_bn:
            idx = torch.cat([idx, idx])  # BatchNorm needs two rows
        return nn.functional.cross_entropy(model(X[idx]), y[idx])

    validate = X_val is not None and y_val is not None
    res = fit(
        model,
        loss_fn,
        batches(len(X), batch_size, seed=int(seed)),
        optimizer=opt,
        steps=steps,
        evaluate=(lambda m: accuracy(m, X_val, y_val)) if validate else None,
        eval_every=(eval_every if eval_every > 0 else max(1, steps // 20)) if validate else 0,
        smooth=smooth,
        seed=int(seed) + 1,
    )
    best_val = res.best_score if res.eval_scores else float("nan")
    return TrainResult(
        steps=res.steps,
        best_step=res.best_step,
        best_val_accuracy=best_val,
        eval_steps=res.eval_steps,
        val_accuracy=res.eval_scores,
        final_loss=res.final_loss,
        diverged=res.diverged,
    )
