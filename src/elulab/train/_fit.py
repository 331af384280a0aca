"""One training loop for every experiment: :func:`batches` and :func:`fit`.

:func:`batches` yields minibatch indices from a seeded generator (epochs of
permutations, or draws with replacement). :func:`fit` runs

.. code-block:: text

    for step, batch in enumerate(batches, 1):            # until `steps` or exhausted
        loss = loss_fn(model, batch)                      # any scalar: a penalty, a residual
        if loss is not finite: stop (or skip the step)    # divergence detection
        optimizer.zero_grad(); loss.backward()            # (backward=False: loss_fn did it)
        after_backward(state)                             # read gradients, Diagnostics.step()
        clip_grad_norm_(params, clip) if clip             # optional
        optimizer.step()
        every `eval_every` steps: evaluate(model) -> score  # keep-best on validation

A custom step needs no copy of the loop: ``loss_fn`` returns whatever scalar the
method minimises (cross-entropy plus ``lambda * |grad_x L|^2`` for double backprop, a
PDE residual for a PINN), optionally with a dict of per-step numbers to log.

Example:
    >>> import torch
    >>> X = torch.randn(64, 3); y = X @ torch.tensor([1.0, -2.0, 0.5])
    >>> model = torch.nn.Linear(3, 1)
    >>> def mse(model, idx):
    ...     return ((model(X[idx]).squeeze(1) - y[idx]) ** 2).mean()
    >>> res = fit(model, mse, batches(64, 16, seed=0, epochs=50),
    ...           optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    >>> res.steps, res.diverged, res.final_loss < 1e-6
    (200, False, True)
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ._rng import generator as _generator
from ._rng import seeded

__all__ = ["FitResult", "StepState", "batches", "fit"]


def batches(
    n: int,
    batch_size: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    replacement: bool = False,
    drop_last: bool = True,
) -> Iterator[torch.Tensor]:
    """Minibatch indices into ``range(n)``, from a seeded generator.

    Without replacement, each epoch is a fresh permutation cut into batches
    (``drop_last``: a short tail is dropped, so every batch has ``batch_size`` rows;
    with ``batch_size >= n`` each batch is the whole permutation). With replacement,
    each batch is ``batch_size`` independent uniform draws. The iterator ends after
    ``epochs`` epochs or ``steps`` batches, whichever is first; with neither it is
    infinite (give :func:`fit` a ``steps``).

    Args:
        n: the number of rows (>= 1).
        batch_size: rows per batch (>= 1; capped at ``n`` without replacement).
        seed, generator: the source of randomness: a seed (the ``"batches"`` stream of
            :func:`elulab.train.generator` is *not* applied: the seed is used as is) or
            a generator; exactly one.
        epochs, steps: when to stop (>= 1 each, or None).
        replacement: draw with replacement instead of epoch permutations.
        drop_last: drop an epoch's final short batch.

    Example:
        >>> [b.tolist() for b in batches(4, 2, seed=0, epochs=1)]
        [[0, 1], [3, 2]]
    """
    for name, v, lo in (("n", n, 1), ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    for name, v in (("epochs", epochs), ("steps", steps)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an integer >= 1 or None, got {v!r}")
    if (seed is None) == (generator is None):
        raise ValueError("give exactly one of seed and generator")
    gen = generator if generator is not None else _generator(int(seed))  # type: ignore[arg-type]
    if replacement:
        total = (
            steps if epochs is None else min(steps or math.inf, epochs * max(n // batch_size, 1))
        )
        count = itertools.count() if total == math.inf else range(int(total))
        for _ in count:
            yield torch.randint(0, n, (batch_size,), generator=gen)
        return
    bs = min(batch_size, n)
    taken = 0
    for _ in itertools.count() if epochs is None else range(epochs):
        perm = torch.randperm(n, generator=gen)
        stop = n - bs + 1 if drop_last else n
        for i in range(0, stop, bs):
            yield perm[i : i + bs]
            taken += 1
            if steps is not None and taken >= steps:
                return


@dataclass
class StepState:
    """What :func:`fit` hands to ``after_backward`` and ``on_step`` hooks.

    Args:
        step: the 1-based step number.
        batch: the batch of this step.
        loss: the loss tensor (after ``backward``; do not backward it again).
        logs: the numbers ``loss_fn`` logged for this step.
        model: the model.
    """

    step: int
    batch: Any
    loss: torch.Tensor
    logs: dict[str, float]
    model: nn.Module


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Args:
        steps: optimiser steps taken (skipped steps not counted).
        diverged: the loss (or gradient norm) became non-finite and training stopped.
        skipped: steps skipped for a non-finite loss (``on_nonfinite="skip"``).
        final_loss: the loss of the last step taken (nan if none).
        losses: the loss of every step taken.
        logs: ``{name: [value per step taken]}`` from ``loss_fn``'s dicts.
        eval_steps, eval_scores: the evaluation curve.
        best_step, best_score: the step with the best (smoothed) score; ``steps`` and
            nan without ``evaluate``.
        restored: the model was reset to its best-scoring state.
    """

    steps: int = 0
    diverged: bool = False
    skipped: int = 0
    final_loss: float = math.nan
    losses: list[float] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    eval_scores: list[float] = field(default_factory=list)
    best_step: int = 0
    best_score: float = math.nan
    restored: bool = False

    def mean_log(self, name: str) -> float:
        """The mean of a logged number over the steps taken (nan if never logged)."""
        v = self.logs.get(name, [])
        return float(np.nanmean(v)) if v and not np.all(np.isnan(v)) else math.nan


def _smoothed(scores: list[float], window: int) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    k = max(1, int(window))
    return np.array([arr[max(0, i - k // 2) : i + k // 2 + 1].mean() for i in range(len(arr))])


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]],
    batches: Iterable[Any],
    *,
    optimizer: torch.optim.Optimizer,
    steps: int | None = None,
    clip_grad_norm: float | None = None,
    after_backward: Callable[[StepState], bool | None] | None = None,
    on_step: Callable[[StepState], None] | None = None,
    evaluate: Callable[[nn.Module], float] | None = None,
    eval_every: int = 0,
    best: Literal["max", "min"] = "max",
    smooth: int = 1,
    restore_best: bool = False,
    on_nonfinite: Literal["stop", "skip"] = "stop",
    seed: int | None = None,
    backward: bool = True,
    closure: bool = False,
) -> FitResult:
    """Train ``model`` in place: one loop with hooks for every method in the lab.

    Args:
        model: any module; it is put in train mode (evaluation hooks may switch it
            to eval mode; it is switched back).
        loss_fn: ``loss_fn(model, batch)`` returns the scalar to minimise, or
            ``(scalar, {name: number})`` to log numbers per step.
        batches: any iterable of batches (e.g. :func:`batches`).
        optimizer: over the model's parameters.
        steps: the most steps to take (None: until ``batches`` ends).
        clip_grad_norm: clip the total gradient norm to this value before each step.
        after_backward: called after ``backward`` and before clipping and the step;
            return ``False`` to stop training here as diverged (e.g. a gradient norm
            over a threshold).
        on_step: called after the optimiser step.
        evaluate: ``evaluate(model) -> score``, every ``eval_every`` steps and after
            the last one (called with ``torch.no_grad`` off: use it inside if wanted).
        eval_every: steps between evaluations (0: only after the last step).
        best: whether a higher (``"max"``) or lower score is better.
        smooth: centred moving-average window over the evaluation curve before the
            best step is picked (the SNN paper's smoothing; 1: none).
        restore_best: reset the model to its state at the best *raw* evaluation
            (the state is copied on each improvement).
        on_nonfinite: ``"stop"`` (the run is diverged) or ``"skip"`` (the step is
            skipped and counted; training goes on).
        seed: run the loop on stream ``seed`` of torch's global generator (dropout
            masks) inside :func:`elulab.train.seeded`; None: the caller's state.
        backward: ``True``: ``zero_grad`` and ``loss.backward()`` after ``loss_fn``.
            ``False``: ``zero_grad`` before ``loss_fn``, which sets the parameters'
            ``.grad`` itself (e.g. a sum of gradients from separate
            ``torch.autograd.grad`` calls, in an order one ``backward`` cannot
            reproduce); its loss is then only read (logged, checked for finiteness).
        closure: drive an optimiser that re-evaluates the loss (:class:`torch.optim.LBFGS`):
            each step is ``optimizer.step(closure)``, the closure running ``zero_grad``,
            ``loss_fn``, ``backward`` (unless ``backward=False``) and clipping. The first
            evaluation of a step is the one checked, logged and handed to
            ``after_backward``; a non-finite one aborts the step before the optimiser
            moves (then ``on_nonfinite`` applies as usual).

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: a bad argument, named.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise ValueError(f"steps must be an integer >= 0 or None, got {steps!r}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"eval_every must be an integer >= 0, got {eval_every!r}")
    if best not in ("max", "min"):
        raise ValueError(f"best must be 'max' or 'min', got {best!r}")
    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
    if clip_grad_norm is not None and not (clip_grad_norm > 0 and math.isfinite(clip_grad_norm)):
        raise ValueError(
            f"clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}"
        )
    if (restore_best or eval_every) and evaluate is None:
        raise ValueError("eval_every and restore_best need an evaluate function")
    if not isinstance(closure, bool):
        raise ValueError(f"closure must be a bool, got {closure!r}")
    ctx = seeded(seed) if seed is not None else _nullcontext()
    with ctx:
        return _loop(
            model, loss_fn, batches, optimizer, steps, clip_grad_norm, after_backward,
            on_step, evaluate, eval_every, best, smooth, restore_best, on_nonfinite,
            backward, closure,
        )  # fmt: skip


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _loop(
    model, loss_fn, batches, optimizer, steps, clip, after_backward, on_step, evaluate,
    eval_every, best, smooth, restore_best, on_nonfinite, backward, closure=False,
) -> FitResult:  # fmt: skip
    res = FitResult()
    sign = 1.0 if best == "max" else -1.0
    raw_best, best_state = -math.inf, None
    params = [p for p in model.parameters() if p.requires_grad]

    def run_eval(step: int) -> None:
        nonlocal raw_best, best_state
        was = model.training
        score = float(evaluate(model))  # type: ignore[misc]
        model.train(was)
        res.eval_steps.append(step)
        res.eval_scores.append(score)
        if restore_best and (best_state is None or sign * score > raw_best):
            raw_best, best_state = sign * score, copy.deepcopy(model.state_dict())

    model.train()
    source = batches if steps is None else itertools.islice(batches, steps)
    step = 0
    for step, batch in enumerate(source, 1):
        if closure:
            got = _closure_step(
                model, loss_fn, batch, optimizer, step, backward, clip, params, after_backward
            )
            if isinstance(got, str):  # "nonfinite" (first loss) or "stop" (a hook said so)
                if got == "nonfinite" and on_nonfinite == "skip":
                    res.skipped += 1
                    continue
                res.diverged = True
                break
            loss_v, logs, state = got
        else:
            if not backward:
                optimizer.zero_grad(set_to_none=True)
            out = loss_fn(model, batch)
            loss, logs = (out[0], dict(out[1])) if isinstance(out, tuple) else (out, {})
            loss_v = float(loss.detach())
            if not math.isfinite(loss_v):
                if on_nonfinite == "skip":
                    res.skipped += 1
                    continue
                res.diverged = True
                break
            if backward:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            state = StepState(step, batch, loss, logs, model)
            if after_backward is not None and after_backward(state) is False:
                res.diverged = True
                break
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
        res.steps += 1
        res.final_loss = loss_v
        res.losses.append(loss_v)
        for k in set(res.logs) | set(logs):
            res.logs.setdefault(k, [math.nan] * (res.steps - 1)).append(
                float(logs.get(k, math.nan))
            )
        if on_step is not None:
            on_step(state)
        if evaluate is not None and eval_every and step % eval_every == 0:
            run_eval(step)
    if (
        evaluate is not None
        and not res.diverged
        and (not res.eval_steps or res.eval_steps[-1] != step)
    ):
        run_eval(step)
    res.best_step = res.steps
    if res.eval_scores:
        sm = sign * _smoothed(res.eval_scores, smooth)
        i = int(np.argmax(sm))
        res.best_step, res.best_score = res.eval_steps[i], float(sign * sm[i])
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
        res.restored = True
    return res


class _Abort(Exception):
    """Raised inside a closure to stop ``optimizer.step`` before it moves the parameters."""


def _closure_step(model, loss_fn, batch, optimizer, step, backward, clip, params, after_backward):
    """One ``optimizer.step(closure)``: ``(loss, logs, state)``, or "nonfinite" / "stop"."""
    first: list[Any] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        out = loss_fn(model, batch)
        loss, logs = (out[0], dict(out[1])) if isinstance(out, tuple) else (out, {})
        if not first:
            loss_v = float(loss.detach())
            if not math.isfinite(loss_v):
                raise _Abort("nonfinite")
        if backward:
            loss.backward()
        if not first:
            state = StepState(step, batch, loss, logs, model)
            if after_backward is not None and after_backward(state) is False:
                raise _Abort("stop")
            first.append((loss_v, logs, state))
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        return loss.detach()

    try:
        optimizer.step(closure)
    except _Abort as why:
        return str(why)
    return first[0]
