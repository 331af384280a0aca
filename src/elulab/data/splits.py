"""Stratified random splits of labelled rows.

Example:
    >>> import numpy as np
    >>> y = np.r_[np.zeros(10, int), np.ones(5, int)]
    >>> [len(p) for p in stratified_split(y, seed=0)]
    [9, 3, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(
    y: Sequence[int] | np.ndarray, seed: int, fractions: Sequence[float] = (0.6, 0.2, 0.2)
) -> list[np.ndarray]:
    """Sorted row indices of each part, the class shares kept within each part.

    Within each class (``n_c`` rows, permuted by ``numpy.random.default_rng(seed)``),
    part ``i < k-1`` gets ``round(f_i n_c)`` rows and the last part the rest.

    Args:
        y: one class label per row.
        seed: seeds the permutation (same seed, same split).
        fractions: positive shares summing to 1 (within 1e-9), e.g. train/val/test.

    Returns:
        one sorted ``int64`` index array per fraction.
    """
    fr = [float(f) for f in fractions]
    if not fr or min(fr) <= 0 or abs(sum(fr) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    y = np.asarray(y)
    rng, parts = np.random.default_rng(seed), [[] for _ in fr]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cuts = np.cumsum([round(f * len(idx)) for f in fr[:-1]])
        for part, cut in zip(parts, np.split(idx, cuts), strict=True):
            part.append(cut)
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
