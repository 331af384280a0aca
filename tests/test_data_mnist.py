"""Tests of the MNIST loader on the real shared files and on malformed copies."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from elulab.data import DataNotFoundError, load_mnist, split_indices
from elulab.data.mnist import IMAGES_FILE, LABELS_FILE, read_idx

# Published class counts of the MNIST test set (t10k), digits 0..9.
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _write_idx(path: Path, magic: int, shape: tuple[int, ...], payload: bytes) -> None:
    with gzip.open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape) + payload)


def _fake_root(tmp_path: Path, n: int = 3) -> Path:
    d = tmp_path / "mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(
        d / IMAGES_FILE, 0x803, (n, 28, 28), rng.integers(0, 256, n * 784, np.uint8).tobytes()
    )
    _write_idx(d / LABELS_FILE, 0x801, (n,), bytes(range(n)))
    return tmp_path


def test_real_file_shapes_types_range() -> None:
    x, y = load_mnist()
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    counts = torch.bincount(y, minlength=10).tolist()
    assert counts == T10K_COUNTS and sum(counts) == 10000
    # the first test digit is a 7 (the well-known first image of t10k)
    assert int(y[0]) == 7
    # pixel values are multiples of 1/255
    assert torch.allclose(x * 255, torch.round(x * 255), atol=1e-4)


def test_returns_fresh_tensors_each_call() -> None:
    x1, _ = load_mnist()
    x1.zero_()
    x2, _ = load_mnist()
    assert float(x2.max()) == 1.0


def test_fake_root_round_trip(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, n=3)
    x, y = load_mnist(root)
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [0, 1, 2]
    raw = read_idx(root / "mnist" / IMAGES_FILE, 3)
    assert torch.equal(x[:, 0], torch.from_numpy(raw.astype(np.float32) / 255))


@pytest.mark.parametrize(
    "which, magic, shape, payload, match",
    [
        ("images", 0x801, (2, 28, 28), bytes(2 * 784), "magic"),
        ("images", 0x803, (2, 28, 28), bytes(784), "payload"),
        ("labels", 0x803, (2,), bytes(2), "magic"),
        ("labels", 0x801, (2,), bytes(5), "payload"),
    ],
)
def test_malformed_file_error_names_the_file(
    tmp_path: Path, which: str, magic: int, shape: tuple[int, ...], payload: bytes, match: str
) -> None:
    root = _fake_root(tmp_path, n=2)
    name = IMAGES_FILE if which == "images" else LABELS_FILE
    _write_idx(root / "mnist" / name, magic, shape, payload)
    with pytest.raises(ValueError, match=match) as err:
        load_mnist(root)
    assert name in str(err.value)


def test_not_gzip_error_names_the_file(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    (root / "mnist" / LABELS_FILE).write_bytes(b"this is not gzip")
    with pytest.raises(ValueError, match="gzip") as err:
        load_mnist(root)
    assert LABELS_FILE in str(err.value)


def test_count_mismatch_and_bad_labels(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, n=3)
    _write_idx(root / "mnist" / LABELS_FILE, 0x801, (2,), bytes(2))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        load_mnist(root)
    (tmp_path / "b").mkdir()
    root2 = _fake_root(tmp_path / "b", n=2)
    _write_idx(root2 / "mnist" / LABELS_FILE, 0x801, (2,), bytes([1, 12]))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        load_mnist(root2)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="mnist"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("n", [0, 1, 7, 10, 10000])
def test_split_indices_partition(n: int) -> None:
    parts = split_indices(n, seed=3)
    assert len(parts) == 3
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(n))
    assert [len(p) for p in parts[:2]] == [
        int(np.floor(n * 0.6 + 1e-9)),
        int(np.floor(n * 0.2 + 1e-9)),
    ]


def test_split_indices_deterministic_and_seed_dependent() -> None:
    a = split_indices(1000, seed=1)
    b = split_indices(1000, seed=1)
    c = split_indices(1000, seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert [len(p) for p in split_indices(100, 0, (0.29, 0.71))] == [29, 71]


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"n": -1, "seed": 0}, ValueError),
        ({"n": 5, "seed": 0, "fractions": (0.5, 0.4)}, ValueError),
        ({"n": 5, "seed": 0, "fractions": (1.2, -0.2)}, ValueError),
        ({"n": 5, "seed": 0, "fractions": ()}, ValueError),
        ({"n": 5, "seed": 0.5}, TypeError),
    ],
)
def test_split_indices_bad_input(kwargs: dict, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        split_indices(**kwargs)
