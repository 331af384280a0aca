"""The UCI classification collection of Fernandez-Delgado et al. (2014), as the SNN paper used it.

The shared data folder holds 96 of the 121 data sets in their original layout, packed
as ``uci/uci_fernandez_delgado_96.tar.xz`` (members ``uci121/<name>/...``). Every data
set ``<name>`` has:

* ``<name>.txt``: ``key= value`` lines; ``n_entradas`` (features D), ``n_clases``
  (classes C), ``n_patrons1`` (rows N of the main file), ``n_patrons2`` (rows of the
  official test file, if any);
* ``<name>_R.dat`` (or ``<name>_train_R.dat`` and ``<name>_test_R.dat`` for the 14 sets
  that ship an official test set): tab-separated, a header row ``\\tf1 .. fD\\tclase``,
  then one row per pattern: a 1-based row number, D features (already standardised by
  the collection's authors), the class in ``0 .. C-1``;
* ``conxuntos.dat``: two lines of 0-based row indices, the training and validation
  halves used for hyper-parameter selection;
* ``conxuntos_kfold.dat``: eight lines, four (training, test) pairs.

What the files show (checked on all 96 sets, see ``tests/test_data_uci.py``):

* the indices of both index files refer to the rows of the *main* file
  (``<name>_R.dat``, or ``<name>_train_R.dat`` where there is an official split): they
  never reach ``n_patrons1``. The official test file is not indexed by them; the
  loader returns it separately (``X_test``, ``y_test``) and the SNN experiment only
  *evaluates* on it, as an extra;
* ``conxuntos.dat`` splits the rows into two disjoint halves;
* each "fold" of ``conxuntos_kfold.dat`` is a disjoint 75/25 (train, test) split of
  all the rows, but the four test quarters are drawn independently: they overlap and
  do not cover every row. They are four random sub-samplings, not a 4-fold partition;
* the validation half of ``conxuntos.dat`` overlaps every test quarter (as Wainberg et
  al. 2016 pointed out, hyper-parameters chosen on it have seen test rows). All
  methods share this, so comparisons stay fair, but absolute accuracies are optimistic.

Where to read from (``root``): the data root (holding ``uci/``), the ``uci`` folder
itself (holding the archive), or a directory in the extracted layout
(``<root>/<name>/<name>_R.dat``, or ``<root>/uci121/<name>/...``). The archive is
read straight from the tar (about 0.5 s, once per process); nothing is extracted to
disk and nothing is downloaded.

References:
    Do we need hundreds of classifiers to solve real world classification problems?
    (Fernandez-Delgado, Cernadas, Barro, Amorim, 2014), JMLR 15.

    Self-Normalizing Neural Networks (Klambauer, Unterthiner, Mayr, Hochreiter, 2017),
    arXiv:1706.02515.

    Are random forests truly the best classifiers? (Wainberg, Alipanahi, Frey, 2016),
    JMLR 17.

Example:
    >>> ds = load_uci("iris")
    >>> ds.X.shape, ds.n_classes, len(ds.folds)
    ((150, 4), 3, 4)
"""

from __future__ import annotations

import functools
import math
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._paths import DataNotFoundError, data_root

__all__ = [
    "ARCHIVE_NAME",
    "UCIDataset",
    "UCIFormatError",
    "list_uci_datasets",
    "load_uci",
]

ARCHIVE_NAME = "uci_fernandez_delgado_96.tar.xz"
_TOP = "uci121"


class UCIFormatError(ValueError):
    """A file of the UCI collection that does not follow the layout.

    The message names the file and, where it applies, the line (1-based).
    """


@dataclass(frozen=True)
class UCIDataset:
    """One data set of the collection.

    Args:
        name: the data set's folder name, e.g. ``"iris"``.
        X: ``(N, D)`` float64 features of the main file.
        y: ``(N,)`` int64 classes in ``0 .. n_classes-1``.
        n_classes: C, from ``<name>.txt``.
        train_idx, val_idx: the hyper-parameter selection split (``conxuntos.dat``).
        folds: four ``(train_idx, test_idx)`` pairs (``conxuntos_kfold.dat``).
        X_test, y_test: the official test file, or None where there is none.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def __len__(self) -> int:
        return int(self.X.shape[0])


# -- where the files are -------------------------------------------------------------


class _Source:
    """Reads ``<name>/<file>`` either from the archive or from a directory."""

    def __init__(self, archive: Path | None = None, directory: Path | None = None) -> None:
        self.archive = archive
        self.directory = directory

    def label(self, name: str, fname: str) -> str:
        if self.archive is not None:
            return f"{self.archive}:{_TOP}/{name}/{fname}"
        assert self.directory is not None
        return str(self.directory / name / fname)

    def names(self) -> list[str]:
        if self.archive is not None:
            return sorted({k.split("/")[0] for k in _archive_members(str(self.archive))})
        assert self.directory is not None
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if p.is_dir() and (p / f"{p.name}.txt").is_file()
        )

    def has(self, name: str, fname: str) -> bool:
        if self.archive is not None:
            return f"{name}/{fname}" in _archive_members(str(self.archive))
        assert self.directory is not None
        return (self.directory / name / fname).is_file()

    def read(self, name: str, fname: str) -> str:
        if not self.has(name, fname):
            raise DataNotFoundError(f"UCI file not found: {self.label(name, fname)}")
        if self.archive is not None:
            raw = _archive_members(str(self.archive))[f"{name}/{fname}"]
        else:
            assert self.directory is not None
            raw = (self.directory / name / fname).read_bytes()
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as e:
            raise UCIFormatError(
                f"{self.label(name, fname)}: not an ASCII text file ({e})"
            ) from None


@functools.lru_cache(maxsize=2)
def _archive_members(path: str) -> dict[str, bytes]:
    """``{"<name>/<file>": bytes}`` of the archive's index, text and data files."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                parts = m.name.split("/")
                if not m.isfile() or len(parts) != 3 or parts[0] != _TOP:
                    continue
                fname = parts[2]
                if fname.endswith((".txt", "_R.dat")) or fname.startswith("conxuntos"):
                    fh = tar.extractfile(m)
                    if fh is not None:
                        out[f"{parts[1]}/{fname}"] = fh.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UCIFormatError(f"{path}: not a readable tar archive ({e})") from None
    if not out:
        raise UCIFormatError(f"{path}: no {_TOP}/<name>/... members found")
    return out


def _resolve(root: str | Path | None) -> _Source:
    base = Path(root) if root is not None else data_root()
    if not base.exists():
        raise DataNotFoundError(f"UCI data directory not found: {base}")
    if base.is_file():
        return _Source(archive=base)
    for cand in (base, base / "uci"):
        if (cand / ARCHIVE_NAME).is_file():
            return _Source(archive=cand / ARCHIVE_NAME)
    for cand in (base, base / _TOP, base / "uci" / _TOP):
        if cand.is_dir() and any(
            (p / f"{p.name}.txt").is_file() for p in cand.iterdir() if p.is_dir()
        ):
            return _Source(directory=cand)
    raise DataNotFoundError(
        f"no UCI data under {base}: expected {ARCHIVE_NAME}, a uci/ folder holding it, or "
        "extracted folders <name>/<name>.txt"
    )


# -- parsing -----------------------------------------------------------------------------


def _parse_info(text: str, label: str) -> dict[str, str]:
    info: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if "=" not in line:
            raise UCIFormatError(f"{label}:{i}: expected 'key= value', got {line.strip()!r}")
        key, value = line.split("=", 1)
        info[key.strip()] = value.strip()
    for key in ("n_entradas", "n_clases", "n_patrons1"):
        if key not in info:
            raise UCIFormatError(f"{label}: missing the key {key!r}")
        _int_field(info, key, label)
    return info


def _int_field(info: dict[str, str], key: str, label: str) -> int:
    try:
        v = int(info[key])
    except ValueError:
        raise UCIFormatError(f"{label}: {key}= {info[key]!r} is not an integer") from None
    if v < 1:
        raise UCIFormatError(f"{label}: {key}= {v} must be positive")
    return v


def _parse_table(
    text: str, label: str, n_features: int, n_classes: int, n_rows: int | None
) -> tuple[np.ndarray, np.ndarray]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise UCIFormatError(f"{label}: empty file")
    header = lines[0].rstrip("\r").split("\t")
    expected = ["", *(f"f{j}" for j in range(1, n_features + 1)), "clase"]
    if [h.strip() for h in header] != expected:
        raise UCIFormatError(
            f"{label}:1: header must be a tab, f1 .. f{n_features}, clase "
            f"({n_features + 2} tab-separated fields); got {len(header)} fields "
            f"starting {header[:3]!r}"
        )
    rows = lines[1:]
    if n_rows is not None and len(rows) != n_rows:
        raise UCIFormatError(f"{label}: {len(rows)} data rows, but the .txt file says {n_rows}")
    X = np.empty((len(rows), n_features), dtype=np.float64)
    y = np.empty(len(rows), dtype=np.int64)
    for i, line in enumerate(rows):
        lineno = i + 2
        fields = line.rstrip("\r").split("\t")
        if len(fields) != n_features + 2:
            raise UCIFormatError(
                f"{label}:{lineno}: expected {n_features + 2} tab-separated fields "
                f"(row number, {n_features} features, class), got {len(fields)}"
            )
        try:
            vals = [float(v) for v in fields[1:-1]]
        except ValueError:
            bad = next(v for v in fields[1:-1] if not _is_float(v))
            raise UCIFormatError(f"{label}:{lineno}: feature {bad!r} is not a number") from None
        if not all(math.isfinite(v) for v in vals):
            raise UCIFormatError(f"{label}:{lineno}: a feature is not finite")
        X[i] = vals
        try:
            c = int(fields[-1])
        except ValueError:
            raise UCIFormatError(
                f"{label}:{lineno}: class {fields[-1]!r} is not an integer"
            ) from None
        if not 0 <= c < n_classes:
            raise UCIFormatError(
                f"{label}:{lineno}: class {c} is outside 0 .. {n_classes - 1} (n_clases= {n_classes})"
            )
        y[i] = c
    return X, y


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _parse_indices(text: str, label: str, n_lines: int, n_rows: int) -> list[np.ndarray]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != n_lines:
        raise UCIFormatError(f"{label}: expected {n_lines} lines of indices, got {len(lines)}")
    out = []
    for i, line in enumerate(lines, 1):
        try:
            idx = np.array([int(t) for t in line.split()], dtype=np.int64)
        except ValueError:
            bad = next(t for t in line.split() if not t.lstrip("-").isdigit())
            raise UCIFormatError(f"{label}:{i}: index {bad!r} is not an integer") from None
        if idx.size == 0:
            raise UCIFormatError(f"{label}:{i}: no indices")
        if idx.min() < 0 or idx.max() >= n_rows:
            raise UCIFormatError(
                f"{label}:{i}: index {int(idx.min() if idx.min() < 0 else idx.max())} is outside "
                f"0 .. {n_rows - 1}"
            )
        out.append(idx)
    return out


# -- public API ---------------------------------------------------------------------------


def list_uci_datasets(root: str | Path | None = None) -> list[str]:
    """Names of the data sets available under ``root`` (sorted).

    Args:
        root: see the module docstring; default: the shared data root.
    """
    return _resolve(root).names()


def load_uci(name: str, root: str | Path | None = None) -> UCIDataset:
    """Load one data set of the Fernandez-Delgado collection with its splits.

    Args:
        name: the data set's folder name (see :func:`list_uci_datasets`).
        root: the data root, the ``uci`` folder, or an extracted directory.

    Returns:
        a :class:`UCIDataset`; results are cached per process.

    Raises:
        DataNotFoundError: when ``name`` or the data are not there (listing what is).
        UCIFormatError: naming the file and line of the first malformed entry.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    src = _resolve(root)
    return _load_cached(src.archive, src.directory, name)


@functools.lru_cache(maxsize=256)
def _load_cached(archive: Path | None, directory: Path | None, name: str) -> UCIDataset:
    src = _Source(archive, directory)
    if not src.has(name, f"{name}.txt"):
        names = src.names()
        raise DataNotFoundError(
            f"no UCI data set {name!r} in {src.archive or src.directory}; "
            f"{len(names)} available, e.g. {', '.join(names[:5])}"
        )
    label: Callable[[str], str] = functools.partial(src.label, name)
    info = _parse_info(src.read(name, f"{name}.txt"), label(f"{name}.txt"))
    d = _int_field(info, "n_entradas", label(f"{name}.txt"))
    c = _int_field(info, "n_clases", label(f"{name}.txt"))
    n1 = _int_field(info, "n_patrons1", label(f"{name}.txt"))
    official = src.has(name, f"{name}_train_R.dat")
    main = f"{name}_train_R.dat" if official else f"{name}_R.dat"
    X, y = _parse_table(src.read(name, main), label(main), d, c, n1)
    X_test = y_test = None
    if official:
        fname = f"{name}_test_R.dat"
        n2 = _int_field(info, "n_patrons2", label(f"{name}.txt")) if "n_patrons2" in info else None
        X_test, y_test = _parse_table(src.read(name, fname), label(fname), d, c, n2)
    tr, va = _parse_indices(src.read(name, "conxuntos.dat"), label("conxuntos.dat"), 2, n1)
    if np.intersect1d(tr, va).size:
        raise UCIFormatError(f"{label('conxuntos.dat')}: training and validation indices overlap")
    k = _parse_indices(src.read(name, "conxuntos_kfold.dat"), label("conxuntos_kfold.dat"), 8, n1)
    folds = []
    for f in range(4):
        a, b = k[2 * f], k[2 * f + 1]
        if np.intersect1d(a, b).size:
            raise UCIFormatError(
                f"{label('conxuntos_kfold.dat')}:{2 * f + 1}-{2 * f + 2}: fold {f} training "
                "and test indices overlap"
            )
        folds.append((a, b))
    for arr in (X, y, X_test, y_test, tr, va, *(i for f in folds for i in f)):
        if arr is not None:
            arr.setflags(write=False)  # shared by the cache: callers must copy to modify
    return UCIDataset(
        name=name,
        X=X,
        y=y,
        n_classes=c,
        train_idx=tr,
        val_idx=va,
        folds=tuple(folds),
        X_test=X_test,
        y_test=y_test,
    )
