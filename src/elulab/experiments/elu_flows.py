"""C7: ELU as a normalising-flow bijection, checked for exactness and tried on real data.

The claim: ELU is strictly increasing, hence invertible, with inverse ``log(1 + y/a)`` on
``(-a, 0]`` and an exact, cheap log-determinant ``sum log f'(x_i)``; so it is a
building block for normalising flows. Caveat in the claim itself: the image is
``(-a, inf)``, not R.

What one run (one seed) measures:

* **correctness table** (float32 and float64): for every elementwise bijection of
  :mod:`elulab.flows`, on ``x = 3 * N(0, 1)`` draws: the inverse round trip in x
  (``max |f^-1(f(x)) - x|``, which carries ELU's condition number ``e^{-x}/a`` on the
  left), in y (``max |f(f^-1(y)) - y| / max(1, |y|)``, the backward error), and the
  log-det against autograd's derivative (the Jacobian of an elementwise map is diagonal);
  plus the log-det of a whole 8-D ELU flow against the log-determinant of
  ``torch.autograd.functional.jacobian`` (float64);
* **density estimation** on HTRU2 (Lyon et al. 2016), standardised with training
  statistics, 60/20/20 split from the seed: a 2-D set (the profile's mean ``M1`` and
  excess kurtosis ``EX1``) and the full 8 features. Arms, all with the same blocks
  [ActNorm] + blocks x [coupling (ELU conditioner), LU-linear, elementwise, ActNorm],
  the same optimiser and budget, the validation set picking the checkpoint:
  ``elu`` (ELUTransform itself), ``elu_tail`` (the R -> R ELU with a linear tail),
  ``leaky_relu``, ``leaky_softplus``, ``coupling`` (no elementwise layer); and a
  full-covariance Gaussian fit. Test NLL in nats per example, in *standardised* units
  (add ``sum(log std_train)`` for original units; the offset is the same for every arm);
* **what the restricted image costs**: the fraction of test rows with a standardised
  feature <= -a (rows that an ELU as the data-side last layer cannot produce); for the
  ``elu`` arm, the fraction of training rows dropped (outside the support) during
  training and the fraction of test rows outside the trained model's support (their
  exact log-likelihood is -inf; its NLL is reported on the rows inside, flagged). Its
  checkpoint is chosen by validation NLL on the rows inside plus 1000 nats times the
  fraction of validation rows outside.

The verdict (C7): "supported" needs both parts: the bijector exact (float64 round trip in
y and log-det errors <= 1e-12, every layer's log-det within 1e-12 of its autograd
Jacobian's, the whole flow's within ``eps * cond(J)``, the accuracy of the reference
itself) *and* the R -> R ELU flow
(``elu_tail``) at least as good as the best baseline on 8-D HTRU2 (paired 95% CI of the
NLL difference below 0). Exact but not better: "mixed". Not exact: "not supported".

References:
    Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)
    (Clevert, Unterthiner, Hochreiter, 2015), arXiv:1511.07289.
    Density estimation using Real NVP (Dinh, Sohl-Dickstein, Bengio, 2016),
    arXiv:1605.08803.
    Fifty Years of Pulsar Candidate Selection (Lyon et al., 2016), MNRAS 459(1).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import load_htru2, split_indices
from ..data.htru2 import HTRU2_FEATURES
from ..flows import (
    ELUTransform,
    LeakyReLUTransform,
    LeakySoftplusTransform,
    LinearELUTransform,
    LinearTailELUTransform,
    make_flow,
)
from ..lab.api import Experiment, Figure, RunContext, RunResult, Verdict
from ._plotting import pyplot, save_figure

__all__ = ["ARMS", "DATASETS", "Config", "EluFlows"]

ARMS: tuple[str, ...] = ("elu", "elu_tail", "leaky_relu", "leaky_softplus", "coupling")
BASELINES: tuple[str, ...] = ("leaky_relu", "leaky_softplus", "coupling")
DATASETS: dict[str, tuple[str, ...]] = {
    "htru2_2d": ("M1", "EX1"),
    "htru2": HTRU2_FEATURES,
}
# the float64 tolerances of the verdict: y-space round trip and elementwise log-det are
# a few roundoffs (1e-16) in exact arithmetic; 1e-12 leaves room for the rounding of
# exp/log1p but not for a wrong branch or a padded log (Pyro's +1e-8 fails it).
TOL_ELEMENTWISE = 1e-12


@dataclass(frozen=True)
class Config:
    """Settings of the ``elu_flows`` experiment (see the module docstring)."""

    seeds: int = 2
    steps: int = 200
    batch: int = 256
    lr: float = 1e-3
    clip: float = 5.0
    blocks: int = 4
    hidden: int = 32
    alpha: float = 1.0
    eval_every: int = 50
    train_rows: int = 3000  # 0: the whole 60% training part
    datasets: tuple[str, ...] = ("htru2_2d", "htru2")
    arms: tuple[str, ...] = ARMS
    correctness_n: int = 100_000
    n_samples_figure: int = 1500

    def validate(self) -> None:
        for name in ("seeds", "steps", "batch", "blocks", "hidden", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.train_rows < 0:
            raise ValueError(f"train_rows must be >= 0, got {self.train_rows}")
        if not (self.lr > 0 and self.clip > 0 and self.alpha > 0):
            raise ValueError("lr, clip and alpha must be > 0")
        for d in self.datasets:
            if d not in DATASETS:
                raise ValueError(f"unknown data set {d!r}; allowed: {', '.join(DATASETS)}")
        for a in self.arms:
            if a not in ARMS:
                raise ValueError(f"unknown arm {a!r}; allowed: {', '.join(ARMS)}")
        if "htru2" not in self.datasets or "elu_tail" not in self.arms:
            raise ValueError("the verdict needs data set 'htru2' and arm 'elu_tail'")


# ---------------------------------------------------------------------------
# correctness
# ---------------------------------------------------------------------------


def _bijections(alpha: float) -> dict[str, torch.distributions.Transform]:
    return {
        "elu": ELUTransform(alpha),
        "elu_tail": LinearTailELUTransform(alpha),
        "elu_linear": LinearELUTransform(alpha),
        "leaky_relu": LeakyReLUTransform(0.1),
        "leaky_softplus": LeakySoftplusTransform(0.1),
    }


def correctness_table(alpha: float, n: int, seed: int) -> list[dict[str, Any]]:
    """Round-trip and log-det errors of every elementwise bijection, float32 and float64."""
    rows: list[dict[str, Any]] = []
    g = torch.Generator().manual_seed(seed)
    x64 = 3.0 * torch.randn(n, generator=g, dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        x = x64.to(dtype)
        for name, t in _bijections(alpha).items():
            y = t(x)
            keep = y > -alpha if name == "elu" else torch.ones_like(y, dtype=torch.bool)
            xk, yk = x[keep], y[keep]  # ELU outputs rounded onto -alpha have no inverse
            rt_x = float((t.inv(yk) - xk).abs().max())
            rt_y = float(((t(t.inv(yk)) - yk).abs() / yk.abs().clamp(min=1.0)).max())
            xg = x.clone().requires_grad_(True)
            (deriv,) = torch.autograd.grad(t(xg).sum(), xg)
            ladj = t.log_abs_det_jacobian(x, y)
            ok = deriv > 0  # float32 derivatives underflow to 0 far left (log would be -inf)
            ld_err = float((ladj[ok] - torch.log(deriv[ok])).abs().max())
            rows.append(
                {
                    "bijection": name,
                    "dtype": str(dtype).replace("torch.", ""),
                    "roundtrip_x": rt_x,
                    "roundtrip_y_rel": rt_y,
                    "logdet_err": ld_err,
                    "boundary_fraction": float(1.0 - keep.double().mean()),
                }
            )
    return rows


def flow_logdet_error(alpha: float, dim: int = 8, points: int = 4) -> dict[str, float]:
    """Log-det errors of an untrained 8-D ELU flow against autograd Jacobians, float64.

    Returns ``layer_err``: the largest error of any single layer's log-det against the
    ``slogdet`` of that layer's autograd Jacobian (the test of exactness); ``flow_err``:
    the error of the whole flow's log-det against the ``slogdet`` of the whole
    Jacobian; and ``flow_err_over_eps_cond``: ``flow_err / (eps * cond(J))``. The whole
    Jacobian of a deep flow with random weights can have a condition number of 1e9, and
    ``slogdet`` itself is then only good to about ``eps * cond(J)``: a ratio <= 1 means
    agreement to the accuracy of the reference.
    """
    flow = make_flow(dim, elementwise="elu_tail", blocks=4, hidden=16, alpha=alpha).double()
    with torch.no_grad():  # random weights so that no layer is the identity
        for p in flow.parameters():
            p.normal_(0.0, 0.3)
    z = torch.randn(points, dim, dtype=torch.float64)
    transforms = list(flow().transforms)
    whole = torch.distributions.ComposeTransform(transforms)
    eps = torch.finfo(torch.float64).eps
    layer_err = flow_err = ratio = 0.0
    for i in range(points):
        v = z[i]
        for t in transforms:
            y = t(v).detach()
            J = torch.autograd.functional.jacobian(lambda u, t=t: t(u), v).detach()
            ld = t.log_abs_det_jacobian(v, y).detach()
            ld = ld.sum() if t.domain.event_dim == 0 else ld
            layer_err = max(layer_err, abs(float(ld) - float(torch.linalg.slogdet(J)[1])))
            v = y
        J = torch.autograd.functional.jacobian(lambda u: whole(u), z[i]).detach()
        err = abs(
            float(whole.log_abs_det_jacobian(z[i], v).detach()) - float(torch.linalg.slogdet(J)[1])
        )
        flow_err = max(flow_err, err)
        ratio = max(ratio, err / (eps * float(torch.linalg.cond(J))))
    return {"layer_err": layer_err, "flow_err": flow_err, "flow_err_over_eps_cond": ratio}


# ---------------------------------------------------------------------------
# density estimation
# ---------------------------------------------------------------------------


def _split(X: np.ndarray, seed: int, train_rows: int) -> tuple[np.ndarray, ...]:
    tr, va, te = split_indices(len(X), seed)
    if train_rows and train_rows < len(tr):
        tr = tr[:train_rows]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    train, val, test = (((X[i] - mu) / sd).astype(np.float32) for i in (tr, va, te))
    return train, val, test, sd


def _gaussian_nll(train: np.ndarray, test: np.ndarray) -> float:
    mu = train.mean(0, dtype=np.float64)
    cov = np.atleast_2d(np.cov(train.astype(np.float64), rowvar=False, bias=True))
    d = test.astype(np.float64) - mu
    _, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("ij,ij->i", d @ np.linalg.inv(cov), d)
    return float(np.mean(0.5 * (maha + logdet + train.shape[1] * math.log(2 * math.pi))))


def _nll(flow: torch.nn.Module, x: torch.Tensor, elu: bool) -> tuple[float, float]:
    """(mean NLL over rows inside the support, fraction of rows outside)."""
    with torch.no_grad():
        inside = flow.in_support(x) if elu else torch.ones(len(x), dtype=torch.bool)
        if not bool(inside.any()):
            return float("inf"), 1.0
        nll = -flow.log_prob(x[inside]).mean()
    return float(nll), float(1.0 - inside.float().mean())


def train_flow(
    arm: str, train: np.ndarray, val: np.ndarray, config: Config, seed: int
) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train one flow; return the best-validation checkpoint and training statistics."""
    torch.manual_seed(seed)
    dim = train.shape[1]
    elementwise = None if arm == "coupling" else arm
    flow = make_flow(
        dim, elementwise=elementwise, blocks=config.blocks, hidden=config.hidden, alpha=config.alpha
    )
    xt, xv = torch.from_numpy(train), torch.from_numpy(val)
    flow.initialize(xt[: min(len(xt), 2000)])
    opt = torch.optim.Adam(flow.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(seed)
    is_elu = arm == "elu"
    best, best_state, dropped, seen, failed = math.inf, None, 0, 0, 0
    for step in range(1, config.steps + 1):
        batch = xt[torch.randint(0, len(xt), (config.batch,), generator=gen)]
        if is_elu:  # rows outside ELU's image have density 0: they are dropped, and counted
            inside = flow.in_support(batch)
            dropped += int((~inside).sum())
            batch = batch[inside]
        seen += config.batch
        if len(batch) == 0:
            failed += 1
            continue
        loss = -flow.log_prob(batch).mean()
        if not torch.isfinite(loss):
            failed += 1
            continue
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), config.clip)
        opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            v, out = _nll(flow, xv, is_elu)
            score = v if out == 0.0 else math.inf if not is_elu else v + 1e3 * out
            if score < best or best_state is None:
                best, best_state = score, copy.deepcopy(flow.state_dict())
    if best_state is not None:
        flow.load_state_dict(best_state)
    return flow, {"dropped_train_fraction": dropped / max(seen, 1), "skipped_steps": failed}


# ---------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------


class EluFlows(Experiment):
    """C7: the ELU bijector's exactness and ELU flows on HTRU2 against baselines."""

    name = "elu_flows"
    title = "ELU as a normalising-flow bijection (exactness, density estimation on HTRU2)"
    claims = ("C7",)
    Config = Config
    profiles = {  # noqa: RUF012
        "quick": {
            "seeds": 2,
            "steps": 200,
            "hidden": 32,
            "train_rows": 3000,
            "correctness_n": 20_000,
            "n_samples_figure": 1000,
        },
        "full": {"seeds": 5, "steps": 1000, "hidden": 64, "train_rows": 0, "eval_every": 100},
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        torch.manual_seed(seed)
        X, _ = load_htru2(context.data_dir)
        metrics: dict[str, float] = {}
        tables: dict[str, list[dict[str, Any]]] = {}
        rows = correctness_table(config.alpha, config.correctness_n, seed)
        tables["correctness"] = rows
        for r in rows:
            for k in ("roundtrip_x", "roundtrip_y_rel", "logdet_err"):
                metrics[f"correct/{r['bijection']}/{r['dtype']}/{k}"] = r[k]
        for k, v in flow_logdet_error(config.alpha).items():
            metrics[f"correct/flow_logdet_{k}_float64"] = v
        total = len(config.datasets) * len(config.arms)
        done = 0
        for ds in config.datasets:
            cols = [HTRU2_FEATURES.index(c) for c in DATASETS[ds]]
            train, val, test, sd = _split(X[:, cols], seed, config.train_rows)
            metrics[f"nll/{ds}/gaussian"] = _gaussian_nll(train, test)
            metrics[f"log_std_offset/{ds}"] = float(np.log(sd).sum())
            # rows an ELU on the data side (no affine after it) could not produce
            metrics[f"below_alpha_rows/{ds}"] = float((test <= -config.alpha).any(1).mean())
            xte = torch.from_numpy(test)
            for arm in config.arms:
                flow, stats = train_flow(arm, train, val, config, seed)
                nll, out = _nll(flow, xte, arm == "elu")
                metrics[f"nll/{ds}/{arm}"] = nll
                if arm == "elu":
                    metrics[f"elu_outside_test/{ds}"] = out
                    metrics[f"elu_dropped_train/{ds}"] = stats["dropped_train_fraction"]
                metrics[f"skipped_steps/{ds}/{arm}"] = float(stats["skipped_steps"])
                if ds == "htru2_2d":
                    with torch.no_grad():
                        s = flow.sample((config.n_samples_figure,)).numpy()
                    tables.setdefault("samples", []).extend(
                        {"arm": arm, "x": float(a), "y": float(b)} for a, b in s
                    )
                done += 1
                context.progress(done, total)
            if ds == "htru2_2d":
                tables.setdefault("samples", []).extend(
                    {"arm": "data (test)", "x": float(a), "y": float(b)}
                    for a, b in test[: config.n_samples_figure]
                )
        return RunResult(metrics=metrics, tables=tables)

    # -- verdict ---------------------------------------------------------------------------
    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        from ..lab.stats import decide, mean_ci, paired_ci

        n = len(results)
        m = [r.metrics for r in results]

        def col(key: str) -> np.ndarray:
            return np.array([mi[key] for mi in m], dtype=np.float64)

        exact_keys = [
            f"correct/{b}/float64/{k}"
            for b in ("elu", "elu_tail", "elu_linear")
            for k in ("roundtrip_y_rel", "logdet_err")
        ]
        worst_elem = max(float(col(k).max()) for k in exact_keys)
        worst_layer = float(col("correct/flow_logdet_layer_err_float64").max())
        worst_ratio = float(col("correct/flow_logdet_flow_err_over_eps_cond_float64").max())
        exact = (
            worst_elem <= TOL_ELEMENTWISE and worst_layer <= TOL_ELEMENTWISE and worst_ratio <= 1.0
        )
        ds = "htru2"
        baselines = [a for a in BASELINES if a in config.arms]
        finite = [a for a in baselines if np.all(np.isfinite(col(f"nll/{ds}/{a}")))]
        if not finite:
            best = None
        else:
            best = min(finite, key=lambda a: float(col(f"nll/{ds}/{a}").mean()))
        ours = col(f"nll/{ds}/elu_tail")
        if best is None or n < 2 or not np.all(np.isfinite(ours)):
            eff, lo, hi = float("nan"), float("nan"), float("nan")
            better = "inconclusive"
        else:
            eff, lo, hi = paired_ci(ours, col(f"nll/{ds}/{best}"))
            better = decide(lo, hi, threshold=0.0, direction="less", n_seeds=n)
        if not exact:
            status = "not supported"
        elif better == "supported":
            status = "supported"
        elif n < 2:
            status = "inconclusive"
        else:
            status = "mixed"
        outside = float(col(f"elu_outside_test/{ds}").mean()) if "elu" in config.arms else math.nan
        below = float(col(f"below_alpha_rows/{ds}").mean())
        elu_nll = mean_ci(col(f"nll/{ds}/elu"))[0] if "elu" in config.arms else float("nan")
        summary = (
            f"ELU bijector {'exact' if exact else 'NOT exact'} (float64 worst round-trip/log-det "
            f"error {worst_elem:.1e}, per-layer log-det of a flow {worst_layer:.1e}, whole flow "
            f"{worst_ratio:.2f} x eps*cond(J)); on 8-D HTRU2 the "
            f"R->R ELU flow's test NLL minus the best baseline ({best}) is {eff:+.3f} nats "
            f"[{lo:+.3f}, {hi:+.3f}] ({better} as an improvement); cost of the restricted "
            f"image: {100 * below:.0f}% of standardised test rows have a feature <= -alpha, "
            f"and the pure-ELU flow leaves {100 * outside:.2f}% of test rows outside its "
            f"support (NLL {elu_nll:.3f} on the rest)."
        )
        return [
            Verdict(
                "C7",
                status,
                float(eff),
                float(lo),
                float(hi),
                n,
                summary,
                "test NLL of the ELU (linear-tail) flow minus the best baseline, 8-D HTRU2 "
                "(nats/example, standardised units; < 0 = ELU better)",
            )
        ]

    # -- figures ---------------------------------------------------------------------------
    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        plt = pyplot()

        from ..lab.stats import mean_ci

        figs: list[Figure] = []
        out_dir = Path(out_dir)
        samples = results[0].tables.get("samples", []) if results else []
        if samples:
            arms = list(dict.fromkeys(r["arm"] for r in samples))
            fig, axes = plt.subplots(
                1, len(arms), figsize=(2.6 * len(arms), 2.8), sharex=True, sharey=True
            )
            for ax, arm in zip(np.atleast_1d(axes), arms, strict=True):
                pts = np.array([(r["x"], r["y"]) for r in samples if r["arm"] == arm])
                ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
                ax.set_title(arm, fontsize=9)
                ax.set_xlim(-3, 5)
                ax.set_ylim(-2, 8)
            np.atleast_1d(axes)[0].set_ylabel("EX1 (standardised)")
            fig.supxlabel("M1 (standardised)", fontsize=9)
            fig.tight_layout()
            p = out_dir / "elu_flows_samples.png"
            save_figure(fig, p, dpi=110)
            figs.append(
                Figure(
                    p,
                    "Samples from each trained flow on 2-D HTRU2 (M1, EX1), seed "
                    "0, beside held-out data. The pure-ELU flow's samples are bounded below by "
                    "construction of its support.",
                    "C7",
                )
            )
        if results:
            fig, axes = plt.subplots(
                1, len(config.datasets), figsize=(5 * len(config.datasets), 3.2)
            )
            for ax, ds in zip(np.atleast_1d(axes), config.datasets, strict=True):
                names = ["gaussian", *config.arms]
                means, errs = [], []
                for a in names:
                    v = np.array([r.metrics[f"nll/{ds}/{a}"] for r in results])
                    mu, lo, hi = mean_ci(v) if np.all(np.isfinite(v)) else (np.nan, np.nan, np.nan)
                    means.append(mu)
                    errs.append(0.0 if math.isnan(lo) else hi - mu)
                ax.bar(range(len(names)), means, yerr=errs, capsize=3)
                ax.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
                ax.set_ylabel("test NLL (nats, standardised)")
                ax.set_title(ds, fontsize=9)
            fig.tight_layout()
            p = out_dir / "elu_flows_nll.png"
            save_figure(fig, p, dpi=110)
            figs.append(
                Figure(
                    p,
                    "Test NLL per arm with 95% t-intervals over seeds (lower is better); "
                    "'elu' is scored on the test rows inside its support only.",
                    "C7",
                )
            )
        return figs
