r"""Flow models: learnable layers that hand out :mod:`torch.distributions` transforms.

A :class:`Flow` is an ``nn.Module`` holding a list of layers; each layer owns its
parameters and returns, on demand, a :class:`torch.distributions.Transform` bound to
their current values (the "lazy transform" pattern of zuko). ``flow()`` returns a plain
:class:`torch.distributions.TransformedDistribution`, so everything torch offers
(``log_prob``, ``sample``, ``rsample``, composition with torch's and zuko's transforms)
works, and the log-likelihood and the sampler are exact.

The generative direction goes from the base :math:`\mathcal N(0, I)` to the data:

.. math:: x = T_K \circ \dots \circ T_1(z), \qquad
    \log p(x) = \log \mathcal N(T^{-1}(x); 0, I) - \sum_k \log |\det J_{T_k}|.

:func:`make_flow` builds an ActNorm followed by blocks of [affine coupling (ELU
conditioner), LU-linear, elementwise bijection, ActNorm]; with ``coupling=False`` the
elementwise bijection is the only nonlinearity (the stacks of the ``elu_flows``
experiment). :meth:`Flow.log_prob` can give rows outside a restricted support their exact
:math:`-\infty`, and :meth:`Flow.log_prob_and_gap` how far outside they lie.

References:
    Density estimation using Real NVP (Dinh, Sohl-Dickstein, Bengio, 2016),
    arXiv:1605.08803. Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma,
    Dhariwal, 2018), arXiv:1807.03039.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.distributions import (
    AffineTransform,
    Independent,
    Normal,
    Transform,
    TransformedDistribution,
)

from ._transforms import (
    AffineCouplingTransform,
    ELUTransform,
    LeakyReLUTransform,
    LeakySoftplusTransform,
    LinearELUTransform,
    LinearTailELUTransform,
    LULinearTransform,
)

__all__ = [
    "ELEMENTWISE_KINDS",
    "ActNorm",
    "AffineCoupling",
    "Elementwise",
    "Flow",
    "FlowLayer",
    "LULinear",
    "make_flow",
]

# name -> the elementwise bijection it builds (alpha is used by the ELU kinds only)
ELEMENTWISE_KINDS: tuple[str, ...] = (
    "elu",
    "elu_tail",
    "elu_linear",
    "leaky_relu",
    "leaky_softplus",
)


class FlowLayer(nn.Module):
    """A learnable layer of a :class:`Flow`: ``transform()`` returns its current bijection."""

    def transform(self) -> Transform:
        raise NotImplementedError


class Elementwise(FlowLayer):
    r"""A parameter-free elementwise bijection, one of :data:`ELEMENTWISE_KINDS`.

    ``"elu"``: :class:`ELUTransform` (image :math:`(-\alpha, \infty)`);
    ``"elu_tail"``: :class:`LinearTailELUTransform` (knee -2); ``"elu_linear"``:
    :class:`LinearELUTransform` (:math:`\beta = 0.1`); ``"leaky_relu"``: slope 0.1;
    ``"leaky_softplus"``: slope 0.1.

    Arguments:
        kind: the name of the bijection.
        alpha: ELU's :math:`\alpha`.

    Example:
        >>> Elementwise("elu", alpha=2.0).transform()
        ELUTransform(alpha=2.0)
    """

    def __init__(self, kind: str, alpha: float = 1.0) -> None:
        super().__init__()
        if kind not in ELEMENTWISE_KINDS:
            raise ValueError(
                f"unknown elementwise kind {kind!r}; allowed: {', '.join(ELEMENTWISE_KINDS)}"
            )
        self.kind = kind
        self.alpha = float(alpha)
        self._t = self._build()

    def _build(self) -> Transform:
        if self.kind == "elu":
            return ELUTransform(self.alpha)
        if self.kind == "elu_tail":
            return LinearTailELUTransform(self.alpha, knee=-2.0)
        if self.kind == "elu_linear":
            return LinearELUTransform(self.alpha, beta=0.1)
        if self.kind == "leaky_relu":
            return LeakyReLUTransform(0.1)
        return LeakySoftplusTransform(0.1)

    def transform(self) -> Transform:
        return self._t

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, alpha={self.alpha}"


class ActNorm(FlowLayer):
    r"""A learnable per-coordinate affine map :math:`y = \mu + e^{\ell} \odot x`.

    Initialised from data by :meth:`Flow.initialize`: by default so that its inverse
    standardises the values it receives; with ``init_min`` set, so that the inverse maps
    the smallest value of each coordinate to ``init_min`` (with unit standard deviation).
    :func:`make_flow` uses ``init_min = -alpha / 2`` in front of an :class:`ELUTransform`
    so that every training point starts inside ELU's image.

    References:
        Glow (Kingma, Dhariwal, 2018), arXiv:1807.03039.

    Arguments:
        dim: the number of coordinates.
        init_min: see above.

    Example:
        >>> layer = ActNorm(2)
        >>> layer.transform()(torch.ones(1, 2))
        tensor([[1., 1.]], grad_fn=<AddBackward0>)
    """

    def __init__(self, dim: int, init_min: float | None = None) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.init_min = init_min

    @torch.no_grad()
    def initialize(self, y: torch.Tensor) -> None:
        """Set the parameters from the values ``y`` (N, D) that the inverse will see."""
        std = y.std(0).clamp(min=1e-6)
        if self.init_min is None:
            loc = y.mean(0)
        else:
            loc = y.min(0).values - self.init_min * std
        self.loc.copy_(loc)
        self.log_scale.copy_(torch.log(std))

    def transform(self) -> Transform:
        return AffineTransform(self.loc, torch.exp(self.log_scale), event_dim=1)


class LULinear(FlowLayer):
    r"""A learnable :class:`LULinearTransform` :math:`W = P L U`, identity-plus-permutation at init.

    :math:`P` is a random fixed permutation (drawn from torch's global generator),
    :math:`L` unit lower, :math:`U` upper with :math:`\mathrm{diag}\, U = e^{d}`;
    :math:`\log|\det W| = \sum_i d_i`.

    Arguments:
        dim: the number of coordinates.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> t = LULinear(3).transform()
        >>> t.log_abs_det_jacobian(torch.zeros(3), None).item()
        0.0
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("perm", torch.randperm(dim))
        self.lower = nn.Parameter(torch.zeros(dim, dim))
        self.upper = nn.Parameter(torch.zeros(dim, dim))
        self.log_diag = nn.Parameter(torch.zeros(dim))

    def transform(self) -> Transform:
        return LULinearTransform(self.perm, self.lower, self.upper, self.log_diag)


class AffineCoupling(FlowLayer):
    r"""A learnable :class:`AffineCouplingTransform` whose conditioner is an ELU MLP.

    The conditioner is ``Linear -> ELU -> Linear -> ELU -> Linear`` with the last layer
    zero-initialised, so the layer starts as the identity.

    Arguments:
        mask: boolean ``(D,)``, True on the conditioning coordinates.
        hidden: the width of the conditioner.
        alpha: :math:`\alpha` of the conditioner's ELU.
        scale_bound: the soft bound on the log-scale.

    Example:
        >>> layer = AffineCoupling(torch.tensor([True, False, True]), hidden=8)
        >>> x = torch.randn(4, 3)
        >>> torch.equal(layer.transform()(x), x)
        True
    """

    def __init__(
        self, mask: torch.Tensor, hidden: int = 64, alpha: float = 1.0, scale_bound: float = 3.0
    ) -> None:
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        self.register_buffer("mask", mask)
        na, nb = int(mask.sum()), int((~mask).sum())
        self.net = nn.Sequential(
            nn.Linear(na, hidden),
            nn.ELU(alpha),
            nn.Linear(hidden, hidden),
            nn.ELU(alpha),
            nn.Linear(hidden, 2 * nb),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale_bound = scale_bound

    def transform(self) -> Transform:
        return AffineCouplingTransform(self.mask, self.net, self.scale_bound)


class Flow(nn.Module):
    r"""A normalising flow: base :math:`\mathcal N(0, I_D)` pushed through ``layers`` in order.

    ``flow()`` returns the :class:`~torch.distributions.TransformedDistribution`;
    ``log_prob``, ``sample`` and :meth:`in_support` are shortcuts.

    Arguments:
        dim: the event size :math:`D`.
        layers: :class:`FlowLayer` objects, in the generative direction (base -> data).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> flow = make_flow(2, elementwise="elu_tail", blocks=2, hidden=8)
        >>> flow.log_prob(torch.zeros(5, 2)).shape
        torch.Size([5])
        >>> flow.sample((3,)).shape
        torch.Size([3, 2])
    """

    def __init__(self, dim: int, layers: Sequence[FlowLayer]) -> None:
        super().__init__()
        self.dim = int(dim)
        self.layers = nn.ModuleList(layers)
        self.register_buffer("base_loc", torch.zeros(self.dim))
        self.register_buffer("base_scale", torch.ones(self.dim))

    def transforms(self) -> list[Transform]:
        """The current bijections, base side first."""
        return [layer.transform() for layer in self.layers]

    def forward(self) -> TransformedDistribution:
        base = Independent(Normal(self.base_loc, self.base_scale), 1)
        return TransformedDistribution(base, self.transforms())

    def log_prob(
        self, x: torch.Tensor, *, outside: Literal["raise", "-inf"] = "raise"
    ) -> torch.Tensor:
        r"""Exact :math:`\log p(x)`, one value per row of ``x``.

        The same sum, in the same order, as ``self().log_prob(x)`` (one inverse pass,
        data side first, subtracting each layer's log-det, then the base log-density),
        without building the distribution object and its shape checks on every call.
        NaN input is refused, as the distribution's validation would.

        Arguments:
            x: ``(..., D)``.
            outside: what to do with rows outside the support (only a flow with an
                :class:`ELUTransform` has any; see :meth:`in_support`): ``"raise"``
                (the ``ValueError`` of ``ELUTransform``'s inverse) or ``"-inf"`` (their
                exact log-likelihood; the rows inside are computed in the same pass
                and keep their gradients).

        Example:
            >>> _ = torch.manual_seed(0)
            >>> flow = make_flow(2, elementwise="elu", blocks=1, coupling=False)
            >>> lp = flow.log_prob(torch.tensor([[0.0, 0.0], [0.0, -9.0]]), outside="-inf")
            >>> lp.isinf().tolist()
            [False, True]
        """
        if outside not in ("raise", "-inf"):
            raise ValueError(f"outside must be 'raise' or '-inf', got {outside!r}")
        return self._log_prob(x, outside == "-inf")[0]

    def log_prob_and_gap(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(log_prob(x, outside="-inf"), gap)`` in one inverse pass.

        ``gap`` (one value per row, with gradients) is how far the row lies outside the
        support: the sum, over the :class:`ELUTransform` layers and coordinates, of
        :math:`\max(0, -\alpha - v_i)`, where :math:`v` is what the layer's inverse
        receives (entries at or below :math:`-\alpha` are then replaced by 0 so the pass
        can go on). It is 0 for rows inside; a penalty on it pulls rows back into the
        support, where the exact log-likelihood has no gradient (it is :math:`-\infty`).

        Example:
            >>> _ = torch.manual_seed(0)
            >>> flow = make_flow(2, elementwise="elu", blocks=1, coupling=False)
            >>> lp, gap = flow.log_prob_and_gap(torch.tensor([[0.0, 0.0], [0.0, -9.0]]))
            >>> lp.isinf().tolist(), gap.tolist()
            ([False, True], [0.0, 8.0])
        """
        return self._log_prob(x, True)

    def _log_prob(self, x: torch.Tensor, mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if bool(torch.isnan(x).any()):
            raise ValueError(
                f"Flow.log_prob: the input contains {int(torch.isnan(x).sum())} NaN(s)"
            )
        lp: torch.Tensor | float = 0.0
        ok: torch.Tensor | None = None
        gap = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        y = x
        for t in reversed(self.transforms()):
            if mask and isinstance(t, ELUTransform):
                bad = ~(y > -t.alpha)  # an entry ELU cannot produce: the row has density 0
                ok = ~bad.any(-1) if ok is None else ok & ~bad.any(-1)
                gap = gap + torch.where(bad, -t.alpha - y, torch.zeros_like(y)).sum(-1)
                y = torch.where(bad, torch.zeros_like(y), y)  # any value inside will do
            u = t.inv(y)
            ladj = t.log_abs_det_jacobian(u, y)
            lp = lp - (ladj.sum(-1) if t.domain.event_dim == 0 else ladj)
            y = u
        out = lp + Normal(self.base_loc, self.base_scale).log_prob(y).sum(-1)
        if ok is not None:
            out = torch.where(ok, out, torch.full_like(out, -math.inf))
        return out, gap

    def sample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        """Exact samples (no gradient)."""
        return self().sample(sample_shape)

    @property
    def full_support(self) -> bool:
        """True unless a layer is an :class:`ELUTransform` (then the support is restricted)."""
        return not any(isinstance(t, ELUTransform) for t in self.transforms())

    @torch.no_grad()
    def in_support(self, x: torch.Tensor) -> torch.Tensor:
        r"""Boolean mask over the batch: True where ``x`` lies in the model's support.

        The support is all of :math:`\mathbb{R}^D` unless the flow contains an
        :class:`ELUTransform`, whose image is :math:`(-\alpha, \infty)`; a point whose
        inverse pass reaches such a layer below :math:`-\alpha` has density 0 (its exact
        log-likelihood is :math:`-\infty`, and :meth:`log_prob` raises on it).
        """
        ok = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        v = x
        for t in reversed(self.transforms()):
            if isinstance(t, ELUTransform):
                bad = ~(v > -t.alpha)
                ok &= ~bad.any(-1)
                v = torch.where(bad, torch.zeros_like(v), v)
            v = t.inv(v)
        return ok

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation of every :class:`ActNorm`, from a batch ``x`` (N, D).

        The batch is passed through the inverse, data side first; each ActNorm is set
        from the values it receives before they go further.
        """
        v = x
        for layer in reversed(self.layers):
            if isinstance(layer, ActNorm):
                layer.initialize(v)
            v = layer.transform().inv(v)


def make_flow(
    dim: int,
    *,
    elementwise: str | None = "elu_tail",
    blocks: int = 4,
    hidden: int = 64,
    alpha: float = 1.0,
    linear: bool = True,
    scale_bound: float = 3.0,
    coupling: bool = True,
) -> Flow:
    r"""Build a flow: an ActNorm, then ``blocks`` blocks [coupling, LU-linear, elementwise, ActNorm].

    Arguments:
        dim: the event size (>= 2).
        elementwise: one of :data:`ELEMENTWISE_KINDS`, or None for a coupling-only flow
            (the same blocks without the elementwise layer).
        blocks: the number of blocks.
        hidden: the width of the coupling conditioners.
        alpha: ELU's :math:`\alpha` (elementwise layers and conditioners).
        linear: include the LU-linear layers.
        scale_bound: the coupling layers' log-scale bound.
        coupling: include the coupling layers. Without them a block is [LU-linear,
            elementwise, ActNorm], so the elementwise bijection is the flow's only
            nonlinearity; with ``elementwise=None`` as well the flow is a Gaussian
            (a product of affine maps of the base), the linear baseline of the stack.

    Call :meth:`Flow.initialize` on a batch of training data before training: for
    ``elementwise="elu"`` it places the training data inside ELU's image.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> flow = make_flow(3, elementwise="elu", blocks=1, hidden=4)
        >>> [type(t).__name__ for t in flow.transforms()]
        ['AffineTransform', 'AffineCouplingTransform', 'LULinearTransform', 'ELUTransform', 'AffineTransform']
        >>> stack = make_flow(3, elementwise="leaky_relu", blocks=1, coupling=False)
        >>> [type(t).__name__ for t in stack.transforms()]
        ['AffineTransform', 'LULinearTransform', 'LeakyReLUTransform', 'AffineTransform']
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an int >= 2, got {dim!r}")
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"blocks must be an int >= 1, got {blocks!r}")
    if elementwise is not None and elementwise not in ELEMENTWISE_KINDS:
        raise ValueError(
            f"unknown elementwise kind {elementwise!r}; allowed: "
            f"{', '.join(ELEMENTWISE_KINDS)} or None"
        )
    layers: list[FlowLayer] = [ActNorm(dim)]  # base side: standardises the latent at init
    for b in range(blocks):
        mask = torch.arange(dim) % 2 == b % 2
        if coupling:
            layers.append(AffineCoupling(mask, hidden=hidden, alpha=alpha, scale_bound=scale_bound))
        if linear:
            layers.append(LULinear(dim))
        if elementwise is not None:
            layers.append(Elementwise(elementwise, alpha=alpha))
        init_min = -0.5 * alpha if elementwise == "elu" else None
        layers.append(ActNorm(dim, init_min=init_min))
    return Flow(dim, layers)
