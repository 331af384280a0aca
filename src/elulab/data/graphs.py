r"""Node-classification graphs (heterophilous and homophilous), read offline.

The standard graphs are read by PyTorch Geometric's own dataset classes from raw files
copied into a cache folder (``shared/`` is read-only, and PyG writes its processed
files beside the raw ones); nothing is downloaded. Graphs a user brings are read from
either of the two layouts the field uses:

* **Geom-GCN** (Pei et al. 2020): ``DIR/NAME/out1_graph_edges.txt`` (tab-separated
  ``src dst`` with a header line), ``DIR/NAME/out1_node_feature_label.txt``
  (``id<TAB>features<TAB>label`` with a header; features either dense comma-separated
  values, or comma-separated indices of the non-zero binary features as in Actor), and
  ``DIR/NAME/NAME_split_0.6_0.2_{0..9}.npz`` (``train_mask``, ``val_mask``,
  ``test_mask``);
* **Platonov et al. 2023** (``heterophilous-graphs``): ``DIR/NAME/NAME.npz`` with
  ``node_features``, ``node_labels``, ``edges`` (E, 2) and ``train_masks`` /
  ``val_masks`` / ``test_masks`` (S, N).

Every graph comes back the same way: a :class:`Graph` with undirected edges (both
directions, no self-loops, coalesced), because the models compared here (GCN, GAT,
GraphSAGE) are run on the symmetrised graph in Geom-GCN, GloGNN and Platonov et al.

Edge homophily (Zhu et al. 2020, "Beyond Homophily in Graph Neural Networks"):

.. math:: h = \frac{|\{(u, v) \in E : y_u = y_v\}|}{|E|}

Example:
    >>> g = load_graph("texas")
    >>> g.num_nodes, g.num_classes, g.num_splits, round(g.edge_homophily(), 3)
    (183, 5, 10, 0.061)

Texas's raw edge list has 16 self-loops; with them its edge homophily is 0.108 (the
0.11 tabulated by Zhu et al. 2020), without them (as loaded here) 0.061.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._paths import DataNotFoundError, data_root, dataset_dir

__all__ = [
    "GRAPHS",
    "PUBLISHED",
    "Graph",
    "GraphFormatError",
    "check_graphs",
    "edge_homophily",
    "load_graph",
    "read_geom_gcn",
    "read_npz_graph",
]

#: name -> (PyG reader, metric). chameleon: PyG's WikipediaNetwork needs the Geom-GCN
#: feature file, which is not stored (over 10 MB); its npz (Platonov et al.) is read
#: instead: the same masks and edges (checked in shared/data/chameleon/SOURCE.txt).
GRAPHS: dict[str, tuple[str, str]] = {
    "texas": ("webkb", "accuracy"),
    "cornell": ("webkb", "accuracy"),
    "film": ("actor", "accuracy"),
    "chameleon": ("npz", "accuracy"),
    "chameleon_filtered": ("npz", "accuracy"),
    "cora": ("planetoid", "accuracy"),
    "citeseer": ("planetoid", "accuracy"),
    "minesweeper": ("heterophilous", "roc_auc"),
}

#: (graph, model) -> published test accuracy % (mean, std over the 10 Geom-GCN splits),
#: as tabulated by GloGNN (Li et al. 2022, Table 2) from Zhu et al. 2020 (MLP) and
#: Pei et al. 2020 (GCN, GAT); "film" is their "Actor".
PUBLISHED: dict[tuple[str, str], tuple[float, float]] = {
    ("texas", "mlp"): (80.81, 4.75), ("texas", "gcn"): (55.14, 5.16),
    ("texas", "gat"): (52.16, 6.63), ("cornell", "mlp"): (81.89, 6.40),
    ("cornell", "gcn"): (60.54, 5.30), ("cornell", "gat"): (61.89, 5.05),
    ("film", "mlp"): (36.53, 0.70), ("film", "gcn"): (27.32, 1.10),
    ("film", "gat"): (27.44, 0.89), ("chameleon", "mlp"): (46.21, 2.99),
    ("chameleon", "gcn"): (64.82, 2.24), ("chameleon", "gat"): (60.26, 2.50),
}  # fmt: skip

CACHE_VAR = "ELULAB_CACHE_DIR"


class GraphFormatError(ValueError):
    """A graph file is missing or malformed (the message names the file)."""


@dataclass(frozen=True)
class Graph:
    """One node-classification graph with its standard splits.

    Attributes:
        name: data set name.
        x: node features, ``(N, F)`` float32.
        y: labels, ``(N,)`` int64 in ``0..C-1``.
        edge_index: ``(2, E)`` int64, both directions, no self-loops, sorted.
        train_masks, val_masks, test_masks: ``(S, N)`` bool, one row per split.
        metric: ``"accuracy"`` or ``"roc_auc"`` (binary sets reported by ROC AUC).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    edge_index: torch.Tensor
    train_masks: torch.Tensor
    val_masks: torch.Tensor
    test_masks: torch.Tensor
    metric: str = "accuracy"

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    @property
    def num_splits(self) -> int:
        return int(self.train_masks.shape[0])

    def edge_homophily(self) -> float:
        """Fraction of edges joining same-label nodes (see the module docstring)."""
        return edge_homophily(self.edge_index, self.y)


def edge_homophily(edge_index: torch.Tensor, y: torch.Tensor) -> float:
    """Edge homophily (Zhu et al. 2020), by PyG's ``homophily(..., method="edge")``.

    Example:
        >>> edge_homophily(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), torch.tensor([0, 0, 1]))
        0.5
    """
    _gnn_extra()
    from torch_geometric.utils import homophily

    if edge_index.numel() == 0:
        raise ValueError("edge_homophily: the graph has no edges")
    return float(homophily(edge_index, y, method="edge"))


def _undirected(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    from torch_geometric.utils import remove_self_loops, to_undirected

    edge_index, _ = remove_self_loops(edge_index.long())
    return to_undirected(edge_index, num_nodes=num_nodes)


def _masks(mask: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """PyG keeps split masks as (N, S) or (N,); return (S, N) bool."""
    m = mask.bool()
    if m.dim() == 1:
        m = m[:, None]
    return m.t().contiguous() if m.shape[0] == num_nodes else m


def _gnn_extra() -> None:
    """Import PyG once; its 2.8 calls the deprecated ``torch.jit.script`` (not ours to fix)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "`torch.jit.script` is deprecated", DeprecationWarning
            )
            import torch_geometric.nn  # noqa: F401
    except ImportError:
        raise ImportError(
            "graphs need PyTorch Geometric: pip install 'elulab[gnn]' (or `make setup`)"
        ) from None


def cache_dir() -> Path:
    """Where PyG's processed copies live: ``$ELULAB_CACHE_DIR/pyg`` or ``~/.cache/elulab/pyg``."""
    base = os.environ.get(CACHE_VAR) or Path.home() / ".cache" / "elulab"
    return Path(base) / "pyg"


def _copy_raw(files: list[Path], raw: Path) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not f.is_file():
            raise GraphFormatError(f"missing graph file: {f}")
        target = raw / f.name
        if not target.exists() or target.stat().st_size != f.stat().st_size:
            shutil.copyfile(f, target)


def _split_files(src: Path, name: str) -> list[Path]:
    return [src / f"{name}_split_0.6_0.2_{i}.npz" for i in range(10)]


def _read_pyg(name: str, reader: str, src: Path) -> Graph:
    # PyG prints "Processing... Done!" to stderr the first time it processes a copy
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return _read_pyg_quiet(name, reader, src)


def _read_pyg_quiet(name: str, reader: str, src: Path) -> Graph:
    from torch_geometric import datasets as D

    root = cache_dir()
    geom = [src / "out1_node_feature_label.txt", src / "out1_graph_edges.txt"]
    if reader == "webkb":
        _copy_raw(geom + _split_files(src, name), root / name / "raw")
        data = D.WebKB(str(root), name)[0]
    elif reader == "actor":
        _copy_raw(geom + _split_files(src, name), root / "film" / "raw")
        data = D.Actor(str(root / "film"))[0]
    elif reader == "planetoid":
        parts = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
        files = [src / f"ind.{name}.{p}" for p in parts]
        pyg_name = {"cora": "Cora", "citeseer": "CiteSeer"}[name]
        _copy_raw(files + _split_files(src, name), root / pyg_name / "geom-gcn" / "raw")
        data = D.Planetoid(str(root), pyg_name, split="geom-gcn")[0]
    else:  # heterophilous
        _copy_raw([src / f"{name}.npz"], root / name / "raw")
        data = D.HeterophilousGraphDataset(str(root), name)[0]
    n = int(data.num_nodes)
    return Graph(
        name=name,
        x=data.x.float(),
        y=data.y.long(),
        edge_index=_undirected(data.edge_index, n),
        train_masks=_masks(data.train_mask, n),
        val_masks=_masks(data.val_mask, n),
        test_masks=_masks(data.test_mask, n),
        metric=GRAPHS.get(name, ("", "accuracy"))[1],
    )


def read_npz_graph(path: str | Path, name: str | None = None) -> Graph:
    """Read a graph in the Platonov et al. 2023 npz layout (see the module docstring).

    Raises:
        GraphFormatError: the file is missing or lacks a key (named).
    """
    path = Path(path)
    if not path.is_file():
        raise GraphFormatError(f"missing graph file: {path}")
    try:
        d = np.load(path)
    except (OSError, ValueError) as e:
        raise GraphFormatError(f"cannot read graph file {path}: {e}") from None
    need = ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks")
    missing = [k for k in need if k not in d.files]
    if missing:
        raise GraphFormatError(f"graph file {path} lacks {', '.join(missing)}")
    x = torch.from_numpy(np.asarray(d["node_features"], dtype=np.float32))
    y = torch.from_numpy(np.asarray(d["node_labels"], dtype=np.int64))
    edges = torch.from_numpy(np.asarray(d["edges"], dtype=np.int64)).t()
    n = int(x.shape[0])
    name = name or path.stem
    return Graph(
        name=name,
        x=x,
        y=y,
        edge_index=_undirected(edges, n),
        train_masks=torch.from_numpy(d["train_masks"]).bool(),
        val_masks=torch.from_numpy(d["val_masks"]).bool(),
        test_masks=torch.from_numpy(d["test_masks"]).bool(),
        metric="roc_auc" if int(y.max()) == 1 else "accuracy",
    )


def _lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise GraphFormatError(f"missing graph file: {path}")
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    if not rows:
        raise GraphFormatError(f"graph file {path} has no rows after its header")
    return rows


def read_geom_gcn(directory: str | Path, name: str) -> Graph:
    """Read a graph in the Geom-GCN layout (see the module docstring).

    Features are dense when every row has the same number of comma-separated values,
    otherwise indices of the non-zero binary features (Actor's format).

    Raises:
        GraphFormatError: a file is missing or malformed (named, with the line).
    """
    d = Path(directory)
    nodes_file, edges_file = d / "out1_node_feature_label.txt", d / "out1_graph_edges.txt"
    nodes = _lines(nodes_file)
    try:
        ids = [int(r[0]) for r in nodes]
        feats = [[float(v) for v in r[1].split(",")] for r in nodes]
        labels = [int(r[2]) for r in nodes]
    except (IndexError, ValueError) as e:
        raise GraphFormatError(f"{nodes_file}: malformed row ({e})") from None
    n = max(ids) + 1
    if len(set(map(len, feats))) == 1:
        x = torch.zeros(n, len(feats[0]))
        x[torch.tensor(ids)] = torch.tensor(feats)
    else:
        width = int(max(max(f) for f in feats)) + 1
        x = torch.zeros(n, width)
        for i, f in zip(ids, feats, strict=True):
            x[i, torch.tensor(f, dtype=torch.long)] = 1.0
    y = torch.empty(n, dtype=torch.long)
    y[torch.tensor(ids)] = torch.tensor(labels)
    try:
        edges = torch.tensor([[int(v) for v in r] for r in _lines(edges_file)]).t()
    except ValueError as e:
        raise GraphFormatError(f"{edges_file}: malformed row ({e})") from None
    masks: dict[str, list[torch.Tensor]] = {"train_mask": [], "val_mask": [], "test_mask": []}
    for f in _split_files(d, name):
        if not f.is_file():
            raise GraphFormatError(f"missing graph file: {f}")
        split = np.load(f)
        for k, acc in masks.items():
            if k not in split.files:
                raise GraphFormatError(f"split file {f} lacks {k}")
            acc.append(torch.from_numpy(split[k]).bool())
    return Graph(
        name=name,
        x=x,
        y=y,
        edge_index=_undirected(edges, n),
        train_masks=torch.stack(masks["train_mask"]),
        val_masks=torch.stack(masks["val_mask"]),
        test_masks=torch.stack(masks["test_mask"]),
        metric="roc_auc" if int(y.max()) == 1 else "accuracy",
    )


def check_graphs(names: Sequence[str], data_dir: str | Path | None = None) -> None:
    """Check, without reading them, that :func:`load_graph` can find these graphs.

    Raises:
        ValueError: one line naming the first unknown name (and the allowed ones) or the
            missing folder / file.

    Example:
        >>> check_graphs(["texas", "cora"])
        >>> check_graphs(["squirrel"])
        Traceback (most recent call last):
        ...
        ValueError: unknown graph 'squirrel'; allowed: texas, cornell, film, chameleon, chameleon_filtered, cora, citeseer, minesweeper
    """
    if data_dir is None:
        for name in names:
            if name not in GRAPHS:
                raise ValueError(f"unknown graph {name!r}; allowed: {', '.join(GRAPHS)}")
        return
    base = Path(data_dir)
    if not base.is_dir():
        raise ValueError(f"graph data_dir {base} is not a directory")
    for name in names:
        src = base / name
        if not ((src / f"{name}.npz").is_file() or (src / "out1_graph_edges.txt").is_file()):
            raise ValueError(
                f"graph {name!r} not found in {base}: expected {src}/{name}.npz (Platonov layout) "
                f"or {src}/out1_graph_edges.txt (Geom-GCN layout)"
            )


def load_graph(name: str, data_dir: str | Path | None = None) -> Graph:
    """Load one graph by name.

    Args:
        name: a standard graph (:data:`GRAPHS`) when ``data_dir`` is None; otherwise the
            folder name of a user's graph under ``data_dir``, in either layout.
        data_dir: a folder of graphs in the Geom-GCN or Platonov npz layout; default:
            the shared data (standard names only).

    Raises:
        ValueError: an unknown standard name (lists the allowed ones).
        GraphFormatError / DataNotFoundError: a missing or malformed file (named).
    """
    _gnn_extra()
    if data_dir is None:
        if name not in GRAPHS:
            raise ValueError(f"unknown graph {name!r}; allowed: {', '.join(GRAPHS)}")
        reader, _ = GRAPHS[name]
        folder = "chameleon" if name.startswith("chameleon") else name
        src = dataset_dir(folder, data_root())
        if reader == "npz":
            return read_npz_graph(src / f"{name}.npz", name)
        return _read_pyg(name, reader, src)
    base = Path(data_dir)
    if not base.is_dir():
        raise DataNotFoundError(f"graph data_dir {base} is not a directory")
    src = base / name
    if (src / f"{name}.npz").is_file():
        return read_npz_graph(src / f"{name}.npz", name)
    if (src / "out1_graph_edges.txt").is_file():
        return read_geom_gcn(src, name)
    raise DataNotFoundError(
        f"graph {name!r} not found in {base}: expected {src}/{name}.npz (Platonov layout) "
        f"or {src}/out1_graph_edges.txt (Geom-GCN layout)"
    )
