"""MNIST from the shared data folder (the 10,000-image *test* set only).

Only the MNIST test set (``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``)
is available in ``../shared/data/mnist``: the 60,000 training images are not. Every
experiment that uses MNIST therefore splits these 10,000 images into its own
train / validation / test parts with :func:`split_indices`; accuracies are not
comparable with numbers trained on the official 60k training set.

The files are in the IDX format (big-endian, gzip-compressed):

* images: magic ``0x00000803``, then the counts ``n, 28, 28`` (uint32), then
  ``n * 28 * 28`` unsigned bytes;
* labels: magic ``0x00000801``, then ``n`` (uint32), then ``n`` bytes in 0..9.

References:
    Gradient-based learning applied to document recognition (LeCun, Bottou, Bengio,
    Haffner, 1998), http://yann.lecun.com/exdb/mnist/.

Example:
    >>> images, labels = load_mnist()
    >>> images.shape, labels.shape
    (torch.Size([10000, 1, 28, 28]), torch.Size([10000]))
    >>> train, val, test = split_indices(10, seed=0)
    >>> len(train), len(val), len(test)
    (6, 2, 2)
"""

from __future__ import annotations

import functools
import gzip
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ._paths import dataset_dir

__all__ = [
    "IMAGES_FILE",
    "LABELS_FILE",
    "load_mnist",
    "load_mnist_split",
    "read_idx",
    "row_sequences",
    "split_indices",
]

IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"

# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte), the rank.
_MAGIC = {1: 0x00000801, 3: 0x00000803}


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions.

    Args:
        path: the ``.gz`` file.
        ndim: the expected rank (1 for labels, 3 for images).

    Returns:
        a ``uint8`` array of the shape the header states.

    Raises:
        ValueError: naming the file, when it is not gzip, the magic number is not
            ``0x0801``/``0x0803``, or the payload size disagrees with the header.
        FileNotFoundError: when the file does not exist.
    """
    path = Path(path)
    if ndim not in _MAGIC:
        raise ValueError(f"ndim must be 1 or 3, got {ndim!r}")
    if not path.is_file():
        raise FileNotFoundError(f"MNIST file not found: {path}")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a readable gzip file ({e})") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes, need {header})")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != _MAGIC[ndim]:
        raise ValueError(
            f"{path}: bad IDX magic number {magic:#010x}, expected {_MAGIC[ndim]:#010x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape)
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: payload has {len(raw) - header} bytes but the header {tuple(shape)} "
            f"needs {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=4)
def _load(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / IMAGES_FILE, 3)
    labels = read_idx(folder / LABELS_FILE, 1)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"{folder / IMAGES_FILE}: images are {images.shape[1:]}, expected (28, 28)"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels "
            f"({IMAGES_FILE}, {LABELS_FILE})"
        )
    if labels.size and int(labels.max()) > 9:
        raise ValueError(
            f"{folder / LABELS_FILE}: labels must be in 0..9, found {int(labels.max())}"
        )
    return images, labels


def load_mnist(root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the 10,000 MNIST test images and their labels.

    Pixels are scaled to ``x / 255`` in ``[0, 1]``. The parsed files are cached in
    process (keyed by the folder), so calling this again is cheap; each call returns
    fresh tensors that the caller may modify.

    Only the MNIST *test* set exists in the shared data: split it with
    :func:`split_indices` into train / validation / test.

    Args:
        root: the data root holding ``mnist/`` (default :func:`elulab.data.data_root`).

    Returns:
        ``(images, labels)``: ``float32`` tensor ``(10000, 1, 28, 28)`` and ``int64``
        tensor ``(10000,)``.

    Raises:
        DataNotFoundError: when ``<root>/mnist`` does not exist.
        ValueError: naming the file, when a file is malformed.
    """
    folder = dataset_dir("mnist", root).resolve()
    images, labels = _load(folder)
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def split_indices(
    n: int, seed: int, fractions: Sequence[float] = (0.6, 0.2, 0.2)
) -> tuple[np.ndarray, ...]:
    """A deterministic random split of ``range(n)`` into disjoint parts.

    The permutation comes from ``numpy.random.default_rng(seed)``; part ``i`` gets
    ``floor(n * f_i)`` indices, the last part the remainder (no stratification).

    Args:
        n: number of items (>= 0).
        seed: seed of the permutation (same seed -> same split).
        fractions: positive fractions summing to 1 (within 1e-9), e.g. train/val/test.

    Returns:
        one ``int64`` array of indices per fraction.

    Example:
        >>> [a.tolist() for a in split_indices(5, seed=1, fractions=(0.6, 0.4))]
        [[4, 0, 1], [2, 3]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    fr = [float(f) for f in fractions]
    if not fr or any(not (f > 0.0) or not math.isfinite(f) for f in fr):
        raise ValueError(f"fractions must be positive finite numbers, got {tuple(fractions)!r}")
    if abs(sum(fr) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {tuple(fractions)!r} (sum {sum(fr)})")
    perm = np.random.default_rng(int(seed)).permutation(int(n)).astype(np.int64)
    sizes = [math.floor(n * f + 1e-9) for f in fr[:-1]]  # 1e-9: 0.29 * 100 -> 29, not 28
    bounds = np.cumsum([0, *sizes])
    parts = [perm[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]
    parts.append(perm[bounds[-1] :])
    return tuple(parts)


def load_mnist_split(
    seed: int,
    n_train: int,
    n_test: int,
    root: str | Path | None = None,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n_train`` training and ``n_test`` test images of split ``seed``.

    :func:`load_mnist`, then :func:`split_indices` ``(10000, seed, fractions)``: the
    first part is the training split, the last the test split (parts in between, e.g.
    a validation split, are not used); each is cut to its first ``n`` images.

    Args:
        seed: seed of the split.
        n_train, n_test: images kept from the training and test splits (>= 1 each,
            at most the split's size: 6000 and 2000 with the default fractions).
        root: the data root (see :func:`load_mnist`).
        fractions: passed to :func:`split_indices` (at least two parts).

    Returns:
        ``(x_train, y_train, x_test, y_test)`` as from :func:`load_mnist`.

    Example:
        >>> xtr, ytr, xte, yte = load_mnist_split(0, 100, 50)
        >>> tuple(xtr.shape), tuple(yte.shape)
        ((100, 1, 28, 28), (50,))
    """
    if len(fractions) < 2:
        raise ValueError(f"fractions must have at least two parts, got {tuple(fractions)!r}")
    images, labels = load_mnist(root)
    parts = split_indices(len(labels), seed, fractions)
    tr, te = parts[0], parts[-1]
    for name, n, part in (("n_train", n_train, tr), ("n_test", n_test, te)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(part):
            raise ValueError(f"{name} must be an integer in 1..{len(part)}, got {n!r}")
    return images[tr[:n_train]], labels[tr[:n_train]], images[te[:n_test]], labels[te[:n_test]]


def row_sequences(
    rows: torch.Tensor,
    first: torch.Tensor,
    n_after: int,
    pool: np.ndarray,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sequences of image rows: image ``first[i]``'s rows, then ``n_after`` rows of others.

    For sequential-MNIST tasks (one row per time step). ``rows`` is ``(N, R, W)``
    (image, row, pixel). After each sequence's own image come the rows of
    ``ceil(n_after / R)`` whole images, one per sequence drawn uniformly from the
    indices ``pool`` with ``generator`` (one ``torch.randint`` per extra image); the
    result is cut to ``R + n_after`` rows.

    Returns:
        a tensor ``(len(first), R + n_after, W)``.

    Example:
        >>> rows = torch.arange(4 * 28 * 28.0).reshape(4, 28, 28)
        >>> gen = torch.Generator().manual_seed(0)
        >>> row_sequences(rows, torch.tensor([0, 1]), 14, np.array([2, 3]), gen).shape
        torch.Size([2, 42, 28])
    """
    parts, r = [rows[first]], rows.shape[1]
    for _ in range(-(-n_after // r)):
        pick = torch.randint(len(pool), (len(first),), generator=generator)
        parts.append(rows[torch.from_numpy(pool)[pick]])
    return torch.cat(parts, dim=1)[:, : r + n_after]
