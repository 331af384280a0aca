r"""RNN gradient probe: how much a backpropagated gradient shrinks or grows per time step.

For a vanilla RNN :math:`h_t = f(z_t)`, :math:`z_t = W h_{t-1} + U x_t + b`, one step of
backpropagation maps :math:`u_t = \partial L/\partial h_t` to
:math:`u_{t-1} = W^\top (f'(z_t) \odot u_t)`. :func:`probe_gradient` runs the RNN
forward, then backpropagates a random unit vector :math:`u_T = v` from the last state,
recording :math:`\log\|u_{T-k}\| = \log\|v^\top \partial h_T / \partial h_{T-k}\|`
against the lag ``k`` (renormalised each step, so nothing under- or overflows at long
lags). :func:`fit_log_gain` turns such a curve into a per-step gain: ``exp`` of its
least-squares slope against ``k``.

:func:`gain_probe` measures that gain (the curve is the batch mean of the log norms,
a geometric mean) and compares it with per-step predictions from the recorded
pre-activations, each turned into a predicted log-norm curve and summarised by the same
slope (:data:`GAIN_PREDICTIONS`). With ``W = g Q`` (``Q`` orthogonal)

.. math::
    \frac{\|u_{t-1}\|^2}{\|u_t\|^2} = g^2\,\frac{\sum_i f'(z_{t,i})^2 u_{t,i}^2}{\sum_i u_{t,i}^2}
    \approx g^2\,\mathbb E[f'(z)^2],

so the mean-field gain of the norm is :math:`g\sqrt{\mathbb E[f'^2]}` (the square root of
:math:`\chi_1`), while :math:`g\,\mathbb E[f']` replaces ``diag(f')`` by its mean. The
expectations are taken under :math:`\mathcal N(0, 1)`, under :math:`\mathcal N(\mu_t,
\sigma_t^2)` fitted to step ``t`` (closed forms or quadrature from
:func:`elulab.theory.gaussian_moments`), and as plain means of :math:`f'(z_t)`.

References:
    | On the difficulty of training recurrent neural networks (Pascanu, Mikolov and
    | Bengio, 2013), https://arxiv.org/abs/1211.5063

    | Exponential expressivity in deep neural networks through transient chaos (Poole,
    | Lahiri, Raghu, Sohl-Dickstein and Ganguli, 2016), https://arxiv.org/abs/1606.05340

Example:
    >>> import torch
    >>> from elulab.nn import orthogonal
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = torch.randn(8, 20, 3, generator=gen, dtype=torch.float64)
    >>> u = torch.randn(32, 3, generator=gen, dtype=torch.float64) * 0.4
    >>> linear = {"activation": "leaky_relu", "negative_slope": 1.0}  # f(x) = x, f' = 1
    >>> p = gain_probe(x, 0.9 * orthogonal(32, gen), u, generator=gen, **linear)
    >>> round(p.gain, 12), round(math.exp(p.predicted["slope_n01"]), 12)
    (0.9, 0.9)
    >>> p = gain_probe(x, 1.0 * orthogonal(32, gen), u, "relu", generator=gen)
    >>> round(math.exp(p.predicted["slope_n01"]), 12), round(math.exp(p.predicted["rms_n01"]), 4)
    (0.5, 0.7071)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..functional import activation_derivative, activation_function
from ..theory.gaussian import gaussian_moments

__all__ = ["GAIN_PREDICTIONS", "GainProbe", "fit_log_gain", "gain_probe", "probe_gradient"]

#: Prediction kinds of :func:`gain_probe`: (key, meaning). "slope" = g E[f'], "rms" =
#: g sqrt(E[f'^2]); "n01" under N(0, 1), "fit" under the fitted N(mu_t, sigma_t^2),
#: "emp" the empirical means over the pre-activations of each step.
GAIN_PREDICTIONS: tuple[tuple[str, str], ...] = (
    ("slope_n01", "g E[f'], z ~ N(0,1)"),
    ("rms_n01", "g sqrt(E[f'^2]), z ~ N(0,1)"),
    ("slope_fit", "g E[f'], z ~ N(mu_t, sigma_t^2) fitted"),
    ("rms_fit", "g sqrt(E[f'^2]), z ~ N(mu_t, sigma_t^2) fitted"),
    ("slope_emp", "g mean f'(z_t), empirical"),
    ("rms_emp", "g sqrt(mean f'(z_t)^2), empirical"),
)
_KINDS = tuple(k for k, _ in GAIN_PREDICTIONS)
# where the bounds of f' are read (0 included: the kink of relu and the ELU family)
_GRID = torch.cat([torch.linspace(-30.0, 30.0, 6001, dtype=torch.float64), torch.zeros(1)])


def fit_log_gain(log_norms: np.ndarray) -> float:
    """Least-squares slope of ``log_norms[k]`` against the lag ``k = 0, 1, ...``.

    ``exp`` of it is the per-step gain; applied to measured and predicted curves alike.
    NaN when a value is not finite (e.g. a prediction that is unavailable).

    Example:
        >>> round(fit_log_gain(np.log(0.5) * np.arange(10.0)), 6)
        -0.693147
    """
    y = np.asarray(log_norms, dtype=np.float64)
    if y.ndim != 1 or y.size < 2:
        raise ValueError(f"log_norms must be a 1-d curve of >= 2 lags, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        return math.nan
    k = np.arange(y.size, dtype=np.float64)
    return float(np.polyfit(k, y, 1)[0])


def probe_gradient(
    x: torch.Tensor,
    w: torch.Tensor,
    u: torch.Tensor,
    activation: str,
    *,
    generator: torch.Generator | None = None,
    bias: torch.Tensor | None = None,
    **params: float,
) -> tuple[np.ndarray, torch.Tensor]:
    r"""Backpropagate a random unit vector from :math:`h_T` through a vanilla RNN.

    Runs :math:`h_t = f(W h_{t-1} + U x_t + b)` from :math:`h_0 = 0`, then
    :math:`u_T = v` (unit, random), :math:`u_{t-1} = W^\top (f'(z_t) \odot u_t)`, i.e.
    :math:`u_{T-k} = v^\top \partial h_T / \partial h_{T-k}`, in the dtype of ``w``.

    Args:
        x: inputs ``(B, T, d)``.
        w: recurrent matrix ``(n, n)``.
        u: input matrix ``(n, d)``.
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES`.
        generator: draws ``v``.
        bias: ``b`` of shape ``(n,)`` (default 0).
        params: the activation's keyword parameters (e.g. ``alpha=1.0`` for ``elu``).

    Returns:
        ``(log_norms, z)``: ``log ||u_{T-k}||`` of shape ``(B, T + 1)`` (column ``k`` is
        lag ``k``; column 0 is 0) and the pre-activations ``z`` of shape ``(T, B, n)``.
    """
    f, fprime = activation_function(activation), activation_derivative(activation)
    if (
        x.dim() != 3
        or w.dim() != 2
        or w.shape[0] != w.shape[1]
        or u.shape != (w.shape[0], x.shape[2])
    ):
        raise ValueError(
            "probe_gradient: need x (B, T, d), w (n, n), u (n, d); got "
            f"{tuple(x.shape)}, {tuple(w.shape)}, {tuple(u.shape)}"
        )
    b, t_len, _ = x.shape
    n = w.shape[0]
    h = torch.zeros(b, n, dtype=w.dtype)
    zs = torch.empty(t_len, b, n, dtype=w.dtype)
    with torch.no_grad():
        for t in range(t_len):
            z = h @ w.T + x[:, t] @ u.T
            if bias is not None:
                z = z + bias
            zs[t] = z
            h = f(z, **params)
        v = torch.randn(b, n, generator=generator, dtype=w.dtype)
        v = v / v.norm(dim=1, keepdim=True)
        log_norms = torch.zeros(b, t_len + 1, dtype=torch.float64)
        log_acc = torch.zeros(b, dtype=torch.float64)
        for k in range(1, t_len + 1):
            v = (fprime(zs[t_len - k], **params) * v) @ w
            nrm = v.norm(dim=1)
            log_acc = log_acc + torch.log(nrm.to(torch.float64))
            log_norms[:, k] = log_acc
            v = v / nrm.clamp_min(torch.finfo(w.dtype).tiny).unsqueeze(1)
    return log_norms.numpy(), zs


def _slope_moments(
    activation: str, mu: np.ndarray | float, sigma: np.ndarray | float, **params: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(E[f'], E[f'^2])`` under ``N(mu, sigma^2)`` elementwise; NaN where unavailable.

    A state that explodes forward gives ``sigma >> 1``, where a closed form can lose its
    digits (``exp`` of ``s^2/2`` against ``log Phi``). Values outside bounds that any
    correct one obeys, ``lo <= E[f'] <= hi``, ``E[f']^2 <= E[f'^2] <= max(lo^2, hi^2)``
    (``[lo, hi]`` the range of ``f'`` on a grid of [-30, 30] with 0, widened to 0;
    1e-12 rounding slack), are returned as NaN. A constant ``f'`` is exact.
    """
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    d = activation_derivative(activation)(_GRID, **params)
    lo, hi = min(0.0, float(d.min())), float(d.max())
    if float(d.min()) == hi:  # f' constant (linear): E[f'] = f', E[f'^2] = f'^2 exactly
        full = np.full(np.broadcast_shapes(mu.shape, sigma.shape), hi)
        return full, full * hi
    with np.errstate(over="ignore", invalid="ignore"):
        m = gaussian_moments(activation, mu, sigma, **params)
        slope = np.asarray(m.mean_slope, dtype=np.float64)
        slope_sq = np.asarray(m.mean_slope_sq, dtype=np.float64)
    eps = 1e-12
    bad = ~(np.isfinite(slope) & np.isfinite(slope_sq))
    bad |= (slope < lo - eps) | (slope > hi + eps) | (slope_sq > max(lo * lo, hi * hi) + eps)
    bad |= slope * slope > slope_sq * (1 + 1e-9) + eps
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, slope_sq)


def _predicted_log_gains(
    zs: torch.Tensor, activation: str, g: float, params: dict[str, float]
) -> dict[str, np.ndarray]:
    """Per-step log gains (length T, step t = 1..T) for every prediction kind."""
    t_len = zs.shape[0]
    flat = zs.reshape(t_len, -1)
    mu = flat.mean(dim=1).numpy()
    sigma = np.maximum(flat.std(dim=1).numpy(), 1e-12)  # sigma > 0 for theory.gaussian
    d = activation_derivative(activation)(flat, **params)
    s01, s01sq = _slope_moments(activation, 0.0, 1.0, **params)
    sfit, sfitsq = _slope_moments(activation, mu, sigma, **params)
    vals = {
        "slope_n01": np.full(t_len, float(s01)),
        "rms_n01": np.full(t_len, math.sqrt(float(s01sq))),
        "slope_fit": sfit,
        "rms_fit": np.sqrt(sfitsq),
        "slope_emp": d.mean(dim=1).numpy(),
        "rms_emp": torch.sqrt((d * d).mean(dim=1)).numpy(),
    }
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero slope -> log -inf
        out = {k: math.log(g) + np.log(np.asarray(v, dtype=np.float64)) for k, v in vals.items()}
    out["mu"], out["sigma"] = mu, sigma
    return out


@dataclass(frozen=True)
class GainProbe:
    """What :func:`gain_probe` measured, as log per-step gains (``exp`` gives the gain).

    Args:
        measured: the least-squares log gain of ``curve``.
        curve: the batch mean of ``log ||u_{T-k}||`` for ``k = 0..T``.
        predicted: ``{kind: log gain}`` for every kind of :data:`GAIN_PREDICTIONS`
            (NaN where a step's prediction is unavailable).
        curves: ``{kind: predicted log-norm curve}``, like ``curve``.
        z_mean, z_std: medians over steps of the pre-activations' mean and std (medians:
            when the state explodes forward the mean over steps is dominated by the end).
        norm: the scale ``g`` used in the predictions.
    """

    measured: float
    curve: np.ndarray
    predicted: dict[str, float]
    curves: dict[str, np.ndarray]
    z_mean: float
    z_std: float
    norm: float

    @property
    def gain(self) -> float:
        """The measured per-step gain, ``exp(measured)``."""
        return math.exp(self.measured)

    def summary(self) -> dict[str, float]:
        """Named numbers: ``measured_gain``; per kind ``pred_<kind>`` (a gain) and
        ``logratio_<kind>`` (``log(measured / predicted)``); ``z_mean``, ``z_std``;
        ``log10_norm_at_max_lag`` (of the measured curve's last point)."""
        out = {"measured_gain": self.gain, "z_mean": self.z_mean, "z_std": self.z_std}
        for k in _KINDS:
            out[f"pred_{k}"] = math.exp(self.predicted[k])
            out[f"logratio_{k}"] = self.measured - self.predicted[k]
        out["log10_norm_at_max_lag"] = float(self.curve[-1] / math.log(10))
        return out


def gain_probe(
    x: torch.Tensor,
    w: torch.Tensor,
    u: torch.Tensor,
    activation: str,
    *,
    norm: float | None = None,
    generator: torch.Generator | None = None,
    bias: torch.Tensor | None = None,
    **params: Any,
) -> GainProbe:
    """Measured per-step gradient gain of an RNN and its predictions (module docstring).

    Args:
        x, w, u, activation, generator, bias, params: as in :func:`probe_gradient`.
        norm: the scale ``g`` of the predictions (default: the spectral norm of ``w``,
            which is ``g`` for ``W = g Q`` with ``Q`` orthogonal).

    Returns:
        A :class:`GainProbe`.
    """
    log_norms, zs = probe_gradient(x, w, u, activation, generator=generator, bias=bias, **params)
    g = float(torch.linalg.matrix_norm(w, ord=2)) if norm is None else float(norm)
    curve = log_norms.mean(axis=0)  # geometric mean over the batch
    per_step = _predicted_log_gains(zs, activation, g, params)
    # lag k crosses steps T, T-1, ..., T-k+1: cumulative sums from the end
    curves = {k: np.concatenate([[0.0], np.cumsum(per_step[k][::-1])]) for k in _KINDS}
    return GainProbe(
        measured=fit_log_gain(curve),
        curve=curve,
        predicted={k: fit_log_gain(c) for k, c in curves.items()},
        curves=curves,
        z_mean=float(np.median(per_step["mu"])),
        z_std=float(np.median(per_step["sigma"])),
        norm=g,
    )
