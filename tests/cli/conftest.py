"""Run the real `plw` entry point in this process: exit code, stdout and stderr as a user sees them."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def plw_cache(tmp_path_factory, monkeypatch):
    """A plw cache of the test session, never the user's."""
    monkeypatch.setenv("PLW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plw-cache"))


@pytest.fixture
def plw_cli(monkeypatch, capsys):
    """plw_cli(*args) -> (exit code, stdout, stderr), through `plw.cli.main.main` (errors -> exit 2)."""
    from plw.cli.main import main

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["plw", *map(str, args)])
        with pytest.raises(SystemExit) as stop:
            main()
        out = capsys.readouterr()
        return stop.value.code, out.out, out.err

    return run
