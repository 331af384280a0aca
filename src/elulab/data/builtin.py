"""Built-in classification data sets for ``elulab audit``, in their natural shapes.

=============  =====================  ==========================================
name           ``X`` shape            source
=============  =====================  ==========================================
``mnist``      ``(10000, 1, 28, 28)``  ``<data root>/mnist`` (the MNIST test set)
``digits``     ``(1797, 1, 8, 8)``     ``sklearn.datasets.load_digits`` (offline)
``mnist1d``    ``(5000, 40)``          ``mnist1d.data.make_dataset`` (generated)
``uci:<name>`` ``(N, D)``              ``<data root>/uci`` (Fernandez-Delgado et al.)
=============  =====================  ==========================================

``X`` is ``float32`` (pixels scaled to ``[0, 1]``; MNIST-1D and UCI as their sources
standardise them), ``y`` is ``int64`` in ``0 .. C-1``. Nothing is downloaded:
MNIST-1D is generated with ``make_dataset(get_dataset_args())`` (seed 42, the
package's default: deterministic), never with ``get_dataset``, which tries the network.
Its 4000 training and 1000 test samples are concatenated in that order.

References:
    Scaling down deep learning with MNIST-1D (Greydanus, Kobak, 2020), arXiv:2011.14439.

Example:
    >>> X, y = load_builtin("digits")
    >>> tuple(X.shape), int(y.max())
    ((1797, 1, 8, 8), 9)
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["BUILTIN_DATASETS", "load_builtin"]

BUILTIN_DATASETS: tuple[str, ...] = ("mnist", "digits", "mnist1d", "uci:<name>")


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    return x, d.target.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mnist1d() -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global `random` and numpy generators: restore them so
    # that loading data does not change the caller's random stream
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        d = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002 (restoring the global state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return x, y


def load_builtin(name: str, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a built-in data set as ``(X, y)`` tensors (see the module docstring).

    Args:
        name: ``"mnist"``, ``"digits"``, ``"mnist1d"`` or ``"uci:<name>"`` (a data set of
            :func:`elulab.data.uci.list_uci_datasets`, e.g. ``"uci:iris"``).
        root: the data root for ``mnist`` and ``uci:`` (default: the shared data root).

    Returns:
        ``(X, y)``: a ``float32`` tensor in the shape of the table, ``int64`` labels.
        Each call returns fresh tensors (the parsed data are cached per process).

    Raises:
        ValueError: for an unknown name, listing the allowed ones.
        DataNotFoundError: when the files of ``mnist`` or ``uci:<name>`` are not there.
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a string, got {type(name).__name__}")
    if name == "mnist":
        from .mnist import load_mnist

        return load_mnist(root)
    if name == "digits":
        x, y = _digits()
    elif name == "mnist1d":
        x, y = _mnist1d()
    elif name.startswith("uci:") and len(name) > 4:
        from .uci import load_uci

        ds = load_uci(name[4:], root)
        x, y = ds.X.astype(np.float32), ds.y.astype(np.int64)
    else:
        raise ValueError(
            f"unknown built-in data set {name!r}; allowed: {', '.join(BUILTIN_DATASETS)}"
        )
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
