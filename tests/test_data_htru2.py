"""Tests of the HTRU2 loader on the real file and on malformed copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from elulab.data import DataNotFoundError, load_htru2
from elulab.data.htru2 import HTRU2_FEATURES, HTRU2_ROWS
from needs import missing

HEADER = ",".join((*HTRU2_FEATURES, "C"))
ROW = "140.5625,55.68378214,-0.234571412,-0.699648398,3.199832776,19.11042633,7.975531794,74.24222492,0"


def _write(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "htru2"
    d.mkdir()
    (d / "HTRU_2.csv").write_text(text)
    return tmp_path


def test_real_file_shape_dtypes_and_counts() -> None:
    try:
        X, y = load_htru2()
    except DataNotFoundError:
        missing("shared/data/htru2 not available")
    assert X.shape == (HTRU2_ROWS, 8) and X.dtype == np.float64
    assert y.shape == (HTRU2_ROWS,) and y.dtype == np.int64
    # the UCI description: 16,259 negatives and 1,639 pulsars
    assert int(y.sum()) == 1639 and set(np.unique(y).tolist()) == {0, 1}
    assert np.isfinite(X).all()
    # the first data row of the file, verbatim
    np.testing.assert_array_equal(X[0], [float(v) for v in ROW.split(",")[:-1]])
    # standard deviations are positive: no constant column
    assert (X.std(0) > 0).all()


def test_small_copy_with_and_without_header(tmp_path: Path) -> None:
    root = _write(tmp_path, f"{HEADER}\n{ROW}\n{ROW.replace(',0', ',1')}\n")
    X, y = load_htru2(root, expected_rows=2)
    assert X.shape == (2, 8) and y.tolist() == [0, 1]
    root2 = tmp_path / "b"
    root2.mkdir()
    _write(root2, f"{ROW}\n{ROW}")  # no header, no trailing newline
    X2, _ = load_htru2(root2, expected_rows=2)
    np.testing.assert_array_equal(X2, np.stack([X[0], X[0]]))


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("1,2,3", "expected 9 comma-separated fields"),
        (ROW.replace("140.5625", "abc"), "not a number"),
        (ROW.replace("140.5625", "nan"), "not finite"),
        (ROW[:-1] + "2", "class must be 0 or 1"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    root = _write(tmp_path, f"{HEADER}\n{ROW}\n{line}\n")
    with pytest.raises(ValueError, match=rf"HTRU_2\.csv, line 3: .*{needle}"):
        load_htru2(root, expected_rows=None)


def test_wrong_row_count_and_header(tmp_path: Path) -> None:
    root = _write(tmp_path, f"{HEADER}\n{ROW}\n")
    with pytest.raises(ValueError, match=f"expected {HTRU2_ROWS} data rows, found 1"):
        load_htru2(root)
    root2 = tmp_path / "b"
    root2.mkdir()
    _write(root2, "M1,XX,EX1,SK1,M2,ST2,EX2,SK2,C\n" + ROW)
    with pytest.raises(ValueError, match="line 1: unexpected header"):
        load_htru2(root2, expected_rows=None)


def test_missing_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="htru2"):
        load_htru2(tmp_path)
    (tmp_path / "htru2").mkdir()
    with pytest.raises(DataNotFoundError, match=r"HTRU_2\.csv"):
        load_htru2(tmp_path)
