"""The HTRU2 pulsar-candidate data set (Lyon et al. 2016), read from ``shared/data/htru2``.

17,898 candidates, 8 continuous features (mean, standard deviation, excess kurtosis and
skewness of the integrated pulse profile, then the same four statistics of the DM-SNR
curve) and a binary label (1 = real pulsar, 1,639 of them). The file is read as it is
stored, with the one header line the local copy carries; nothing is downloaded.

References:
    Fifty Years of Pulsar Candidate Selection: From simple filters to a new principled
    real-time classification approach (Lyon, Stappers, Cooper, Brooke, Knowles, 2016),
    MNRAS 459(1). UCI Machine Learning Repository, data set 372.

Example:
    >>> X, y = load_htru2()
    >>> X.shape, int(y.sum())
    ((17898, 8), 1639)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._paths import DataNotFoundError, dataset_dir

__all__ = ["HTRU2_FEATURES", "HTRU2_FILE", "HTRU2_ROWS", "load_htru2"]

HTRU2_FILE = "HTRU_2.csv"
HTRU2_ROWS = 17898
# Column names: (M)ean, (ST)andard deviation, (EX)cess kurtosis, (SK)ewness of the
# integrated profile (1) and of the DM-SNR curve (2); the header of the local copy.
HTRU2_FEATURES: tuple[str, ...] = ("M1", "ST1", "EX1", "SK1", "M2", "ST2", "EX2", "SK2")
_N_FIELDS = len(HTRU2_FEATURES) + 1


def _parse(path: Path, expected_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    rows: list[list[float]] = []
    labels: list[int] = []
    with path.open("r", encoding="ascii", errors="strict") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue  # blank lines (e.g. a trailing one) carry no row
            fields = [f.strip() for f in text.split(",")]
            if lineno == 1 and fields[0] == HTRU2_FEATURES[0]:
                if tuple(fields[:-1]) != HTRU2_FEATURES or len(fields) != _N_FIELDS:
                    raise ValueError(
                        f"{path}, line 1: unexpected header {text!r}; expected "
                        f"{','.join((*HTRU2_FEATURES, 'C'))!r}"
                    )
                continue
            if len(fields) != _N_FIELDS:
                raise ValueError(
                    f"{path}, line {lineno}: expected {_N_FIELDS} comma-separated fields "
                    f"(8 features and the class), got {len(fields)}"
                )
            try:
                values = [float(f) for f in fields[:-1]]
            except ValueError:
                raise ValueError(
                    f"{path}, line {lineno}: a feature is not a number: {text!r}"
                ) from None
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{path}, line {lineno}: a feature is not finite: {text!r}")
            if fields[-1] not in ("0", "1"):
                raise ValueError(
                    f"{path}, line {lineno}: the class must be 0 or 1, got {fields[-1]!r}"
                )
            rows.append(values)
            labels.append(int(fields[-1]))
    if expected_rows is not None and len(rows) != expected_rows:
        raise ValueError(f"{path}: expected {expected_rows} data rows, found {len(rows)}")
    if not rows:
        raise ValueError(f"{path}: no data rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def load_htru2(
    root: str | Path | None = None, *, expected_rows: int | None = HTRU2_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Load HTRU2 as ``(X, y)``: float64 features ``(17898, 8)`` and int64 labels in {0, 1}.

    The columns are :data:`HTRU2_FEATURES` in that order; the rows are in file order
    (split them yourself, e.g. with :func:`elulab.data.split_indices`).

    Arguments:
        root: the data root holding ``htru2/HTRU_2.csv``; defaults to
            :func:`elulab.data.data_root`.
        expected_rows: the number of data rows the file must hold (``None`` skips the
            check; only for reading a modified copy).

    Raises:
        DataNotFoundError: if the folder or the file is missing.
        ValueError: on a malformed row (naming the file and the line), or a row count
            other than ``expected_rows``.

    Example:
        >>> X, y = load_htru2()
        >>> X.dtype, y.dtype
        (dtype('float64'), dtype('int64'))
    """
    path = dataset_dir("htru2", root) / HTRU2_FILE
    if not path.is_file():
        raise DataNotFoundError(f"HTRU2 file not found: {path}")
    return _parse(path, expected_rows)
