"""Cells of a study: the grid, stable cell ids, and each cell's resolved training config.

A cell id is readable and stable: `plw=0.1__model=stories260K__dataset=alpaca__seed=0__reg=none`,
followed by `__<path>=<value>` for each extra factor (`__learning_rate=1e-05`, sorted by path), so a
study without extra factors keeps the ids it always had. Values are reduced to filesystem-safe labels
(a path becomes its last component); whenever that
loses information, or the id would be longer than MAX_ID_LENGTH, a short hash of the exact factor
values is appended, so distinct cells never share an id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plw.errors import PLWError
from plw.experiment.factors import (
    PREFIX,
    canonical,
    factor_column,
    set_path,
    setting_path,
    split_keys,
    value_json,
    value_label,
    value_text,
)
from plw.experiment.study import (
    FACTORS,
    REGULARIZER_PATHS,
    Study,
    error_text,
    format_number,
    parse_regularizer,
)

MAX_ID_LENGTH = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")
_FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".gguf")


@dataclass(frozen=True)
class Cell:
    """One combination of factor values."""

    plw: float
    model: str
    dataset: str
    seed: int
    regularizer: str
    extra: tuple[tuple[str, str], ...] = ()
    """Extra factors: (path, canonical JSON of the value), sorted by path."""

    @property
    def id(self) -> str:
        return cell_id(self)

    def extra_values(self) -> dict[str, Any]:
        """The extra factors' values, keyed by path (`learning_rate`, `lora.r`)."""
        return {path: json.loads(text) for path, text in self.extra}

    def factors(self) -> dict[str, Any]:
        """The factor values, keyed by factor name (extra factors by `train.<path>`)."""
        fixed = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {**fixed, **{factor_column(p): v for p, v in self.extra_values().items()}}


def _label(value: str) -> str:
    """A short filesystem-safe label: a local path's last component (without suffix), else the value."""
    text = str(value)
    # Decided from the text alone (not the filesystem) so an id never depends on what exists.
    if text.startswith(("/", ".", "~")) or text.endswith(_FILE_SUFFIXES):
        path = Path(text.rstrip("/"))
        text = path.stem if text.endswith(_FILE_SUFFIXES) else path.name
    return _UNSAFE.sub("_", text)


def cell_id(cell: Cell) -> str:
    """The cell's stable id (see the module docstring)."""
    exact = f"plw={format_number(cell.plw)}__model={cell.model}__dataset={cell.dataset}"
    exact += f"__seed={cell.seed}__reg={cell.regularizer}"
    readable = (
        f"plw={format_number(cell.plw)}__model={_label(cell.model)}__dataset={_label(cell.dataset)}"
        f"__seed={cell.seed}__reg={_UNSAFE.sub('_', cell.regularizer)}"
    )
    for path, value in cell.extra_values().items():
        exact += f"__{path}={value_text(value)}"
        readable += f"__{_UNSAFE.sub('_', path)}={value_label(value)}"
    if readable == exact and len(exact) <= MAX_ID_LENGTH:
        return exact
    digest = hashlib.sha256(exact.encode()).hexdigest()[:8]
    return f"{readable[:MAX_ID_LENGTH]}__{digest}"


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _selector(study: Study, entry: dict[str, Any], where: str) -> dict[str, list]:
    """Normalise a partial factor mapping (scalars or lists) to canonical value lists.

    Extra factors come back keyed `train.<path>`, their values as canonical JSON.
    """
    from pydantic import ValidationError

    from plw.experiment.study import Factors

    declared = set(study.factors.train)
    try:
        fixed, extra = split_keys(entry, declared)
    except ValueError as err:
        raise PLWError(f"{where}: {err}") from None
    unknown = sorted(set(extra) - declared)
    if unknown:
        raise PLWError(
            f"{where}: {PREFIX}{unknown[0]} is not a factor of the study (declare it under factors:)"
        )
    template = study.factors.model_dump(exclude={"train"})
    try:
        valid = Factors.model_validate({**template, **{k: _as_list(v) for k, v in fixed.items()}})
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "(entry)"
        raise PLWError(f"{where}.{key}: {error_text(first)}") from None
    out = {k: getattr(valid, k) for k in fixed}
    for path, values in extra.items():
        out[PREFIX + path] = [value_json(canonical(v)) for v in _as_list(values)]
    return out


def _grid(study: Study) -> dict[str, list]:
    """Every factor's levels: the five by name, extra ones by `train.<path>` as canonical JSON."""
    grid: dict[str, list] = study.factors.model_dump(exclude={"train"})
    for path, values in sorted(study.factors.train.items()):
        grid[PREFIX + path] = [value_json(v) for v in values]
    return grid


def _product(factors: dict[str, list]) -> list[Cell]:
    extra = sorted(k for k in factors if k.startswith(PREFIX))
    cells = []
    for values in itertools.product(*(factors[f] for f in (*FACTORS, *extra))):
        pairs = tuple((k[len(PREFIX) :], v) for k, v in zip(extra, values[len(FACTORS) :], strict=True))
        cells.append(Cell(*values[: len(FACTORS)], extra=pairs))
    return cells


def expand(study: Study, source: str = "study") -> list[Cell]:
    """The study's cells: the full grid, minus `exclude` matches, plus `include` sub-grids.

    An `exclude` entry drops every grid cell whose values are all among the entry's values. An
    `include` entry is a sub-grid: the factors it names take its values, the others all values of
    the factor lists; it may add values not in the factor lists.

    Raises:
        PLWError: an entry with a bad value, or two cells with the same id.
    """
    base = _grid(study)
    excludes = [_selector(study, e, f"{source}: exclude.{i}") for i, e in enumerate(study.exclude)]
    parts = [("factors", [c for c in _product(base) if not any(_matches(c, sel) for sel in excludes)])]
    for index, entry in enumerate(study.include):
        parts.append(
            (f"include.{index}", _product({**base, **_selector(study, entry, f"{source}: include.{index}")}))
        )
    seen: set[str] = set()
    for key, cells in parts:
        for cell in cells:
            if cell.id in seen:
                raise PLWError(
                    f"{source}: {key}: duplicate cell {cell.id} (already in the grid or an earlier include)"
                )
            seen.add(cell.id)
    if not seen:
        raise PLWError(f"{source}: exclude: removes every cell of the grid")
    return [cell for _, cells in parts for cell in cells]


def _matches(cell: Cell, selector: dict[str, list]) -> bool:
    extra = {PREFIX + path: text for path, text in cell.extra}
    return all((extra[k] if k in extra else getattr(cell, k)) in values for k, values in selector.items())


def model_spec(study: Study, model: str) -> str:
    """The model spec behind a model factor value (a `models:` name, or the value itself)."""
    return study.models.get(model, model)


def dataset_spec(study: Study, dataset: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(data mapping, eval_data mapping or None) behind a dataset factor value."""
    entry = study.datasets.get(dataset, dataset)
    if isinstance(entry, str):
        return {"path": entry}, None
    data = dict(entry)
    eval_data = data.pop("eval_data", None)
    return data, eval_data


def absolute_path(path: str) -> str:
    """Local paths become absolute, so workers (subprocesses, Ray tasks) need not share our cwd."""
    local = Path(path).expanduser()
    return str(local.resolve()) if local.exists() else path


def train_config_data(study: Study, cell: Cell, output_dir: Path) -> dict[str, Any]:
    """The TrainConfig mapping of a cell: `train:` plus the cell's factor values (not yet validated)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in study.train.items()}
    data_map, eval_map = dataset_spec(study, cell.dataset)
    data_map["path"] = absolute_path(str(data_map.get("path", "")))
    data["data"] = data_map
    if eval_map is not None:
        data["eval_data"] = {**eval_map, "path": absolute_path(str(eval_map.get("path", "")))}
    data.update(
        model=absolute_path(model_spec(study, cell.model)),
        prompt_loss_weight=cell.plw,
        seed=cell.seed,
        output_dir=str(output_dir),
    )
    name, value = parse_regularizer(cell.regularizer)
    if name != "none":
        set_path(data, REGULARIZER_PATHS[name], value)
    for path, level in cell.extra_values().items():
        set_path(data, setting_path(path), level)  # replaces what train: gives at that path
    return data
