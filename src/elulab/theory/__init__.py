"""Float64 analytics for the ELU family: Gaussian moments and SELU fixed points.

- :mod:`elulab.theory.gaussian`: :math:`E f(z)`, :math:`E f(z)^2`, :math:`Var f(z)`,
  :math:`E f'(z)`, :math:`E f'(z)^2` for :math:`z \\sim N(\\mu, \\sigma^2)`.
- :mod:`elulab.theory.selu`: the SELU moment map, its flow field, iterates and basin of
  attraction, its Jacobian, the fixed-point solver and AlphaDropout parameters.
"""

from .gaussian import CLOSED_FORM_ACTIVATIONS as CLOSED_FORM_ACTIVATIONS
from .gaussian import GaussianMoments as GaussianMoments
from .gaussian import expected_slope as expected_slope
from .gaussian import gaussian_moments as gaussian_moments
from .selu import SELU_ALPHA as SELU_ALPHA
from .selu import SELU_LAMBDA as SELU_LAMBDA
from .selu import AlphaDropoutParameters as AlphaDropoutParameters
from .selu import SeluParameters as SeluParameters
from .selu import alpha_dropout_parameters as alpha_dropout_parameters
from .selu import basin_of_attraction as basin_of_attraction
from .selu import iterate_moment_map as iterate_moment_map
from .selu import moment_map as moment_map
from .selu import moment_map_flow as moment_map_flow
from .selu import moment_map_jacobian as moment_map_jacobian
from .selu import solve_selu_parameters as solve_selu_parameters

__all__ = [
    "CLOSED_FORM_ACTIVATIONS",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "AlphaDropoutParameters",
    "GaussianMoments",
    "SeluParameters",
    "alpha_dropout_parameters",
    "basin_of_attraction",
    "expected_slope",
    "gaussian_moments",
    "iterate_moment_map",
    "moment_map",
    "moment_map_flow",
    "moment_map_jacobian",
    "solve_selu_parameters",
]
