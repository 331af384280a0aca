"""Applies ``tests/conftest.py`` (one torch thread, each test seeded in a fork) to the
docstring examples under ``src/`` as well."""

from tests.conftest import _seeded_fork as _seeded_fork  # noqa: F401
