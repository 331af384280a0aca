"""Float64 analytics for the ELU family: Gaussian moments and SELU fixed points.

- :mod:`elulab.theory.gaussian`: :math:`E f(z)`, :math:`E f(z)^2`, :math:`Var f(z)`,
  :math:`E f'(z)`, :math:`E f'(z)^2` for :math:`z \\sim N(\\mu, \\sigma^2)`.
"""

from .gaussian import CLOSED_FORM_ACTIVATIONS as CLOSED_FORM_ACTIVATIONS
from .gaussian import GaussianMoments as GaussianMoments
from .gaussian import expected_slope as expected_slope
from .gaussian import gaussian_moments as gaussian_moments

__all__ = [
    "CLOSED_FORM_ACTIVATIONS",
    "GaussianMoments",
    "expected_slope",
    "gaussian_moments",
]
