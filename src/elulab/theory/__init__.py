"""Float64 analytics for the ELU family: Gaussian moments and SELU fixed points.

- :mod:`elulab.theory.gaussian`: :math:`E f(z)`, :math:`E f(z)^2`, :math:`Var f(z)`,
  :math:`E f'(z)`, :math:`E f'(z)^2` for :math:`z \\sim N(\\mu, \\sigma^2)`.
- :mod:`elulab.theory.selu`: the SELU moment map, its flow field, iterates and basin of
  attraction, its Jacobian, the fixed-point solver, AlphaDropout parameters, and the
  finite-width spread of a deep random net's per-layer statistics.
- :mod:`elulab.theory.kernels`: closed-form NNGP and NTK kernels of ELU, CELU, SELU and ReLU
  networks, and the bivariate normal cdf.
- :mod:`elulab.theory.meanfield`: length and correlation maps, their fixed points, depth
  scales and the edge of chaos (Schoenholz et al. 2017).
"""

from .gaussian import CLOSED_FORM_ACTIVATIONS as CLOSED_FORM_ACTIVATIONS
from .gaussian import GaussianMoments as GaussianMoments
from .gaussian import expected_slope as expected_slope
from .gaussian import gaussian_moments as gaussian_moments
from .kernels import KERNEL_ACTIVATIONS as KERNEL_ACTIVATIONS
from .kernels import bivariate_normal_cdf as bivariate_normal_cdf
from .kernels import celu_nngp_step as celu_nngp_step
from .kernels import celu_ntk_step as celu_ntk_step
from .kernels import elu_nngp_step as elu_nngp_step
from .kernels import elu_ntk_step as elu_ntk_step
from .kernels import kernel_summary as kernel_summary
from .kernels import nngp as nngp
from .kernels import nngp_and_ntk as nngp_and_ntk
from .kernels import nngp_step as nngp_step
from .kernels import ntk as ntk
from .kernels import ntk_step as ntk_step
from .kernels import relu_nngp_step as relu_nngp_step
from .kernels import relu_ntk_step as relu_ntk_step
from .kernels import selu_nngp_step as selu_nngp_step
from .kernels import selu_ntk_step as selu_ntk_step
from .meanfield import EdgeOfChaos as EdgeOfChaos
from .meanfield import MeanField as MeanField
from .meanfield import chi_1 as chi_1
from .meanfield import correlation_fixed_point as correlation_fixed_point
from .meanfield import correlation_map as correlation_map
from .meanfield import edge_of_chaos as edge_of_chaos
from .meanfield import length_fixed_point as length_fixed_point
from .meanfield import length_map as length_map
from .meanfield import length_map_slope as length_map_slope
from .meanfield import mean_field as mean_field
from .selu import SELU_ALPHA as SELU_ALPHA
from .selu import SELU_LAMBDA as SELU_LAMBDA
from .selu import AlphaDropoutParameters as AlphaDropoutParameters
from .selu import NetStatistics as NetStatistics
from .selu import SeluParameters as SeluParameters
from .selu import alpha_dropout_parameters as alpha_dropout_parameters
from .selu import basin_of_attraction as basin_of_attraction
from .selu import iterate_moment_map as iterate_moment_map
from .selu import moment_map as moment_map
from .selu import moment_map_flow as moment_map_flow
from .selu import moment_map_jacobian as moment_map_jacobian
from .selu import random_net_statistics as random_net_statistics
from .selu import solve_selu_parameters as solve_selu_parameters

__all__ = [
    "CLOSED_FORM_ACTIVATIONS",
    "KERNEL_ACTIVATIONS",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "AlphaDropoutParameters",
    "EdgeOfChaos",
    "GaussianMoments",
    "MeanField",
    "NetStatistics",
    "SeluParameters",
    "alpha_dropout_parameters",
    "basin_of_attraction",
    "bivariate_normal_cdf",
    "celu_nngp_step",
    "celu_ntk_step",
    "chi_1",
    "correlation_fixed_point",
    "correlation_map",
    "edge_of_chaos",
    "elu_nngp_step",
    "elu_ntk_step",
    "expected_slope",
    "gaussian_moments",
    "iterate_moment_map",
    "kernel_summary",
    "length_fixed_point",
    "length_map",
    "length_map_slope",
    "mean_field",
    "moment_map",
    "moment_map_flow",
    "moment_map_jacobian",
    "nngp",
    "nngp_and_ntk",
    "nngp_step",
    "ntk",
    "ntk_step",
    "random_net_statistics",
    "relu_nngp_step",
    "relu_ntk_step",
    "selu_nngp_step",
    "selu_ntk_step",
    "solve_selu_parameters",
]
