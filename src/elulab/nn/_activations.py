r"""ELU-family activation modules and the activation registry.

:class:`ELU`, :class:`CELU` and :class:`SELU` subclass their :mod:`torch.nn`
counterparts (so ``isinstance(m, torch.nn.ELU)`` holds and torch tooling recognises
them), validate ``alpha`` and run :mod:`elulab.functional`. :func:`get_activation` builds
any activation of :data:`ACTIVATIONS` from a name, a class, an instance or ``None``.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from elulab.functional import (
    ACTIVATION_NAMES,
    SELU_ALPHA,
    SELU_LAMBDA,
    activation_spec,
    celu,
    check_alpha,
    check_width,
    elu,
    selu,
    smooth_elu,
)

__all__ = ["ACTIVATIONS", "CELU", "ELU", "SELU", "Sin", "SmoothELU", "get_activation"]

#: Names accepted by :func:`get_activation` (the table in :mod:`elulab.functional`).
ACTIVATIONS: tuple[str, ...] = ACTIVATION_NAMES


def _check_inplace(inplace: bool) -> bool:
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be a bool, got {type(inplace).__name__} {inplace!r}")
    return inplace


class ELU(nn.ELU):
    r"""Exponential linear unit, elementwise.

    .. math:: \mathrm{ELU}(x) = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \le 0
        \end{cases}

    Identity for positive inputs, a smooth saturation to :math:`-\alpha` for negative
    ones, which pushes mean activations towards zero. Continuously differentiable only for
    :math:`\alpha = 1` (:math:`\mathrm{ELU}'(0^-) = \alpha`, :math:`\mathrm{ELU}'(0^+) = 1`);
    see :class:`CELU` for a :math:`C^1` version for every :math:`\alpha`. Values and
    gradients are those of :class:`torch.nn.ELU`; the derivatives in closed form are
    :func:`elulab.functional.elu_derivative`, the inverse
    :func:`elulab.functional.elu_inverse`.

    References:
        | Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
        | (Clevert, Unterthiner and Hochreiter, 2015)
        | https://arxiv.org/abs/1511.07289

    Arguments:
        alpha: the negative saturation value, :math:`\alpha > 0` (default 1).
        inplace: overwrite the input with the result (default ``False``).

    Shape:
        Input :math:`(*)`, any number of dimensions; output :math:`(*)`, the same shape.

    Example:
        >>> m = ELU(alpha=0.5)
        >>> m
        ELU(alpha=0.5)
        >>> m(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([-0.4323,  0.0000,  3.0000])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(alpha=check_alpha(alpha), inplace=_check_inplace(inplace))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(nn.CELU):
    r"""Continuously differentiable exponential linear unit, elementwise.

    .. math:: \mathrm{CELU}(x) = \max(0, x) + \min\big(0, \alpha (e^{x/\alpha} - 1)\big)

    Its derivative is 1 at :math:`0` from both sides for every :math:`\alpha`, and
    :math:`\mathrm{CELU}(x; \alpha) = \alpha \, \mathrm{ELU}(x/\alpha; 1)`. Values are
    bitwise those of :class:`torch.nn.CELU`; the float64 gradient is exact, where
    torch's rounds :math:`1/\alpha` to float32 (see :func:`elulab.functional.celu`).

    References:
        | Continuously Differentiable Exponential Linear Units (Barron, 2017)
        | https://arxiv.org/abs/1704.07483

    Arguments:
        alpha: the negative saturation value and inverse input scale, :math:`\alpha > 0`
            (default 1).
        inplace: overwrite the input with the result (default ``False``).

    Shape:
        Input :math:`(*)`, any number of dimensions; output :math:`(*)`, the same shape.

    Example:
        >>> m = CELU(alpha=2.0)
        >>> m
        CELU(alpha=2.0)
        >>> m(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([-1.2642,  0.0000,  3.0000])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(alpha=check_alpha(alpha), inplace=_check_inplace(inplace))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(nn.SELU):
    r"""Scaled exponential linear unit, elementwise.

    .. math:: \mathrm{SELU}(x) = \lambda \begin{cases} x & x > 0 \\
        \alpha_{01} (e^x - 1) & x \le 0 \end{cases}

    with :math:`\lambda = 1.0507009873554804934\ldots` and
    :math:`\alpha_{01} = 1.6732632423543772848\ldots`
    (:data:`elulab.functional.SELU_LAMBDA`, :data:`elulab.functional.SELU_ALPHA`), the
    constants for which zero mean and unit variance is a stable fixed point of the
    layer-to-layer map of mean and variance.

    Warning:
        Self-normalisation needs LeCun-normal weights (standard deviation
        :math:`1/\sqrt{\text{fan\_in}}`): with ``torch.nn.init.kaiming_normal_`` pass
        ``nonlinearity='linear'``, not ``'selu'`` (whose gain 3/4 is meant for other
        uses). Use alpha-dropout (``torch.nn.AlphaDropout``), not standard dropout.

    References:
        | Self-Normalizing Neural Networks
        | (Klambauer, Unterthiner, Mayr and Hochreiter, 2017)
        | https://arxiv.org/abs/1706.02515

    Arguments:
        inplace: overwrite the input with the result (default ``False``).

    Shape:
        Input :math:`(*)`, any number of dimensions; output :math:`(*)`, the same shape.

    Example:
        >>> m = SELU()
        >>> m
        SELU()
        >>> m(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([-1.5202,  0.0000,  3.1521])
    """

    #: :math:`\lambda` and :math:`\alpha_{01}`, for reference.
    scale: float = SELU_LAMBDA
    alpha: float = SELU_ALPHA

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace=_check_inplace(inplace))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return selu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sin(nn.Module):
    r"""Sine activation, elementwise: :math:`\mathrm{Sin}(x) = \sin(x)`.

    References:
        | Implicit Neural Representations with Periodic Activation Functions
        | (Sitzmann, Martel, Bergman, Lindell and Wetzstein, 2020)
        | https://arxiv.org/abs/2006.09661

    Shape:
        Input :math:`(*)`; output :math:`(*)`, the same shape.

    Example:
        >>> Sin()(torch.tensor([0.0, 1.5707963267948966]))
        tensor([0., 1.])
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return torch.sin(input)


class SmoothELU(nn.Module):
    r"""ELU (:math:`\alpha = 1`) smoothed at 0: ELU convolved with a narrow Gaussian.

    .. math:: f_s(x) = E\,\mathrm{ELU}(x + sZ) = x\,\Phi(x/s) + s\,\varphi(x/s)
        + e^{x + s^2/2}\,\Phi(-x/s - s) - \Phi(-x/s), \quad Z \sim \mathcal{N}(0, 1),

    .. math:: f_s'(x) = \Phi(x/s) + e^{x + s^2/2}\,\Phi(-x/s - s), \qquad
        f_s''(x) = e^{x + s^2/2}\,\Phi(-x/s - s).

    A control for smoothness: ELU's shape, but :math:`C^\infty` (ELU with
    :math:`\alpha = 1` is only :math:`C^1`: its :math:`f''` jumps from 1 to 0 at 0;
    here :math:`f_s''(0) = e^{s^2/2}\Phi(-s)` and :math:`f_s''` falls from 1 to 0 over a
    few :math:`s`). Since ELU is convex, :math:`f_s \ge \mathrm{ELU}`; for the default
    :math:`s = 0.25`, :math:`\max_x |f_s - \mathrm{ELU}| = 0.0221` (at
    :math:`x \approx -0.24`), :math:`f_s(0) = 0.0138`, and
    :math:`E[f_s(z) - \mathrm{ELU}(z)] = 0.0081` for :math:`z \sim \mathcal{N}(0, 1)`
    (GELU differs from ELU by up to 1 and by 0.121 on average). In general
    :math:`0 \le f_s - \mathrm{ELU} \le s^2/2` (Taylor, :math:`0 \le \mathrm{ELU}'' \le 1`).
    Not CELU: CELU with :math:`\alpha = 1` *is* ELU.

    References:
        | Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
        | (Clevert, Unterthiner and Hochreiter, 2015), https://arxiv.org/abs/1511.07289

    Arguments:
        width: the Gaussian's standard deviation, :math:`0 < s \le 1` (default 0.25).

    Shape:
        Input :math:`(*)`; output :math:`(*)`, the same shape.

    Example:
        >>> SmoothELU()
        SmoothELU(width=0.25)
        >>> SmoothELU(width=0.1)(torch.tensor([-2.0, 0.0, 2.0]))
        tensor([-0.8640,  0.0024,  2.0000])
    """

    def __init__(self, width: float = 0.25) -> None:
        super().__init__()
        self.width = check_width(width)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return smooth_elu(input, self.width)

    def extra_repr(self) -> str:
        return f"width={self.width}"


def _module_class(class_name: str) -> type[nn.Module]:
    """Resolve a class name of the table: elulab's own modules first, then torch.nn."""
    cls = globals().get(class_name)
    if cls is None:
        cls = getattr(nn, class_name)
    return cls


def get_activation(
    name_or_module: str | type[nn.Module] | nn.Module | None, **kwargs: object
) -> nn.Module:
    """Build an activation module from a name, a module class, an instance or ``None``.

    - a string of :data:`ACTIVATIONS`, case-insensitive, ``-`` or ``_``
      (``"Leaky-ReLU"``): the registered class called with ``kwargs``
      (``"elu"``, ``"celu"``, ``"selu"``, ``"sin"`` give elulab's modules, the others
      torch's);
    - a subclass of :class:`torch.nn.Module`: called with ``kwargs``;
    - an :class:`torch.nn.Module` instance: returned as is (``kwargs`` must be empty);
    - ``None``: :class:`torch.nn.Identity` (``kwargs`` must be empty).

    Arguments:
        name_or_module: what to build.
        kwargs: constructor arguments, e.g. ``alpha=0.5`` for ``"elu"``.

    Raises:
        ValueError: for an unknown name (the message lists the allowed ones) or a bad
            parameter value (e.g. ``alpha <= 0``).
        TypeError: for anything else, or keyword arguments the class does not accept.

    Example:
        >>> get_activation("ELU", alpha=0.5)
        ELU(alpha=0.5)
        >>> get_activation(None)
        Identity()
    """
    if name_or_module is None or isinstance(name_or_module, nn.Module):
        if kwargs:
            raise TypeError(
                f"get_activation: keyword arguments {sorted(kwargs)} cannot be applied to "
                f"{'None' if name_or_module is None else 'a module instance'}; pass a name "
                "or a class instead"
            )
        return nn.Identity() if name_or_module is None else name_or_module
    if isinstance(name_or_module, str):
        cls = _module_class(activation_spec(name_or_module).module)
    elif isinstance(name_or_module, type) and issubclass(name_or_module, nn.Module):
        cls = name_or_module
    else:
        raise TypeError(
            "get_activation: expected a name (one of "
            f"{', '.join(ACTIVATIONS)}), an nn.Module class or instance, or None; got "
            f"{type(name_or_module).__name__} {name_or_module!r}"
        )
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as error:
        raise TypeError(
            f"get_activation({name_or_module!r}): {cls.__name__} does not accept the "
            f"keyword arguments {kwargs}: {error}"
        ) from error
    return cls(**kwargs)
