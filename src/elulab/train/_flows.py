r"""Density estimation with flows: NLL per dimension, training on a split, a learning-rate grid.

* :func:`flow_row_nll`, :func:`flow_nll`: each row's negative log-likelihood in nats per
  dimension, :math:`-\log p(x_n) / D`, and their mean over the rows inside the flow's
  support with the share of rows outside (only a flow with an ELU layer of restricted
  image has any: their exact log-likelihood is :math:`-\infty`);
* :func:`gaussian_nll`: the same for the maximum-likelihood Gaussian, the optimum of a
  linear-only flow;
* :func:`fit_flow`: maximum likelihood through :func:`elulab.train.fit`: Adam with a
  cosine decay of the rate, batches drawn with replacement, a gradient-norm clip,
  non-finite steps skipped and counted, the checkpoint with the best validation score
  kept. A training row outside the support (exact log-likelihood :math:`-\infty`, no
  gradient) costs ``outside_penalty`` times :math:`1 + g` nats per dimension, :math:`g`
  its distance below the bound (:meth:`~elulab.flows.Flow.log_prob_and_gap`): more than
  any row inside, so leaving the support never pays, and with a gradient back into it.
  (Dropping such rows instead rewards the model for pushing hard rows out: a stack of 8
  ELU blocks on HTRU2 had every training row outside within 25 steps.);
* :func:`tune_lr`: :func:`fit_flow` at every learning rate of a grid, each from the same
  initial weights and the same batches; the one with the best *validation* score is kept
  (the test split is not looked at).

The validation score is the NLL per dimension over the rows inside the support plus
``outside_penalty`` times the share of rows outside (nats per dimension), so that a
restricted-support model cannot win by leaving the hard rows out.

Example:
    >>> import torch
    >>> from elulab.flows import make_flow
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(600, 2, generator=g) * torch.tensor([1.0, 3.0])
    >>> build = lambda: make_flow(2, elementwise=None, blocks=1, coupling=False)
    >>> flow, res, fits = tune_lr(build, x[:400], x[400:], (1e-2, 3e-2), steps=200,
    ...                           batch=64, seed=0)
    >>> len(fits), res.lr in (1e-2, 3e-2), abs(flow_nll(flow, x[400:])[0] - 1.97) < 0.1
    (2, True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..flows import Flow
from ._fit import batches, fit
from ._rng import seeded, stream_seed

__all__ = ["FlowFit", "fit_flow", "flow_nll", "flow_row_nll", "gaussian_nll", "tune_lr"]


def flow_row_nll(flow: Flow, x: torch.Tensor) -> torch.Tensor:
    """Each row's NLL in nats per dimension, ``-log p(x_n) / D``; ``inf`` outside the support.

    All NaN when the flow cannot be evaluated (NaN inside it, or an inverse that failed).

    Example:
        >>> from elulab.flows import make_flow
        >>> flow = make_flow(2, elementwise="elu", blocks=1, coupling=False)
        >>> flow_row_nll(flow, torch.tensor([[0.0, 0.0], [0.0, -2.0]])).tolist()
        [0.9189385175704956, inf]
    """
    with torch.no_grad():
        try:
            return -flow.log_prob(x, outside="-inf") / x.shape[-1]
        except (ValueError, RuntimeError):  # NaN inside the flow, or a solver that failed
            return torch.full(x.shape[:-1], math.nan)


def flow_nll(flow: Flow, x: torch.Tensor) -> tuple[float, float]:
    """(mean NLL in nats per dimension over the rows of ``x`` inside the support, share outside).

    ``(inf, 1.0)`` when no row is inside; a model that cannot be evaluated gives
    ``(nan, 0.0)``, not an error.

    Example:
        >>> from elulab.flows import make_flow
        >>> flow = make_flow(2, elementwise=None, blocks=1, coupling=False)
        >>> round(flow_nll(flow, torch.zeros(3, 2))[0], 4), flow_nll(flow, torch.zeros(3, 2))[1]
        (0.9189, 0.0)
    """
    nll = flow_row_nll(flow, x)
    inside = nll < math.inf
    if bool(torch.isnan(nll).all()):
        return math.nan, 0.0
    if not bool(inside.any()):
        return math.inf, 1.0
    return float(nll[inside].mean()), float(1.0 - inside.double().mean())


def gaussian_nll(train: torch.Tensor, test: torch.Tensor) -> float:
    r"""Test NLL per dimension of the maximum-likelihood Gaussian of ``train`` (float64).

    .. math:: \frac{1}{N D} \sum_n \tfrac12 \bigl[(x_n - \mu)^\top \Sigma^{-1} (x_n - \mu)
        + \log\det \Sigma + D \log 2\pi\bigr]

    with :math:`\mu`, :math:`\Sigma` the training mean and (biased) covariance: the
    optimum a linear-only flow (a Gaussian) can reach, the reference for every flow.

    Example:
        >>> x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [2.0, 3.0]])
        >>> round(gaussian_nll(x, x), 6)  # var 1 per coordinate: (1 + log 2 pi) / 2
        1.418939
    """
    a, b = train.double(), test.double()
    mu, d = a.mean(0), a.shape[-1]
    cov = torch.atleast_2d(torch.cov(a.T, correction=0))
    r = b - mu
    maha = (r @ torch.linalg.inv(cov) * r).sum(-1)
    return float((maha + torch.linalg.slogdet(cov)[1] + d * math.log(2 * math.pi)).mean() / (2 * d))


@dataclass(frozen=True)
class FlowFit:
    """What :func:`fit_flow` returns.

    Args:
        lr: the learning rate.
        score: the validation score of the kept checkpoint (nats per dimension, the
            penalty included; inf if no evaluation was finite).
        val_nll, val_outside: its validation NLL per dimension (rows inside) and the
            share of validation rows outside the support.
        train_outside: the share of the training rows drawn that lay outside the support.
        skipped: steps skipped for a non-finite loss.
        best_step: the step of the kept checkpoint.
    """

    lr: float
    score: float
    val_nll: float
    val_outside: float
    train_outside: float
    skipped: int
    best_step: int


def fit_flow(
    flow: Flow,
    train: torch.Tensor,
    val: torch.Tensor,
    *,
    lr: float,
    steps: int,
    batch: int,
    seed: int,
    clip: float = 5.0,
    eval_every: int = 50,
    outside_penalty: float = 100.0,
    cosine: bool = True,
    initialize: bool = True,
) -> FlowFit:
    """Fit ``flow`` in place by maximum likelihood (Adam); keep its best validation checkpoint.

    The learning rate decays from ``lr`` to 0 on a cosine over ``steps`` (optimizer steps
    taken; skipped steps do not advance it) unless ``cosine=False``.

    Arguments:
        flow: the model (initialised from all of ``train`` by :meth:`Flow.initialize`
            first, unless ``initialize=False``).
        train, val: ``(N, D)`` float tensors.
        lr, steps, batch, clip: Adam's learning rate, the number of steps, rows drawn
            per step (with replacement, from generator ``seed``), the gradient-norm clip.
        seed: the seed of the batches.
        eval_every: steps between validation scores.
        outside_penalty: the cost, in nats per dimension, of a row outside the support
            (training: per row, times 1 + its gap; validation: times the share outside).
        cosine: the cosine decay (else a constant rate).
        initialize: run the data-dependent initialisation.
    """
    if initialize:
        flow.initialize(train)
    full, d = flow.full_support, train.shape[-1]
    drawn, outside = 0, 0

    def loss(flow: Flow, idx: torch.Tensor) -> torch.Tensor:
        nonlocal drawn, outside
        try:
            if full:
                return -flow.log_prob(train[idx]).mean() / d
            lp, gap = flow.log_prob_and_gap(train[idx])
        except (ValueError, RuntimeError):  # a diverging model: NaN or an unsolvable inverse
            return torch.tensor(math.nan)
        inside = lp > -math.inf
        drawn, outside = drawn + len(idx), outside + int((~inside).sum())
        # a row outside costs more than any row inside, plus a pull back into the support
        per_row = torch.where(inside, -lp / d, outside_penalty * (1.0 + gap))
        return per_row.mean()

    def score(flow: Flow) -> float:
        nll, out = flow_nll(flow, val)
        s = nll + outside_penalty * out
        return s if math.isfinite(s) else math.inf  # inf, not NaN: a later checkpoint can win

    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    res = fit(
        flow, loss, batches(len(train), batch, seed=seed, steps=steps, replacement=True),
        optimizer=opt, clip_grad_norm=clip, evaluate=score, eval_every=eval_every,
        best="min", restore_best=True, on_nonfinite="skip",
        on_step=None if decay is None else lambda state: decay.step(),
    )  # fmt: skip
    nll, out = flow_nll(flow, val)
    best = min(res.eval_scores) if res.eval_scores else math.inf
    return FlowFit(lr, best, nll, out, outside / max(drawn, 1), res.skipped, res.best_step)


def tune_lr(
    build: Callable[[], Flow],
    train: torch.Tensor,
    val: torch.Tensor,
    lrs: Sequence[float],
    *,
    seed: int,
    **kwargs: Any,
) -> tuple[Flow, FlowFit, list[FlowFit]]:
    """Fit a fresh flow at every learning rate of ``lrs``; keep the best on validation.

    Each candidate is built by ``build()`` inside :func:`elulab.train.seeded` ``(seed,
    "init")``, so every learning rate starts from the same weights, and is trained on the
    same batches (stream ``(seed, "batches")``); the lowest validation score wins (ties:
    the first).

    Arguments:
        build: makes an untrained flow (its random draws from torch's global generator).
        train, val: ``(N, D)`` float tensors.
        lrs: the grid (at least one value).
        seed: the seed of the initial weights and of the batches.
        kwargs: passed to :func:`fit_flow` (``steps``, ``batch``, ...).

    Returns:
        ``(flow, fit, fits)``: the chosen flow, its :class:`FlowFit`, and every
        candidate's, in grid order.
    """
    if not lrs:
        raise ValueError("tune_lr: lrs must hold at least one learning rate")
    best: tuple[Flow, FlowFit] | None = None
    fits: list[FlowFit] = []
    for lr in lrs:
        with seeded(seed, "init"):
            flow = build()
        res = fit_flow(flow, train, val, lr=float(lr), seed=stream_seed(seed, "batches"), **kwargs)
        fits.append(res)
        if best is None or res.score < best[1].score:
            best = (flow, res)
    assert best is not None
    return best[0], best[1], fits
