"""Applies ``tests/conftest.py`` (one torch thread, each test seeded in a fork) to the
docstring examples under ``src/`` as well.

``elulab/nn/_fused_triton.py`` holds CUDA kernels that import ``triton`` at module level
(it is imported lazily, for CUDA tensors only); without triton its doctests cannot be
collected, so it is left out of collection then. It has no docstring examples.
"""

import importlib.util

from tests.conftest import _seeded_fork as _seeded_fork

collect_ignore = [] if importlib.util.find_spec("triton") else ["src/elulab/nn/_fused_triton.py"]
