"""Physics-informed neural networks with exact Taylor-mode input derivatives (C9).

:class:`MLP` computes ``u``, ``du`` and ``d2u`` in one forward pass from the
activations' closed-form derivatives (:mod:`elulab.functional`); :class:`Problem` is a
PDE ``F(x, u, du, d2u) = 0`` with Dirichlet/initial conditions, seeded collocation
sampling and the PINN loss; four problems with references (Burgers, a linear+exponential
BVP, a stiff ODE, 2-D Poisson). See docs/pinn.md.
"""

from ._mlp import MLP as MLP
from ._mlp import TAYLOR_ACTIVATIONS as TAYLOR_ACTIVATIONS
from ._mlp import Taylor as Taylor
from ._mlp import activation_jet as activation_jet
from ._problem import Condition as Condition
from ._problem import Points as Points
from ._problem import Problem as Problem
from ._problem import box_sampler as box_sampler
from ._problem import compile_loss as compile_loss
from ._problem import faces_sampler as faces_sampler
from ._problem import relative_l2 as relative_l2
from ._problems import burgers as burgers
from ._problems import linear_exponential as linear_exponential
from ._problems import poisson_2d as poisson_2d
from ._problems import stiff_ode as stiff_ode

__all__ = [
    "MLP",
    "TAYLOR_ACTIVATIONS",
    "Condition",
    "Points",
    "Problem",
    "Taylor",
    "activation_jet",
    "box_sampler",
    "burgers",
    "compile_loss",
    "faces_sampler",
    "linear_exponential",
    "poisson_2d",
    "relative_l2",
    "stiff_ode",
]
