"""The test configuration does what it promises: one torch thread, every test (and every
doctest under ``src/``) seeded to 0 in a fork, so no test depends on the order of the run."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _seed0_draws() -> tuple[list[float], list[float], float]:
    """What torch, numpy and random give first after seeding 0 (independent generators)."""
    t = torch.rand(3, generator=torch.Generator().manual_seed(0)).tolist()
    n = np.random.RandomState(0).rand(3).tolist()
    r = random.Random(0).random()
    return t, n, r


def test_one_torch_thread() -> None:
    assert torch.get_num_threads() == 1


# run twice, and the first run consumes (and reseeds) the global generators: the second
# sees the same draws, so nothing leaks from one test into the next
@pytest.mark.parametrize("run", ["first", "second"])
def test_global_draws_are_seeded_and_independent_of_order(run: str) -> None:
    got = (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())  # noqa: NPY002
    assert got == _seed0_draws()
    torch.rand(1000)
    np.random.rand(1000)  # noqa: NPY002
    random.random()
    torch.manual_seed(12345)
    np.random.seed(12345)  # noqa: NPY002
    random.seed(12345)


_MODULE = '''
"""Two doctests, each must see a fresh seed-0 state and one thread.

>>> import random, numpy as np, torch
>>> torch.get_num_threads()
1
>>> first = (torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random())
>>> _ = torch.rand(100); torch.manual_seed(7)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
"""


def f():
    """
    >>> import random, numpy as np, torch
    >>> g = torch.Generator().manual_seed(0)
    >>> torch.rand(2).tolist() == torch.rand(2, generator=g).tolist()
    True
    >>> np.random.rand(2).tolist() == np.random.RandomState(0).rand(2).tolist()
    True
    >>> random.random() == random.Random(0).random()
    True
    """
'''


def test_doctests_get_the_same_configuration(tmp_path: Path) -> None:
    """The root conftest.py applies tests/conftest.py to doctests (checked in a copy)."""
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "tests" / "conftest.py")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(textwrap.dedent(_MODULE))
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    # with more threads asked for, only the conftest can bring torch down to one
    env = {**os.environ, "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--doctest-modules",
            "pkg/mod.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout, proc.stdout
