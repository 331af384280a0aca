"""Normalising flows built on ELU: a correct ELU bijector, R -> R variants, flow models.

ELU maps the real line onto :math:`(-\\alpha, \\infty)`. :class:`ELUTransform` says so
(its codomain is ``constraints.greater_than(-alpha)``) and refuses to invert values
outside it; :class:`LinearTailELUTransform` and :class:`LinearELUTransform` map onto the
whole real line and can sit anywhere in a flow. :func:`make_flow` builds flows of
coupling, LU-linear, elementwise and ActNorm layers that are plain
:class:`torch.distributions.TransformedDistribution` objects. :func:`bijection_table`,
:func:`bijection_errors`, :func:`flow_logdet_errors` and :func:`random_flow_logdet_errors`
check a bijection's inverse and log-det against autograd. See ``docs/flows.md``.

Example:
    >>> import torch
    >>> from torch.distributions import Normal, TransformedDistribution
    >>> d = TransformedDistribution(Normal(0.0, 1.0), ELUTransform(alpha=1.0))
    >>> d.support
    GreaterThan(lower_bound=-1.0)
"""

from ._checks import bijection_errors as bijection_errors
from ._checks import bijection_table as bijection_table
from ._checks import flow_logdet_errors as flow_logdet_errors
from ._checks import random_flow_logdet_errors as random_flow_logdet_errors
from ._models import ELEMENTWISE_KINDS as ELEMENTWISE_KINDS
from ._models import ActNorm as ActNorm
from ._models import AffineCoupling as AffineCoupling
from ._models import Elementwise as Elementwise
from ._models import Flow as Flow
from ._models import FlowLayer as FlowLayer
from ._models import LULinear as LULinear
from ._models import make_flow as make_flow
from ._transforms import AffineCouplingTransform as AffineCouplingTransform
from ._transforms import ELUClampWarning as ELUClampWarning
from ._transforms import ELUTransform as ELUTransform
from ._transforms import LeakyReLUTransform as LeakyReLUTransform
from ._transforms import LeakySoftplusTransform as LeakySoftplusTransform
from ._transforms import LinearELUTransform as LinearELUTransform
from ._transforms import LinearTailELUTransform as LinearTailELUTransform
from ._transforms import LULinearTransform as LULinearTransform
from ._transforms import newton_inverse as newton_inverse

__all__ = [
    "ELEMENTWISE_KINDS",
    "ActNorm",
    "AffineCoupling",
    "AffineCouplingTransform",
    "ELUClampWarning",
    "ELUTransform",
    "Elementwise",
    "Flow",
    "FlowLayer",
    "LULinear",
    "LULinearTransform",
    "LeakyReLUTransform",
    "LeakySoftplusTransform",
    "LinearELUTransform",
    "LinearTailELUTransform",
    "bijection_errors",
    "bijection_table",
    "flow_logdet_errors",
    "make_flow",
    "newton_inverse",
    "random_flow_logdet_errors",
]
