"""Where the real data sets live.

The data are never downloaded: they are read from ``../shared/data`` (relative to
the project root), or from the directory named by the environment variable
``ELULAB_DATA_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DataNotFoundError", "data_root", "dataset_dir"]

ENV_VAR = "ELULAB_DATA_DIR"


class DataNotFoundError(FileNotFoundError):
    """A data set is not where elulab looks for it."""


def _candidates() -> list[Path]:
    """``shared/data`` in the working directory, the package or any of their parents."""
    out: list[Path] = []
    for base in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for parent in (base, *base.parents):
            candidate = parent / "shared" / "data"
            if candidate not in out:
                out.append(candidate)
    return out


def data_root() -> Path:
    """Return the directory that holds the shared data sets.

    Looks at ``$ELULAB_DATA_DIR`` first, then for a ``shared/data`` folder beside
    the working directory or the installed package (the project layout puts it at
    ``../shared/data``).

    Raises:
        DataNotFoundError: naming every place that was searched.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_dir():
            raise DataNotFoundError(f"{ENV_VAR}={env} is not a directory")
        return p
    for c in _candidates():
        if c.is_dir():
            return c
    raise DataNotFoundError(
        "could not find the shared data directory (looked for shared/data beside the "
        f"working directory and the package); set {ENV_VAR}=PATH"
    )


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """Return ``<root>/<name>``, checking that it exists.

    Args:
        name: folder name under the data root, e.g. ``"mnist"`` or ``"uci"``.
        root: data root; defaults to :func:`data_root`.
    """
    base = Path(root) if root is not None else data_root()
    d = base / name
    if not d.is_dir():
        raise DataNotFoundError(f"data set {name!r} not found: {d} is not a directory")
    return d
