"""Tiny Shakespeare, the character-level language-modelling corpus (from the shared data).

``../shared/data/tinyshakespeare/input.txt`` is Karpathy's char-rnn file (1,115,394
characters of Shakespeare, 65 distinct symbols; see ``SOURCE.txt`` beside it). The
standard split (char-rnn, nanoGPT's ``shakespeare_char``) is used: the vocabulary is the
sorted set of all characters, the first 90% of the text is the training part
(1,003,854 characters), the last 10% the validation part (111,540). A loss on it is in
nats per character; the uniform model scores :math:`\\ln 65 = 4.174`.

References:
    The Unreasonable Effectiveness of Recurrent Neural Networks (Karpathy, 2015),
    https://github.com/karpathy/char-rnn.

Example:
    >>> corpus = load_tinyshakespeare()
    >>> len(corpus.vocab), len(corpus.train), len(corpus.val)
    (65, 1003854, 111540)
    >>> corpus.decode(corpus.encode("To be"))
    'To be'
    >>> x, y = windows(corpus.train, torch.tensor([0]), 8)
    >>> corpus.decode(x[0]), corpus.decode(y[0])
    ('First Ci', 'irst Cit')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._paths import DataNotFoundError, dataset_dir

__all__ = ["TEXT_FILE", "CharCorpus", "load_tinyshakespeare", "windows"]

TEXT_FILE = "input.txt"
_N_CHARS, _N_SYMBOLS = 1_115_394, 65  # what SOURCE.txt and the char-rnn repository state


@dataclass(frozen=True)
class CharCorpus:
    """A character corpus split into training and validation codes.

    Arguments:
        train: int64 codes of the training part, shape ``(n_train,)``.
        val: int64 codes of the validation part, shape ``(n_val,)``.
        vocab: the symbols, code ``i`` is ``vocab[i]`` (sorted).
    """

    train: torch.Tensor
    val: torch.Tensor
    vocab: tuple[str, ...]

    def encode(self, text: str) -> torch.Tensor:
        """The int64 codes of ``text``; a symbol outside the vocabulary is a ValueError."""
        index = {c: i for i, c in enumerate(self.vocab)}
        bad = sorted(set(text) - set(index))
        if bad:
            raise ValueError(f"symbols not in the vocabulary: {''.join(bad)!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.int64)

    def decode(self, codes: torch.Tensor) -> str:
        """The text of a 1-D tensor of codes."""
        return "".join(self.vocab[int(i)] for i in codes.reshape(-1))


@functools.cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_tinyshakespeare(root: str | Path | None = None, val_fraction: float = 0.1) -> CharCorpus:
    """Load tiny Shakespeare with the standard split (the last ``val_fraction`` is validation).

    Arguments:
        root: the data root (default: :func:`elulab.data.data_root`).
        val_fraction: the validation share, in (0, 1); the standard one is 0.1
            (training: the first ``int(0.9 n)`` characters).

    Raises:
        DataNotFoundError: naming the missing folder or file.
        ValueError: a bad ``val_fraction``, or a file whose size or alphabet is not the
            corpus's (1,115,394 characters, 65 symbols), naming the file.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    path = dataset_dir("tinyshakespeare", root) / TEXT_FILE
    if not path.is_file():
        raise DataNotFoundError(f"tiny Shakespeare file not found: {path}")
    text = _read(path)
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # code points
    symbols, codes = np.unique(points, return_inverse=True)  # sorted, as sorted(set(text))
    vocab = tuple(map(chr, symbols))
    if len(text) != _N_CHARS or len(vocab) != _N_SYMBOLS:
        raise ValueError(
            f"{path}: expected {_N_CHARS} characters over {_N_SYMBOLS} symbols (char-rnn's "
            f"input.txt), got {len(text)} over {len(vocab)}"
        )
    codes = torch.from_numpy(codes.astype(np.int64))
    n_train = int((1.0 - val_fraction) * len(text))
    return CharCorpus(codes[:n_train].clone(), codes[n_train:].clone(), vocab)


def windows(codes: torch.Tensor, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, ...]:
    """Inputs and next-character targets of the windows starting at ``starts``.

    ``x[b] = codes[s_b : s_b + context]``, ``y[b] = codes[s_b + 1 : s_b + context + 1]``;
    every start must satisfy ``0 <= s <= len(codes) - context - 1``.

    Arguments:
        codes: a 1-D int64 tensor (e.g. :attr:`CharCorpus.train`).
        starts: 1-D int64 start positions, shape ``(B,)``.
        context: the window length ``T >= 1``.

    Returns:
        ``(x, y)``, each ``(B, T)``.
    """
    if context < 1 or len(codes) <= context:
        raise ValueError(f"context must be in [1, {len(codes) - 1}], got {context}")
    starts = torch.as_tensor(starts, dtype=torch.int64).reshape(-1)
    if starts.numel() and (int(starts.min()) < 0 or int(starts.max()) > len(codes) - context - 1):
        raise ValueError(
            f"window starts must lie in [0, {len(codes) - context - 1}], got "
            f"[{int(starts.min())}, {int(starts.max())}]"
        )
    idx = starts[:, None] + torch.arange(context + 1)
    seq = codes[idx]
    return seq[:, :-1], seq[:, 1:]
