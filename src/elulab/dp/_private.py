r"""DP-SGD on :func:`elulab.train.fit` through Opacus: :func:`train_private`.

DP-SGD (Abadi et al. 2016) clips each per-sample gradient to norm ``C`` and adds
Gaussian noise of standard deviation ``sigma C`` to their sum:

.. math:: \tilde g = \frac{1}{B} \Big( \sum_{i \in \text{batch}} g_i
    \min\big(1, C / \lVert g_i \rVert\big) + \mathcal N(0, \sigma^2 C^2 I) \Big),

with batches drawn by Poisson sampling at rate ``q`` (expected size ``B = q n``).
Nothing here is hand-written: Opacus's ``PrivacyEngine.make_private`` wraps the model
(per-sample gradients or, with ``grad_sample_mode="ghost"``, ghost clipping: per-sample
*norms* of ``nn.Linear`` layers without materialising per-sample gradients, Opacus's
functorch fallback for modules it has no sampler for, such as an ELU with a learnable
alpha), the optimiser (clipping and noise) and the data loader (Poisson sampling);
``opacus.accountants.utils.get_noise_multiplier`` gives ``sigma`` for the budget; its
accountants (RDP, PRV) give the epsilon spent.

References:
    Deep Learning with Differential Privacy (Abadi, Chu, Goodfellow, McMahan, Mironov,
    Talwar, Zhang, 2016), arXiv:1607.00133.

    Opacus: User-Friendly Differential Privacy Library in PyTorch (Yousefpour et al.,
    2021), arXiv:2109.12298.

    Numerical Composition of Differential Privacy (Gopi, Lee, Wutschitz, 2021),
    arXiv:2106.02848 (the PRV accountant); Renyi Differential Privacy of the Sampled
    Gaussian Mechanism (Mironov, Talwar, Zhang, 2019), arXiv:1908.10530 (RDP).

    Large Scale Transfer Learning for Differentially Private Image Classification /
    ghost clipping: Scalable and Efficient Training of Large Convolutional Neural
    Networks with Differential Privacy (Bu, Mao, Xu, 2022), arXiv:2205.10683; Large
    Language Models Can Be Strong Differentially Private Learners (Li, Tramer, Liang,
    Hashimoto, 2021), arXiv:2110.05679.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..train import FitResult, StepState, fit, stream_seed

__all__ = [
    "ACCOUNTANTS",
    "EXPECTED_WARNINGS",
    "GRAD_SAMPLE_MODES",
    "PrivateFit",
    "check_budget",
    "check_model",
    "expected_warnings",
    "noise_multiplier",
    "spent_epsilon",
    "train_private",
]

ACCOUNTANTS: tuple[str, ...] = ("rdp", "prv")
GRAD_SAMPLE_MODES: tuple[str, ...] = ("ghost", "hooks", "functorch")

#: The warnings Opacus and torch raise on a correct DP run: (message start, category,
#: why it is expected). :func:`expected_warnings` ignores exactly these.
EXPECTED_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        "Secure RNG turned off",
        UserWarning,
        "secure_mode=False is chosen: seeded, reproducible noise (a research setting; "
        "retrain with secure_mode=True and torchcsprng before releasing a model)",
    ),
    (
        "Full backward hook is firing when gradients are computed with respect to module "
        "outputs since no inputs require gradients",
        UserWarning,
        "torch, for Opacus's hook on the first layer: its input (the data) needs no "
        "gradient, and Opacus only needs the gradient with respect to its output",
    ),
    (
        "Optimal order is the largest alpha",
        UserWarning,
        "Opacus's RDP bound at the largest order of its grid: a valid but loose epsilon; "
        "get_noise_multiplier's bisection meets it at its first, large trial sigmas "
        "(the final accounting, spent_epsilon, is not filtered)",
    ),
)


@contextlib.contextmanager
def expected_warnings() -> Iterator[None]:
    """Ignore the warnings of :data:`EXPECTED_WARNINGS` (and no other) inside the block.

    Example:
        >>> with expected_warnings():
        ...     warnings.warn("Secure RNG turned off. Fine for experiments.")
    """
    with warnings.catch_warnings():
        for message, category, _ in EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def check_budget(epsilon: float, delta: float) -> None:
    """Raise ``ValueError`` (one line) unless ``epsilon > 0`` is finite and ``0 < delta < 1``.

    Example:
        >>> check_budget(3.0, 0.0)
        Traceback (most recent call last):
        ...
        ValueError: delta must be in (0, 1), got 0.0
    """
    eps, dl = float(epsilon), float(delta)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    if not 0.0 < dl < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def check_model(model: nn.Module) -> None:
    """Raise ``ValueError`` (one line) when Opacus's ``ModuleValidator`` rejects a module.

    The line names the first offending module (its name in ``model.named_modules()``
    and its type) and the first sentence of Opacus's reason, e.g. BatchNorm, which mixes
    samples within a batch. ``opacus.validators.ModuleValidator.fix(model)`` replaces
    what it can (BatchNorm by GroupNorm).

    Example:
        >>> check_model(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
        Traceback (most recent call last):
        ...
        ValueError: Opacus cannot make this model private: module '1' (BatchNorm1d): BatchNorm cannot support training with differential privacy (ModuleValidator.fix(model) replaces what it can)
    """
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    for name, sub in trainable_modules(model):
        check = ModuleValidator.VALIDATORS.get(type(sub))
        errors = list(check(sub)) if check is not None else []
        if errors:
            reason = str(errors[0]).split(". ")[0].strip().rstrip(".")
            raise ValueError(
                f"Opacus cannot make this model private: module {name!r} "
                f"({type(sub).__name__}): {reason} (ModuleValidator.fix(model) replaces "
                "what it can)"
            )


def noise_multiplier(
    epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "rdp"
) -> float:
    """Opacus's ``get_noise_multiplier``: the sigma whose ``steps`` steps spend < epsilon.

    A bisection over sigma with ``accountant`` (tolerance 0.01 in epsilon, from below:
    the epsilon of the returned sigma never exceeds the target); cached per process.

    Example:
        >>> round(noise_multiplier(3.0, 1e-5, 1 / 24, 360), 4)
        1.4551
    """
    check_budget(epsilon, delta)
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}")
    return _sigma(float(epsilon), float(delta), float(sample_rate), int(steps), accountant)


@functools.lru_cache(maxsize=256)
def _sigma(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    from opacus.accountants.utils import get_noise_multiplier

    with expected_warnings():  # the bisection's trial sigmas
        sigma = get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
        )
    return float(sigma)


def spent_epsilon(history: list[tuple[float, float, int]], delta: float, accountant: str) -> float:
    """The epsilon an Opacus accountant (``"rdp"`` or ``"prv"``) gives for ``history``.

    ``history`` is Opacus's: ``[(noise_multiplier, sample_rate, steps), ...]``; cached
    per process.

    Example:
        >>> round(spent_epsilon([(1.4551, 1 / 24, 360)], 1e-5, "rdp"), 3)
        2.995
    """
    hist = tuple((float(s), float(q), int(k)) for s, q, k in history)
    return _epsilon(hist, float(delta), accountant) if hist else 0.0


@functools.lru_cache(maxsize=256)
def _epsilon(history: tuple[tuple[float, float, int], ...], delta: float, accountant: str) -> float:
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=accountant)
    acc.history = list(history)
    return float(acc.get_epsilon(delta=delta))


@dataclass
class PrivateFit:
    """What :func:`train_private` returns.

    Args:
        model: the trained model (the module passed in, unwrapped, hooks removed).
        epsilon: the epsilon spent by the calibrating ``accountant`` (<= the target).
        epsilon_rdp, epsilon_prv: the epsilon spent by Opacus's RDP and PRV accountants
            for the same ``history`` (PRV is the tighter; its upper estimate).
        delta: the delta of the guarantee.
        noise_multiplier: sigma (noise std / C).
        sample_rate: Poisson sampling rate q (1 / batches per epoch).
        steps: noisy steps taken; history: Opacus's ``[(sigma, q, steps)]``.
        accountant: the accountant that calibrated sigma.
        fit: :func:`elulab.train.fit`'s result (losses, logs, evaluation curve).
    """

    model: nn.Module
    epsilon: float
    epsilon_rdp: float
    epsilon_prv: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    history: list[tuple[float, float, int]]
    accountant: str
    fit: FitResult


def _batch_norms(dp_model: nn.Module) -> torch.Tensor:
    """Per-sample total gradient norms of the last backward (before clipping)."""
    norms = getattr(dp_model, "_per_sample_gradient_norms", None)  # ghost clipping
    if norms is not None:
        return norms.detach()
    gs = [
        p.grad_sample for p in dp_model.parameters() if getattr(p, "grad_sample", None) is not None
    ]
    return torch.stack([g.reshape(len(g), -1).norm(dim=1) for g in gs]).norm(dim=0)


def train_private(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    epsilon: float,
    delta: float,
    *,
    epochs: int,
    batch_size: int,
    max_grad_norm: float,
    lr: float,
    momentum: float = 0.0,
    criterion: nn.Module | None = None,
    accountant: Literal["rdp", "prv"] = "rdp",
    grad_sample_mode: Literal["ghost", "hooks", "functorch"] = "ghost",
    evaluate: Callable[[nn.Module], float] | None = None,
    eval_every: int = 0,
    restore_best: bool = False,
    record_norms: bool = False,
    seed: int = 0,
) -> PrivateFit:
    """Train ``model`` with DP-SGD to an ``(epsilon, delta)`` budget, on :func:`fit`.

    ``sigma`` is chosen by :func:`noise_multiplier` for ``epochs`` epochs of Poisson
    batches (rate ``q = 1 / ceil(n / batch_size)``, as Opacus sets it); Opacus's
    ``PrivacyEngine`` (accountant ``accountant``, ``secure_mode=False``) then wraps the
    model, an SGD optimiser and the loader, and :func:`elulab.train.fit` runs the loop.
    Evaluation (with ``restore_best``) is post-processing of released iterates: free
    only if the evaluation data are public (not the private training set).

    Args:
        model: a module Opacus accepts (:func:`check_model`); trained in place.
        data: ``(X, y)`` tensors, the private training set.
        epsilon, delta: the budget (epsilon > 0, 0 < delta < 1).
        epochs, batch_size: ``epochs * ceil(n / batch_size)`` steps of expected size
            ``n / ceil(n / batch_size)``.
        max_grad_norm: the clipping norm C.
        lr, momentum: SGD's learning rate and momentum.
        criterion: a loss with a ``reduction`` attribute (default cross-entropy).
        accountant: ``"rdp"`` or ``"prv"``: the accountant that calibrates sigma.
        grad_sample_mode: ``"ghost"`` (ghost clipping, functorch fallback for custom
            modules), ``"hooks"`` or ``"functorch"`` (per-sample gradients).
        evaluate, eval_every, restore_best: as in :func:`elulab.train.fit`.
        record_norms: log per step the median and 90% quantile of the per-sample
            gradient norms and the fraction clipped (``norm_q50``, ``norm_q90``,
            ``clipped``). These statistics of private data are *not* privatised:
            diagnostics for the researcher, not to be released.
        seed: Poisson sampling (stream ``seed`` of the global generator inside
            :func:`fit`) and the noise (a generator from stream ``(seed, "dp_noise")``).

    Returns:
        A :class:`PrivateFit`.

    Raises:
        ValueError: a bad budget or argument, or a model Opacus rejects (one line).

    Example:
        >>> X = torch.randn(200, 5); y = (X[:, 0] > 0).long()
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Linear(5, 16), nn.ELU(), nn.Linear(16, 2))
        >>> res = train_private(model, (X, y), 3.0, 1e-5, epochs=5, batch_size=50,
        ...                     max_grad_norm=1.0, lr=0.5, seed=0)
        >>> res.steps, round(res.noise_multiplier, 3), res.epsilon <= 3.0
        (20, 2.056, True)
        >>> round(res.epsilon_rdp, 2), round(res.epsilon_prv, 2)
        (3.0, 2.7)
    """
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    check_budget(epsilon, delta)
    x, y = data
    n = len(x)
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not (max_grad_norm > 0 and math.isfinite(max_grad_norm)):
        raise ValueError(f"max_grad_norm must be a finite number > 0, got {max_grad_norm!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(
            f"grad_sample_mode must be one of {', '.join(GRAD_SAMPLE_MODES)}, got "
            f"{grad_sample_mode!r}"
        )
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}")
    if n != len(y) or n < 1:
        raise ValueError(
            f"data must be (X, y) with the same number >= 1 of rows, got {n}, {len(y)}"
        )
    model.train()
    check_model(model)
    per_epoch = math.ceil(n / batch_size)
    q, steps = 1.0 / per_epoch, epochs * per_epoch
    sigma = noise_multiplier(epsilon, delta, q, steps, accountant)
    crit = criterion if criterion is not None else nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    noise_gen = torch.Generator().manual_seed(stream_seed(seed, "dp_noise"))
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    with expected_warnings():
        engine = PrivacyEngine(accountant=accountant, secure_mode=False)
        out = engine.make_private(
            module=model, optimizer=opt, data_loader=loader, criterion=crit,
            noise_multiplier=sigma, max_grad_norm=float(max_grad_norm),
            grad_sample_mode=grad_sample_mode, noise_generator=noise_gen,
        )  # fmt: skip
        dp_model, dp_opt, dp_loader = (out[0], out[1], out[-1])
        dp_crit = out[2] if grad_sample_mode == "ghost" else crit

        def loss_fn(m: nn.Module, batch: Any) -> Any:
            xb, yb = batch
            return dp_crit(m(xb), yb)

        def norms(state: StepState) -> None:
            g = _batch_norms(dp_model).double()
            q50, q90 = (float(v) for v in torch.quantile(g, torch.tensor([0.5, 0.9]).double()))
            frac = float((g > max_grad_norm).double().mean())
            state.logs.update(norm_q50=q50, norm_q90=q90, clipped=frac)

        try:
            res = fit(
                dp_model, loss_fn, itertools.chain.from_iterable(dp_loader for _ in range(epochs)),
                optimizer=dp_opt, after_backward=norms if record_norms else None,
                evaluate=evaluate, eval_every=eval_every, restore_best=restore_best,
                seed=seed,
            )  # fmt: skip
        finally:
            dp_model.to_standard_module()  # removes Opacus's hooks and attributes
    history = [tuple(h) for h in engine.accountant.history]
    eps = {a: spent_epsilon(history, delta, a) for a in ACCOUNTANTS}
    return PrivateFit(
        model, eps[accountant], eps["rdp"], eps["prv"], float(delta), sigma, q,
        int(sum(h[2] for h in history)), history, accountant, res,
    )  # fmt: skip
