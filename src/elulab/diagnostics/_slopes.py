"""Where an activation's slope is flat: the elementwise mask ``|f'(x)| < eps``.

A unit is *saturated* on a batch when ``|f'(x)| < eps`` at every sample (and position)
but its gradient is not exactly zero (that would make it *dead*). For the ELU family
the flat region is the negative plateau, and it is a threshold on ``x``:

* ELU: :math:`f'(x) = \\alpha e^x = f(x) + \\alpha` for :math:`x \\le 0`, so
  :math:`f'(x) < \\varepsilon \\iff x < \\log(\\varepsilon/\\alpha)`, which is the same
  as "the output is within :math:`\\varepsilon` of :math:`-\\alpha`";
* CELU: :math:`f'(x) = e^{x/\\alpha}`, flat for :math:`x < \\alpha \\log \\varepsilon`;
* SELU: :math:`f'(x) = \\lambda \\alpha e^x`, flat for :math:`x < \\log(\\varepsilon/(\\lambda\\alpha))`.

Other activations use their closed-form slope, or, for an activation module that is
not in the table, autograd on a detached copy of the input (the module must then be
elementwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KNOWN_ACTIVATIONS", "Below", "activation_table", "flat_units"]

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class Below:
    """The flat region is ``x < threshold`` (or ``x <= threshold`` when ``inclusive``).

    A unit is then flat at every sample exactly when the *largest* of its inputs is in
    the region: one max-reduction, no elementwise mask.
    """

    __slots__ = ("inclusive", "threshold")

    def __init__(self, threshold: float, inclusive: bool = False) -> None:
        self.threshold, self.inclusive = float(threshold), inclusive

    def holds(self, x: torch.Tensor) -> torch.Tensor:
        return x <= self.threshold if self.inclusive else x < self.threshold


Flat = torch.Tensor | Below
Mask = Callable[[nn.Module, torch.Tensor, float], Flat]


def _elu_like(scale: float, eps: float) -> Below:
    """``scale * exp(x) < eps`` on ``x <= 0``; the slope is ``scale * 1 >= eps`` on ``x > 0``."""
    if scale == 0.0:
        return Below(0.0, inclusive=True)
    return Below(min(0.0, math.log(eps / abs(scale))))


def _elu(m: nn.Module, x: torch.Tensor, eps: float) -> Flat:
    alpha = float(m.alpha)
    if alpha < 0.0:  # a decreasing negative branch: not the ELU family's plateau
        return _slope_mask_autograd(m, x, eps)
    return _elu_like(alpha, eps)


def _selu(m: nn.Module, x: torch.Tensor, eps: float) -> Flat:
    from ..functional import SELU_ALPHA, SELU_LAMBDA

    return _elu_like(SELU_LAMBDA * SELU_ALPHA, eps)


def _celu(m: nn.Module, x: torch.Tensor, eps: float) -> Flat:
    alpha = float(m.alpha)
    if alpha <= 0.0:
        return _slope_mask_autograd(m, x, eps)
    return Below(min(0.0, alpha * math.log(eps)))


def _relu(m: nn.Module, x: torch.Tensor, eps: float) -> Flat:
    return Below(0.0, inclusive=True)


def _relu6(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    return (x <= 0) | (x >= 6)


def _hardtanh(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    return (x <= float(m.min_val)) | (x >= float(m.max_val))


def _leaky(m: nn.Module, x: torch.Tensor, eps: float) -> Flat:
    if abs(float(m.negative_slope)) < eps:
        return Below(0.0)
    return Below(-math.inf)


def _gelu(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    if getattr(m, "approximate", "none") == "tanh":
        u = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = torch.tanh(u)
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
    else:
        slope = 0.5 * (1 + torch.erf(x / _SQRT_2)) + x * torch.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return slope.abs() < eps


def _silu(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    s = torch.sigmoid(x)
    return (s * (1 + x * (1 - s))).abs() < eps


def _mish(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    t = torch.tanh(F.softplus(x))
    return (t + x * (1 - t * t) * torch.sigmoid(x)).abs() < eps


def _tanh(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    t = torch.tanh(x)
    return (1 - t * t) < eps


def _sigmoid(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s) < eps


def _softplus(m: nn.Module, x: torch.Tensor, eps: float) -> Flat:
    beta = float(m.beta)
    if beta <= 0.0:
        return _slope_mask_autograd(m, x, eps)
    # slope sigmoid(beta x) < eps  <=>  x < logit(eps) / beta  (increasing in x)
    return Below(math.log(eps / (1.0 - eps)) / beta)


def _slope_mask_autograd(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    """``|f'(x)| < eps`` by autograd; valid for elementwise modules only."""
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        y = m(leaf.clone())  # a non-leaf copy: in-place modules may overwrite it
        if not isinstance(y, torch.Tensor) or y.shape != leaf.shape:
            raise TypeError(
                f"activation module {type(m).__name__} is not elementwise (input shape "
                f"{tuple(leaf.shape)}, output {getattr(y, 'shape', type(y).__name__)}); "
                "only elementwise activations can be audited"
            )
        (slope,) = torch.autograd.grad(y, leaf, torch.ones_like(y))
    return slope.abs() < eps


# Activation classes the diagnostics recognise, with their flat-region mask. Subclasses
# match too (the first matching entry wins). ``None``: slope by autograd.
KNOWN_ACTIVATIONS: dict[type[nn.Module], Mask | None] = {
    nn.ReLU: _relu,
    nn.ReLU6: _relu6,
    nn.LeakyReLU: _leaky,
    nn.ELU: _elu,
    nn.CELU: _celu,
    nn.SELU: _selu,
    nn.GELU: _gelu,
    nn.SiLU: _silu,
    nn.Mish: _mish,
    nn.Tanh: _tanh,
    nn.Sigmoid: _sigmoid,
    nn.Softplus: _softplus,
    nn.Hardtanh: _hardtanh,
    nn.PReLU: None,
    nn.Hardswish: None,
    nn.Hardsigmoid: None,
    nn.Softsign: None,
    nn.LogSigmoid: None,
    nn.Tanhshrink: None,
}


def _elulab_activations() -> dict[type[nn.Module], Mask | None]:
    """elulab's own ELU-family modules (by their ``alpha``), when the package has them."""
    try:
        from .. import nn as enn
    except ImportError:  # pragma: no cover - elulab.nn is part of the package
        return {}
    out: dict[type[nn.Module], Mask | None] = {}
    for name, mask in (("ELU", _elu), ("CELU", _celu), ("SELU", _selu)):
        cls = getattr(enn, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls not in KNOWN_ACTIVATIONS:
            out[cls] = mask if name == "SELU" else _with_alpha(mask)
    return out


def _with_alpha(mask: Mask) -> Mask:
    """Use the closed form when the module exposes a scalar ``alpha``, else autograd."""

    def checked(m: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
        alpha = getattr(m, "alpha", None)
        if isinstance(alpha, (int, float)) or (
            isinstance(alpha, torch.Tensor) and alpha.numel() == 1
        ):
            return mask(m, x, eps)
        return _slope_mask_autograd(m, x, eps)

    return checked


def activation_table(extra: tuple[type[nn.Module], ...] = ()) -> dict[type[nn.Module], Mask | None]:
    """The recognised activation classes: elulab's, torch's, then ``extra`` (by autograd)."""
    table: dict[type[nn.Module], Mask | None] = dict(_elulab_activations())
    table.update(KNOWN_ACTIVATIONS)
    for cls in extra:
        table.setdefault(cls, None)
    return table


def flat_units(
    module: nn.Module, x: torch.Tensor, eps: float, mask: Mask | None, dims: tuple[int, ...]
) -> torch.Tensor:
    """Per unit: ``|f'(x)| < eps`` at every sample and position (reducing over ``dims``)."""
    with torch.no_grad():
        flat = (
            _slope_mask_autograd(module, x, eps) if mask is None else mask(module, x.detach(), eps)
        )
        if isinstance(flat, Below):
            if flat.threshold == -math.inf:
                shape = [s for i, s in enumerate(x.shape) if i not in dims]
                return torch.zeros(shape, dtype=torch.bool, device=x.device)
            top = x.detach().amax(dim=dims) if dims else x.detach()
            return flat.holds(top)
        return ~((~flat).any(dim=dims)) if dims else flat.clone()
