r"""Per-sample gradient norms (Opacus's grad samplers) and a clipping norm from them.

For a loss that is a mean over samples, :math:`L = \frac1B \sum_i \ell_i`, the
per-sample gradient is :math:`g_i = \nabla_\theta \ell_i`; DP-SGD clips each to norm
``C``. :func:`per_sample_grad_norms` gives :math:`\lVert g_i \rVert` in total and per
layer (module), :math:`\lVert g_i \rVert^2 = \sum_{\text{layers}} \lVert g_{i,l} \rVert^2`,
from Opacus: ghost norms (``nn.Linear``: :math:`\lVert a_i^\top b_i \rVert_F^2` from the
layer's input ``a_i`` and output gradient ``b_i``, never forming :math:`g_i`), per-sample
gradients from Opacus's samplers (``"hooks"``) or from functorch (``"functorch"``, and
the fallback for custom modules). :func:`suggest_clip` is a quantile of the totals.

References:
    Opacus: User-Friendly Differential Privacy Library in PyTorch (Yousefpour et al.,
    2021), arXiv:2109.12298.

    Differentially Private Learning with Adaptive Clipping (Andrew, Thakkar, McMahan,
    Ramaswamy, 2021), NeurIPS, arXiv:1905.03871.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

__all__ = ["GradNorms", "per_sample_grad_norms", "suggest_clip"]


@dataclass
class GradNorms:
    """Per-sample gradient norms, one value per sample in loader order.

    Args:
        total: ``(N,)`` the norm of the whole gradient.
        layers: ``{module name: (N,)}`` the norm of each module's own parameters.
    """

    total: np.ndarray
    layers: dict[str, np.ndarray]

    def quantiles(self, qs: Iterable[float] = (0.1, 0.5, 0.9)) -> dict[str, list[float]]:
        """``{"total" | module: [quantile of its norms for each q]}``."""
        out = {"total": [float(v) for v in np.quantile(self.total, list(qs))]}
        return out | {
            k: [float(v) for v in np.quantile(n, list(qs))] for k, n in self.layers.items()
        }


def per_sample_grad_norms(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    loader: Iterable[Any],
    *,
    grad_sample_mode: Literal["ghost", "hooks", "functorch"] = "ghost",
) -> GradNorms:
    """The per-sample gradient norms of ``model`` under ``loss_fn`` over ``loader``.

    The model is wrapped by Opacus (``GradSampleModuleFastGradientClipping`` for
    ``"ghost"``, ``GradSampleModule`` otherwise) for one backward per batch, then
    unwrapped; its parameters, ``.grad`` and train/eval mode are left as they were.

    Args:
        model: a module Opacus accepts (no BatchNorm: a sample's gradient must not
            depend on the others in its batch).
        loss_fn: ``loss_fn(model, batch)``: the *mean* of the per-sample losses.
        loader: any iterable of batches ``loss_fn`` accepts (the leading dimension of
            the model's input is the sample).
        grad_sample_mode: ``"ghost"``, ``"hooks"`` or ``"functorch"`` (same numbers).

    Returns:
        A :class:`GradNorms`.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 1, bias=False))
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        >>> X = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
        >>> def half_sq(m, xb): return 0.5 * (m(xb) ** 2).mean()  # grad_i = (w.x_i) x_i
        >>> per_sample_grad_norms(net, half_sq, [X]).total.round(4).tolist()
        [2.2361, 9.0]
    """
    from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
    from opacus.utils.module_utils import trainable_parameters

    from ._private import GRAD_SAMPLE_MODES, check_model, expected_warnings

    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(
            f"grad_sample_mode must be one of {', '.join(GRAD_SAMPLE_MODES)}, got "
            f"{grad_sample_mode!r}"
        )
    was_training = model.training
    model.train()
    check_model(model)
    names = [name for name, _ in trainable_parameters(model)]
    params = [p for _, p in trainable_parameters(model)]
    saved = [p.grad for p in params]
    owner = [name.rsplit(".", 1)[0] if "." in name else "" for name in names]
    per_param: list[list[torch.Tensor]] = [[] for _ in params]
    with expected_warnings():
        if grad_sample_mode == "ghost":
            gsm = GradSampleModuleFastGradientClipping(
                model, batch_first=True, loss_reduction="mean", max_grad_norm=1.0
            )
        else:
            force = grad_sample_mode == "functorch"
            gsm = GradSampleModule(
                model, batch_first=True, loss_reduction="mean", force_functorch=force
            )
        try:
            for batch in loader:
                gsm.zero_grad(set_to_none=True)
                loss_fn(gsm, batch).backward()
                for k, p in enumerate(params):
                    if grad_sample_mode == "ghost":
                        per_param[k].append(p._norm_sample.detach().clone())
                    else:
                        g = p.grad_sample.detach()
                        per_param[k].append(g.reshape(len(g), -1).norm(dim=1))
        finally:
            gsm.to_standard_module()
            for p, g in zip(params, saved, strict=True):
                p.grad = g
            model.train(was_training)
    sq = {m: 0.0 for m in dict.fromkeys(owner)}
    for m, parts in zip(owner, per_param, strict=True):
        sq[m] = sq[m] + torch.cat(parts).double() ** 2
    layers = {m: v.sqrt().numpy() for m, v in sq.items()}
    total = np.sqrt(sum(v**2 for v in layers.values()))
    return GradNorms(np.asarray(total, dtype=np.float64), layers)


def suggest_clip(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    loader: Iterable[Any],
    *,
    quantile: float = 0.5,
    grad_sample_mode: Literal["ghost", "hooks", "functorch"] = "ghost",
) -> float:
    r"""A clipping norm C: the ``quantile`` of the per-sample gradient norms on ``loader``.

    ``loader`` must be a **public** sample (data disjoint from the private training
    set, or a public proxy of it): then C costs no privacy. Computed on the private
    training data, this number is *not* differentially private (a sample's norm moves
    the quantile) and must not be used as is. To estimate it privately, use Andrew et
    al. (2021)'s adaptive clipping, which Opacus implements (``clipping="adaptive"`` in
    ``make_private``): each step releases a noisy fraction of unclipped samples
    :math:`\tilde b = (\sum_i 1[\lVert g_i\rVert \le C] + \mathcal N(0, \sigma_b^2))/B`
    and moves :math:`C \leftarrow C e^{-\eta_C (\tilde b - \gamma)}` towards the
    quantile :math:`\gamma`; for the same total privacy the gradient's noise multiplier
    rises from :math:`\sigma` to :math:`(\sigma^{-2} - (2\sigma_b)^{-2})^{-1/2}` (their
    Theorem 1; e.g. sigma 1.0, sigma_b = B/20 with B = 256: +0.2%, a small price).

    Args:
        model, loss_fn, loader, grad_sample_mode: as :func:`per_sample_grad_norms`.
        quantile: in (0, 1]; 0.5 (the median) is Andrew et al.'s default target.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 1, bias=False))
        >>> X = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        >>> round(suggest_clip(net, lambda m, xb: 0.5 * (m(xb) ** 2).mean(), [X]), 4)
        2.2361
    """
    if not 0.0 < float(quantile) <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    norms = per_sample_grad_norms(model, loss_fn, loader, grad_sample_mode=grad_sample_mode)
    return float(np.quantile(norms.total, float(quantile)))
