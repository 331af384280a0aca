"""Audit a model: train it a few steps with the hooks on, then measure every layer.

:func:`audit` is what ``elulab audit`` runs, for a user's own model, data and loss:

1. train ``steps`` optimiser steps on ``data`` (cycled) with :func:`elulab.train.fit`,
   recording every step (:meth:`Diagnostics.step` after each backward;
   :attr:`AuditResult.history`, e.g. the dead fraction over training);
2. one audit pass over ``eval_data`` (default: one pass over ``data``) at the final
   weights, in ``eval()`` mode, with gradients but no update. The per-layer numbers
   (:attr:`AuditResult.layers`) are over that whole pass: a unit is *dead* when its
   pre-activation gradient is zero for every sample of the pass.

:func:`load_factory` imports ``MODULE:FACTORY`` (a dotted module or a ``.py`` file).
:func:`render_html` writes the standalone HTML page; :meth:`AuditResult.save` writes
``audit.json`` and ``audit.html`` into a folder (what ``elulab audit --out`` does).

Example:
    >>> import torch, torch.nn as nn
    >>> _ = torch.manual_seed(0)
    >>> X, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    >>> data = [(X[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    >>> model = nn.Sequential(nn.Linear(5, 8), nn.ELU(), nn.Linear(8, 3))
    >>> result = audit(model, data, nn.functional.cross_entropy, steps=5)
    >>> [layer.kind for layer in result.layers]
    ['Linear', 'ELU', 'Linear']
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..train import StepState, fit
from ._hooks import DEFAULT_EPS, Diagnostics, LayerStats

__all__ = [
    "AuditResult",
    "FactoryError",
    "ModelDataMismatch",
    "audit",
    "audit_dataset",
    "build_model",
    "check_model_fits",
    "html_section",
    "load_factory",
    "render_html",
]

Batch = tuple[torch.Tensor, torch.Tensor]


class FactoryError(ValueError):
    """``MODULE:FACTORY`` that cannot be imported, called, or does not give a module."""


@dataclass
class AuditResult:
    """The outcome of :func:`audit`.

    Args:
        layers: per-layer stats over the audit pass, in forward order.
        history: per-step stats during training (one list per step).
        train_loss: the loss at each training step.
        eval_loss: mean loss over the audit pass.
        eval_accuracy: accuracy over the audit pass when the outputs are class scores
            ``(batch, C)`` and the targets class indices, else ``None``.
        steps: training steps run.
        meta: free-form facts about the run (model, data, lr, ...).
    """

    layers: list[LayerStats]
    history: list[list[LayerStats]]
    train_loss: list[float]
    eval_loss: float
    eval_accuracy: float | None
    steps: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"layers": [...], "steps", "train_loss", "eval_loss", "eval_accuracy", "meta",
        "dead_fraction_history"}``; non-finite numbers become ``null``."""
        names = [s.name for s in self.layers]
        dead_hist: dict[str, list[float]] = {n: [] for n in names}
        for step in self.history:
            by_name = {s.name: s.dead_fraction for s in step}
            for n in names:
                dead_hist[n].append(by_name.get(n, math.nan))
        return {
            "layers": [s.to_dict() for s in self.layers],
            "steps": self.steps,
            "train_loss": [_finite(v) for v in self.train_loss],
            "eval_loss": _finite(self.eval_loss),
            "eval_accuracy": _finite(self.eval_accuracy),
            "dead_fraction_history": {n: [_finite(v) for v in vs] for n, vs in dead_hist.items()},
            "meta": self.meta,
        }

    def save(self, out_dir: str | Path, title: str | None = None) -> list[Path]:
        """Write ``audit.json`` (:meth:`to_json`) and ``audit.html`` (:func:`render_html`).

        Args:
            out_dir: the folder (created with its parents if missing).
            title: the page title; default ``"Activation audit: <meta['model']>"``
                (``"Activation audit"`` without a model name).

        Returns:
            the two paths written, JSON first.

        Raises:
            OSError: the folder or a file in it cannot be written; the message names
                the folder and the reason.

        Example:
            >>> import tempfile, torch, torch.nn as nn
            >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
            >>> net = nn.Sequential(nn.Linear(3, 2))
            >>> res = audit(net, data, nn.functional.cross_entropy, steps=1)
            >>> [p.name for p in res.save(tempfile.mkdtemp())]
            ['audit.json', 'audit.html']
        """
        out = Path(out_dir)
        model = self.meta.get("model")
        if title is None:
            title = f"Activation audit: {model}" if model else "Activation audit"
        payload = json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        paths = [out / "audit.json", out / "audit.html"]
        try:
            out.mkdir(parents=True, exist_ok=True)
            paths[0].write_text(payload)
            paths[1].write_text(render_html(self, title))
        except OSError as e:
            raise OSError(f"cannot write the audit to {out}: {e.strerror or e}") from e
        return paths


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _cycle(data: Iterable[Batch]) -> Iterable[Batch]:
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise ValueError("data yielded no batch")


def _split(batch: Any) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"each batch must be a pair (inputs, targets), got {type(batch).__name__}")
    return batch[0], batch[1]


def audit(
    model: nn.Module,
    data: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    steps: int = 100,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    eval_data: Iterable[Batch] | None = None,
    max_eval_batches: int | None = None,
    eps: float = DEFAULT_EPS,
    device: str | torch.device = "cpu",
) -> AuditResult:
    """Train ``model`` for ``steps`` steps with the diagnostics on, then audit every layer.

    Args:
        model: the model (trained in place).
        data: an iterable of ``(inputs, targets)`` batches, e.g. a ``DataLoader``; it is
            cycled when it runs out.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``, e.g. ``F.cross_entropy``.
        steps: training steps (>= 0; 0 audits the model as it is).
        lr: learning rate of the default optimiser, Adam.
        optimizer: an optimiser over ``model``'s parameters, instead of Adam(lr).
        eval_data: batches for the audit pass (default: one pass over ``data``).
        max_eval_batches: cap on the audit pass (default: the whole pass).
        eps: slope threshold of *saturated* (see :class:`Diagnostics`).
        device: where to run.

    Returns:
        an :class:`AuditResult`.

    Raises:
        TypeError, ValueError: for a bad model, batch, ``steps`` or ``lr``; or a loss
            that is not a finite scalar.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if optimizer is None and not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if max_eval_batches is not None and max_eval_batches < 1:
        raise ValueError(f"max_eval_batches must be >= 1, got {max_eval_batches!r}")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    own_optimizer = optimizer is None
    if optimizer is None:
        if not params:
            raise ValueError("model has no trainable parameter")
        optimizer = torch.optim.Adam(params, lr=float(lr))
    was_training = model.training

    def train_loss(model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = (t.to(device) for t in _split(batch))
        return _scalar_loss(loss_fn(model(x), y))  # raises on a non-finite loss

    with Diagnostics(model, eps=eps) as diag:

        def record(state: StepState) -> None:
            diag.step()  # this step's gradients, before the optimiser's update

        trained = fit(model, train_loss, _cycle(data), optimizer=optimizer, steps=steps,
                      after_backward=record)  # fmt: skip
        history = list(diag.history)

        model.eval()
        diag.reset_window()
        total, n_seen, correct, classification = 0.0, 0, 0, True
        batches = eval_data if eval_data is not None else data
        if max_eval_batches is not None:
            batches = itertools.islice(batches, max_eval_batches)
        for batch in batches:
            x, y = (t.to(device) for t in _split(batch))
            model.zero_grad(set_to_none=True)
            out = model(x)
            loss = _scalar_loss(loss_fn(out, y))
            loss.backward()
            diag.step()
            n = int(y.shape[0]) if y.ndim else 1
            total += float(loss.detach()) * n
            n_seen += n
            if classification and out.ndim == 2 and y.ndim == 1 and not y.is_floating_point():
                correct += int((out.detach().argmax(1) == y).sum())
            else:
                classification = False
        if n_seen == 0:
            raise ValueError("the audit pass got no batch (eval_data is empty)")
        layers = diag.window()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return AuditResult(
        layers=layers,
        history=history,
        train_loss=trained.losses,
        eval_loss=total / n_seen,
        eval_accuracy=correct / n_seen if classification else None,
        steps=steps,
        meta={
            "optimizer": f"Adam(lr={lr:g})" if own_optimizer else type(optimizer).__name__,
            "eps": eps,
        },
    )


def _scalar_loss(loss: Any) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            f"loss_fn must return a scalar tensor, got {getattr(loss, 'shape', type(loss).__name__)}"
        )
    if not torch.isfinite(loss.detach()).all():
        raise ValueError(
            f"the loss is not finite ({float(loss.detach())}); lower the learning rate"
        )
    return loss.reshape(())


# -- built-in data sets ----------------------------------------------------------------------


class ModelDataMismatch(ValueError):
    """A model whose inputs or outputs do not fit the data set."""


def check_model_fits(model: nn.Module, X: torch.Tensor, y: torch.Tensor, data_name: str) -> int:
    """Run ``model`` on 8 samples; return the number of classes or raise naming the misfit.

    The outputs must be class scores of shape ``(batch, C)`` with ``C`` at least the
    number of classes in ``y``.

    Raises:
        ModelDataMismatch: one line naming the shapes.
    """
    n_classes = int(y.max()) + 1
    xb = X[:8]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(xb)
    except Exception as e:
        raise ModelDataMismatch(
            f"the model fails on {data_name} inputs of shape {tuple(xb.shape)}: "
            f"{type(e).__name__}: {_first_line(e)}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ModelDataMismatch(
            f"the model returned a {type(out).__name__} on {data_name}; it must return a "
            f"tensor of class scores (batch, {n_classes})"
        )
    if out.ndim != 2 or out.shape[0] != xb.shape[0] or out.shape[1] < n_classes:
        raise ModelDataMismatch(
            f"the model's output has shape {tuple(out.shape)} on {data_name} inputs "
            f"{tuple(xb.shape)}; expected class scores ({xb.shape[0]}, {n_classes}) for "
            f"{n_classes} classes"
        )
    return n_classes


def audit_dataset(
    model: nn.Module,
    data_name: str,
    *,
    steps: int = 100,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    eps: float = DEFAULT_EPS,
    root: str | Path | None = None,
) -> AuditResult:
    """:func:`audit` with cross-entropy on a built-in data set (what ``elulab audit`` runs).

    The data set (:func:`elulab.data.builtin.load_builtin`) is split 80/20 with
    ``seed``: ``steps`` Adam steps on shuffled mini-batches of the 80%, then the audit
    pass over the held-out 20%.

    Raises:
        ValueError: for an unknown data set; :class:`ModelDataMismatch` when the model
            does not fit it.
    """
    from ..data.builtin import load_builtin
    from ..data.mnist import split_indices

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    X, y = load_builtin(data_name, root)
    check_model_fits(model, X, y, data_name)
    train_idx, test_idx = split_indices(len(y), seed, (0.8, 0.2))
    gen = torch.Generator().manual_seed(seed)
    Xtr, ytr = X[torch.from_numpy(train_idx)], y[torch.from_numpy(train_idx)]
    Xte, yte = X[torch.from_numpy(test_idx)], y[torch.from_numpy(test_idx)]

    def train_batches() -> Iterable[Batch]:
        perm = torch.randperm(len(ytr), generator=gen)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            yield Xtr[idx], ytr[idx]

    class _Epochs:
        def __iter__(self):  # a fresh shuffle at every pass
            return iter(train_batches())

    eval_batches = [(Xte[i : i + 512], yte[i : i + 512]) for i in range(0, len(yte), 512)]
    torch.manual_seed(seed)
    result = audit(
        model,
        _Epochs(),
        nn.functional.cross_entropy,
        steps=steps,
        lr=lr,
        eval_data=eval_batches,
        eps=eps,
    )
    result.meta.update(
        {
            "data": data_name,
            "input_shape": list(X.shape[1:]),
            "train_samples": len(ytr),
            "audit_samples": len(yte),
            "batch_size": batch_size,
            "seed": seed,
        }
    )
    return result


# -- MODULE:FACTORY ------------------------------------------------------------------------


def load_factory(spec: str) -> Callable[[], Any]:
    """Import ``MODULE:FACTORY`` and return the factory (not yet called).

    ``MODULE`` is a dotted module name importable from the working directory
    (``mypkg.models``) or a path to a Python file (``path/to/models.py``); ``FACTORY``
    is a callable in it (dots allowed: ``Class.build``).

    Raises:
        FactoryError: one line naming what was wrong.
    """
    if not isinstance(spec, str) or spec.count(":") < 1:
        raise FactoryError(f"expected MODULE:FACTORY (e.g. mymodels:make_net), got {spec!r}")
    mod_part, _, attr = spec.rpartition(":")
    if not mod_part or not attr:
        raise FactoryError(f"expected MODULE:FACTORY (e.g. mymodels:make_net), got {spec!r}")
    if mod_part.endswith(".py") or "/" in mod_part or "\\" in mod_part:
        path = Path(mod_part)
        if not path.is_file():
            raise FactoryError(f"cannot import {mod_part!r}: no such file")
        name = f"_elulab_audit_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise FactoryError(f"cannot import {mod_part!r}: not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(name, None)
            raise FactoryError(
                f"importing {mod_part!r} failed: {type(e).__name__}: {_first_line(e)}"
            ) from None
    else:
        cwd = str(Path.cwd())
        added = cwd not in sys.path
        if added:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(mod_part)
        except ModuleNotFoundError as e:
            raise FactoryError(f"cannot import module {mod_part!r}: {_first_line(e)}") from None
        except Exception as e:
            raise FactoryError(
                f"importing {mod_part!r} failed: {type(e).__name__}: {_first_line(e)}"
            ) from None
        finally:
            if added:
                sys.path.remove(cwd)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"{mod_part!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"{spec} is a {type(obj).__name__}, not a callable factory")
    return obj


def build_model(spec: str) -> nn.Module:
    """Import and call the zero-argument factory ``MODULE:FACTORY``; check it gives a module.

    Raises:
        FactoryError: one line naming what was wrong.
    """
    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as e:
        raise FactoryError(
            f"calling {spec}() failed: {type(e).__name__}: {_first_line(e)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise FactoryError(
            f"{spec}() returned an object of type {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
.elulab-audit{font-family:system-ui,sans-serif;max-width:70em}
.elulab-audit table{border-collapse:collapse}
.elulab-audit th,.elulab-audit td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}
.elulab-audit td.l,.elulab-audit th.l{text-align:left}
.elulab-audit .bar{display:inline-block;height:.7em;background:#c0392b;vertical-align:middle}
.elulab-audit .sat{background:#e67e22}
"""


def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def html_section(result: AuditResult, title: str = "Activation audit") -> str:
    """The audit as one ``<section class="elulab-audit">`` (every text HTML-escaped)."""
    e = html.escape
    rows = []
    for s in result.layers:
        rows.append(
            "<tr>"
            f'<td class="l">{e(s.name)}</td><td class="l">{e(s.kind)}</td><td>{s.units}</td>'
            f'<td>{s.dead_fraction:.3f} <span class="bar" style="width:{4 * s.dead_fraction:.2f}em"></span></td>'
            f'<td>{s.saturated_fraction:.3f} <span class="bar sat" style="width:{4 * s.saturated_fraction:.2f}em"></span></td>'
            f"<td>{_fmt(s.mean)}</td><td>{_fmt(s.var)}</td><td>{_fmt(s.grad_norm)}</td>"
            f"<td>{_fmt(s.grad_gain, '.3g')}</td></tr>"
        )
    meta = "".join(f"<li>{e(str(k))}: {e(str(v))}</li>" for k, v in sorted(result.meta.items()))
    acc = "" if result.eval_accuracy is None else f", accuracy {result.eval_accuracy:.4f}"
    return (
        f'<section class="elulab-audit"><h2>{e(title)}</h2>'
        f"<p>{result.steps} training steps; audit pass: loss {_fmt(result.eval_loss)}{e(acc)}. "
        "A unit is <b>dead</b> when the loss gradient at its pre-activation is exactly zero "
        "for every sample of the audit pass; <b>saturated</b> when it is not dead but "
        f"|f'(x)| &lt; {e(_fmt(result.meta.get('eps')))} for every sample (for ELU: the "
        "output sits within eps of -alpha). Conv units are channels. grad gain = this "
        "layer's gradient norm over the next layer's.</p>"
        f"<ul>{meta}</ul>"
        '<table><thead><tr><th class="l">layer</th><th class="l">kind</th><th>units</th>'
        "<th>dead</th><th>saturated</th><th>mean</th><th>var</th><th>grad norm</th>"
        f"<th>grad gain</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def render_html(result: AuditResult, title: str = "Activation audit") -> str:
    """A standalone HTML page holding :func:`html_section` (no external resources)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{html_section(result, title)}</body></html>\n"
    )
