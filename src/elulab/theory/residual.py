r"""The identity path of a post-activation ResNet at initialisation: two predictions.

A post-activation block is :math:`x_{l+1} = f(z_l)`, :math:`z_l = x_l + s F(x_l)`
(:class:`elulab.nn.ResidualBlock`); through the identity path alone the backward pass
multiplies by :math:`\operatorname{diag} f'(z_l)` per block, so the gain of the squared
gradient norm after :math:`L` blocks is, per unit,
:math:`\prod_{l<L} f'(z_l)^2`. At infinite width the branch output of a unit is
Gaussian and independent of the unit's own :math:`x_l`,
:math:`s F_l \sim \mathcal{N}(0, s^2 v_F)`, with :math:`v_F = 1` after batch norm
(:math:`\gamma = 1`) and, for the branch :math:`W_2 f(W_1 x)` with Kaiming weights
(variance :math:`2/n`) and no norm, :math:`v_F = 2\,\mathbb{E} f(h)^2`,
:math:`h \sim \mathcal{N}(0, 2\,\mathbb{E} x_l^2)`.

* :func:`post_path_meanfield` treats the layers as independent and :math:`z_l` as
  Gaussian with the mean and variance of :math:`x_l + sF_l` (moments of
  :func:`elulab.theory.gaussian_moments`):
  :math:`\log_{10} \prod_l \mathbb{E}[f'(z_l)^2]^{1/2}`.
* :func:`post_path_chain` follows one unit along depth (a Markov chain
  :math:`x_{l+1} = f(x_l + sF_l)`), keeping the correlation of :math:`f'(z_l)` across
  layers: :math:`\log_{10} \mathbb{E}[\prod_l f'(z_l)^2]^{1/2}` by Monte Carlo. Since a
  unit that is positive tends to stay positive, :math:`\mathbb{E}\prod \ge \prod\mathbb{E}`
  here and the mean-field product overstates the decay once the branch is small against
  :math:`x_l` (deep nets with batch norm, where :math:`\operatorname{Var} x_l` grows like
  :math:`l`, and every net without a norm).

References:
    Identity Mappings in Deep Residual Networks (He, Zhang, Ren, Sun, 2016),
    arXiv:1603.05027.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from elulab.functional import activation_derivative, activation_function

from .gaussian import gaussian_moments

__all__ = ["branch_variance", "post_path_chain", "post_path_meanfield"]

_NORMS = ("batch", "none")


def branch_variance(activation: str, norm: str, second_moment: float) -> float:
    r""":math:`v_F`: 1 after batch norm, else :math:`2\mathbb{E}f(h)^2`, :math:`h \sim
    \mathcal{N}(0, 2\,\text{second\_moment})`.

    Example:
        >>> round(branch_variance("relu", "none", 1.0), 12)  # 2 E relu(h)^2 = Var h
        2.0
    """
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {', '.join(_NORMS)}; got {norm!r}")
    if norm == "batch":
        return 1.0
    return 2.0 * float(
        gaussian_moments(activation, 0.0, math.sqrt(2.0 * second_moment)).second_moment
    )


def post_path_meanfield(
    activation: str, norm: str, depth: int, mean: float, var: float, branch_scale: float
) -> np.ndarray:
    r"""Mean-field :math:`\log_{10}\prod_{l<k} \mathbb{E}[f'(z_l)^2]^{1/2}`, for ``k = 1..depth``.

    Arguments:
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        norm: ``"batch"`` or ``"none"`` (the branch, see the module docstring).
        depth: blocks (>= 1).
        mean, var: mean and variance of :math:`x_0` (pooled over units).
        branch_scale: :math:`s`.

    Example:
        >>> post_path_meanfield("relu", "batch", 1, 0.0, 1.0, 1.0).round(6)  # P(z>0) = 1/2
        array([-0.150515])
    """
    m, v, out = float(mean), float(var), []
    for _ in range(depth):
        vf = branch_variance(activation, norm, v + m * m)
        g = gaussian_moments(activation, m, math.sqrt(v + branch_scale**2 * vf))
        out.append(0.5 * math.log10(g.mean_slope_sq))
        m, v = float(g.mean), float(g.variance)
    return np.cumsum(out)


def post_path_chain(
    activation: str,
    norm: str,
    depth: int,
    x0: torch.Tensor,
    branch_scale: float,
    generator: torch.Generator,
) -> np.ndarray:
    r"""Chain :math:`\log_{10}\mathbb{E}[\prod_{l<k} f'(z_l)^2]^{1/2}`, for ``k = 1..depth``.

    Arguments:
        activation, norm, depth, branch_scale: as in :func:`post_path_meanfield`.
        x0: starting values, one per simulated unit (computed in float64).
        generator: the source of the branch noise.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> post_path_chain("relu", "batch", 2, torch.full((10,), 9.0), 0.5, g)  # never < 0
        array([0., 0.])
    """
    f, df = activation_function(activation), activation_derivative(activation)
    x = x0.detach().to(torch.float64).flatten()
    p, out = torch.ones_like(x), []
    for _ in range(depth):
        sd = branch_scale * math.sqrt(branch_variance(activation, norm, float((x * x).mean())))
        z = x + sd * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        p, x = p * df(z) ** 2, f(z)
        out.append(0.5 * math.log10(float(p.mean())))
    return np.asarray(out)
