"""The UCI (Fernandez-Delgado) loader on the real archive, an extracted copy, and bad files."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from elulab.data import DataNotFoundError, data_root
from elulab.data.uci import ARCHIVE_NAME, UCIFormatError, list_uci_datasets, load_uci
from needs import missing


@pytest.fixture(scope="module")
def uci_dir() -> Path:
    try:
        d = data_root() / "uci"
    except DataNotFoundError as e:
        missing(f"shared data not available: {e}")
    if not (d / ARCHIVE_NAME).is_file():
        missing(f"{d / ARCHIVE_NAME} not available")
    return d


def _extract(uci_dir: Path, names: list[str], dest: Path) -> Path:
    with tarfile.open(uci_dir / ARCHIVE_NAME) as tar:
        members = [
            m for m in tar.getmembers() if m.name.split("/")[1:2] and m.name.split("/")[1] in names
        ]
        tar.extractall(dest, members=members, filter="data")
    return dest / "uci121"


def test_single_file_dataset(uci_dir: Path) -> None:
    ds = load_uci("iris", uci_dir)
    assert ds.X.shape == (150, 4) and ds.y.shape == (150,)
    assert ds.n_classes == 3 and np.bincount(ds.y).tolist() == [50, 50, 50]
    assert ds.X_test is None and ds.y_test is None
    # the collection standardised every feature over the file (printed to 6 digits)
    np.testing.assert_allclose(ds.X.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.X.std(0, ddof=1), 1.0, atol=1e-4)
    assert len(ds.train_idx) == 75 and len(ds.val_idx) == 75
    assert sorted(np.concatenate([ds.train_idx, ds.val_idx]).tolist()) == list(range(150))
    assert len(ds.folds) == 4
    for tr, te in ds.folds:
        assert len(tr) + len(te) == 150 and not set(tr) & set(te)


def test_train_test_dataset(uci_dir: Path) -> None:
    ds = load_uci("annealing", uci_dir)
    assert ds.X.shape == (798, 31) and ds.X_test is not None and ds.X_test.shape == (100, 31)
    assert ds.n_classes == 5 and ds.y.max() <= 4 and ds.y_test is not None
    # the index files address the rows of annealing_train_R.dat only
    assert max(int(tr.max()) for tr, _ in ds.folds) < 798
    assert sorted(np.concatenate([ds.train_idx, ds.val_idx]).tolist()) == list(range(798))
    # first data row of the training file, as printed in it
    assert ds.X[0, 0] == pytest.approx(-0.223425) and ds.y[0] == 2


def test_every_dataset_loads_and_documented_facts_hold(uci_dir: Path) -> None:
    names = list_uci_datasets(uci_dir)
    assert len(names) == 96
    n_official = 0
    overlapping = 0
    for name in names:
        ds = load_uci(name, uci_dir)
        n = len(ds)
        assert ds.X.shape == (n, ds.n_features) and np.isfinite(ds.X).all()
        assert 0 <= ds.y.min() and ds.y.max() < ds.n_classes
        n_official += ds.X_test is not None
        tests = [set(te.tolist()) for _, te in ds.folds]
        for tr, te in ds.folds:  # each fold is a disjoint split of all rows
            assert len(tr) + len(te) == n
        overlapping += any(tests[i] & tests[j] for i in range(4) for j in range(i + 1, 4))
    assert n_official == 14
    # the four test quarters are independent draws, not a partition (module docstring)
    assert overlapping >= 90


def test_extracted_directory_matches_archive(uci_dir: Path, tmp_path: Path) -> None:
    root = _extract(uci_dir, ["iris", "hayes-roth"], tmp_path)
    for name in ("iris", "hayes-roth"):
        a, b = load_uci(name, uci_dir), load_uci(name, root)
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
        for (t1, s1), (t2, s2) in zip(a.folds, b.folds, strict=False):
            np.testing.assert_array_equal(t1, t2)
            np.testing.assert_array_equal(s1, s2)
    assert list_uci_datasets(tmp_path) == ["hayes-roth", "iris"]  # finds uci121/ below
    assert load_uci("hayes-roth", root).X_test.shape == (28, 3)
    # the data root (holding uci/) is accepted too
    assert load_uci("iris", uci_dir.parent).X.shape == (150, 4)


def _corrupt(root: Path, name: str, fname: str, line: int, text: str) -> None:
    p = root / name / fname
    lines = p.read_text().splitlines()
    lines[line - 1] = text
    p.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def iris_copy(uci_dir: Path, tmp_path: Path) -> Path:
    return _extract(uci_dir, ["iris"], tmp_path)


def test_bad_feature_names_file_and_line(iris_copy: Path) -> None:
    _corrupt(iris_copy, "iris", "iris_R.dat", 5, "4\t-1.5\tabc\t-1.2\t-1.3\t0")
    with pytest.raises(UCIFormatError, match=r"iris_R\.dat:5: feature 'abc' is not a number"):
        load_uci("iris", iris_copy)


def test_bad_field_count_and_class(iris_copy: Path) -> None:
    _corrupt(iris_copy, "iris", "iris_R.dat", 7, "6\t1.0\t2.0\t0")
    with pytest.raises(UCIFormatError, match=r"iris_R\.dat:7: expected 6 tab-separated fields"):
        load_uci("iris", iris_copy)
    shutil.copy(iris_copy / "iris" / "iris_R.dat", iris_copy / "iris" / "x")
    _corrupt(iris_copy, "iris", "iris_R.dat", 7, "6\t1.0\t2.0\t1.0\t1.0\t3")
    with pytest.raises(UCIFormatError, match=r"iris_R\.dat:7: class 3 is outside 0 \.\. 2"):
        load_uci("iris", iris_copy)


def test_bad_index_and_header(iris_copy: Path) -> None:
    _corrupt(iris_copy, "iris", "conxuntos_kfold.dat", 3, "0 1 999")
    with pytest.raises(UCIFormatError, match=r"conxuntos_kfold\.dat:3: index 999 is outside"):
        load_uci("iris", iris_copy)
    _corrupt(iris_copy, "iris", "iris_R.dat", 1, "\tf1\tf2\tclase")
    with pytest.raises(UCIFormatError, match=r"iris_R\.dat:1: header"):
        load_uci("iris", iris_copy)


def test_missing_things(iris_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no UCI data set 'nope'"):
        load_uci("nope", iris_copy)
    (iris_copy / "iris" / "conxuntos.dat").unlink()
    with pytest.raises(DataNotFoundError, match=r"conxuntos\.dat"):
        load_uci("iris", iris_copy)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="no UCI data under"):
        load_uci("iris", empty)
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        load_uci("", iris_copy)
