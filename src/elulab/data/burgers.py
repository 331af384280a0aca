"""The reference solution of viscous Burgers, read from ``shared/data/burgers/Burgers.npz``.

:math:`u_t + u u_x = (0.01/\\pi) u_{xx}` on :math:`x \\in [-1, 1]`, :math:`t \\in [0, 0.99]`,
:math:`u(x, 0) = -\\sin \\pi x`, :math:`u(\\pm 1, t) = 0`, on a 256 x 100 grid: the file
of DeepXDE's Burgers example (keys ``x`` (256, 1), ``t`` (100, 1), ``usol`` (256, 100)),
copied verbatim; nothing is downloaded.

References:
    Physics-informed neural networks (Raissi, Perdikaris and Karniadakis, 2019),
    J. Comput. Phys. 378. DeepXDE, examples/dataset/Burgers.npz (Lu et al., 2021).

Example:
    >>> ref = load_burgers()
    >>> ref.x.shape, ref.t.shape, ref.u.shape
    ((256,), (100,), (256, 100))
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._paths import DataNotFoundError, dataset_dir

__all__ = ["BURGERS_FILE", "BurgersReference", "load_burgers"]

BURGERS_FILE = "Burgers.npz"


class BurgersReference(NamedTuple):
    """The grid and the solution: ``x`` (256,), ``t`` (100,), ``u[i, j] = u(x_i, t_j)``."""

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, U)``: every grid point as ``(x, t)`` rows ``(25600, 2)`` and ``u`` ``(25600, 1)``."""
        xx, tt = np.meshgrid(self.x, self.t, indexing="ij")
        return np.stack([xx.ravel(), tt.ravel()], axis=1), self.u.reshape(-1, 1)


def load_burgers(root: str | Path | None = None) -> BurgersReference:
    """Load the Burgers reference as float64 arrays (see the module docstring).

    Arguments:
        root: the data root holding ``burgers/Burgers.npz``; defaults to
            :func:`elulab.data.data_root`.

    Raises:
        DataNotFoundError: if the folder or the file is missing.
        ValueError: if a key is missing, the shapes disagree or a value is not finite.
    """
    path = dataset_dir("burgers", root) / BURGERS_FILE
    if not path.is_file():
        raise DataNotFoundError(f"Burgers reference not found: {path}")
    with np.load(path) as z:
        missing = {"x", "t", "usol"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: missing keys {sorted(missing)}; has {sorted(z.files)}")
        x, t, u = (np.asarray(z[k], dtype=np.float64) for k in ("x", "t", "usol"))
    x, t = x.reshape(-1), t.reshape(-1)
    if u.shape != (x.size, t.size):
        raise ValueError(f"{path}: usol has shape {u.shape}, expected ({x.size}, {t.size})")
    if not (np.isfinite(x).all() and np.isfinite(t).all() and np.isfinite(u).all()):
        raise ValueError(f"{path}: non-finite values")
    return BurgersReference(x, t, u)
