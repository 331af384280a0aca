"""Skips that CI turns into failures: a missing prerequisite must not pass silently there."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str) -> NoReturn:
    """Skip locally when ``what`` is missing; fail when the ``CI`` variable is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; CI must run this test")
    pytest.skip(f"{what} is missing")
