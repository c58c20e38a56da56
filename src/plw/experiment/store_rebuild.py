"""Refill a study's results store from its cells' files, open the store of a finished study and read
its per-item table.

The cells' result.json (and items.csv.gz) files are the source of truth: `rebuild_from_cells`
records every done and failed cell from them, and `open_store` (what `plw results` reads through)
does so when the store it opens was damaged and moved aside (plw.experiment.store.ResultStore).
Only the study's own cells are refilled, so directories of cells dropped from the study stay out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from plw.errors import PLWError
from plw.experiment.celldir import SPEC, cell_state, error_line, read_json, read_result
from plw.experiment.store import ResultStore
from plw.experiment.store_items import cell_items


def rebuild_from_cells(store: ResultStore, study_dir: Path, cells: set[str] | None = None) -> int:
    """Record every done and failed cell under STUDY_DIR/cells (only `cells`, when given); return how many."""
    count = 0
    for cell_dir in sorted(Path(study_dir).glob("cells/*/")):
        if cells is not None and cell_dir.name not in cells:
            continue
        spec = read_json(cell_dir / SPEC) or {}
        state = cell_state(cell_dir)
        if state == "done":
            result = read_result(cell_dir)
            items = cell_items(cell_dir)
            store.record(str(spec.get("study", "")), result["factors"], cell_dir.name, result, items)
        elif state == "failed":
            store.record_failure(str(spec.get("study", "")), cell_dir.name, error_line(cell_dir))
        count += state in ("done", "failed")
    return count


def open_store(study_dir: Path) -> ResultStore:
    """The store of an existing study directory; a damaged one is rebuilt from the cells' files.

    Raises:
        PLWError: the directory has no results.sqlite yet.
    """
    path = Path(study_dir) / "results.sqlite"
    if not path.is_file():
        raise PLWError(f"{study_dir}: no results.sqlite (run `plw sweep` on the study first)")
    store = ResultStore(path)
    if store.recovered is not None:
        rebuild_from_cells(store, study_dir, _study_cells(Path(study_dir)))
    return store


def _study_cells(study_dir: Path) -> set[str] | None:
    """Ids of the cells of the study saved in STUDY_DIR/study.yaml, or None if it cannot be read."""
    from plw.experiment.cells import expand
    from plw.experiment.study import load_study

    try:
        return {cell.id for cell in expand(load_study(study_dir / "study.yaml"))}
    except (PLWError, OSError):
        return None


def study_items(study_dir: str | Path) -> pd.DataFrame | None:
    """The per-item table of a study directory's results.sqlite, or None when it holds no items."""
    path = Path(study_dir) / "results.sqlite"
    if not path.is_file():
        return None
    items = ResultStore(path).items()
    return items if len(items) else None
