"""Figure helpers shared by the experiments' ``figures`` hooks (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pyplot", "save_figure"]


def pyplot() -> Any:
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend.

    Imported lazily so that importing an experiment never imports matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG), close it, and return ``path``."""
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)
