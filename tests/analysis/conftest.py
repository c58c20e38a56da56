"""Fixtures: simulated results tables written to tmp_path."""

from __future__ import annotations

import pandas as pd
import pytest

from plw.analysis.simulate import simulate_results


@pytest.fixture
def write_table(tmp_path):
    """Write a DataFrame as results.csv in a fresh study directory; returns the directory."""

    def write(df: pd.DataFrame, name: str = "results.csv"):
        study = tmp_path / "study"
        study.mkdir(exist_ok=True)
        path = study / name
        if name.endswith(".parquet"):
            df.to_parquet(path)
        elif name.endswith(".json"):
            df.to_json(path, orient="records")
        else:
            df.to_csv(path, index=False)
        return study

    return write


@pytest.fixture
def sim():
    """simulate_results with small defaults (6 benchmarks, one dataset)."""

    def make(**kw):
        kw.setdefault("n_benchmarks", 6)
        return simulate_results(**kw)

    return make
