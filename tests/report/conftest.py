"""A small simulated study (one dataset, four benchmarks, a regulariser, log histories), reported once."""

from __future__ import annotations

import json

import pytest

from plw.analysis.simulate import simulate_results
from plw.report.build import build_report

STUDY_YAML = "name: sim-study\nmodels: [tiny]\nplw: [0, 0.0005, 0.01, 0.1, 1]\n"


def make_study(root, **kw):
    """Write results.csv, study.yaml and per-cell log histories under `root`; return the results."""
    kw.setdefault("n_benchmarks", 4)
    df = simulate_results(**kw)
    root.mkdir(parents=True, exist_ok=True)
    df.to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(STUDY_YAML)
    for cell, plw in df.drop_duplicates("cell")[["cell", "plw"]].itertuples(index=False):
        train = root / "cells" / cell / "train"
        train.mkdir(parents=True)
        log = [
            {
                "step": s,
                "loss": 2.0 - 0.01 * s,
                "prompt_loss": 3.0 - 0.02 * s * plw,
                "completion_loss": 2.0 - 0.01 * s,
                "learning_rate": 1e-5,
            }
            for s in range(0, 50, 10)
        ]
        log += [
            {"step": s, "eval_prompt_loss": 2.9, "eval_completion_loss": 1.9 - 0.002 * s} for s in (20, 40)
        ]
        (train / "log_history.json").write_text(json.dumps(log))
    return df


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(study dir, build_report result) for a study with a significant curve and a regulariser."""
    root = tmp_path_factory.mktemp("report") / "study"
    make_study(root, regularizers=("weight_decay=0.1",))
    return root, build_report(root, bootstrap=20)


@pytest.fixture
def study_factory(tmp_path):
    """make_study bound to a fresh directory: study_factory(**simulate_kwargs) -> study dir."""

    def make(**kw):
        root = tmp_path / "study"
        make_study(root, **kw)
        return root

    return make
