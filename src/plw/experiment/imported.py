"""Cells taken from committed exports instead of being run: `plw sweep STUDY --from-results FILE`.

A study's exports (`plw results STUDY -o results.csv`, `plw results STUDY --items -o items.csv.gz`)
carry everything the store keeps of a finished cell. Importing them into a fresh study directory
marks every cell of the study whose id appears in the results file as done, without running it:

    cells/<id>/cell.json      the cell's spec, as the driver would write it
    cells/<id>/items.csv.gz   the cell's rows of the items file (ITEM_COLUMNS), when one is given
    cells/<id>/result.json    the cell's rows of the results file, its factors, and
                              run = {"imported_from": FILE, "items_from": FILE or null}; written last

So the store is refilled from these files like any other cell's (rebuild_from_cells, the driver's
start-up sync). The result carries the study's current fingerprint: importing asserts that the
exports were produced under the same train/eval settings. A cell already done locally is left
alone; a results row whose cell is not in the study is ignored with a logged note.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from plw.analysis.items import normalize_items, read_item_file
from plw.analysis.results import load_results
from plw.experiment.celldir import RESULT, cell_state, reset, write_json_atomic
from plw.experiment.store_items import write_cell_items

log = logging.getLogger(__name__)


@dataclass
class Imports:
    """Read and checked exports.

    Attributes:
        results: the `load_results` frame of the results file.
        source: the results file.
        items: the items file as ITEM_COLUMNS (no factor join), or None.
        items_source: the items file, or None.
    """

    results: pd.DataFrame
    source: Path
    items: pd.DataFrame | None = None
    items_source: Path | None = None


def load_imports(results: Path, items: Path | None = None) -> Imports:
    """Read both files before anything is written.

    Raises:
        PLWError: a file is missing, unreadable or malformed (one line naming it).
    """
    table = load_results(results)
    item_table = normalize_items(read_item_file(items), None, items) if items is not None else None
    return Imports(table, Path(results), item_table, None if items is None else Path(items))


def importable(plan, imports: Imports) -> list[str]:
    """Ids of the plan's cells that the results file has and that are not done locally."""
    present = set(imports.results["cell"])
    return [c.id for c in plan.cells if c.id in present and cell_state(plan.cell_dir(c)) != "done"]


def import_cells(plan, imports: Imports) -> list[str]:
    """Write the importable cells' directories as done (see the module docstring); return their ids.

    The caller holds the study lock (plw.experiment.driver.run_plan).
    """
    unknown = sorted(set(imports.results["cell"]) - {c.id for c in plan.cells})
    if unknown:
        log.info(
            "%s: %d cell(s) not in this study ignored, e.g. %s", imports.source, len(unknown), unknown[0]
        )
    rows = dict(tuple(imports.results.groupby("cell", sort=False)))
    items = dict(tuple(imports.items.groupby("cell", sort=False))) if imports.items is not None else {}
    cells = importable(plan, imports)
    for cell_id in cells:
        write_imported(
            plan.cell_dir(cell_id), plan.specs[cell_id], rows[cell_id], items.get(cell_id), imports
        )
    if cells:
        log.info("%s: %d cell(s) imported as done; they will not run", imports.source, len(cells))
    return cells


def write_imported(
    cell_dir: Path, spec, rows: pd.DataFrame, items: pd.DataFrame | None, imports: Imports
) -> None:
    """One imported cell's directory; result.json last, so a kill leaves the cell not done."""
    reset(cell_dir)  # a failed or interrupted attempt's leftovers
    if items is not None:
        write_cell_items(cell_dir, items)
    spec.save(cell_dir)
    run = {"imported_from": str(imports.source), "items_from": _str(imports.items_source)}
    result = {"cell": spec.id, "fingerprint": spec.fingerprint, "factors": spec.factors,
              "rows": result_rows(rows), "layers": [], "run": run}  # fmt: skip
    write_json_atomic(cell_dir / RESULT, result)


def result_rows(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """A cell's rows of the results table as result.json rows {task, metric, value, stderr}."""
    return [
        {"task": task, "metric": metric, "value": _number(value), "stderr": _number(stderr)}
        for task, metric, value, stderr in rows[["task", "metric", "value", "stderr"]].itertuples(index=False)
    ]


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
