r"""C2: RNN gradient flow -- does the expected slope predict the per-step gradient gain?

The claim (C2 in the ledger): in a vanilla RNN :math:`h_t = f(z_t)`,
:math:`z_t = W h_{t-1} + U x_t + b`, the gradient travelling back one step is multiplied
by about :math:`\|W\|_2 \, \mathbb E[f'(z)]`; for :math:`z \sim \mathcal N(0, 1)` ReLU gives
:math:`0.5` and ELU (:math:`\alpha = 1`) gives :math:`0.5 + e^{1/2}\Phi(-1) = 0.76158`,
closer to 1, so gradients travel further without exploding.

What is measured. One step of backpropagation maps :math:`u_t = \partial L/\partial h_t`
to :math:`u_{t-1} = W^\top (f'(z_t) \odot u_t)`. With :math:`W = g Q` (``Q`` random
orthogonal, so every singular value, the spectral norm included, is ``g``),

.. math::
    \frac{\|u_{t-1}\|^2}{\|u_t\|^2} = g^2 \, \frac{\sum_i f'(z_{t,i})^2 u_{t,i}^2}{\sum_i u_{t,i}^2}
    \;\approx\; g^2 \, \mathbb E[f'(z)^2]

whenever ``u_t`` is not aligned with the pattern of slopes (``Q`` mixes it). So the
mean-field prediction of the per-step gain of the gradient *norm* is
:math:`g \sqrt{\mathbb E[f'^2]}` (the square root of the mean-field
:math:`\chi_1 = \sigma_w^2 \mathbb E[f'^2]`), not :math:`g\,\mathbb E[f']`; by Jensen
:math:`\mathbb E[f'] \le \sqrt{\mathbb E[f'^2]}`, with equality only when ``f'`` is
constant. For ReLU the two are 0.5 and 0.707. This experiment measures which one fits.

Protocol, per seed:

1. *Gradient probe* on real sequences: each sequence is the 28-pixel rows of
   ``images_per_sequence`` MNIST images read one after the other (``28 k`` steps;
   ``k = 3`` gives lags up to 84, long enough to see a per-step gain of 0.5 shrink the
   gradient by 25 orders of magnitude). For each gain ``g`` and activation, the same
   ``Q`` and ``U`` (variance ``input_var`` per unit of ``U x``) are used; a random unit
   vector is backpropagated from :math:`h_T` in float64 and :math:`\log\|u_{T-k}\|` is
   recorded against the lag ``k``. The measured per-step gain is ``exp`` of the
   least-squares slope of the batch-mean log norm against the lag.
2. *Predictions*, per step, from the recorded pre-activations: :math:`g\,\mathbb E[f']`
   and :math:`g \sqrt{\mathbb E[f'^2]}` under :math:`\mathcal N(0,1)` (the claim's
   distribution), under :math:`\mathcal N(\mu_t, \sigma_t^2)` fitted to the pre-activations
   (closed forms from :mod:`elulab.theory.gaussian`), and as plain empirical means of
   :math:`f'(z_t)` (no Gaussian assumption). Each prediction is turned into a predicted
   log-norm curve and summarised by the same least-squares slope.
3. *Long-range task*: an RNN per activation (orthogonal init at ``train_gain``) is
   trained on "which digit came first": the 28 rows of a target image followed by
   ``delay`` rows of other images; the label is the target's, read out from the last
   hidden state (``delay = 0`` is row-sequential MNIST). Test accuracy, the largest gradient norm and whether training exploded
   (a non-finite loss or a gradient norm above ``explode_threshold``; no clipping) are
   recorded, and the probe of step 1 is repeated on the trained weights (whose spectral
   norm is then measured, not set).

Only the 10,000 MNIST test images exist here; they are split (by seed) 60/20/20 with
:func:`elulab.data.split_indices`; probe sequences and the task's test set come from the
20% test part, training from the 60% part (the validation part is not used: nothing is
tuned).

Verdict: effect = :math:`\log \hat\gamma_{\mathrm{ELU}} - \log \hat\gamma_{\mathrm{ReLU}}` at
the same ``W`` (gain ``verdict_gain``), with a t-interval over seeds. "Supported" needs the
effect > 0, ELU's measured gain < 1 + ``explode_tolerance`` (CI) and no ELU training run
exploding, *and* the stated formula :math:`\|W\|_2\,\mathbb E[f']` (fitted Gaussian) within
``prediction_tolerance`` in log of the measured gain for ReLU and ELU; if only the formula
fails, "mixed".

References:
    | Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
    | (Clevert, Unterthiner and Hochreiter, 2015), https://arxiv.org/abs/1511.07289

    | On the difficulty of training recurrent neural networks (Pascanu, Mikolov and
    | Bengio, 2013), https://arxiv.org/abs/1211.5063

    | Exponential expressivity in deep neural networks through transient chaos (Poole,
    | Lahiri, Raghu, Sohl-Dickstein and Ganguli, 2016), https://arxiv.org/abs/1606.05340

    | Deep Information Propagation (Schoenholz, Gilmer, Ganguli and Sohl-Dickstein, 2017),
    | https://arxiv.org/abs/1611.01232

Example:
    >>> from elulab.experiments import get_experiment
    >>> exp = get_experiment("rnn_gradient")
    >>> cfg = exp.resolve_config("quick", {"gains": "1.0", "train_steps": "0"})
    >>> cfg.gains, cfg.activations
    ((1.0,), ('relu', 'tanh', 'elu'))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import load_mnist, split_indices
from ..functional import elu as _elu
from ..functional import elu_derivative as _elu_derivative
from ..lab.api import Experiment, Figure, RunContext, RunResult, Series, Verdict
from ..lab.stats import decide, mean_ci, paired_ci
from ..theory.gaussian import gaussian_moments
from ._plotting import pyplot, save_figure

__all__ = [
    "ACTIVATIONS",
    "Config",
    "RNNGradientFlow",
    "fit_log_gain",
    "orthogonal",
    "probe_gradient",
]

# MNIST pixel statistics (mean, std of x / 255 over the 60k training images; the usual
# normalisation constants), used to standardise the rows fed to the RNN.
_PIXEL_MEAN, _PIXEL_STD = 0.1307, 0.3081

# Prediction kinds: (key, label). "slope" = g E[f'] (what the claim states),
# "rms" = g sqrt(E[f'^2]) (the mean-field gain of the gradient norm).
PREDICTIONS: tuple[tuple[str, str], ...] = (
    ("slope_n01", "g E[f'], z ~ N(0,1) (the claim)"),
    ("rms_n01", "g sqrt(E[f'^2]), z ~ N(0,1)"),
    ("slope_fit", "g E[f'], z ~ N(mu_t, sigma_t^2) fitted"),
    ("rms_fit", "g sqrt(E[f'^2]), z ~ N(mu_t, sigma_t^2) fitted"),
    ("slope_emp", "g mean f'(z_t), empirical"),
    ("rms_emp", "g sqrt(mean f'(z_t)^2), empirical"),
)
_KINDS = tuple(k for k, _ in PREDICTIONS)


def _relu_d(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _tanh_d(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return 1.0 - torch.tanh(z) ** 2


def _linear(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return z


def _linear_d(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.ones_like(z)


# name -> (f(z, alpha), f'(z, alpha)). "linear" (f' = 1) is the known-truth control:
# its per-step gain is exactly the spectral norm g.
ACTIVATIONS: dict[
    str,
    tuple[
        Callable[[torch.Tensor, float], torch.Tensor], Callable[[torch.Tensor, float], torch.Tensor]
    ],
] = {
    "relu": (lambda z, a: torch.relu(z), _relu_d),
    "tanh": (lambda z, a: torch.tanh(z), _tanh_d),
    "elu": (lambda z, a: _elu(z, alpha=a), lambda z, a: _elu_derivative(z, alpha=a)),
    "linear": (_linear, _linear_d),
}


@dataclass(frozen=True)
class Config:
    """Settings of the RNN gradient-flow experiment (see the module docstring).

    Args:
        seeds: number of independent seeds.
        activations: activations to compare (from :data:`ACTIVATIONS`).
        elu_alpha: the ELU's alpha.
        gains: spectral norms ``g`` of the recurrent matrix ``W = g Q`` in the probe.
        verdict_gain: the ``g`` at which ELU and ReLU are compared (one of ``gains``).
        hidden: hidden units of the probed RNN.
        images_per_sequence: images whose rows make one probe sequence (28 steps each).
        probe_batch: number of probe sequences.
        input_var: variance of one unit of ``U x_t`` for a standardised input row.
        train_steps: optimisation steps of the long-range task (0 skips it).
        train_hidden: hidden units of the trained RNN.
        train_gain: spectral norm of the trained RNN's initial ``W``.
        delay: rows of other images shown after the target in the long-range task.
        batch_size: minibatch size of the task.
        lr: Adam learning rate.
        eval_size: test sequences used for the task's accuracy.
        explode_threshold: a gradient norm above this counts as an explosion.
        prediction_tolerance: largest ``|log(measured / predicted)|`` counted as accurate.
        explode_tolerance: ELU's gain must stay below ``1 + explode_tolerance``.
    """

    seeds: int = 3
    activations: tuple[str, ...] = ("relu", "tanh", "elu")
    elu_alpha: float = 1.0
    gains: tuple[float, ...] = (1.0, 1.25, 1.5)
    verdict_gain: float = 1.0
    hidden: int = 128
    images_per_sequence: int = 3
    probe_batch: int = 128
    input_var: float = 0.5
    train_steps: int = 300
    train_hidden: int = 64
    train_gain: float = 1.0
    delay: int = 0
    batch_size: int = 64
    lr: float = 2e-3
    eval_size: int = 1000
    explode_threshold: float = 1000.0
    prediction_tolerance: float = 0.1
    explode_tolerance: float = 0.0

    def validate(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if not self.activations:
            raise ValueError("activations must not be empty")
        for a in self.activations:
            if a not in ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; allowed: {', '.join(ACTIVATIONS)}")
        if len(set(self.activations)) != len(self.activations):
            raise ValueError(f"activations must be distinct, got {self.activations}")
        if not (self.elu_alpha > 0 and math.isfinite(self.elu_alpha)):
            raise ValueError(f"elu_alpha must be positive, got {self.elu_alpha}")
        if not self.gains or any(not (g > 0 and math.isfinite(g)) for g in self.gains):
            raise ValueError(f"gains must be positive numbers, got {self.gains}")
        if self.verdict_gain not in self.gains:
            raise ValueError(f"verdict_gain {self.verdict_gain} must be one of gains {self.gains}")
        for name in ("hidden", "images_per_sequence", "probe_batch", "train_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.probe_batch < 2:
            raise ValueError(f"probe_batch must be >= 2, got {self.probe_batch}")
        if self.train_steps < 0 or self.delay < 0:
            raise ValueError("train_steps and delay must be >= 0")
        if self.batch_size < 1 or self.eval_size < 1:
            raise ValueError("batch_size and eval_size must be >= 1")
        for name in ("input_var", "lr", "train_gain", "explode_threshold", "prediction_tolerance"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if not (self.explode_tolerance >= 0 and math.isfinite(self.explode_tolerance)):
            raise ValueError(f"explode_tolerance must be >= 0, got {self.explode_tolerance}")


def orthogonal(
    n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """A Haar-random ``n x n`` orthogonal matrix (QR of a Gaussian, signs fixed).

    Example:
        >>> q = orthogonal(4, torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(q @ q.T, torch.eye(4, dtype=q.dtype)))
        True
    """
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.to(dtype)


def fit_log_gain(log_norms: np.ndarray) -> float:
    """Least-squares slope of ``log_norms[k]`` against the lag ``k = 0, 1, ...``.

    ``exp`` of it is the per-step gain; applied to measured and predicted curves alike.

    Returns NaN when a value is not finite (e.g. a prediction that is unavailable).

    Example:
        >>> round(fit_log_gain(np.log(0.5) * np.arange(10.0)), 6)
        -0.693147
    """
    y = np.asarray(log_norms, dtype=np.float64)
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
    alpha: float = 1.0,
    generator: torch.Generator | None = None,
    bias: torch.Tensor | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    r"""Backpropagate a random unit vector from :math:`h_T` through a vanilla RNN.

    Runs :math:`h_t = f(W h_{t-1} + U x_t + b)` from :math:`h_0 = 0`, then
    :math:`u_T = v` (unit, random), :math:`u_{t-1} = W^\top (f'(z_t) \odot u_t)`, i.e.
    :math:`u_{T-k} = v^\top \partial h_T / \partial h_{T-k}`.

    Args:
        x: inputs ``(B, T, d)``.
        w: recurrent matrix ``(n, n)``.
        u: input matrix ``(n, d)``.
        activation: a key of :data:`ACTIVATIONS`.
        alpha: ELU's alpha.
        generator: draws ``v``.
        bias: ``b`` of shape ``(n,)`` (default 0).

    Returns:
        ``(log_norms, z)``: ``log ||u_{T-k}||`` of shape ``(B, T + 1)`` (column ``k`` is
        lag ``k``; column 0 is 0) and the pre-activations ``z`` of shape ``(T, B, n)``.
    """
    f, fprime = ACTIVATIONS[activation]
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
            h = f(z, alpha)
        v = torch.randn(b, n, generator=generator, dtype=w.dtype)
        v = v / v.norm(dim=1, keepdim=True)
        log_norms = torch.zeros(b, t_len + 1, dtype=torch.float64)
        # renormalise each step and accumulate the log, so no under/overflow at long lags
        log_acc = torch.zeros(b, dtype=torch.float64)
        for k in range(1, t_len + 1):
            v = (fprime(zs[t_len - k], alpha) * v) @ w
            nrm = v.norm(dim=1)
            log_acc = log_acc + torch.log(nrm.to(torch.float64))
            log_norms[:, k] = log_acc
            v = v / nrm.clamp_min(torch.finfo(w.dtype).tiny).unsqueeze(1)
    return log_norms.numpy(), zs


def _slope_moments(
    activation: str, mu: np.ndarray | float, sigma: np.ndarray | float, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(E[f'], E[f'^2])`` under ``N(mu, sigma^2)`` (elementwise), from theory.gaussian."""
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if activation == "linear":
        one = np.ones(np.broadcast_shapes(mu.shape, sigma.shape))
        return one, one
    kw: dict[str, float] = {"alpha": alpha} if activation == "elu" else {}
    # A state that explodes forward gives sigma >> 1; where the closed form cannot be
    # evaluated there (overflow), the prediction is NaN: reported as unavailable, never used.
    with np.errstate(over="ignore", invalid="ignore"):
        m = gaussian_moments(activation, mu, sigma, **kw)
        slope = np.asarray(m.mean_slope, dtype=np.float64)
        slope_sq = np.asarray(m.mean_slope_sq, dtype=np.float64)
    # Sanity bounds that any correct value obeys: 0 <= f' <= f'_max, so
    # 0 <= E[f'] <= f'_max, E[f']^2 <= E[f'^2] <= f'_max^2 (1e-12: rounding slack).
    # They catch the closed form going wrong for a huge sigma (rounding in exp of
    # s^2/2 + log Phi(.)); such values are treated as unavailable.
    top = max(1.0, alpha) if activation == "elu" else 1.0
    eps = 1e-12
    bad = ~(np.isfinite(slope) & np.isfinite(slope_sq))
    bad |= (slope < -eps) | (slope > top + eps) | (slope_sq > top * top + eps)
    bad |= slope * slope > slope_sq * (1 + 1e-9) + eps
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, slope_sq)


def _predicted_log_gains(
    zs: torch.Tensor, activation: str, g: float, alpha: float
) -> dict[str, np.ndarray]:
    """Per-step log gains (length T, step t = 1..T) for every prediction kind."""
    _, fprime = ACTIVATIONS[activation]
    t_len = zs.shape[0]
    flat = zs.reshape(t_len, -1)
    mu = flat.mean(dim=1).numpy()
    sigma = np.maximum(flat.std(dim=1).numpy(), 1e-12)  # sigma > 0 for theory.gaussian
    d = fprime(flat, alpha)
    s01, s01sq = _slope_moments(activation, 0.0, 1.0, alpha)
    sfit, sfitsq = _slope_moments(activation, mu, sigma, alpha)
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


def _rows(images: torch.Tensor) -> torch.Tensor:
    """``(n, 1, 28, 28)`` images in [0, 1] -> standardised rows ``(n, 28, 28)``."""
    return (images[:, 0] - _PIXEL_MEAN) / _PIXEL_STD


def _sequences(
    rows: torch.Tensor, first: torch.Tensor, n_after: int, pool: np.ndarray, gen: torch.Generator
) -> torch.Tensor:
    """Rows of images ``first`` followed by ``n_after`` rows of random images of ``pool``.

    The extra rows are whole images read one after the other (a new random image every
    28 rows), cut after ``n_after`` rows.
    """
    parts = [rows[first]]
    for _ in range(-(-n_after // 28)):
        pick = torch.from_numpy(pool)[torch.randint(len(pool), (len(first),), generator=gen)]
        parts.append(rows[pick])
    return torch.cat(parts, dim=1)[:, : 28 + n_after]


def _cell(v: float) -> float | None:
    """A JSON-able table/series cell: a float, or None where the value is unavailable."""
    v = float(v)
    return v if math.isfinite(v) else None


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (unavailable seeds); NaN where all are NaN."""
    ok = np.isfinite(a)
    count = ok.sum(0)
    total = np.where(ok, a, 0.0).sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _gain_key(g: float) -> str:
    return f"g{g:g}"


def _probe(
    x: torch.Tensor,
    w: torch.Tensor,
    u: torch.Tensor,
    act: str,
    g: float,
    alpha: float,
    gen: torch.Generator,
    bias: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Measured and predicted log-norm curves and gains for one (activation, W)."""
    log_norms, zs = probe_gradient(x, w, u, act, alpha=alpha, generator=gen, bias=bias)
    mean_curve = log_norms.mean(axis=0)  # geometric mean over the batch
    measured = fit_log_gain(mean_curve)
    per_step = _predicted_log_gains(zs, act, g, alpha)
    # lag k crosses steps T, T-1, ..., T-k+1: cumulative sums from the end
    out: dict[str, Any] = {"measured": measured, "curve": mean_curve}
    for k in _KINDS:
        pred_curve = np.concatenate([[0.0], np.cumsum(per_step[k][::-1])])
        out[f"curve_{k}"] = pred_curve
        out[k] = fit_log_gain(pred_curve)  # NaN when a step has no finite prediction
    # medians over steps: when the state explodes forward the mean is dominated by the end
    out["z_mean"] = float(np.median(per_step["mu"]))
    out["z_std"] = float(np.median(per_step["sigma"]))
    return out


class _RNN(torch.nn.Module):
    """Vanilla RNN with a linear read-out of the last hidden state."""

    def __init__(self, act: str, alpha: float, d: int, n: int, gain: float, input_var: float, gen):
        super().__init__()
        self.act, self.alpha = act, alpha
        self.w = torch.nn.Parameter(gain * orthogonal(n, gen, torch.float32))
        self.u = torch.nn.Parameter(torch.randn(n, d, generator=gen) * math.sqrt(input_var / d))
        self.b = torch.nn.Parameter(torch.zeros(n))
        self.out = torch.nn.Linear(n, 10)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(n)
            self.out.weight.uniform_(-bound, bound, generator=gen)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, _ = ACTIVATIONS[self.act]
        h = x.new_zeros(x.shape[0], self.w.shape[0])
        xu = x @ self.u.T + self.b  # (B, T, n), all steps at once
        for t in range(x.shape[1]):
            h = f(h @ self.w.T + xu[:, t], self.alpha)
        return self.out(h)


def _train_task(
    config: Config,
    act: str,
    rows: torch.Tensor,
    labels: torch.Tensor,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """Train on the delayed first-digit task; accuracy, explosion flags, trained W."""
    gen = torch.Generator().manual_seed(seed * 1009 + 17)
    alpha = config.elu_alpha
    model = _RNN(act, alpha, 28, config.train_hidden, config.train_gain, config.input_var, gen)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    max_norm, exploded, nonfinite, last_loss = 0.0, 0.0, 0.0, float("nan")
    for _ in range(config.train_steps):
        idx = torch.from_numpy(train)[
            torch.randint(len(train), (config.batch_size,), generator=gen)
        ]
        x = _sequences(rows, idx, config.delay, train, gen)
        loss = torch.nn.functional.cross_entropy(model(x), labels[idx])
        opt.zero_grad()
        loss.backward()
        gnorm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters())))
        loss_v = float(loss.detach())
        if not (math.isfinite(loss_v) and math.isfinite(gnorm)):
            nonfinite, exploded = 1.0, 1.0
            break
        max_norm = max(max_norm, gnorm)
        if gnorm > config.explode_threshold:
            exploded = 1.0
        last_loss = loss_v
        opt.step()
    n_eval = min(config.eval_size, len(test))
    eval_idx = torch.from_numpy(test[:n_eval])
    with torch.no_grad():
        x = _sequences(rows, eval_idx, config.delay, test, gen)
        logits = model(x)
        acc = float((logits.argmax(1) == labels[eval_idx]).double().mean())
    w = model.w.detach().double()
    return {
        "accuracy": acc,
        "final_loss": last_loss,
        "max_grad_norm": max_norm,
        "exploded": exploded,
        "nonfinite": nonfinite,
        "w": w,
        "u": model.u.detach().double(),
        "b": model.b.detach().double(),
    }


class RNNGradientFlow(Experiment):
    """C2: measured per-step gradient gain of a vanilla RNN vs g E[f'] and g sqrt(E[f'^2])."""

    name = "rnn_gradient"
    title = "RNN gradient flow: expected slope predicts per-step gradient gain"
    claims = ("C2",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 3},
        "full": {
            "seeds": 6,
            "gains": (0.8, 1.0, 1.25, 1.5, 2.0),
            "probe_batch": 256,
            "images_per_sequence": 4,
            "train_steps": 1000,
            "delay": 14,
            "eval_size": 2000,
        },
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        t0 = time.perf_counter()
        images, labels = load_mnist(context.data_dir)
        rows = _rows(images)
        train, _val, test = split_indices(len(labels), seed)
        gen = torch.Generator().manual_seed(seed)
        alpha = config.elu_alpha

        # ---- 1. gradient probe: the same Q, U and sequences for every activation and gain
        q = orthogonal(config.hidden, gen)
        u = torch.randn(config.hidden, 28, generator=gen, dtype=torch.float64)
        u = u * math.sqrt(config.input_var / 28)
        first = torch.from_numpy(test)[
            torch.randint(len(test), (config.probe_batch,), generator=gen)
        ]
        x = _sequences(rows, first, 28 * (config.images_per_sequence - 1), test, gen).double()
        probe_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))

        metrics: dict[str, float] = {}
        series: dict[str, Series] = {}
        table: list[dict[str, Any]] = []
        lags = list(range(x.shape[1] + 1))
        n_jobs = len(config.gains) * len(config.activations) * 2
        done = 0
        for g in config.gains:
            gk = _gain_key(g)
            ys: dict[str, list[float]] = {}
            for act in config.activations:
                res = _probe(x, g * q, u, act, g, alpha, torch.Generator().manual_seed(probe_seed))
                pre = f"{act}_{gk}"
                metrics[f"{pre}_measured_gain"] = math.exp(res["measured"])
                row: dict[str, Any] = {
                    "activation": act,
                    "g": g,
                    "measured_gain": math.exp(res["measured"]),
                    "z_mean": res["z_mean"],
                    "z_std": res["z_std"],
                }
                for k in _KINDS:
                    pred = math.exp(res[k])
                    metrics[f"{pre}_pred_{k}"] = pred
                    metrics[f"{pre}_logratio_{k}"] = res["measured"] - res[k]
                    row[f"pred_{k}"] = _cell(pred)
                    row[f"ratio_{k}"] = _cell(math.exp(res["measured"] - res[k]))
                metrics[f"{pre}_z_mean"] = res["z_mean"]
                metrics[f"{pre}_z_std"] = res["z_std"]
                metrics[f"{pre}_log10_norm_at_max_lag"] = float(res["curve"][-1] / math.log(10))
                table.append(row)
                ys[act] = [_cell(v) for v in np.exp(res["curve"])]
                ys[f"{act} pred rms_fit"] = [_cell(v) for v in np.exp(res["curve_rms_fit"])]
                ys[f"{act} pred slope_fit"] = [_cell(v) for v in np.exp(res["curve_slope_fit"])]
                done += 1
                context.progress(done, n_jobs)
            series[f"grad_norm_vs_lag_{gk}"] = Series(
                x=[float(k) for k in lags],
                ys=ys,
                xlabel="time lag T - t (steps)",
                ylabel="||v^T dh_T/dh_t|| (geometric mean over sequences)",
                logy=True,
            )

        # ---- 2. long-range task
        train_table: list[dict[str, Any]] = []
        for i, act in enumerate(config.activations):
            if config.train_steps > 0:
                r = _train_task(config, act, rows, labels, train, test, seed * 31 + i)
                w, ut, bt = r.pop("w"), r.pop("u"), r.pop("b")
                spec = float(torch.linalg.matrix_norm(w, ord=2))
                res = _probe(
                    x, w, ut, act, spec, alpha, torch.Generator().manual_seed(probe_seed), bias=bt
                )
                r["trained_spectral_norm"] = spec
                r["trained_measured_gain"] = math.exp(res["measured"])
                r["trained_pred_slope_fit"] = math.exp(res["slope_fit"])
                r["trained_pred_rms_fit"] = math.exp(res["rms_fit"])
                for k, v in r.items():
                    metrics[f"{act}_task_{k}"] = float(v)
                train_table.append({"activation": act, **{k: _cell(v) for k, v in r.items()}})
            done += len(config.gains)
            context.progress(done, n_jobs)

        metrics["run_seconds"] = time.perf_counter() - t0
        tables = {"gain_measured_vs_predicted": table}
        if train_table:
            tables["long_range_task"] = train_table
        return RunResult(metrics=metrics, series=series, tables=tables)

    # ------------------------------------------------------------------ verdict
    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        n = len(results)
        gk = _gain_key(config.verdict_gain)
        if not {"relu", "elu"} <= set(config.activations):
            return [
                Verdict(
                    "C2",
                    "inconclusive",
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    n,
                    "C2 compares ELU with ReLU; this run did not include both activations.",
                    "log per-step gain ELU - ReLU",
                )
            ]
        diffs = [
            math.log(r.metrics[f"elu_{gk}_measured_gain"])
            - math.log(r.metrics[f"relu_{gk}_measured_gain"])
            for r in results
        ]
        eff, lo, hi = mean_ci(diffs)
        direction = decide(lo, hi, threshold=0.0, direction="greater", n_seeds=n)

        elu_gain = [r.metrics[f"elu_{gk}_measured_gain"] for r in results]
        eg, eg_lo, eg_hi = mean_ci(elu_gain)
        below_one = decide(
            eg_lo, eg_hi, threshold=1.0 + config.explode_tolerance, direction="less", n_seeds=n
        )
        elu_exploded = sum(r.metrics.get("elu_task_exploded", 0.0) for r in results)

        # the stated formula g E[f'] (fitted Gaussian) vs the measured gain, ReLU and ELU,
        # every g: per seed the mean log(measured / predicted) over the available predictions
        n_missing = 0

        def _bias(kind: str) -> tuple[float, float, float]:
            nonlocal n_missing
            per_seed = []
            for r in results:
                vals = [
                    r.metrics.get(f"{a}_{_gain_key(g)}_logratio_{kind}", math.nan)
                    for a in ("relu", "elu")
                    for g in config.gains
                ]
                ok = [v for v in vals if math.isfinite(v)]
                n_missing += len(vals) - len(ok)
                if ok:
                    per_seed.append(float(np.mean(ok)))
            if not per_seed:
                return math.nan, math.nan, math.nan
            return mean_ci(per_seed)

        sb, sb_lo, sb_hi = _bias("slope_fit")
        rb, rb_lo, rb_hi = _bias("rms_fit")
        tol = config.prediction_tolerance
        slope_ok = -tol < sb_lo and sb_hi < tol  # False when the CI is NaN
        rms_ok = -tol < rb_lo and rb_hi < tol

        acc = {
            a: float(np.mean([r.metrics[f"{a}_task_accuracy"] for r in results]))
            for a in config.activations
            if all(f"{a}_task_accuracy" in r.metrics for r in results)
        }
        relu_g = float(np.mean([r.metrics[f"relu_{gk}_measured_gain"] for r in results]))

        explodes = below_one != "supported" or elu_exploded > 0
        if direction == "supported" and not explodes:
            status = "supported" if slope_ok else "mixed"
        elif direction == "supported":  # carries further, but is not shown to stay below 1
            status = "mixed"
        elif direction == "not supported":
            status = "not supported"
        else:
            status = "inconclusive"

        def pct(b: float) -> str:
            return f"{100 * (math.exp(b) - 1):+.0f}%" if math.isfinite(b) else "n/a"

        task = ""
        if acc:
            task = "; task accuracy " + ", ".join(f"{a} {100 * v:.1f}%" for a, v in acc.items())
            if "elu" in acc and "relu" in acc and n >= 2:
                da, da_lo, da_hi = paired_ci(
                    [r.metrics["elu_task_accuracy"] for r in results],
                    [r.metrics["relu_task_accuracy"] for r in results],
                )
                task += (
                    f" (ELU - ReLU {100 * da:+.1f} pp, CI [{100 * da_lo:+.1f}, {100 * da_hi:+.1f}])"
                )
        missing = (
            f", {n_missing} fitted predictions (seed x activation x g x kind) unavailable: "
            "the Gaussian closed form gave no valid value for a state exploding forward"
            if n_missing
            else ""
        )
        others = ", ".join(
            f"{g:g}: "
            + format(
                float(
                    np.mean(
                        [
                            math.log(r.metrics[f"elu_{_gain_key(g)}_measured_gain"])
                            - math.log(r.metrics[f"relu_{_gain_key(g)}_measured_gain"])
                            for r in results
                        ]
                    )
                ),
                "+.3f",
            )
            for g in config.gains
            if g != config.verdict_gain
        )
        numbers = (
            f"at ||W||_2 = {config.verdict_gain:g} the per-step gradient gain is {eg:.3f} for ELU "
            f"vs {relu_g:.3f} for ReLU (log difference {eff:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}], "
            f"{n} seeds"
            + (f"; at other ||W||_2 {others}" if others else "")
            + f"; ELU training runs that exploded: {int(elu_exploded)}); against the "
            f"measurement ||W|| E[f'] is off by {pct(sb)} (CI {pct(sb_lo)} to {pct(sb_hi)}) and "
            f"||W|| sqrt(E[f'^2]) by {pct(rb)} (CI {pct(rb_lo)} to {pct(rb_hi)}){missing}{task}."
        )
        if status == "supported":
            head = "ELU carries gradients further than ReLU without exploding and ||W|| E[f'] predicts the gain: "
        elif status == "mixed" and not explodes:
            head = (
                "ELU carries gradients further than ReLU without exploding, but the gain of the "
                "gradient norm follows ||W|| sqrt(E[f'^2])"
                + ("" if rms_ok else " (approximately)")
                + ", not the stated ||W|| E[f']: "
            )
        elif status == "mixed":
            head = "ELU carries gradients further than ReLU, but its gain is not shown to stay below 1: "
        elif status == "not supported":
            head = "ELU does not carry gradients further than ReLU: "
        else:
            head = "The seeds do not settle whether ELU carries gradients further than ReLU: "
        summary = head + numbers

        return [
            Verdict(
                claim="C2",
                status=status,
                effect=eff,
                ci_low=lo,
                ci_high=hi,
                n_seeds=n,
                summary=summary,
                effect_name=(
                    f"log per-step gradient gain, ELU minus ReLU, at ||W||_2 = {config.verdict_gain:g}"
                ),
            )
        ]

    # ------------------------------------------------------------------ figures
    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        plt = pyplot()

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        figs: list[Figure] = []
        if not results:
            return figs
        colors = {"relu": "tab:red", "tanh": "tab:green", "elu": "tab:blue", "linear": "tab:gray"}

        def arr(values: Sequence[Any]) -> np.ndarray:  # None (unavailable) -> NaN
            return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)

        def mean_abs_log_ratio(kind: str) -> float:
            vals = [
                abs(r.metrics.get(f"{a}_{_gain_key(g)}_logratio_{kind}", math.nan))
                for r in results
                for a in config.activations
                for g in config.gains
            ]
            vals = [v for v in vals if math.isfinite(v)]
            return float(np.mean(vals)) if vals else math.nan

        err_rms, err_slope = mean_abs_log_ratio("rms_fit"), mean_abs_log_ratio("slope_fit")
        errs = (
            f"Mean |log(measured/predicted)| of the per-step gain: {err_rms:.3f} for "
            f"g sqrt(E[f'^2]), {err_slope:.3f} for g E[f'] ({len(results)} seeds)."
        )

        gains = [
            g
            for g in config.gains
            if all(f"grad_norm_vs_lag_{_gain_key(g)}" in r.series for r in results)
        ]
        if gains:
            ncols = min(3, len(gains))
            nrows = -(-len(gains) // ncols)
            fig, axes = plt.subplots(
                nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False
            )
            for ax in axes.flat[len(gains) :]:
                ax.set_visible(False)
            for ax, g in zip(axes.flat, gains, strict=False):
                key = f"grad_norm_vs_lag_{_gain_key(g)}"
                lag = np.asarray(results[0].series[key].x)
                for act in config.activations:
                    c = colors.get(act)
                    logs = np.log10(np.stack([arr(r.series[key].ys[act]) for r in results]))
                    ax.plot(lag, logs.mean(0), color=c, label=f"{act}")
                    ax.fill_between(lag, logs.min(0), logs.max(0), color=c, alpha=0.2, lw=0)
                    for kind, style in (("rms_fit", "--"), ("slope_fit", ":")):
                        p = np.log10(
                            np.stack([arr(r.series[key].ys[f"{act} pred {kind}"]) for r in results])
                        )
                        ax.plot(lag, _nanmean0(p), style, color=c, lw=1)
                ax.set_title(f"||W||_2 = {g:g}")
                ax.set_xlabel("time lag (steps)")
                ax.set_ylabel("log10 gradient norm")
            axes[0][0].plot([], [], "k--", lw=1, label="g sqrt(E[f'^2])")
            axes[0][0].plot([], [], "k:", lw=1, label="g E[f']")
            axes[0][0].legend(fontsize=7)
            fig.tight_layout()
            path = out_dir / "rnn_gradient_norm_vs_lag.png"
            save_figure(fig, path, dpi=110)
            figs.append(
                Figure(
                    path,
                    "Gradient norm against time lag on MNIST row sequences (solid: measured, "
                    "mean over seeds, band: range over seeds; dashed: predicted by "
                    "g sqrt(E[f'^2]), dotted: by g E[f'] as the claim states, both with the "
                    "Gaussian fitted to the pre-activations at each step). " + errs,
                    "C2",
                )
            )

        fig, ax = plt.subplots(figsize=(4.8, 4.4))
        top = 0.0
        markers = (
            ("slope_fit", "o", "g E[f'] fitted"),
            ("rms_fit", "s", "g sqrt(E[f'^2]) fitted"),
            ("slope_n01", "x", "g E[f'] N(0,1)"),
        )
        for act in config.activations:
            c = colors.get(act)
            for kind, marker, label in markers:
                meas = [
                    float(
                        np.mean([r.metrics[f"{act}_{_gain_key(g)}_measured_gain"] for r in results])
                    )
                    for g in config.gains
                ]
                pred = [  # over the seeds where it is available; NaN (not drawn) if none
                    float(
                        _nanmean0(
                            arr(
                                [
                                    r.metrics.get(f"{act}_{_gain_key(g)}_pred_{kind}", math.nan)
                                    for r in results
                                ]
                            )
                        )
                    )
                    for g in config.gains
                ]
                top = max(top, *[v for v in meas + pred if math.isfinite(v)])
                style = {"color": c} if marker == "x" else {"facecolors": "none", "edgecolors": c}
                ax.scatter(pred, meas, marker=marker, s=28, label=f"{act}: {label}", **style)
        lim = [0.0, top * 1.05]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel("predicted per-step gain")
        ax.set_ylabel("measured per-step gain")
        ax.legend(fontsize=6, ncol=1)
        fig.tight_layout()
        path = out_dir / "rnn_gradient_measured_vs_predicted.png"
        save_figure(fig, path, dpi=110)
        figs.append(
            Figure(
                path,
                "Measured against predicted per-step gain, one point per activation, "
                "prediction and ||W||_2 in "
                + ", ".join(f"{g:g}" for g in config.gains)
                + " (mean over seeds); on the black line the prediction is exact. "
                + errs,
                "C2",
            )
        )
        return figs
