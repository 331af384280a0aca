r"""SELU: the moment map of self-normalising networks, its Jacobian, fixed-point solver,
and AlphaDropout parameters, in float64.

A SELU unit :math:`y = \lambda\,\mathrm{elu}(z; \alpha)` whose pre-activation
:math:`z = \sum_i w_i x_i` sums inputs of mean :math:`\mu` and variance :math:`\nu` with
weights of sum :math:`\omega = \sum_i w_i` and squared sum :math:`\tau = \sum_i w_i^2`
sees :math:`z \sim \mathcal{N}(\mu\omega, \nu\tau)` (central limit). The moment map is

.. math:: g(\mu, \nu) = (\tilde\mu, \tilde\nu) = \big(E[y],\ \operatorname{Var}[y]\big),
          \qquad z \sim \mathcal{N}(\mu\omega, \nu\tau),

with :math:`E[y]` and :math:`\operatorname{Var}[y]` the closed forms of
:mod:`elulab.theory.gaussian` (one implementation of the Gaussian moments of ELU).

Conventions (pick with ``omega``, ``tau``):

- the paper's, the default: :math:`\omega = 0`, :math:`\tau = 1` (normalised weights,
  LeCun-normal init), so :math:`z \sim \mathcal{N}(0, \nu)`;
- the SNN authors' notebook (``getSELUparameters``): the pre-activation itself is the
  target, :math:`z \sim \mathcal{N}(\mu^*, \nu^*)`, i.e. :math:`\omega = \tau = 1`.

At the target (0, 1) both give the standard constants
:math:`\lambda_{01} = 1.0507009873554804934`, :math:`\alpha_{01} = 1.6732632423543772848`.

References:
    Self-Normalizing Neural Networks, Klambauer, Unterthiner, Mayr, Hochreiter, 2017,
    arXiv:1706.02515.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from elulab.functional import SELU_ALPHA, SELU_LAMBDA, check_alpha

from .gaussian import _check_real as _real
from .gaussian import _elu_kink_terms, gaussian_moments

__all__ = [
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "AlphaDropoutParameters",
    "SeluParameters",
    "alpha_dropout_parameters",
    "basin_of_attraction",
    "iterate_moment_map",
    "moment_map",
    "moment_map_flow",
    "moment_map_jacobian",
    "solve_selu_parameters",
]

# The solver searches alpha in [e^-_LOG_ALPHA_BOUND, e^_LOG_ALPHA_BOUND].
_LOG_ALPHA_BOUND = 40.0


@dataclass(frozen=True)
class SeluParameters:
    """SELU constants whose moment map has the fixed point ``(mean, var)``.

    Arguments:
        lam: the scale :math:`\\lambda`.
        alpha: the negative saturation :math:`\\alpha`.
        mean: the fixed-point mean :math:`\\mu^*`.
        var: the fixed-point variance :math:`\\nu^*`.
        omega: the convention's :math:`\\omega` (sum of the weights).
        tau: the convention's :math:`\\tau` (sum of the squared weights).
        jacobian: the 2x2 Jacobian of the moment map at the fixed point.
        spectral_norm: its largest singular value (< 1: the fixed point attracts).
    """

    lam: float
    alpha: float
    mean: float
    var: float
    omega: float
    tau: float
    jacobian: NDArray[np.float64]
    spectral_norm: float


@dataclass(frozen=True)
class AlphaDropoutParameters:
    """AlphaDropout: dropped units are set to ``alpha_prime``, then ``a * x + b``.

    Arguments:
        a: the scale restoring the variance.
        b: the shift restoring the mean.
        alpha_prime: the value of dropped units, :math:`-\\lambda\\alpha` (SELU's saturation).
        rate: the dropout rate ``1 - q``.
        mean: the fixed-point mean that is preserved.
        var: the fixed-point variance that is preserved.
    """

    a: float
    b: float
    alpha_prime: float
    rate: float
    mean: float
    var: float


def _positive(value: float, name: str) -> float:
    out = _real(value, name)
    if out <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def _check_convention(omega: float, tau: float) -> tuple[float, float]:
    return _real(omega, "omega"), _positive(tau, "tau")


def moment_map(
    mu: ArrayLike,
    nu: ArrayLike,
    *,
    lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
    omega: float = 0.0,
    tau: float = 1.0,
) -> tuple[float | NDArray, float | NDArray]:
    r"""The SELU moment map :math:`(\mu, \nu) \mapsto (\tilde\mu, \tilde\nu)`.

    .. math:: \tilde\mu = E[\lambda\,\mathrm{elu}(z;\alpha)],\quad
              \tilde\nu = \operatorname{Var}[\lambda\,\mathrm{elu}(z;\alpha)],\quad
              z \sim \mathcal{N}(\mu\omega,\ \nu\tau).

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515.

    Arguments:
        mu: input mean(s) :math:`\mu`.
        nu: input variance(s) :math:`\nu` (> 0).
        lam: SELU scale :math:`\lambda`.
        alpha: SELU :math:`\alpha` (> 0).
        omega: sum of the weights (default 0: the paper's normalised weights).
        tau: sum of the squared weights (default 1), > 0.

    Returns:
        ``(mu_tilde, nu_tilde)``, floats for scalar input.

    Example:
        >>> mu_t, nu_t = moment_map(0.0, 1.0)
        >>> abs(mu_t) < 1e-15, abs(nu_t - 1.0) < 1e-15
        (True, True)
    """
    omega, tau = _check_convention(omega, tau)
    lam = _real(lam, "lam")
    alpha = check_alpha(alpha)
    mu_a = np.asarray(mu, dtype=np.float64)
    nu_a = np.asarray(nu, dtype=np.float64)
    if not np.all(np.isfinite(nu_a)) or np.any(nu_a <= 0.0):
        raise ValueError(f"nu (the input variance) must be finite and > 0, got {nu!r}")
    m = gaussian_moments("elu", mu_a * omega, np.sqrt(nu_a * tau), alpha=alpha, scale=lam)
    return m.mean, m.variance


def moment_map_jacobian(
    mu: float,
    nu: float,
    *,
    lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
    omega: float = 0.0,
    tau: float = 1.0,
) -> NDArray[np.float64]:
    r"""Jacobian :math:`\partial(\tilde\mu, \tilde\nu) / \partial(\mu, \nu)` in closed form.

    With :math:`m = \mu\omega`, :math:`v = \nu\tau`, :math:`f = \lambda\,\mathrm{elu}(\cdot;\alpha)`,
    Gaussian integration by parts (:math:`\partial_v E[h(z)] = \tfrac12 E[h''(z)]`) gives

    .. math::
        \partial_m E f &= \lambda\,[\Phi(c) + \alpha Q_1], \qquad
        \partial_v E f = \tfrac{\lambda}{2}\,[(1-\alpha)\,p_z(0) + \alpha Q_1], \\
        \partial_m E f^2 &= 2\lambda^2\,[P_1 + \alpha^2 (Q_2 - Q_1)], \qquad
        \partial_v E f^2 = \lambda^2\,[\Phi(c) + \alpha^2 (2 Q_2 - Q_1)],

    where :math:`P_1 = E[z\,1_{z>0}]`, :math:`Q_k = E[e^{kz} 1_{z\le 0}]`, :math:`p_z(0)`
    is the density of :math:`z` at the kink (:math:`f'` jumps by :math:`\lambda(1-\alpha)`
    there) and :math:`c = m/\sqrt v`. Then
    :math:`\partial\tilde\nu = \partial E f^2 - 2 E f\,\partial E f`, and the chain rule
    multiplies the :math:`m` column by :math:`\omega` and the :math:`v` column by :math:`\tau`.

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515
        (Theorem 1 uses this Jacobian at the fixed point).

    Arguments:
        mu, nu, lam, alpha, omega, tau: as in :func:`moment_map` (scalars).

    Returns:
        The 2x2 array ``[[dmu~/dmu, dmu~/dnu], [dnu~/dmu, dnu~/dnu]]``.

    Example:
        >>> moment_map_jacobian(0.0, 1.0).round(7).tolist()
        [[0.0, 0.0888348], [0.0, 0.7826479]]
    """
    omega, tau = _check_convention(omega, tau)
    lam = _real(lam, "lam")
    alpha = check_alpha(alpha)
    mu = _real(mu, "mu")
    nu = _positive(nu, "nu")
    m = np.array([mu * omega])
    s = np.sqrt(np.array([nu * tau]))
    p, p1, q1, q2, dens0 = (float(x[0]) for x in _elu_kink_terms(m, s))
    mean = float(gaussian_moments("elu", m, s, alpha=alpha, scale=lam).mean[0])
    d_m_mean = lam * (p + alpha * q1)
    d_v_mean = 0.5 * lam * ((1.0 - alpha) * dens0 + alpha * q1)
    d_m_second = 2.0 * lam**2 * (p1 + alpha**2 * (q2 - q1))
    d_v_second = lam**2 * (p + alpha**2 * (2.0 * q2 - q1))
    d_m_var = d_m_second - 2.0 * mean * d_m_mean
    d_v_var = d_v_second - 2.0 * mean * d_v_mean
    return np.array(
        [[omega * d_m_mean, tau * d_v_mean], [omega * d_m_var, tau * d_v_var]], dtype=np.float64
    )


def moment_map_flow(
    mu: ArrayLike,
    nu: ArrayLike,
    *,
    lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
    omega: float = 0.0,
    tau: float = 1.0,
) -> tuple[float | NDArray, float | NDArray]:
    r"""The flow field of the moment map: the displacement of one layer.

    .. math:: (\Delta\mu, \Delta\nu) = g(\mu, \nu) - (\mu, \nu)
              = (\tilde\mu - \mu,\ \tilde\nu - \nu),

    with :math:`g` the :func:`moment_map`. Drawn as arrows on a grid of
    :math:`(\mu, \nu)` it shows where the statistics of the next layer go; it vanishes
    at a fixed point (Klambauer et al. 2017, Figure 2).

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515.

    Arguments:
        mu, nu, lam, alpha, omega, tau: as in :func:`moment_map` (arrays broadcast).

    Returns:
        ``(d_mu, d_nu)``, floats for scalar input.

    Example:
        >>> d_mu, d_nu = moment_map_flow(0.0, 2.0)
        >>> round(d_mu, 6), round(d_nu, 6)  # the variance is pulled back toward 1
        (0.089612, -0.285522)
    """
    mu_t, nu_t = moment_map(mu, nu, lam=lam, alpha=alpha, omega=omega, tau=tau)
    d_mu, d_nu = mu_t - np.asarray(mu, dtype=np.float64), nu_t - np.asarray(nu, dtype=np.float64)
    if np.ndim(d_mu) == 0 and np.ndim(d_nu) == 0:
        return float(d_mu), float(d_nu)
    return d_mu, d_nu


def iterate_moment_map(
    mu: ArrayLike,
    nu: ArrayLike,
    steps: int,
    *,
    lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
    omega: float = 0.0,
    tau: float = 1.0,
    min_var: float = 1e-12,
    max_var: float = 1e6,
) -> tuple[float | NDArray, float | NDArray, bool | NDArray]:
    r"""The statistics after ``steps`` layers: :math:`g^{\circ n}(\mu, \nu)`.

    Applies the :func:`moment_map` ``steps`` times to every start point. A point whose
    mean or variance stops being finite, or whose variance leaves
    ``(min_var, max_var]`` (vanishing or exploding), is stopped there: it keeps its
    last values and is marked not alive.

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515.

    Arguments:
        mu, nu: start means and variances (broadcast; ``nu > 0``).
        steps: the number of layers (>= 0).
        lam, alpha, omega, tau: as in :func:`moment_map`.
        min_var, max_var: the variance band outside which a point is stopped.

    Returns:
        ``(mu_n, nu_n, alive)``: floats and a bool for scalar input, arrays otherwise.

    Example:
        >>> m, v, alive = iterate_moment_map(0.0, 1.0, 200, tau=0.75**2)
        >>> round(m, 4), round(v, 4), alive  # Kaiming's SELU gain: a fixed point near 0
        (-0.0284, 0.0268, True)
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    lo, hi = _real(min_var, "min_var"), _positive(max_var, "max_var")
    m0, v0 = np.broadcast_arrays(np.asarray(mu, np.float64), np.asarray(nu, np.float64))
    shape = m0.shape
    m, v = m0.ravel().copy(), v0.ravel().copy()
    alive = np.ones(m.shape, dtype=bool)
    for _ in range(steps):
        if not alive.any():
            break
        m[alive], v[alive] = moment_map(
            m[alive], v[alive], lam=lam, alpha=alpha, omega=omega, tau=tau
        )
        alive &= np.isfinite(m) & np.isfinite(v) & (v > lo) & (v <= hi)
    if shape == ():
        return float(m[0]), float(v[0]), bool(alive[0])
    return m.reshape(shape), v.reshape(shape), alive.reshape(shape)


def basin_of_attraction(
    mu: ArrayLike,
    nu: ArrayLike,
    *,
    steps: int = 200,
    tol: float = 1e-6,
    target: tuple[float, float] = (0.0, 1.0),
    lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
    omega: float = 0.0,
    tau: float = 1.0,
) -> bool | NDArray:
    r"""Which start points the moment map carries to the fixed point ``target``.

    A start point :math:`(\mu, \nu)` belongs to the basin if, after ``steps`` layers
    (:func:`iterate_moment_map`, stopped when the variance leaves :math:`(10^{-12}, 10^6]`),

    .. math:: |\mu_n - \mu^*| < \text{tol} \quad\text{and}\quad |\nu_n - \nu^*| < \text{tol}.

    With the paper's convention (``omega = 0``) the new mean does not depend on
    :math:`\mu`, so the basin is a set of variances. Theorem 1 of Klambauer et al.
    (2017) gives a stable, attracting fixed point in :math:`\mu \in [-0.1, 0.1]`,
    :math:`\nu \in [0.8, 1.5]` for :math:`\omega \in [-0.1, 0.1]`,
    :math:`\tau \in [0.95, 1.1]`; this function maps the basin numerically, anywhere.
    A point still on its way counts as outside: where the map contracts slowly (spectral
    radius :math:`\rho` near 1) take ``steps`` with :math:`\rho^{\text{steps}} \ll` ``tol``.

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515.

    Arguments:
        mu, nu: start points (broadcast; ``nu > 0``).
        steps: moment-map iterations.
        tol: the distance to ``target`` counted as arrived, in both coordinates.
        target: the fixed point ``(mu*, nu*)``.
        lam, alpha, omega, tau: as in :func:`moment_map`.

    Returns:
        A bool, or a bool array of the broadcast shape.

    Example:
        >>> basin_of_attraction([-3.0, 3.0], [0.05, 6.0]).tolist()
        [True, True]
        >>> basin_of_attraction(0.0, 1.0, tau=0.75**2)  # Kaiming's gain: not (0, 1)
        False
    """
    tol = _positive(tol, "tol")
    m, v, alive = iterate_moment_map(mu, nu, steps, lam=lam, alpha=alpha, omega=omega, tau=tau)
    ok = alive & (np.abs(m - target[0]) < tol) & (np.abs(v - target[1]) < tol)
    return bool(ok) if np.ndim(ok) == 0 else ok


def _elu_mean_var(alpha: float, m: float, s: float) -> tuple[float, float]:
    g = gaussian_moments("elu", m, s, alpha=alpha)
    return float(g.mean), float(g.variance)


def solve_selu_parameters(
    mean: float = 0.0,
    var: float = 1.0,
    *,
    omega: float = 0.0,
    tau: float = 1.0,
) -> SeluParameters:
    r"""The :math:`(\lambda, \alpha)` whose moment map has the fixed point ``(mean, var)``.

    With :math:`z \sim \mathcal{N}(\mu^*\omega, \nu^*\tau)` fixed by the target, the
    conditions :math:`\lambda E[\mathrm{elu}(z;\alpha)] = \mu^*` and
    :math:`\lambda^2 \operatorname{Var}[\mathrm{elu}(z;\alpha)] = \nu^*` reduce to one
    equation in :math:`\alpha`,

    .. math:: r(\alpha) = \frac{E[\mathrm{elu}(z;\alpha)]}
              {\sqrt{\operatorname{Var}[\mathrm{elu}(z;\alpha)]}} = \frac{\mu^*}{\sqrt{\nu^*}},

    then :math:`\lambda = \sqrt{\nu^* / \operatorname{Var}[\mathrm{elu}(z;\alpha)]}`.
    :math:`r` is strictly decreasing in :math:`\alpha`: write
    :math:`\mathrm{elu} = z^+ + \alpha n` with :math:`n = (e^z - 1) 1_{z \le 0} \le 0`;
    since :math:`z^+ n = 0`, :math:`r'(\alpha)` has the sign of
    :math:`E[n]\,E[(z^+)^2] - \alpha\,E[z^+]\,E[n^2] < 0`. So the root is unique; Brent's
    method finds it on :math:`\log\alpha`, and a target with :math:`\mu^*/\sqrt{\nu^*}`
    outside :math:`(r(\infty), r(0))` has no solution.

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515.

    Arguments:
        mean: target fixed-point mean :math:`\mu^*`.
        var: target fixed-point variance :math:`\nu^*` (> 0).
        omega: convention (default 0, the paper's; 1 with ``tau = 1``: the notebook's).
        tau: convention (default 1), > 0.

    Returns:
        A :class:`SeluParameters` with the Jacobian and its spectral norm at the fixed point.

    Raises:
        ValueError: ``var <= 0``, ``tau <= 0``, non-finite input, or a target that no
            :math:`(\lambda > 0, \alpha > 0)` reaches (the message gives the reachable
            range of ``mean / sqrt(var)``).

    Example:
        >>> p = solve_selu_parameters()
        >>> round(p.lam, 12), round(p.alpha, 12), round(p.spectral_norm, 7)
        (1.050700987355, 1.673263242354, 0.7876734)
    """
    mean = _real(mean, "mean")
    var = _positive(var, "var")
    omega, tau = _check_convention(omega, tau)
    m = mean * omega
    s = math.sqrt(var * tau)
    target = mean / math.sqrt(var)

    def ratio(log_alpha: float) -> float:
        e, v = _elu_mean_var(math.exp(log_alpha), m, s)
        return e / math.sqrt(v)

    lo, hi = -_LOG_ALPHA_BOUND, _LOG_ALPHA_BOUND
    r_lo, r_hi = ratio(lo), ratio(hi)  # r decreases: r(0+) ~ r_lo > r_hi ~ r(inf)
    if not r_hi < target < r_lo:
        raise ValueError(
            f"no SELU parameters (lambda > 0, alpha > 0) have the fixed point "
            f"(mean={mean:g}, var={var:g}) with omega={omega:g}, tau={tau:g}: "
            f"mean/sqrt(var) = {target:.6g} must lie in ({r_hi:.6g}, {r_lo:.6g})"
        )
    log_alpha = brentq(lambda t: ratio(t) - target, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
    alpha = math.exp(log_alpha)
    _, v = _elu_mean_var(alpha, m, s)
    lam = math.sqrt(var / v)
    jac = moment_map_jacobian(mean, var, lam=lam, alpha=alpha, omega=omega, tau=tau)
    return SeluParameters(
        lam=lam,
        alpha=alpha,
        mean=mean,
        var=var,
        omega=omega,
        tau=tau,
        jacobian=jac,
        spectral_norm=float(np.linalg.norm(jac, 2)),
    )


def alpha_dropout_parameters(
    rate: float,
    *,
    mean: float = 0.0,
    var: float = 1.0,
    lam: float | None = None,
    alpha: float | None = None,
    omega: float = 0.0,
    tau: float = 1.0,
) -> AlphaDropoutParameters:
    r"""AlphaDropout parameters that keep the fixed point ``(mean, var)``.

    A unit is kept with probability :math:`q = 1 - \text{rate}`, else set to
    :math:`\alpha' = -\lambda\alpha` (SELU's saturation value); then :math:`a x + b`.
    For inputs of mean :math:`\mu` and variance :math:`\nu` the dropped-out variable has
    mean :math:`q\mu + (1-q)\alpha'` and variance :math:`q\nu + q(1-q)(\mu - \alpha')^2`, so

    .. math:: a = \sqrt{\frac{\nu}{q\nu + q(1-q)(\mu-\alpha')^2}},\qquad
              b = \mu - a\,(q\mu + (1-q)\alpha').

    At :math:`(\mu, \nu) = (0, 1)` this is the paper's
    :math:`a = (q + \alpha'^2 q(1-q))^{-1/2}`, :math:`b = -a(1-q)\alpha'` (and what
    ``torch.nn.AlphaDropout`` uses).

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515
        (Section "New Dropout Technique").

    Arguments:
        rate: dropout rate in [0, 1).
        mean: fixed-point mean :math:`\mu`.
        var: fixed-point variance :math:`\nu` (> 0).
        lam: SELU :math:`\lambda`; with ``alpha``, or both ``None`` to use the constants
            solved for ``(mean, var)`` by :func:`solve_selu_parameters`.
        alpha: SELU :math:`\alpha` (> 0).
        omega, tau: the convention used when solving for ``lam`` and ``alpha``.

    Example:
        >>> p = alpha_dropout_parameters(0.05)
        >>> round(p.a, 5), round(p.b, 5)
        (0.95484, 0.08394)
    """
    rate = _real(rate, "rate")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    mean = _real(mean, "mean")
    var = _positive(var, "var")
    if (lam is None) != (alpha is None):
        raise ValueError("give both lam and alpha, or neither (then they are solved for)")
    if lam is None or alpha is None:
        solved = solve_selu_parameters(mean, var, omega=omega, tau=tau)
        lam_f, alpha_f = solved.lam, solved.alpha
    else:
        lam_f, alpha_f = _positive(lam, "lam"), check_alpha(alpha)
    alpha_prime = -lam_f * alpha_f
    q = 1.0 - rate
    a = math.sqrt(var / (q * var + q * rate * (mean - alpha_prime) ** 2))
    b = mean - a * (q * mean + rate * alpha_prime)
    return AlphaDropoutParameters(a=a, b=b, alpha_prime=alpha_prime, rate=rate, mean=mean, var=var)
