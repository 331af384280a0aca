"""The input-gradient penalty (double backpropagation) as a training step, and a probe.

* :func:`double_backprop_step`: the gradient of :math:`J = L + \\lambda R`,
  :math:`R = \\frac1B \\sum_i \\lVert \\nabla_{x_i} \\ell_i \\rVert^2` (Drucker & LeCun 1992),
  with both parts' norms logged; a ``loss_fn`` for :func:`elulab.train.fit`.
* :func:`input_gradient_probe`: clean accuracy, mean input-gradient norm and FGSM
  accuracy (Goodfellow et al. 2014) of a classifier on a batch.

References:
    Improving generalization performance using double backpropagation (Drucker,
    LeCun, 1992), IEEE Trans. Neural Networks 3(6).

    Explaining and Harnessing Adversarial Examples (Goodfellow, Shlens, Szegedy, 2014),
    arXiv:1412.6572.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["double_backprop_step", "input_gradient_probe"]


def double_backprop_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """One double-backprop gradient: sets ``p.grad = grad L + lam * grad R``.

    .. math:: L = \\frac1B \\sum_i \\ell_i, \\qquad
        R = \\frac1B \\sum_i \\lVert \\nabla_{x_i} \\ell_i \\rVert^2, \\qquad
        s = \\frac{\\lambda \\lVert \\nabla_\\theta R \\rVert}
        {\\lVert \\nabla_\\theta L \\rVert + \\lambda \\lVert \\nabla_\\theta R \\rVert},

    with :math:`\\ell_i` the cross-entropy of sample i and :math:`\\nabla_x \\ell` taken
    with ``create_graph=True``. ``grad L`` and ``grad R`` come from two
    ``torch.autograd.grad`` calls, so their norms can be read (one ``backward`` of ``J``
    would sum them unseen); use it as the ``loss_fn`` of :func:`elulab.train.fit` with
    ``backward=False``.

    Args:
        model: a classifier giving logits.
        x, y: a batch of inputs and integer labels.
        lam: the penalty weight :math:`\\lambda \\ge 0`.

    Returns:
        ``(L, logs)``: the task loss (detached) and the numbers ``penalty`` (R),
        ``grad_task``, ``grad_penalty`` (norms over all parameters), ``share`` (s),
        ``ratio`` (``grad_penalty / grad_task``).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        >>> loss, logs = double_backprop_step(net, torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1]), 0.5)
        >>> 0.0 < logs["share"] < 1.0, net[0].weight.grad is not None
        (True, True)
    """
    params = [p for p in model.parameters() if p.requires_grad]
    x = x.detach().requires_grad_(True)
    losses = nn.functional.cross_entropy(model(x), y, reduction="none")
    loss = losses.mean()
    # the sum gives each sample its own gradient d l_i / d x_i
    (gx,) = torch.autograd.grad(losses.sum(), x, create_graph=True)
    penalty = gx.pow(2).flatten(1).sum(1).mean()
    g_task = torch.autograd.grad(loss, params, retain_graph=True)
    g_pen = torch.autograd.grad(penalty, params, allow_unused=True)
    g_pen = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_pen, strict=True)]
    for p, gt, gp in zip(params, g_task, g_pen, strict=True):
        p.grad = gt + lam * gp if lam else gt.clone()
    nt, npen = (math.sqrt(sum(float(g.pow(2).sum()) for g in gs)) for gs in (g_task, g_pen))
    total = nt + lam * npen
    logs = {"penalty": float(penalty.detach()), "grad_task": nt, "grad_penalty": npen}
    logs["share"] = lam * npen / total if total > 0 else 0.0
    logs["ratio"] = npen / nt if nt > 0 else math.nan
    return loss.detach(), logs


def input_gradient_probe(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float
) -> tuple[float, float, float]:
    """Clean accuracy, mean per-sample ``|grad_x l|`` and FGSM accuracy at ``eps``.

    FGSM: :math:`x' = \\mathrm{clip}_{[0, 1]}(x + \\epsilon\\, \\mathrm{sign}\\, \\nabla_x \\ell)`
    (inputs are pixels in [0, 1]); :math:`\\lVert \\nabla_x \\ell \\rVert` is the Euclidean
    norm of each sample's cross-entropy gradient, averaged over the batch. The model is
    evaluated in ``eval`` mode and left in ``train`` mode.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(3, 2))
        >>> acc, gnorm, fgsm = input_gradient_probe(net, torch.rand(8, 3), torch.zeros(8, dtype=torch.long), 0.1)
        >>> fgsm <= acc, gnorm > 0
        (True, True)
    """
    model.eval()
    xr = x.detach().clone().requires_grad_(True)
    out = model(xr)
    losses = nn.functional.cross_entropy(out, y, reduction="none")
    (gx,) = torch.autograd.grad(losses.sum(), xr)
    clean = float((out.detach().argmax(1) == y).float().mean())
    gnorm = float(gx.flatten(1).norm(dim=1).mean())
    with torch.no_grad():
        adv = (x + eps * gx.sign()).clamp(0.0, 1.0)
        fgsm = float((model(adv).argmax(1) == y).float().mean())
    model.train()
    return clean, gnorm, fgsm
