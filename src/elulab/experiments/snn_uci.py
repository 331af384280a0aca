"""C5 on tabular data: self-normalising networks against normalised and plain MLPs.

The SNN paper found SNNs (SELU, LeCun init, AlphaDropout) best on average rank over the
121 UCI sets of Fernandez-Delgado et al. This repeats it, on a smaller budget, on the 96
sets here and HTRU2 for :data:`METHODS` (``snn`` is :class:`elulab.nn.SNN`; the others use
He init and dropout). Per set and method, as in the paper, ``grid_samples`` points of depth
x width x learning rate x dropout (drawn from the seed: the same for every method) are
trained on the ``conxuntos.dat`` training half; the smoothed validation curve picks the
point *and* the step count (early stopping). The
choice is retrained on each ``conxuntos_kfold.dat`` training part (steps scaled to the same
epochs) and tested on its test part; a set's accuracy is the mean over the four folds, then
over seeds. Over sets: average ranks (ties averaged) and Wilcoxon signed-rank tests of SNN
against each method. HTRU2: a stratified 60/20/20 split per seed, the same selection, the
test AUC with a bootstrap CI over test rows.

Verdict: "supported" if SNN ranks best and the Wilcoxon test puts it significantly above
every other method (p < 0.05), "not supported" if a better-ranked method is significantly
above SNN, "mixed" otherwise, "inconclusive" with fewer than 5 data sets. One check per
competitor: SNN minus it (pp, bootstrap CI over data sets), decided by its Wilcoxon test.

References: Self-Normalizing Neural Networks (Klambauer et al., 2017, arXiv:1706.02515);
Statistical Comparisons of Classifiers over Multiple Data Sets (Demsar, 2006, JMLR 7).
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

from ..data import list_uci_datasets, load_htru2, load_uci
from ..lab import plots, stats
from ..lab.api import Experiment, Figure, RunContext, RunResult, param
from ..lab.verdicts import Check, Verdict, key
from ..nn import SNN
from ..train import accuracy, build_mlp, generator, predict_proba, train_classifier

__all__ = ["METHODS", "SnnUci"]

METHODS: dict[str, tuple[str, str, str]] = {  # (activation, norm, init); snn: elulab.nn.SNN
    "snn": ("selu", "none", "lecun"), "relu_bn": ("relu", "batch", "kaiming"),
    "relu": ("relu", "none", "kaiming"), "elu": ("elu", "none", "kaiming"),
    "relu_ln": ("relu", "layer", "kaiming"),
}  # fmt: skip
QUICK_METHODS = ("snn", "relu_bn", "relu", "elu")
QUICK_DATASETS = ("iris", "wine", "seeds", "breast-cancer-wisc-diag", "hayes-roth", "pima")


@dataclass(frozen=True)
class Config:
    """Settings of :class:`SnnUci` (each field's meaning: ``elulab show snn_uci``)."""

    seeds: int = param(1, "independent seeds (each repeats selection and the 4 folds)", ge=1)
    datasets: tuple[str, ...] = param(QUICK_DATASETS, "UCI sets; empty: all under data_dir")
    data_dir: str = param("", "data root, its uci folder or an extracted set; empty: lab's")
    methods: tuple[str, ...] = param(QUICK_METHODS, "methods compared", choices=tuple(METHODS))
    grid_depth: tuple[int, ...] = param((3,), "hidden layers tried", ge=1, nonempty=True)
    grid_width: tuple[int, ...] = param((128,), "units per layer tried", ge=1, nonempty=True)
    grid_lr: tuple[float, ...] = param((0.1,), "learning rates tried", gt=0, nonempty=True)
    grid_dropout: tuple[float, ...] = param((0.0, 0.05), "dropouts", ge=0, lt=1, nonempty=True)
    grid_samples: int = param(0, "grid points tried per data set (0: the whole grid)", ge=0)
    optimizer: str = param("sgd", "optimiser (sgd, as the paper)", choices=("sgd", "adam"))
    batch_size: int = param(64, "minibatch size (rows)", ge=1)
    max_epochs: int = param(60, "training length cap (epochs of the training part)", ge=1)
    max_steps: int = param(300, "training length cap (optimiser steps)", ge=1)
    evals: int = param(15, "validation checks per selection run", ge=1)
    htru2: bool = param(False, "also run HTRU2 (test AUC)")
    htru2_root: str = param("", "the data root holding htru2/; empty: the lab's")
    n_boot: int = param(1000, "bootstrap resamples of the HTRU2 AUC interval", ge=100)

    def validate(self) -> None:
        m = self.methods
        if "snn" not in m or len(m) < 2 or len(set(m)) != len(m):
            raise ValueError(f"methods must hold 'snn' and other methods, once each, got {m}")
        if self.data_dir and not Path(self.data_dir).exists():  # a folder or the archive
            raise ValueError(f"data_dir {self.data_dir!r} does not exist")
        if self.htru2_root and not Path(self.htru2_root).is_dir():
            raise ValueError(f"htru2_root {self.htru2_root!r} is not a directory")


def _grid(c: Config, seed: int) -> list[tuple[int, int, float, float]]:
    full = list(itertools.product(c.grid_depth, c.grid_width, c.grid_lr, c.grid_dropout))
    if c.grid_samples == 0 or c.grid_samples >= len(full):
        return full
    pick = np.random.default_rng(seed + 7919).choice(len(full), c.grid_samples, replace=False)
    return [full[i] for i in sorted(pick)]


def _protocol(config, method, grid, X, y, n_cls, sel, parts, seed):
    """Select on ``sel``, retrain on ``parts``: (row columns, [(net, diverged, test rows)])."""

    def train(hp, X, y, seed, steps, X_val=None, y_val=None):  # initial weights from seed
        (depth, width, lr, p), (act, norm, init) = hp, METHODS[method]
        d, kw = X.shape[1], {"depth": depth, "width": width, "dropout": p}
        if method == "snn":
            net = SNN(d, n_cls, generator=generator(seed), **kw)
        else:
            net = build_mlp(d, n_cls, activation=act, norm=norm, init=init, seed=seed, **kw)
        every = max(1, steps // config.evals) if X_val is not None else 0
        res = train_classifier(net, X, y, steps=steps, lr=lr, batch_size=config.batch_size,
                               optimizer=config.optimizer, X_val=X_val, y_val=y_val,
                               eval_every=every, seed=seed)  # fmt: skip
        return net, res

    tr, va = (torch.tensor(i) for i in sel)
    per_epoch = math.ceil(len(tr) / min(config.batch_size, len(tr)))
    steps = max(1, min(config.max_epochs * per_epoch, config.max_steps))
    best: tuple[float, Any, int] = (-math.inf, None, 0)
    for j, hp in enumerate(grid):
        _, res = train(hp, X[tr], y[tr], seed + 31 * j, steps, X[va], y[va])
        score = -1.0 if res.diverged else res.best_val_accuracy
        best = (score, hp, res.best_step) if score > best[0] or j == 0 else best
    score, hp, step = best
    fitted = []
    for f, (ptr, pte) in enumerate(parts):
        ptr = torch.tensor(ptr)  # larger than the selection half: scale steps (same epochs)
        n = max(1, round(step * len(ptr) / len(tr)))
        net, res = train(hp, X[ptr], y[ptr], seed + 1000 + f, n)
        fitted.append((net, res.diverged, torch.tensor(pte)))
    cols = dict(zip(("depth", "width", "lr", "dropout"), hp, strict=True))
    return {**cols, "steps": step, "val_accuracy": score}, fitted


def _clock(since: tuple[float, float] | None = None) -> Any:
    now = time.perf_counter(), time.process_time()
    return now if since is None else dict(seconds=now[0] - since[0], cpu_seconds=now[1] - since[1])


def _uci_one(config, method, ds, grid, seed) -> dict:
    t, X, y = _clock(), torch.tensor(ds.X, dtype=torch.float32), torch.tensor(ds.y)
    sel = (ds.train_idx, ds.val_idx)
    row, fitted = _protocol(config, method, grid, X, y, ds.n_classes, sel, ds.folds, seed)
    accs, off = [], []  # a diverged fold scores 0 (and has no official-test score)
    Xo = None if ds.X_test is None else torch.tensor(ds.X_test, dtype=X.dtype)
    for net, diverged, te in fitted:
        accs.append(0.0 if diverged else accuracy(net, X[te], y[te]))
        if Xo is not None and not diverged:
            off.append(accuracy(net, Xo, torch.tensor(ds.y_test)))
    return {"dataset": ds.name, "method": method, "accuracy": float(np.mean(accs)),
            "fold_accuracies": accs, "official_test_accuracy": float(np.mean(off)) if off else None,
            **row, **_clock(t)}  # fmt: skip


def _stratified_split(y: np.ndarray, seed: int) -> list[np.ndarray]:
    """Sorted (train, val, test) indices, 60/20/20 within each class."""
    rng, parts = np.random.default_rng(seed), ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        a, b = round(0.6 * len(idx)), round(0.2 * len(idx))
        for part, cut in zip(parts, np.split(idx, [a, a + b]), strict=True):
            part.append(cut)
    return [np.sort(np.concatenate(p)) for p in parts]


def _htru2_one(config, method, X, y, grid, seed) -> dict:
    t, (tr, va, te) = _clock(), _stratified_split(y, seed)
    Z = torch.tensor((X - X[tr].mean(0)) / X[tr].std(0), dtype=torch.float32)
    parts = [(np.concatenate([tr, va]), te)]  # retrain on train + validation
    yt = torch.as_tensor(y)
    row, [(net, _, _)] = _protocol(config, method, grid, Z, yt, 2, (tr, va), parts, seed)
    p = predict_proba(net, Z[te])[:, 1]
    auc, lo, hi = stats.auc_ci(y[te], p, n_boot=config.n_boot, seed=seed + 17)
    return {"method": method, "auc": auc, "auc_low": lo, "auc_high": hi,
            "accuracy": float(((p > 0.5) == y[te]).mean()), **row, **_clock(t)}  # fmt: skip


class SnnUci(Experiment):
    """SNN vs ReLU+BN, ReLU, ELU (and ReLU+LN) MLPs on the UCI collection and HTRU2."""

    name = "snn_uci"
    title = "Self-normalising networks on the UCI benchmark and HTRU2"
    claims = ("C5",)
    Config = Config
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"seeds": 1},
        "full": {"seeds": 4, "datasets": (), "methods": tuple(METHODS), "grid_depth": (2, 4, 8),
                 "grid_width": (128, 256), "grid_lr": (0.01, 0.1), "grid_dropout": (0.0, 0.05),
                 "grid_samples": 4, "max_epochs": 100, "max_steps": 500, "evals": 20,
                 "htru2": True},
        # seconds: one small set with an official test file, both builders, HTRU2
        "smoke": {"seeds": 2, "datasets": ("hayes-roth",), "methods": ("snn", "relu_bn"),
                  "grid_depth": (2,), "grid_width": (16,), "grid_dropout": (0.05,),
                  "max_steps": 6, "evals": 2, "htru2": True, "n_boot": 100},
    }  # fmt: skip

    def run(self, config: Config, seed: int, context: RunContext) -> RunResult:
        root: str | Path | None = config.data_dir or context.data_dir
        names = list(config.datasets) or list_uci_datasets(root)
        grid, methods, t = _grid(config, seed), config.methods, _clock()
        total, rows = (len(names) + config.htru2) * len(methods), []
        for name in names:
            ds = load_uci(name, root)
            for method in methods:
                rows.append(_uci_one(config, method, ds, grid, seed))
                context.progress(len(rows), total)
        acc = np.array([[r["accuracy"] for r in rows if r["dataset"] == n] for n in names])
        metrics: dict[str, float] = {}
        for j, (m, rank) in enumerate(zip(methods, stats.average_ranks(acc), strict=True)):
            metrics[key("mean_accuracy", m)] = float(acc[:, j].mean())
            metrics[key("average_rank", m)] = float(rank)
        metrics["uci_seconds"] = _clock(t)["seconds"]
        tables: dict[str, list[dict]] = {"uci": rows}
        if config.htru2:
            X, y = load_htru2(config.htru2_root or context.data_dir)
            hrows = tables["htru2"] = []
            for method in methods:
                hrows.append(_htru2_one(config, method, X, y, grid, seed))
                metrics[key("htru2_auc", method)] = hrows[-1]["auc"]
                context.progress(len(rows) + len(hrows), total)
        metrics |= {**_clock(t), "n_datasets": float(len(names))}
        return RunResult(metrics=metrics, tables=tables)

    @staticmethod
    def accuracy_matrix(config: Config, results: Sequence[RunResult]):
        """``(names, methods, acc)``: accuracies averaged over seeds, (datasets, methods)."""
        methods, per = list(config.methods), {}
        for r in (r for res in results for r in res.tables.get("uci", [])):
            per.setdefault((r["dataset"], r["method"]), []).append(float(r["accuracy"]))
        names = [n for n in dict.fromkeys(n for n, _ in per) if all((n, m) in per for m in methods)]
        acc = np.array([[np.mean(per[(n, m)]) for m in methods] for n in names])
        return names, methods, acc.reshape(len(names), len(methods))

    def verdict(self, config: Config, results: Sequence[RunResult]) -> list[Verdict]:
        (names, methods, acc), n_seeds = self.accuracy_matrix(config, results), len(results)
        if len(names) < 5:
            return [Verdict.inconclusive("C5", f"only {len(names)} data sets: too few to rank "
                    "methods (need >= 5).", n_seeds=n_seeds, effect_name="SNN accuracy minus "
                    "the best other method's (percentage points)")]  # fmt: skip
        ranks, j0 = stats.average_ranks(acc), methods.index("snn")
        others = [j for j in range(len(methods)) if j != j0]
        best = min(others, key=lambda j: ranks[j])
        tests = {j: stats.wilcoxon(acc[:, j0], acc[:, j]) for j in others}
        above = {j: t.pvalue < 0.05 and t.median_diff > 0 for j, t in tests.items()}
        below = {j: t.pvalue < 0.05 and t.mean_diff < 0 for j, t in tests.items()}
        checks = [Check(
            label=f"SNN minus {methods[j]} (pp accuracy)", n=len(names), threshold=0.0,
            status="supported" if above[j] else "not supported" if below[j] else "inconclusive",
            effect=stats.bootstrap_ci(100 * (acc[:, j0] - acc[:, j]), n_boot=5000, seed=0),
            direction="greater", note=f"Wilcoxon p={tests[j].pvalue:.2g} decides; rank {ranks[j]:.2f}",
        ) for j in others]  # fmt: skip
        supported = ranks[j0] < ranks[best] and all(above.values())
        beaten = any(below[j] and ranks[j] < ranks[j0] for j in others)
        status = "supported" if supported else "not supported" if beaten else "mixed"
        order = np.argsort(ranks, kind="stable")
        rank_txt = ", ".join(f"{methods[j]} {ranks[j]:.2f}" for j in order)
        h = [r for res in results for r in res.tables.get("htru2", []) if r["method"] == "snn"]
        auc = stats.Effect(h[0]["auc"], h[0]["auc_low"], h[0]["auc_high"]) if h else None  # 1 seed
        if len(h) > 1:  # a t-interval over seeds, clipped to [0, 1]
            m, lo, hi = stats.mean_ci([r["auc"] for r in h])
            auc = stats.Effect(m, max(lo, 0.0), min(hi, 1.0))
        return [Verdict.from_checks(
            "C5", checks, effect=checks[others.index(best)], n_seeds=n_seeds, status=status,
            effect_name=f"mean accuracy of SNN minus {methods[best]} over data sets "
            "(percentage points, bootstrap CI over data sets)",
            preamble=f"Average rank over {len(names)} UCI sets ({n_seeds} seed(s)): {rank_txt}; "
            f"best other by rank: {methods[best]}.",
            notes=[f"HTRU2 AUC: SNN {auc.format(4)}."] if auc else [],
        )]  # fmt: skip

    def figures(self, config: Config, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        names, methods, acc = self.accuracy_matrix(config, results)
        if not names:
            return []
        ranks, cd = stats.average_ranks(acc), stats.critical_difference(len(methods), len(names))
        order = list(np.argsort(ranks, kind="stable"))[::-1]  # best on top
        fig, (ax,) = plots.panels(1, width=6.5, height=2.2 + 0.25 * len(methods))
        colours = [plots.colour(METHODS[methods[i]][0]) for i in order]  # by activation
        ax.barh([methods[i] for i in order], ranks[order], color=colours)
        ax.axvline(ranks.min() + cd, color="crimson", ls="--", label=f"best + CD ({cd:.2f})")
        ax.set(xlabel=f"average rank over {len(names)} data sets (1 = best)",
               xlim=(1, len(methods)), title="UCI: average rank per method")  # fmt: skip
        ax.legend(loc="lower right", fontsize=8)
        figs = [Figure(plots.save(fig, Path(out_dir) / "snn_uci_ranks.png", dpi=120),
                       "Average rank per method over the UCI sets (lower is better); bars "
                       "ending left of the dashed line are not distinguishable from the best "
                       "(Nemenyi CD).")]  # fmt: skip
        j0 = methods.index("snn")
        others = [j for j in range(len(methods)) if j != j0]
        fig, axes = plots.panels(len(others), ncols=len(others), width=3.2, height=3.2)
        for ax, j in zip(axes, others, strict=True):
            a, b = acc[:, j0], acc[:, j]
            ax.scatter(b, a, s=10, alpha=0.7, color=plots.colour("selu"))
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
            ax.set(xlabel=f"{methods[j]} accuracy", ylabel="snn accuracy",
                   title=f"snn wins {np.sum(a > b)}, loses {np.sum(a < b)}")  # fmt: skip
        figs.append(Figure(plots.save(fig, Path(out_dir) / "snn_uci_scatter.png", dpi=120),
                           "Per-data-set accuracy of SNN (y) against each other method (x); "
                           "points above the diagonal are sets where SNN is better."))  # fmt: skip
        return figs
