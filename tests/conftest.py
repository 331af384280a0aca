"""Test configuration: torch on one thread, every test and doctest seeded in a fork.

* one thread, as the lab runs each run (``threads=1``): the numbers the tests check are
  the numbers the lab computes, and two cores are not oversubscribed;
* each test (doctests included) runs inside :func:`torch.random.fork_rng` with torch,
  numpy and Python's ``random`` seeded to 0, so no test depends on the order it runs
  in and none leaks its random state into another; mpmath's global precision is
  restored after each test for the same reason.
"""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded_fork():
    state_np = np.random.get_state()  # noqa: NPY002 (the legacy global state is what leaks)
    state_py = random.getstate()
    mp = sys.modules.get("mpmath")  # a test that sets mpmath's global precision
    prec = mp.mp.prec if mp is not None else None  # must not change the next test's
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        np.random.seed(0)  # noqa: NPY002
        random.seed(0)
        yield
    np.random.set_state(state_np)  # noqa: NPY002
    random.setstate(state_py)
    if prec is not None:
        mp.mp.prec = prec
