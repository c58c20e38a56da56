"""Fixtures for sweep tests: an isolated plw cache, and small studies over fake or real cells.
(`plw_cache`, `plw_cli` and `in_process` are in tests/conftest.py, helpers in tests/support.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import TINY, pythonpath, records, write_records

from plw.experiment.study import Study

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _isolated_cache(plw_cache):
    """Every test here runs with `plw_cache` (tests/conftest.py), never the user's cache."""


@pytest.fixture
def data_file(tmp_path) -> Path:
    return write_records(tmp_path, records(8))


@pytest.fixture
def make_study(tmp_path, data_file):
    """Build a Study from keyword sections; defaults: a hub-id model (never loaded) and a local data file."""

    def build(**sections) -> Study:
        data = {
            "name": "fake",
            "output_dir": str(tmp_path / "study"),
            "models": {"tiny": "example-org/tiny-model"},
            "datasets": {"toy": {"path": str(data_file)}},
            "factors": {"plw": [0.0, 0.5, 1.0], "model": ["tiny"], "dataset": ["toy"]},
            "train": {"max_steps": 1},
            "eval": {"tasks": [], "weight_distance": False, "memorization_samples": 0},
        }
        data.update(sections)
        return Study.model_validate(data)

    return build


@pytest.fixture
def fake_env(monkeypatch):
    """Let worker subprocesses import sweep_support (and tests/support.py)."""
    monkeypatch.setenv("PYTHONPATH", pythonpath(HERE))


@pytest.fixture(scope="session")
def fault_reference(tmp_path_factory):
    """The fault tests' study (fault_support.overrides) run once without a fault, by the local
    executor: the study directory whose results every faulted and resumed run must equal."""
    from fault_support import overrides

    from plw.experiment.driver import run_sweep
    from plw.experiment.study import load_study

    out = tmp_path_factory.mktemp("fault-reference") / "study"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plw-cache"))
        states = run_sweep(load_study(TINY, overrides(out)), source=str(TINY), executor="local")
    assert set(states.values()) == {"done"}, states
    return out
