"""The tiny Shakespeare loader: the standard split, the vocabulary, windows, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from elulab.data import DataNotFoundError, dataset_dir, load_tinyshakespeare
from elulab.data.tinyshakespeare import windows


@pytest.fixture(scope="module")
def corpus():
    return load_tinyshakespeare()


def test_standard_split_and_vocabulary(corpus) -> None:
    assert len(corpus.vocab) == 65 and list(corpus.vocab) == sorted(corpus.vocab)
    assert corpus.vocab[:3] == ("\n", " ", "!") and corpus.vocab[-1] == "z"
    assert (len(corpus.train), len(corpus.val)) == (1_003_854, 111_540)  # int(0.9 n), the rest
    assert corpus.train.dtype == torch.int64 and int(corpus.train.max()) < 65
    assert corpus.decode(corpus.train[:14]) == "First Citizen:"
    raw = (dataset_dir("tinyshakespeare") / "input.txt").read_text(encoding="utf-8")
    # the split is a cut of the file, in order
    assert corpus.decode(corpus.val[:50]) == raw[1_003_854 : 1_003_854 + 50]
    assert corpus.decode(corpus.val[-30:]) == raw[-30:]


def test_encode_decode_round_trip(corpus) -> None:
    text = "O Romeo, Romeo! wherefore art thou Romeo?\n"
    codes = corpus.encode(text)
    assert codes.dtype == torch.int64 and corpus.decode(codes) == text
    with pytest.raises(ValueError, match="not in the vocabulary: '#'"):
        corpus.encode("a#b")


def test_windows_are_shifted_by_one(corpus) -> None:
    x, y = windows(corpus.train, torch.tensor([0, 100, 5000]), 16)
    assert x.shape == y.shape == (3, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y[1], corpus.train[101:117])
    last = len(corpus.val) - 17
    windows(corpus.val, torch.tensor([last]), 16)  # the last allowed start
    with pytest.raises(ValueError, match=r"window starts must lie in \[0, "):
        windows(corpus.val, torch.tensor([last + 1]), 16)
    with pytest.raises(ValueError, match="context must be in"):
        windows(corpus.val, torch.tensor([0]), 0)


def test_missing_and_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="'tinyshakespeare' not found"):
        load_tinyshakespeare(tmp_path)
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    with pytest.raises(DataNotFoundError, match=r"tiny Shakespeare file not found: .*input\.txt"):
        load_tinyshakespeare(tmp_path)
    (folder / "input.txt").write_text("To be, or not to be\n")
    with pytest.raises(ValueError, match=r"input\.txt: expected 1115394 characters over 65"):
        load_tinyshakespeare(tmp_path)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        load_tinyshakespeare(tmp_path, val_fraction=1.0)
