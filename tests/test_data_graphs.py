"""Graph loaders: the standard graphs, user graphs in both layouts, errors naming files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")

from elulab.data import data_root
from elulab.data._paths import DataNotFoundError
from elulab.data.graphs import (
    GRAPHS,
    GraphFormatError,
    edge_homophily,
    load_graph,
    read_geom_gcn,
)
from needs import missing

# name -> (nodes, features, classes, directed edge count after symmetrising) as published:
# Pei et al. 2020 (Geom-GCN) Table 3, Platonov et al. 2023 Table 1 (chameleon_filtered,
# minesweeper: 39,402 / 2 = 19,701 undirected edges), PyG's Planetoid (Cora 10,556, CiteSeer 9,104).
PUBLISHED = {
    "texas": (183, 1703, 5, None),
    "cornell": (183, 1703, 5, None),
    "film": (7600, 932, 5, None),
    "chameleon": (2277, 2325, 5, 62742),
    "chameleon_filtered": (890, 2325, 5, 17708),
    "cora": (2708, 1433, 7, 10556),
    "citeseer": (3327, 3703, 6, 9104),
    "minesweeper": (10000, 7, 2, 78804),
}


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory):
    """PyG's processed copies go to a fresh folder, never the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELULAB_CACHE_DIR", str(tmp_path_factory.mktemp("elucache")))
        yield


def _shared(name: str) -> Path:
    try:
        root = data_root()
    except DataNotFoundError:
        missing("shared data")
    if not (Path(root) / name).is_dir():
        missing(f"shared graph data {name}")
    return Path(root) / name


@pytest.mark.parametrize("name", list(GRAPHS))
def test_standard_graph_has_published_counts(name: str) -> None:
    _shared("chameleon" if name.startswith("chameleon") else name)
    g = load_graph(name)
    nodes, feats, classes, edges = PUBLISHED[name]
    assert (g.num_nodes, g.x.shape[1], g.num_classes, g.num_splits) == (nodes, feats, classes, 10)
    if edges is not None:
        assert g.edge_index.shape[1] == edges
    ei = g.edge_index
    assert not bool((ei[0] == ei[1]).any())  # no self-loops
    rev = set(map(tuple, ei.t().tolist()))
    assert all((b, a) in rev for a, b in rev)  # both directions
    m = g.train_masks.int() + g.val_masks.int() + g.test_masks.int()
    assert int(m.max()) == 1 and g.train_masks.shape == (10, nodes)  # disjoint per split
    assert g.metric == ("roc_auc" if name == "minesweeper" else "accuracy")


def test_texas_homophily_with_and_without_self_loops() -> None:
    from torch_geometric.datasets import WebKB
    from torch_geometric.utils import homophily

    _shared("texas")
    g = load_graph("texas")
    assert round(g.edge_homophily(), 3) == 0.061
    # the raw (directed, self-looped) edges PyG read: H2GCN's 0.11 (Zhu et al. 2020, Table 5)
    from elulab.data.graphs import cache_dir

    raw = WebKB(str(cache_dir()), "texas")[0]
    assert int((raw.edge_index[0] == raw.edge_index[1]).sum()) > 0
    assert round(float(homophily(raw.edge_index, raw.y, method="edge")), 3) == 0.108


def test_read_geom_gcn_equals_pyg_on_texas() -> None:
    g_pyg = load_graph("texas")
    g_own = read_geom_gcn(_shared("texas"), "texas")
    for f in ("x", "y", "edge_index", "train_masks", "val_masks", "test_masks"):
        assert torch.equal(getattr(g_own, f), getattr(g_pyg, f)), f


def test_edge_homophily_by_hand() -> None:
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    assert edge_homophily(ei, torch.tensor([0, 0, 1, 1])) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="no edges"):
        edge_homophily(torch.zeros(2, 0, dtype=torch.long), torch.tensor([0]))


# -- user graphs ---------------------------------------------------------------------------

EDGES = [(0, 1), (1, 2), (2, 3), (3, 3)]  # a path with one self-loop (dropped)
LABELS = [0, 1, 0, 1]


def _masks(n: int = 4) -> dict[str, np.ndarray]:
    return {
        "train_mask": np.array([1, 1, 0, 0][:n], bool),
        "val_mask": np.array([0, 0, 1, 0][:n], bool),
        "test_mask": np.array([0, 0, 0, 1][:n], bool),
    }


def _geom(root: Path, name: str, rows: list[str]) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "out1_node_feature_label.txt").write_text("node_id\tfeature\tlabel\n" + "\n".join(rows))
    edges = "\n".join(f"{a}\t{b}" for a, b in EDGES)
    (d / "out1_graph_edges.txt").write_text("node_id\tnode_id\n" + edges + "\n")
    for i in range(10):
        np.savez(d / f"{name}_split_0.6_0.2_{i}.npz", **_masks())
    return d


def test_user_graph_geom_gcn_dense_and_index_features(tmp_path: Path) -> None:
    dense = [f"{i}\t{i}.5,{-i},1\t{y}" for i, y in enumerate(LABELS)]
    _geom(tmp_path, "toy", dense)
    g = load_graph("toy", data_dir=tmp_path)
    assert g.x.tolist() == [[0.5, 0.0, 1.0], [1.5, -1.0, 1.0], [2.5, -2.0, 1.0], [3.5, -3.0, 1.0]]
    assert g.y.tolist() == LABELS and g.metric == "roc_auc"
    assert g.edge_index.tolist() == [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]
    assert g.num_splits == 10 and g.train_masks[3].tolist() == [True, True, False, False]
    # Actor's format: indices of the non-zero binary features, rows of unequal length
    sparse = ["0\t0,4\t0", "1\t2\t1", "2\t1,2,3\t0", "3\t4\t2"]
    _geom(tmp_path, "toy2", sparse)
    g2 = load_graph("toy2", data_dir=tmp_path)
    assert g2.x.shape == (4, 5) and g2.x[2].tolist() == [0, 1, 1, 1, 0]
    assert g2.metric == "accuracy" and g2.num_classes == 3


def test_user_graph_npz_layout(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    m = _masks()
    np.savez(
        d / "mine.npz",
        node_features=np.arange(8, dtype=np.float32).reshape(4, 2),
        node_labels=np.array(LABELS),
        edges=np.array(EDGES[:3]),
        **{f"{k}s": np.stack([v, v]) for k, v in m.items()},
    )
    g = load_graph("mine", data_dir=tmp_path)
    assert g.num_splits == 2 and g.x[3].tolist() == [6.0, 7.0]
    assert g.edge_index.shape == (2, 6) and g.edge_homophily() == 0.0


def test_missing_and_malformed_files_are_named(tmp_path: Path) -> None:
    d = _geom(tmp_path, "bad", ["0\t1,2\t0", "1\t3,x\t1"])
    with pytest.raises(GraphFormatError, match=r"out1_node_feature_label\.txt: malformed"):
        load_graph("bad", data_dir=tmp_path)
    d = _geom(tmp_path, "nosplit", [f"{i}\t1\t{y}" for i, y in enumerate(LABELS)])
    (d / "nosplit_split_0.6_0.2_7.npz").unlink()
    with pytest.raises(GraphFormatError, match=r"nosplit_split_0\.6_0\.2_7\.npz"):
        load_graph("nosplit", data_dir=tmp_path)
    d = _geom(tmp_path, "nokey", [f"{i}\t1\t{y}" for i, y in enumerate(LABELS)])
    np.savez(d / "nokey_split_0.6_0.2_0.npz", train_mask=_masks()["train_mask"])
    with pytest.raises(GraphFormatError, match=r"nokey_split_0\.6_0\.2_0\.npz lacks val_mask"):
        load_graph("nokey", data_dir=tmp_path)
    (tmp_path / "half").mkdir()
    np.savez(tmp_path / "half" / "half.npz", node_features=np.zeros((2, 2)))
    with pytest.raises(GraphFormatError, match=r"half\.npz lacks node_labels"):
        load_graph("half", data_dir=tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk.npz").write_text("not a zip")
    with pytest.raises(GraphFormatError, match=r"cannot read graph file .*junk\.npz"):
        load_graph("junk", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match=r"graph 'absent' not found .*out1_graph_edges"):
        load_graph("absent", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="is not a directory"):
        load_graph("texas", data_dir=tmp_path / "nowhere")


def test_unknown_standard_name_lists_the_allowed() -> None:
    with pytest.raises(ValueError, match="unknown graph 'squirrel'; allowed: texas, cornell, film"):
        load_graph("squirrel")
