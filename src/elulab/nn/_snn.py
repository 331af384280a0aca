r"""Self-normalising networks: AlphaDropout for any fixed point, and the SNN MLP builder.

A self-normalising network (SNN) is a stack of ``Linear -> SELU -> AlphaDropout``
layers whose weights are LeCun-normal (:func:`elulab.nn.lecun_normal_`). Its
activations are pulled to the fixed point :math:`(\mu, \nu) = (0, 1)` of the moment
map (:func:`elulab.theory.selu.moment_map`) without any normalisation layer.

AlphaDropout keeps that fixed point: a dropped unit is set to SELU's negative
saturation :math:`\alpha' = -\lambda\alpha` (not to 0, which is not SELU's "off"
value), then an affine map :math:`a x + b` restores mean :math:`\mu` and variance
:math:`\nu`. With keep probability :math:`q = 1 - p`:

.. math::
    a = \sqrt{\frac{\nu}{q\left((1-q)(\alpha'-\mu)^2 + \nu\right)}}, \qquad
    b = \mu - a\left(q\mu + (1-q)\alpha'\right).

``torch.nn.AlphaDropout`` hard-codes :math:`\mu = 0, \nu = 1` and the standard
:math:`\lambda, \alpha`; :class:`AlphaDropout` here takes any fixed point and any SELU
parameters (the constants come from :func:`elulab.theory.selu.alpha_dropout_parameters`).

References:
    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._activations import SELU
from ._init import lecun_normal_

__all__ = ["SNN", "AlphaDropout", "ScaledELU"]


def _check_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _selu_parameters(mean: float, var: float) -> tuple[float, float]:
    """``(lam, alpha)`` whose moment map has its fixed point at ``(mean, var)``."""
    from ..theory.selu import solve_selu_parameters

    p = solve_selu_parameters(mean=mean, var=var)
    return float(p.lam), float(p.alpha)


class ScaledELU(nn.Module):
    r"""SELU with any parameters: :math:`\lambda x` for :math:`x > 0`, :math:`\lambda\alpha(e^x-1)` otherwise.

    With the default :math:`\lambda = 1.0507\ldots, \alpha = 1.6733\ldots` it equals
    ``torch.nn.SELU``. Other values give the fixed point a custom (mean, variance);
    obtain them from :func:`elulab.theory.selu.solve_selu_parameters`.

    References:
        Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter,
        2017), arXiv:1706.02515.

    Arguments:
        lam: the scale :math:`\lambda > 0`.
        alpha: the saturation :math:`\alpha > 0`.

    Example:
        >>> ScaledELU()(torch.tensor([-1.0, 2.0]))
        tensor([-1.1113,  2.1014])
    """

    def __init__(
        self, lam: float = 1.0507009873554804934, alpha: float = 1.6732632423543772848
    ) -> None:
        super().__init__()
        self.lam = _check_number(lam, "lam")
        self.alpha = _check_number(alpha, "alpha")
        if self.lam <= 0 or self.alpha <= 0:
            raise ValueError(f"lam and alpha must be positive, got lam={lam!r}, alpha={alpha!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lam * nn.functional.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"lam={self.lam:.6g}, alpha={self.alpha:.6g}"


class AlphaDropout(nn.Module):
    r"""Dropout that keeps a SELU network's fixed point (mean :math:`\mu`, variance :math:`\nu`).

    In training, each unit is kept with probability :math:`q = 1-p`; a dropped unit is
    set to :math:`\alpha' = -\lambda\alpha`; then :math:`y = a x + b` with

    .. math::
        a = \sqrt{\frac{\nu}{q\left((1-q)(\alpha'-\mu)^2 + \nu\right)}}, \qquad
        b = \mu - a\left(q\mu + (1-q)\alpha'\right),

    so that inputs with mean :math:`\mu` and variance :math:`\nu` leave with the same
    mean and variance. In eval mode it is the identity. Unlike
    ``torch.nn.AlphaDropout`` (which assumes :math:`\mu=0, \nu=1` and the standard
    SELU), it accepts any fixed point and SELU parameters.

    .. warning::
        Plain ``nn.Dropout`` sets units to 0 and rescales by :math:`1/q`: it raises the
        variance and shifts the mean of SELU activations, and the network leaves its
        fixed point. Use AlphaDropout (at small rates, 0.05 to 0.1) in SNNs.

    References:
        Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter,
        2017), arXiv:1706.02515.

    Arguments:
        p: the drop probability, in ``[0, 1)``.
        mean, var: the fixed point :math:`(\mu, \nu)`, ``var > 0``.
        lam, alpha: SELU's parameters. If both are None they are solved so that
            :math:`(\mu, \nu)` is the fixed point (the standard constants for (0, 1));
            give both or neither.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> drop = AlphaDropout(0.1)
        >>> y = drop(torch.randn(200_000))
        >>> abs(y.mean().item()) < 0.01, abs(y.var().item() - 1) < 0.02
        (True, True)
    """

    def __init__(
        self,
        p: float = 0.05,
        *,
        mean: float = 0.0,
        var: float = 1.0,
        lam: float | None = None,
        alpha: float | None = None,
    ) -> None:
        super().__init__()
        p = _check_number(p, "p")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}")
        mean = _check_number(mean, "mean")
        var = _check_number(var, "var")
        if var <= 0:
            raise ValueError(f"var must be positive, got {var!r}")
        if (lam is None) != (alpha is None):
            raise ValueError("give both lam and alpha, or neither (they are then solved)")
        if lam is None or alpha is None:
            lam, alpha = _selu_parameters(mean, var)
        self.lam = _check_number(lam, "lam")
        self.alpha = _check_number(alpha, "alpha")
        self.p, self.mean, self.var = p, mean, var
        from ..theory.selu import alpha_dropout_parameters

        params = alpha_dropout_parameters(p, mean=mean, var=var, lam=self.lam, alpha=self.alpha)
        self.a, self.b, self.alpha_prime = (
            float(params.a),
            float(params.b),
            float(params.alpha_prime),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        fill = torch.full((), self.alpha_prime, dtype=x.dtype, device=x.device)
        return torch.where(keep, x, fill) * self.a + self.b

    def extra_repr(self) -> str:
        return (
            f"p={self.p}, mean={self.mean:g}, var={self.var:g}, "
            f"a={self.a:.6g}, b={self.b:.6g}, alpha_prime={self.alpha_prime:.6g}"
        )


class SNN(nn.Sequential):
    r"""A self-normalising MLP: ``depth`` x (Linear -> SELU -> AlphaDropout), then Linear.

    Each hidden layer is one fused block (:class:`elulab.nn.FusedLinearELU`, holding
    ``linear``, ``activation`` and ``dropout``) unless ``fused=False``.

    .. math::
        h_{l+1} = \mathrm{AlphaDropout}\big(\mathrm{SELU}(W_l h_l + b_l)\big),
        \quad W_l \sim \mathcal N(0, 1/n_l), \; b_l = 0

    The initialisation is what makes it self-normalising, and the builder does it:
    LeCun-normal weights (variance :math:`1/n`), zero biases. For a custom fixed
    point with ``mean != 0`` each weight row is also centred, so that its sum
    :math:`\omega` is exactly 0 (with random rows :math:`\omega \sim \mathcal N(0,1)`
    and the pre-activation mean :math:`\mu\omega` would differ from unit to unit).

    .. warning::
        If you re-initialise an SNN, do not use
        ``nn.init.kaiming_normal_(w, nonlinearity="selu")``: PyTorch's gain for SELU is
        3/4, giving weight variance :math:`0.5625/n` instead of :math:`1/n`; the
        activations then settle far from variance 1 (see ``elulab run
        snn_fixed_point``). Use :func:`lecun_normal_` or
        ``kaiming_normal_(w, nonlinearity="linear")``. ``nn.Linear``'s own default
        init (variance :math:`1/(3n)`) is wrong too, which is why this builder
        re-initialises every layer.

    References:
        Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter,
        2017), arXiv:1706.02515.

    Arguments:
        in_features: input size (inputs should be standardised).
        out_features: output size (e.g. the number of classes); 0 for no output layer.
        depth: the number of hidden layers, >= 1.
        width: the hidden width, >= 1.
        dropout: the AlphaDropout rate in ``[0, 1)``; 0 leaves it out.
        mean, var: the fixed point; ``(0, 1)`` gives the standard SELU constants.
        generator: an optional ``torch.Generator`` for the initial weights.
        fused: build each hidden layer as one :class:`elulab.nn.FusedLinearELU` block
            (default): the same function and the same initial weights (the same draws,
            in the same order), a fused kernel, and a backward that saves the output and
            one byte per element instead of the pre-activation (``docs/fused.md``).
            ``False`` builds the plain ``Linear, SELU, AlphaDropout`` sequence, whose
            numbers are those of earlier elulab versions bit for bit (the ``snn_uci``
            experiment asks for it, so that its published runs reproduce exactly).
        impl: the fused blocks' kernel choice (:data:`elulab.nn.IMPLS`).

    Example:
        >>> net = SNN(10, 3, depth=4, width=64, dropout=0.05,
        ...           generator=torch.Generator().manual_seed(0))
        >>> net(torch.randn(5, 10)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        depth: int = 8,
        width: int = 256,
        dropout: float = 0.0,
        mean: float = 0.0,
        var: float = 1.0,
        generator: torch.Generator | None = None,
        fused: bool = True,
        impl: str = "auto",
    ) -> None:
        for name, v, lo in (
            ("in_features", in_features, 1),
            ("out_features", out_features, 0),
            ("depth", depth, 1),
            ("width", width, 1),
        ):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an int, got {v!r}")
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        dropout = _check_number(dropout, "dropout")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        mean = _check_number(mean, "mean")
        var = _check_number(var, "var")
        if var <= 0:
            raise ValueError(f"var must be positive, got {var!r}")
        standard = mean == 0.0 and var == 1.0
        if standard:
            lam, alpha = 1.0507009873554804934, 1.6732632423543772848
        else:
            lam, alpha = _selu_parameters(mean, var)
        layers: list[nn.Module] = []
        n_in = in_features
        if not isinstance(fused, bool):
            raise TypeError(f"fused must be a bool, got {fused!r}")
        for _ in range(depth):
            act: nn.Module = SELU() if standard else ScaledELU(lam, alpha)
            drop: list[nn.Module] = []
            if dropout > 0:
                drop = [AlphaDropout(dropout, mean=mean, var=var, lam=lam, alpha=alpha)]
            if fused:
                from ._fused import FusedLinearELU

                layers.append(FusedLinearELU(n_in, width, activation=act,
                                             dropout=(drop or [None])[0], impl=impl))  # fmt: skip
            else:
                layers += [nn.Linear(n_in, width), act, *drop]
            n_in = width
        if out_features > 0:
            layers.append(nn.Linear(n_in, out_features))
        super().__init__(*layers)
        self.depth, self.width, self.dropout, self.fused = depth, width, dropout, fused
        self.fixed_point = (mean, var)
        self.lam, self.alpha = lam, alpha
        for m in self.modules():
            if isinstance(m, nn.Linear):
                lecun_normal_(m.weight, generator=generator)
                with torch.no_grad():
                    if mean != 0.0:
                        m.weight.sub_(m.weight.mean(dim=1, keepdim=True))
                    m.bias.zero_()
