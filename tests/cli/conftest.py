"""The CLI tests: every test uses the session's plw cache, never the user's. Their `plw_cli`,
`in_process` and `plw_cache` fixtures are in tests/conftest.py, their helpers in tests/support.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(plw_cache):
    """Every test here runs with `plw_cache` (tests/conftest.py)."""
