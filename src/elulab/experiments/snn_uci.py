"""C5 on tabular data: self-normalising networks against normalised and plain MLPs.

The SNN paper (Klambauer et al. 2017) compared SNNs (SELU, LeCun-normal init,
AlphaDropout) with other networks on the 121 UCI sets of Fernandez-Delgado et al.
and found SNNs best on average rank. This experiment repeats the comparison on the 96
sets available here (and HTRU2) with a smaller budget:

* methods: ``snn`` (SELU + LeCun + AlphaDropout, :class:`elulab.nn.SNN`), ``relu_bn``
  (ReLU + BatchNorm, He init, dropout), ``relu`` (no normalisation), ``elu`` (ELU,
  He init, dropout), ``relu_ln`` (ReLU + LayerNorm);
* model selection as in the paper: for every method, ``grid_samples`` points of the
  grid (depth x width x learning rate x dropout; the same points for every method,
  drawn from the seed) are trained on the ``conxuntos.dat`` training half and scored
  on its validation half; the validation curve (smoothed) picks the point *and* the
  number of steps (early stopping);
* test: the chosen setting is retrained on each of the four ``conxuntos_kfold.dat``
  training parts for the chosen number of steps and tested on the fold's test part;
  a data set's accuracy is the mean over the four folds;
* over data sets: the average rank of each method (rank 1 = best, ties averaged, as in
  the paper) and a Wilcoxon signed-rank test of SNN against each method (paired by data
  set, accuracies averaged over seeds);
* HTRU2: a stratified 60/20/20 split per seed, the same selection, then AUC on the
  test part with a percentile-bootstrap 95% interval over test rows.

The verdict is about the paper's claim: SNN has the best average rank. It is
"supported" if SNN ranks best and the Wilcoxon test puts it significantly above every
other method (p < 0.05), "not supported" if another method ranks better and is
significantly above SNN, "mixed" otherwise, and "inconclusive" with fewer than 5 data
sets.

References:
    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515.

    Statistical Comparisons of Classifiers over Multiple Data Sets (Demsar, 2006),
    JMLR 7.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..lab.api import Experiment, Figure, RunContext, RunResult, Verdict
from ._plotting import pyplot, save_figure
from ..train import build_mlp, predict_proba, train_classifier

__all__ = ["METHODS", "SnnUci", "average_ranks", "critical_difference"]

# method -> (activation, norm, init); "snn" is built with elulab.nn.SNN
METHODS: dict[str, tuple[str, str, str]] = {
    "snn": ("selu", "none", "lecun"),
    "relu_bn": ("relu", "batch", "kaiming"),
    "relu": ("relu", "none", "kaiming"),
    "elu": ("elu", "none", "kaiming"),
    "relu_ln": ("relu", "layer", "kaiming"),
}

QUICK_DATASETS = ("iris", "wine", "seeds", "breast-cancer-wisc-diag", "hayes-roth", "pima")


@dataclass(frozen=True)
class Config:
    """Settings of :class:`SnnUci`.

    Args:
        seeds: number of seeds (each seed repeats selection and the four folds).
        datasets: data set names; empty: every set found under ``data_dir``.
        data_dir: a data root, the ``uci`` folder, or an extracted directory; empty:
            the lab's data root.
        methods: which of :data:`METHODS` to compare (must include ``snn``).
        grid_depth, grid_width, grid_lr, grid_dropout: the hyper-parameter grid.
        grid_samples: points of the grid tried per data set (0: the whole grid).
        optimizer: ``"sgd"`` (as the paper) or ``"adam"``.
        batch_size: minibatch size.
        max_epochs, max_steps: training length: ``min(max_epochs epochs, max_steps)``.
        evals: validation checks per selection run.
        htru2: also run HTRU2 (AUC).
        htru2_root: the data root holding ``htru2/``; empty: the lab's data root.
        n_boot: bootstrap resamples for the HTRU2 AUC interval.
    """

    seeds: int = 1
    datasets: tuple[str, ...] = QUICK_DATASETS
    data_dir: str = ""
    methods: tuple[str, ...] = ("snn", "relu_bn", "relu", "elu")
    grid_depth: tuple[int, ...] = (3,)
    grid_width: tuple[int, ...] = (128,)
    grid_lr: tuple[float, ...] = (0.1,)
    grid_dropout: tuple[float, ...] = (0.0, 0.05)
    grid_samples: int = 0
    optimizer: str = "sgd"
    batch_size: int = 64
    max_epochs: int = 60
    max_steps: int = 300
    evals: int = 15
    htru2: bool = False
    htru2_root: str = ""
    n_boot: int = 1000

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; allowed: {', '.join(METHODS)}")
        if "snn" not in self.methods or len(self.methods) < 2:
            raise ValueError("methods must include 'snn' and at least one other method")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods has duplicates: {self.methods}")
        for name in ("grid_depth", "grid_width", "grid_lr", "grid_dropout"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        if min(self.grid_depth) < 1 or min(self.grid_width) < 1:
            raise ValueError("grid_depth and grid_width values must be >= 1")
        if min(self.grid_lr) <= 0:
            raise ValueError("grid_lr values must be positive")
        if not all(0 <= p < 1 for p in self.grid_dropout):
            raise ValueError("grid_dropout values must be in [0, 1)")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        for name in ("batch_size", "max_epochs", "max_steps", "evals", "n_boot"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.grid_samples < 0:
            raise ValueError("grid_samples must be >= 0")
        if self.data_dir and not Path(self.data_dir).exists():
            raise ValueError(f"data_dir {self.data_dir!r} does not exist")
        if self.htru2_root and not Path(self.htru2_root).is_dir():
            raise ValueError(f"htru2_root {self.htru2_root!r} is not a directory")


# -- statistics over data sets ---------------------------------------------------------


def average_ranks(acc: np.ndarray) -> np.ndarray:
    """Average rank of each column (method) over rows (data sets); 1 = highest accuracy.

    Ties share the mean of their ranks (``scipy.stats.rankdata``), as in Demsar (2006)
    and the SNN paper.

    Example:
        >>> average_ranks(np.array([[0.9, 0.8], [0.7, 0.7]])).tolist()
        [1.25, 1.75]
    """
    from scipy.stats import rankdata

    acc = np.asarray(acc, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[0] == 0:
        raise ValueError(f"acc must be a non-empty (datasets, methods) array, got {acc.shape}")
    return np.mean([rankdata(-row) for row in acc], axis=0)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    r"""Nemenyi critical difference of average ranks: :math:`q_\alpha \sqrt{k(k+1)/(6n)}`.

    :math:`q_\alpha` is the studentised range quantile (infinite degrees of freedom)
    divided by :math:`\sqrt 2` (Demsar 2006, Table 5a: 2.728 for k = 5, alpha = 0.05).

    Example:
        >>> round(critical_difference(5, 96), 3)
        0.623
    """
    from scipy.stats import studentized_range

    if k < 2 or n < 1:
        raise ValueError(f"need k >= 2 methods and n >= 1 data sets, got k={k}, n={n}")
    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


# -- one method on one data set -------------------------------------------------------


def _grid(config: Config, seed: int) -> list[tuple[int, int, float, float]]:
    full = list(
        itertools.product(config.grid_depth, config.grid_width, config.grid_lr, config.grid_dropout)
    )
    if config.grid_samples == 0 or config.grid_samples >= len(full):
        return full
    rng = np.random.default_rng(seed + 7919)
    pick = rng.choice(len(full), size=config.grid_samples, replace=False)
    return [full[i] for i in sorted(pick)]


def _build(method: str, d_in: int, n_cls: int, depth: int, width: int, p: float, seed: int):
    if method == "snn":
        from ..nn import SNN

        return SNN(
            d_in,
            n_cls,
            depth=depth,
            width=width,
            dropout=p,
            generator=torch.Generator().manual_seed(seed),
        )
    act, norm, init = METHODS[method]
    return build_mlp(
        d_in, n_cls, depth=depth, width=width, activation=act, norm=norm, dropout=p,
        init=init, seed=seed,
    )  # fmt: skip


def _steps(config: Config, n_train: int) -> int:
    per_epoch = math.ceil(n_train / min(config.batch_size, n_train))
    return max(1, min(config.max_epochs * per_epoch, config.max_steps))


def _select(config, method, grid, Xtr, ytr, Xva, yva, n_cls, seed):
    """Best grid point and step count on the validation split."""
    best = None
    steps = _steps(config, len(Xtr))
    for j, (depth, width, lr, p) in enumerate(grid):
        net = _build(method, Xtr.shape[1], n_cls, depth, width, p, seed + 31 * j)
        res = train_classifier(
            net, Xtr, ytr, steps=steps, lr=lr, batch_size=config.batch_size,
            optimizer=config.optimizer, X_val=Xva, y_val=yva,
            eval_every=max(1, steps // config.evals), seed=seed + 31 * j,
        )  # fmt: skip
        score = -1.0 if res.diverged else res.best_val_accuracy
        if best is None or score > best[0]:
            best = (score, (depth, width, lr, p), res.best_step)
    assert best is not None
    return best


def _fit(config, method, hp, steps, X, y, n_cls, seed):
    depth, width, lr, p = hp
    net = _build(method, X.shape[1], n_cls, depth, width, p, seed)
    res = train_classifier(
        net, X, y, steps=steps, lr=lr, batch_size=config.batch_size,
        optimizer=config.optimizer, seed=seed,
    )  # fmt: skip
    return net, res


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float32)  # a copy: cached arrays are read-only


def _uci_one(config, method, ds, grid, seed) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    X, y = _t(ds.X), torch.tensor(ds.y)
    tr, va = torch.tensor(ds.train_idx), torch.tensor(ds.val_idx)
    score, hp, best_step = _select(
        config, method, grid, X[tr], y[tr], X[va], y[va], ds.n_classes, seed
    )
    # the fold training sets are 3/2 the size of the selection half: scale the steps
    accs, off = [], []
    for f, (ftr, fte) in enumerate(ds.folds):
        ftr_t, fte_t = torch.tensor(ftr), torch.tensor(fte)
        steps = max(1, round(best_step * len(ftr) / len(tr)))
        net, res = _fit(
            config, method, hp, steps, X[ftr_t], y[ftr_t], ds.n_classes, seed + 1000 + f
        )
        if res.diverged:
            accs.append(0.0)
            continue
        accs.append(float((predict_proba(net, X[fte_t]).argmax(1) == ds.y[fte]).mean()))
        if ds.X_test is not None:
            off.append(float((predict_proba(net, _t(ds.X_test)).argmax(1) == ds.y_test).mean()))
    return {
        "dataset": ds.name,
        "method": method,
        "accuracy": float(np.mean(accs)),
        "fold_accuracies": accs,
        "official_test_accuracy": float(np.mean(off)) if off else None,
        "val_accuracy": score,
        "depth": hp[0],
        "width": hp[1],
        "lr": hp[2],
        "dropout": hp[3],
        "steps": best_step,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
    }


def _stratified_split(y: np.ndarray, seed: int, fractions=(0.6, 0.2, 0.2)):
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        a = round(fractions[0] * len(idx))
        b = a + round(fractions[1] * len(idx))
        for k, sl in enumerate((idx[:a], idx[a:b], idx[b:])):
            parts[k].append(sl)
    return [np.sort(np.concatenate(p)) for p in parts]


def _htru2_one(config, method, X, y, grid, seed) -> dict:
    from sklearn.metrics import roc_auc_score

    from ..lab.stats import bootstrap_ci

    t0, c0 = time.perf_counter(), time.process_time()
    tr, va, te = _stratified_split(y, seed)
    mu, sd = X[tr].mean(0), X[tr].std(0)
    Z = _t((X - mu) / sd)
    yt = torch.as_tensor(y)
    _score, hp, best_step = _select(config, method, grid, Z[tr], yt[tr], Z[va], yt[va], 2, seed)
    trva = np.concatenate([tr, va])
    steps = max(1, round(best_step * len(trva) / len(tr)))
    net, _res = _fit(config, method, hp, steps, Z[trva], yt[trva], 2, seed + 1000)
    p = predict_proba(net, Z[te])[:, 1]
    yte = y[te]
    auc = float(roc_auc_score(yte, p))
    rng_seed = seed + 17
    pairs = np.stack([yte.astype(np.float64), p], axis=1)

    def stat(idx: np.ndarray) -> float:
        s = pairs[idx.astype(np.int64)]
        if s[:, 0].min() == s[:, 0].max():
            return auc
        return float(roc_auc_score(s[:, 0], s[:, 1]))

    _, lo, hi = bootstrap_ci(
        np.arange(len(te), dtype=np.float64), statistic=stat, n_boot=config.n_boot, seed=rng_seed
    )
    return {
        "method": method,
        "auc": auc,
        "auc_low": lo,
        "auc_high": hi,
        "accuracy": float(((p > 0.5) == yte).mean()),
        "depth": hp[0],
        "width": hp[1],
        "lr": hp[2],
        "dropout": hp[3],
        "steps": best_step,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
    }


# -- the experiment --------------------------------------------------------------------


class SnnUci(Experiment):
    """SNN vs ReLU+BN, ReLU, ELU (and ReLU+LN) MLPs on the UCI collection and HTRU2."""

    name = "snn_uci"
    title = "Self-normalising networks on the UCI benchmark and HTRU2"
    claims = ("C5",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 1},
        "full": {
            "seeds": 4,
            "datasets": (),
            "methods": ("snn", "relu_bn", "relu", "elu", "relu_ln"),
            "grid_depth": (2, 4, 8),
            "grid_width": (128, 256),
            "grid_lr": (0.01, 0.1),
            "grid_dropout": (0.0, 0.05),
            "grid_samples": 4,
            "max_epochs": 100,
            "max_steps": 500,
            "evals": 20,
            "htru2": True,
        },
    }

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        from ..data.uci import list_uci_datasets, load_uci

        root: str | Path | None = config.data_dir or context.data_dir
        names = list(config.datasets) or list_uci_datasets(root)
        grid = _grid(config, seed)
        total = len(names) * len(config.methods) + (len(config.methods) if config.htru2 else 0)
        done = 0
        rows: list[dict] = []
        t0, c0 = time.perf_counter(), time.process_time()
        for name in names:
            ds = load_uci(name, root)
            for method in config.methods:
                rows.append(_uci_one(config, method, ds, grid, seed))
                done += 1
                context.progress(done, total)
        metrics: dict[str, float] = {}
        acc = np.array(
            [[r["accuracy"] for r in rows if r["dataset"] == n] for n in names]
        )  # (datasets, methods)
        ranks = average_ranks(acc)
        for j, m in enumerate(config.methods):
            metrics[f"mean_accuracy/{m}"] = float(acc[:, j].mean())
            metrics[f"average_rank/{m}"] = float(ranks[j])
        metrics["uci_seconds"] = time.perf_counter() - t0
        tables = {"uci": rows}
        if config.htru2:
            from ..data.htru2 import load_htru2

            X, y = load_htru2(config.htru2_root or context.data_dir)
            hrows = []
            for method in config.methods:
                r = _htru2_one(config, method, X, y, grid, seed)
                hrows.append(r)
                metrics[f"htru2_auc/{method}"] = r["auc"]
                done += 1
                context.progress(done, total)
            tables["htru2"] = hrows
        metrics["seconds"] = time.perf_counter() - t0
        metrics["cpu_seconds"] = time.process_time() - c0
        metrics["n_datasets"] = float(len(names))
        return RunResult(metrics=metrics, tables=tables)

    # -- over seeds ------------------------------------------------------------------

    @staticmethod
    def accuracy_matrix(config: Config, results: Sequence[RunResult]):
        """``(names, methods, acc)``: accuracies averaged over seeds, (datasets, methods)."""
        methods = list(config.methods)
        per: dict[tuple[str, str], list[float]] = {}
        names: list[str] = []
        for res in results:
            for r in res.tables.get("uci", []):
                if r["dataset"] not in names:
                    names.append(r["dataset"])
                per.setdefault((r["dataset"], r["method"]), []).append(float(r["accuracy"]))
        names = [n for n in names if all((n, m) in per for m in methods)]
        acc = np.array([[np.mean(per[(n, m)]) for m in methods] for n in names])
        return names, methods, acc.reshape(len(names), len(methods))

    @staticmethod
    def wilcoxon(acc: np.ndarray, methods: Sequence[str]) -> dict[str, dict[str, float]]:
        """Wilcoxon signed-rank test of SNN against each method (two-sided, zero-split)."""
        from scipy.stats import wilcoxon

        j0 = list(methods).index("snn")
        out = {}
        for j, m in enumerate(methods):
            if m == "snn":
                continue
            diff = acc[:, j0] - acc[:, j]
            if np.all(diff == 0):
                out[m] = {"statistic": float("nan"), "p": 1.0, "median_diff": 0.0}
                continue
            res = wilcoxon(acc[:, j0], acc[:, j], zero_method="zsplit")
            out[m] = {
                "statistic": float(res.statistic),
                "p": float(res.pvalue),
                "median_diff": float(np.median(diff)),
                "mean_diff": float(np.mean(diff)),
            }
        return out

    @staticmethod
    def htru2_summary(config: Config, results: Sequence[RunResult]) -> dict[str, dict]:
        """Per method: mean AUC over seeds and the t-interval (or the bootstrap one for 1 seed)."""
        from ..lab.stats import mean_ci

        out: dict[str, dict] = {}
        for m in config.methods:
            rows = [r for res in results for r in res.tables.get("htru2", []) if r["method"] == m]
            if not rows:
                continue
            aucs = [r["auc"] for r in rows]
            mean, lo, hi = mean_ci(aucs)
            if len(rows) == 1:
                lo, hi = rows[0]["auc_low"], rows[0]["auc_high"]
            elif lo == lo:  # a t-interval of few seeds can pass 1: clip to [0, 1]
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            out[m] = {"auc": mean, "low": lo, "high": hi, "n": len(rows)}
        return out

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        from ..lab.stats import bootstrap_ci

        names, methods, acc = self.accuracy_matrix(config, results)
        n_seeds = len(results)
        if len(names) < 5:
            return [
                Verdict(
                    "C5",
                    "inconclusive",
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    n_seeds,
                    f"only {len(names)} data sets: too few to rank methods (need >= 5).",
                    "SNN accuracy minus the best other method's (percentage points)",
                )
            ]
        ranks = average_ranks(acc)
        j0 = methods.index("snn")
        others = [j for j in range(len(methods)) if j != j0]
        best_other = min(others, key=lambda j: ranks[j])
        diff = 100 * (acc[:, j0] - acc[:, best_other])
        eff, lo, hi = bootstrap_ci(diff, n_boot=5000, seed=0)
        tests = self.wilcoxon(acc, methods)
        snn_best = ranks[j0] < ranks[best_other]
        sig_above_all = all(
            tests[m]["p"] < 0.05 and tests[m]["median_diff"] > 0 for m in methods if m != "snn"
        )
        beaten = [
            methods[j]
            for j in others
            if ranks[j] < ranks[j0]
            and tests[methods[j]]["p"] < 0.05
            and tests[methods[j]]["mean_diff"] < 0
        ]
        if snn_best and sig_above_all:
            status = "supported"
        elif beaten:
            status = "not supported"
        else:
            status = "mixed"
        rank_txt = ", ".join(
            f"{m} {r:.2f}" for m, r in sorted(zip(methods, ranks, strict=False), key=lambda t: t[1])
        )
        p_txt = ", ".join(f"{m} p={t['p']:.2g}" for m, t in tests.items())
        htru = self.htru2_summary(config, results)
        h_txt = (
            f" HTRU2 AUC: SNN {htru['snn']['auc']:.4f} [{htru['snn']['low']:.4f}, "
            f"{htru['snn']['high']:.4f}]."
            if "snn" in htru
            else ""
        )
        summary = (
            f"Average rank over {len(names)} UCI sets ({n_seeds} seed(s)): {rank_txt}. "
            f"Wilcoxon SNN vs {p_txt}.{h_txt} SNN minus {methods[best_other]} (best other by "
            f"rank): {eff:+.2f} pp accuracy [{lo:+.2f}, {hi:+.2f}]."
        )
        return [
            Verdict(
                "C5",
                status,
                eff,
                lo,
                hi,
                n_seeds,
                summary,
                f"mean accuracy of SNN minus {methods[best_other]} over data sets "
                "(percentage points, bootstrap CI over data sets)",
            )
        ]

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        plt = pyplot()

        names, methods, acc = self.accuracy_matrix(config, results)
        figs: list[Figure] = []
        if len(names) == 0:
            return figs
        out_dir = Path(out_dir)
        ranks = average_ranks(acc)
        cd = critical_difference(len(methods), len(names))
        order = np.argsort(ranks)
        fig, ax = plt.subplots(figsize=(6.5, 2.2 + 0.25 * len(methods)))
        colors = ["#dd8452" if methods[i] == "snn" else "#4c72b0" for i in order][::-1]
        ax.barh([methods[i] for i in order][::-1], ranks[order][::-1], color=colors)
        best = ranks[order[0]]
        ax.axvline(best + cd, color="crimson", ls="--", label=f"best + Nemenyi CD ({cd:.2f})")
        ax.set_xlabel(f"average rank over {len(names)} data sets (1 = best)")
        ax.set_xlim(1, len(methods))
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("UCI: average rank per method")
        fig.tight_layout()
        p = out_dir / "snn_uci_ranks.png"
        save_figure(fig, p, dpi=120)
        figs.append(
            Figure(
                p,
                "Average rank of each method over the UCI sets (lower is better); methods "
                "whose bar ends left of the dashed line are not distinguishable from the best "
                "by the Nemenyi test.",
            )
        )
        j0 = methods.index("snn")
        others = [j for j in range(len(methods)) if j != j0]
        fig, axes = plt.subplots(1, len(others), figsize=(3.2 * len(others), 3.2), squeeze=False)
        for ax, j in zip(axes[0], others, strict=False):
            ax.scatter(acc[:, j], acc[:, j0], s=10, alpha=0.7)
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
            ax.set_xlabel(f"{methods[j]} accuracy")
            ax.set_ylabel("snn accuracy")
            w = int(np.sum(acc[:, j0] > acc[:, j]))
            lo = int(np.sum(acc[:, j0] < acc[:, j]))
            ax.set_title(f"snn wins {w}, loses {lo}", fontsize=9)
        fig.tight_layout()
        p = out_dir / "snn_uci_scatter.png"
        save_figure(fig, p, dpi=120)
        figs.append(
            Figure(p, "Per-data-set accuracy of SNN (y) against each other method (x); points "
                   "above the diagonal are sets where SNN is better.")
        )  # fmt: skip
        return figs
