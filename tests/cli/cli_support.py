"""Helpers for CLI tests: one-line errors, leftover files, a small study over fake cells."""

from __future__ import annotations

import json
from pathlib import Path

RECORDS = [{"instruction": f"Say {i}.", "input": "", "output": f"{i}"} for i in range(4)]


def leftovers(root: Path) -> list[Path]:
    """Temporary or probe files anywhere under `root`."""
    return [p for p in root.rglob("*") if ".tmp" in p.name or ".plw-probe" in p.name]


def assert_one_line_error(code: int, err: str, *needles) -> None:
    """Exit 2, one `error:` line containing every needle, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and all(str(n) in err for n in needles), err


def write_records(tmp_path: Path) -> Path:
    path = tmp_path / "records.json"
    path.write_text(json.dumps(RECORDS))
    return path


def write_study(tmp_path: Path, output_dir: Path | None = None, dataset: str | None = None) -> Path:
    """A two-cell study file: a hub-id model (never loaded) and a local data file (or `dataset`)."""
    data = dataset or str(write_records(tmp_path))
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: fake\n"
        f"output_dir: {output_dir or tmp_path / 'study'}\n"
        "models: {tiny: example-org/tiny-model}\n"
        f"datasets: {{toy: {{path: {data}}}}}\n"
        "factors: {plw: [0.0, 1.0], model: [tiny], dataset: [toy]}\n"
        "train: {max_steps: 1}\n"
        "eval: {tasks: [], weight_distance: false, memorization_samples: 0}\n"
    )
    return path


def fake_cell(spec, cell_dir) -> dict:
    """A cell runner that trains nothing: one score that depends on the PLW."""
    plw = spec.factors["plw"]
    return {"rows": [{"task": "arc_easy", "metric": "acc", "value": 0.5 + 0.1 * plw, "stderr": 0.01}]}
