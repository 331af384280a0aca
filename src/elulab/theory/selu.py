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
    "NetStatistics",
    "SeluParameters",
    "alpha_dropout_parameters",
    "basin_of_attraction",
    "iterate_moment_map",
    "moment_map",
    "moment_map_flow",
    "moment_map_jacobian",
    "random_net_statistics",
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
    random_weights: bool = False,
) -> tuple[float | NDArray, float | NDArray]:
    r"""The SELU moment map :math:`(\mu, \nu) \mapsto (\tilde\mu, \tilde\nu)`.

    .. math:: \tilde\mu = E[\lambda\,\mathrm{elu}(z;\alpha)],\quad
              \tilde\nu = \operatorname{Var}[\lambda\,\mathrm{elu}(z;\alpha)],\quad
              z \sim \mathcal{N}(\mu\omega,\ \nu\tau).

    With ``random_weights`` the weights are i.i.d. :math:`\mathcal{N}(0, \tau/n)` (a
    randomly initialised layer) instead of normalised: their sum is random, so over the
    units :math:`z \sim \mathcal{N}(0, \tau(\nu + \mu^2))`: the input's mean enters
    through its square. At :math:`\mu = 0` both agree.

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515.

    Arguments:
        mu: input mean(s) :math:`\mu`.
        nu: input variance(s) :math:`\nu` (> 0).
        lam: SELU scale :math:`\lambda`.
        alpha: SELU :math:`\alpha` (> 0).
        omega: sum of the weights (default 0: the paper's normalised weights).
        tau: sum of the squared weights (default 1), > 0.
        random_weights: i.i.d. Gaussian weights (then ``omega`` must be 0).

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
    if random_weights:
        if omega != 0.0:
            raise ValueError(f"random_weights needs omega = 0 (a random sum), got {omega!r}")
        nu_a = nu_a + mu_a * mu_a
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
    random_weights: bool = False,
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
        lam, alpha, omega, tau, random_weights: as in :func:`moment_map`.
        min_var, max_var: the variance band outside which a point is stopped.

    Returns:
        ``(mu_n, nu_n, alive)``: floats and a bool for scalar input, arrays otherwise.

    Example:
        >>> m, v, alive = iterate_moment_map(0.0, 1.0, 200, tau=0.75**2)
        >>> round(m, 4), round(v, 4), alive  # Kaiming's SELU gain: a fixed point near 0
        (-0.0284, 0.0268, True)
        >>> m, v, _ = iterate_moment_map(0.0, 1.0, 200, tau=0.75**2, random_weights=True)
        >>> round(m, 4), round(v, 4)  # the same with random (not normalised) weights
        (-0.0335, 0.0398)
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    lo, hi = _real(min_var, "min_var"), _positive(max_var, "max_var")
    m0, v0 = np.broadcast_arrays(np.asarray(mu, np.float64), np.asarray(nu, np.float64))
    shape = m0.shape
    m, v = m0.ravel().copy(), v0.ravel().copy()
    alive = np.ones(m.shape, dtype=bool)
    kw = {"random_weights": bool(random_weights)}
    for _ in range(steps):
        if not alive.any():
            break
        m[alive], v[alive] = moment_map(
            m[alive], v[alive], lam=lam, alpha=alpha, omega=omega, tau=tau, **kw
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


# -- finite-width spread of a deep random network's per-layer statistics -----------------


@dataclass(frozen=True)
class NetStatistics:
    """Predicted pooled statistics of each layer of a deep random net, and their spread.

    Arguments:
        mean, var: the expected pooled mean and variance of each layer's activations
            (over units and inputs), to second order in the finite-width fluctuations.
        sd_mean, sd_var: their standard deviations over random networks (weights and
            dropout masks) at the given width, for the given inputs.
        contraction: :math:`J_l = \\partial s_l / \\partial s_{l-1}`, the slope of the
            second-moment map along the trajectory (the AR(1) coefficient of the spread).
        corr_sq: the mean over input pairs of the squared correlation between their
            activation vectors at each layer, :math:`E[\\hat c^2]` (mean-field plus
            finite-width part; the pairs are those of the first ``pair_inputs`` inputs).
    """

    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    sd_mean: NDArray[np.float64]
    sd_var: NDArray[np.float64]
    contraction: NDArray[np.float64]
    corr_sq: NDArray[np.float64]


def _dropout_rule(dropout: str, rate: float) -> tuple[float, float, float, float]:
    """``(keep, a, b, d)``: a unit is ``a f + b`` with probability ``keep``, else ``d``."""
    if dropout == "none":
        return 1.0, 1.0, 0.0, 0.0
    rate = _real(rate, "rate")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1) with dropout, got {rate!r}")
    if dropout == "standard":  # nn.Dropout: zero, or scale by 1/keep
        return 1.0 - rate, 1.0 / (1.0 - rate), 0.0, 0.0
    if dropout == "alpha":  # elulab.nn.AlphaDropout(rate): the (0, 1) SELU constants
        p = alpha_dropout_parameters(rate)
        return 1.0 - rate, p.a, p.b, p.a * p.alpha_prime + p.b
    raise ValueError(f"dropout must be 'none', 'alpha' or 'standard', got {dropout!r}")


_C_MAX = 1.0 - 1e-12  # correlations are clipped to +-_C_MAX before Fisher's z
# the 3-point Gauss-Hermite rule (exact to degree 5) of the inputs' second-moment closure
_XI3, _W3 = np.array([-math.sqrt(3.0), 0.0, math.sqrt(3.0)]), np.array([1.0, 4.0, 1.0]) / 6.0


def _hermite_rule(terms: int, points: int = 120, half: float = 12.0) -> tuple[NDArray, ...]:
    """Nodes ``u``, weights (times the normal density) and ``He_k(u)/sqrt(k!)``, k = 1..K.

    Gauss-Legendre on ``[-half, 0]`` and ``[0, half]`` (the ELU kink sits at the split).
    """
    t, w = np.polynomial.legendre.leggauss(points)
    u = np.concatenate([(t - 1.0) * half / 2, (t + 1.0) * half / 2])
    wq = np.concatenate([w, w]) * half / 2 * np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    h = np.empty((terms + 1, u.size))
    h[0], h[1] = 1.0, u
    for k in range(1, terms):
        h[k + 1] = (u * h[k] - math.sqrt(k) * h[k - 1]) / math.sqrt(k + 1)
    return u, wq, h[1:]


def random_net_statistics(
    x: ArrayLike,
    depth: int,
    width: int,
    *,
    lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA,
    gain: float = 1.0,
    dropout: str = "none",
    rate: float = 0.1,
    pair_inputs: int = 128,
    terms: int = 32,
    nodes: int = 7,
) -> NetStatistics:
    r"""Per-layer pooled mean and variance of a deep random net, and their spread at width w.

    The net: :math:`h_l = D(f(W_l h_{l-1}))`, :math:`f = \lambda\,\mathrm{elu}(\cdot;\alpha)`,
    :math:`W_l \sim \mathcal{N}(0, \text{gain}^2/\text{fan-in})` i.i.d., zero biases, ``D``
    dropout (none; ``nn.Dropout``; :class:`elulab.nn.AlphaDropout` with the (0, 1)
    constants), for the ``n`` inputs ``x``. Layer ``l`` reports
    :math:`m_l = \overline{y}`, :math:`v_l = \overline{y^2} - m_l^2` over units and inputs.

    Given layer :math:`l-1` the units are i.i.d.: unit ``j`` sees :math:`z_j \sim
    \mathcal{N}(0, \tau K)`, :math:`\tau = \text{gain}^2`, ``K`` the inputs' Gram matrix
    (:math:`K_{ab} = h_a \cdot h_b / \text{fan-in}`). So :math:`s_l = \overline{y^2}` is a mean
    of ``w`` i.i.d. terms :math:`B_j = \frac1n \sum_a y_{ja}^2` and, by Mehler's formula
    (:math:`\beta_k` the Hermite coefficients of :math:`E[y^2 \mid u]`, ``u`` the
    standardised pre-activation, :math:`\hat c_{ab}` the inputs' correlations),

    .. math:: \operatorname{Var} B_j = \frac{\operatorname{Var} y^2}{n}
              + \Big(1 - \frac1n\Big) \sum_{k \ge 1} \beta_k^2\, E\big[\hat c^{\,k}\big],

    likewise :math:`A_j = \frac1n\sum_a y_{ja}`. Linearised, the pooled second moment is
    an AR(1) process, :math:`\delta s_l = J_l\,\delta s_{l-1} + \varepsilon_l`,
    :math:`\operatorname{Var}\varepsilon_l = \operatorname{Var} B_j / w`, with
    :math:`J_l = \partial E[y^2]/\partial s` (the moment map's Jacobian eigenvalue; 0.7826
    at SELU's (0, 1)): :math:`V_l = J_l^2 V_{l-1} + \operatorname{Var}\varepsilon_l`,
    stationary :math:`\sigma_\varepsilon^2 / (1 - J^2)`; and
    :math:`\delta m_l = G_l\,\delta s_{l-1} + \eta_l`, :math:`\delta v = \delta s - 2m\,\delta m`.

    The correlations are not the inputs': at finite width each :math:`\hat c_{ab}` is a
    sample correlation over ``w`` units, gaining :math:`\approx (1 - c^2)^2 / w` of
    variance per layer, and keeps :math:`\kappa'(c)^2` of it (the correlation map
    :math:`\kappa(c) = E[y_a y_b] / E[y^2]` has slope :math:`E[f']^2 = 0.97` at
    :math:`c = 0` for SELU), so :math:`E[\hat c^2] \to \approx 1/(w(1 - 0.97^2)) = 17/w`,
    and this term, not :math:`\operatorname{Var} y^2 / n`, sets the spread
    (:math:`\mathrm{sd}(v) \propto 1/w`). Each pair's correlation is carried through
    :math:`\kappa` as a Gaussian in Fisher's :math:`\operatorname{atanh} c` (variance
    :math:`+1/w` per layer) with ``nodes`` Gauss-Hermite points, and each input's own
    second moment :math:`K_{aa}` (variance :math:`\operatorname{Var} y^2 / w` per layer)
    as a Gaussian through the moment map with 3 points: the second-order bias of the
    mean trajectory. Checked against Monte Carlo nets in ``tests/test_theory_selu_spread.py``
    (standard deviations within 12%; measured: mostly within 5%, up to 10% narrow at 128
    layers, where the Fisher-z closure under-counts the correlations' spread).

    References:
        Self-Normalizing Neural Networks, Klambauer et al., 2017, arXiv:1706.02515;
        Mehler's formula; Poole et al., Exponential expressivity in deep neural networks
        through transient chaos, 2016, arXiv:1606.05340 (the correlation map).

    Arguments:
        x: the inputs, shape ``(n, fan_in)``, ``n >= 2``.
        depth, width: layers and units per layer.
        lam, alpha: the activation ``lam * elu(x; alpha)`` (ELU: 1, 1).
        gain: weights :math:`\mathcal{N}(0, \text{gain}^2/\text{fan-in})`.
        dropout: ``"none"``, ``"standard"`` or ``"alpha"``, at ``rate`` (in (0, 1)).
        pair_inputs: the first this many inputs give the pair correlations.
        terms: Hermite terms (the rest of each series is put on the next power).
        nodes: Gauss-Hermite points of the Gaussian closures.

    Returns:
        A :class:`NetStatistics` of arrays of length ``depth``.

    Example:
        >>> x = np.random.default_rng(0).standard_normal((64, 32))
        >>> p = random_net_statistics(x, 16, 64)
        >>> round(float(p.var[-1]), 3), round(float(p.sd_var[-1]), 3)
        (0.973, 0.083)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite (n >= 2, fan_in) array, got shape {x.shape}")
    ints = {
        "depth": depth,
        "width": width,
        "terms": terms,
        "nodes": nodes,
        "pair_inputs": pair_inputs,
    }
    for name, value in ints.items():
        low = 2 if name == "pair_inputs" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    lam, alpha, tau = _real(lam, "lam"), check_alpha(alpha), _positive(gain, "gain") ** 2
    keep, a, b, d = _dropout_rule(dropout, rate)
    n = x.shape[0]
    s = np.einsum("ij,ij->i", x, x) / x.shape[1]  # each input's second moment K_aa
    xs = x[: min(pair_inputs, n)]
    gram = xs @ xs.T / x.shape[1]
    c = (gram / np.sqrt(np.outer(np.diag(gram), np.diag(gram))))[np.triu_indices(len(xs), 1)]
    c = np.arctanh(np.clip(c, -_C_MAX, _C_MAX))  # carried as Fisher's z
    s_var, c_var = np.zeros_like(s), np.zeros_like(c)
    xi, wxi = np.polynomial.hermite_e.hermegauss(nodes)
    wxi = wxi / wxi.sum()
    u, wq, herm = _hermite_rule(terms)
    big_v, ratio = 0.0, (n - 1) / n
    out = np.empty((6, depth))

    def post(f: NDArray, p: int) -> NDArray:  # E[y^p | f] over the dropout mask
        return keep * (a * f + b) ** p + (1.0 - keep) * d**p

    for layer in range(depth):
        q = tau * float(s.mean())
        z = math.sqrt(q) * u
        f = lam * np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))
        e = [float(wq @ post(f, p)) for p in range(5)]
        psi1, psi2 = post(f, 1), post(f, 2)
        h1, h2 = herm @ (wq * psi1), herm @ (wq * psi2)
        rest = (  # the series' remainders (Mehler at c = 1 gives the full covariance)
            float(wq @ psi1**2) - e[1] ** 2 - h1 @ h1,
            float(wq @ psi2**2) - e[2] ** 2 - h2 @ h2,
            float(wq @ (psi1 * psi2)) - e[1] * e[2] - h1 @ h2,
        )
        ce = np.tanh(c[:, None] + np.sqrt(c_var)[:, None] * xi)  # Fisher's z -> correlation
        cp = np.cumprod(np.repeat(ce[..., None], terms + 1, axis=-1), axis=-1)
        pk = ratio * np.einsum("pik,i->k", cp, wxi) / c.size  # (1 - 1/n) E[c^k]
        var_a = (e[2] - e[1] ** 2) / n + (h1 * h1) @ pk[:-1] + rest[0] * pk[-1]
        var_b = (e[4] - e[2] ** 2) / n + (h2 * h2) @ pk[:-1] + rest[1] * pk[-1]
        cov_ab = (e[3] - e[1] * e[2]) / n + (h1 * h2) @ pk[:-1] + rest[2] * pk[-1]
        jac = moment_map_jacobian(0.0, q, lam=lam, alpha=alpha)
        ef = float(gaussian_moments("elu", 0.0, math.sqrt(q), alpha=alpha, scale=lam).mean)
        d_mean, d_second = jac[0, 1], jac[1, 1] + 2.0 * ef * jac[0, 1]
        big_j = tau * keep * (a * a * d_second + 2.0 * a * b * d_mean)
        big_g = tau * keep * a * d_mean
        var_m = big_g**2 * big_v + var_a / width
        cov = big_g * big_j * big_v + cov_ab / width
        big_v = big_j**2 * big_v + var_b / width
        # each input's second moment, carried through the map as a Gaussian
        sp = np.maximum(s[:, None] + np.sqrt(s_var)[:, None] * _XI3, 1e-300)
        mom = gaussian_moments("elu", 0.0, np.sqrt(tau * sp), alpha=alpha, scale=lam)
        mu_p = keep * (a * mom.mean + b) + (1.0 - keep) * d
        second = mom.variance + mom.mean**2
        s_p = keep * (a * a * second + 2 * a * b * mom.mean + b * b) + (1.0 - keep) * d * d
        mean = float((mu_p @ _W3).mean())
        s = s_p @ _W3
        s_var = (s_p**2) @ _W3 - s**2 + (e[4] - e[2] ** 2) * (s / e[2]) ** 2 / width
        # each pair's correlation, carried through the correlation map as a Gaussian
        kap = e[1] ** 2 + cp[..., :-1] @ (h1 * h1) + rest[0] * cp[..., -1]
        kap = np.arctanh(np.clip(kap / e[2], -_C_MAX, _C_MAX))
        c = kap @ wxi
        c_var = np.maximum((kap**2) @ wxi - c**2, 0.0) + 1.0 / width
        sd_v = math.sqrt(max(big_v - 4 * mean * cov + 4 * mean**2 * var_m, 0.0))
        row = (mean, float(s.mean()) - mean**2 - var_m, math.sqrt(var_m), sd_v, big_j)
        out[:5, layer] = row
        out[5, layer] = float(
            (np.tanh(c[:, None] + np.sqrt(c_var)[:, None] * xi) ** 2 @ wxi).mean()
        )
    return NetStatistics(*(out[i].copy() for i in range(6)))
