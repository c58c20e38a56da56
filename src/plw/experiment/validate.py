"""Check a study's expanded cells before anything runs: models, data, tasks, and every cell's TrainConfig.

`check_cells` is one pass over the cells `plw.experiment.cells.expand` gave, and it returns the
TrainConfig it validated for each cell, so planning never builds a config twice. Hub ids and dataset
presets are accepted offline (they are only fetched when a cell runs); local paths must exist. Extra
factors (`factors.train.<path>`) must name a TrainConfig setting that no other part of the study
sets, and each of their values must give a valid TrainConfig. Every problem is a one-line `PLWError`
naming the study key (`factors.train.learning_rate[2]: ...`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from plw.errors import PLWError
from plw.experiment.cells import Cell, dataset_spec, expand, model_spec, train_config_data
from plw.experiment.factors import path_problem, setting_path, value_json, value_text
from plw.experiment.study import REGULARIZER_PATHS, Study, error_text, parse_regularizer
from plw.training.config import DataConfig, TrainConfig


def check_cells(
    study: Study, cells: list[Cell], output_dir: Callable[[Cell], Path], source: str = "study"
) -> dict[str, TrainConfig]:
    """Validate a study's cells in one pass and return each cell's TrainConfig, by cell id.

    Study-wide settings come first, each checked once (factor paths, then every model and dataset
    the cells use, then `eval:`), so a bad model is named by its key, not by the first cell using it.

    Args:
        study: a structurally valid study (see `load_study`).
        cells: its cells, from `expand`.
        output_dir: where a cell's training writes (its TrainConfig's output_dir).
        source: the study file, for messages.

    Raises:
        PLWError: the first problem found, naming its key.
    """
    for path in study.factors.train:
        problem = path_problem(path)
        if problem:
            raise PLWError(f"{source}: factors.train.{path}: {problem}")
    for value in sorted({c.model for c in cells}):
        _check_model(study, value, source)
    for value in sorted({c.dataset for c in cells}):
        _check_dataset(study, value, source)
    _check_eval(study, source)
    return {cell.id: cell_config(study, cell, output_dir(cell), source) for cell in cells}


def check_study(study: Study, source: str = "study") -> list[Cell]:
    """Validate the study and return its cells in run order: `expand`, then `check_cells`.

    Raises:
        PLWError: the first problem found, naming its key.
    """
    cells = expand(study, source)
    check_cells(study, cells, lambda _: Path("cell"), source)
    return cells


def _model_key(study: Study, value: str) -> str:
    return f"models.{value}" if value in study.models else "factors.model"


def _dataset_key(study: Study, value: str) -> str:
    return f"datasets.{value}" if value in study.datasets else "factors.dataset"


def _check_model(study: Study, value: str, source: str) -> None:
    from plw.models import resolve_model

    try:
        resolve_model(model_spec(study, value))
    except PLWError as err:
        raise PLWError(f"{source}: {_model_key(study, value)}: {err}") from err


def _check_dataset(study: Study, value: str, source: str) -> None:
    from plw.data.presets import parse_preset, preset_local_file

    key = _dataset_key(study, value)
    data, eval_data = dataset_spec(study, value)
    for sub, mapping in (("", data), (".eval_data", eval_data)):
        if mapping is None:
            continue
        try:
            DataConfig.model_validate(mapping)
            parse_preset(str(mapping["path"]))
            local = preset_local_file(str(mapping["path"]))
        except ValidationError as err:
            first = err.errors()[0]
            where = (
                "" if key.startswith("factors.") else "." + (".".join(str(p) for p in first["loc"]) or "path")
            )
            raise PLWError(f"{source}: {key}{sub}{where}: {error_text(first)}") from None
        except PLWError as err:
            raise PLWError(
                f"{source}: {key}{'' if key.startswith('factors.') else sub + '.path'}: {err}"
            ) from err
        if local is not None and not local.is_file():
            raise PLWError(f"{source}: {key}{sub}: data file not found: {local}")


def _check_eval(study: Study, source: str) -> None:
    settings = study.eval
    if settings.data_dir is not None and not Path(settings.data_dir).expanduser().is_dir():
        raise PLWError(f"{source}: eval.data_dir: directory not found: {settings.data_dir}")
    needs_model = settings.tasks or settings.weight_distance or settings.memorization_samples
    if needs_model and study.train.get("save_model") is False:
        raise PLWError(
            f"{source}: train.save_model: evaluation and mechanism measures need the trained model; "
            "set keep_models: false to delete it after measuring instead"
        )
    if not settings.tasks:
        return
    try:
        from plw.evaluation.tasks import expand_tasks
    except ImportError as err:
        raise PLWError(f"{source}: eval.tasks: the evaluation module is not available ({err})") from err
    try:
        names = expand_tasks(settings.tasks)
    except PLWError as err:
        raise PLWError(f"{source}: eval.tasks: {err}") from err
    if "alpaca_eval" in names and not settings.judge:
        raise PLWError(f"{source}: eval.judge: task alpaca_eval needs a judge (local, endpoint or a YAML)")


def _extra_key(study: Study, cell: Cell, loc: list[str]) -> str | None:
    """The extra factor behind an error at `loc` (its path at, inside or above `loc`), as a study key."""
    where = ".".join(loc)
    for path, value in cell.extra_values().items():
        at = setting_path(path)
        if where == at or where.startswith(at + ".") or at.startswith(where + "."):
            levels = [value_json(v) for v in study.factors.train.get(path, [])]
            text = value_json(value)
            if text in levels:
                return f"factors.train.{path}[{levels.index(text)}]"
            return f"include: train.{path}: {value_text(value)}"
    return None


def _blame(study: Study, cell: Cell, loc: list[str]) -> str:
    """The study key responsible for an error at `loc` in a cell's TrainConfig."""
    extra = _extra_key(study, cell, loc)
    if extra is not None:
        return extra
    head = loc[0] if loc else ""
    name, _ = parse_regularizer(cell.regularizer)
    if head in ("data", "eval_data"):
        return _dataset_key(study, cell.dataset) + "." + ".".join(loc[1:] if head == "data" else loc)
    if head == "model":
        return _model_key(study, cell.model)
    if head == "prompt_loss_weight":
        return "factors.plw"
    if ".".join(loc[:2]) == REGULARIZER_PATHS.get(name):
        return f"factors.regularizer: {cell.regularizer}"
    if head in study.train:
        return "train." + ".".join(loc)
    return f"cell {cell.id}: " + (".".join(loc) or "(config)")


def cell_config(study: Study, cell: Cell, output_dir: Path, source: str = "study") -> TrainConfig:
    """The cell's validated TrainConfig, writing to `output_dir`.

    Raises:
        PLWError: the config does not validate; the message names the study key behind the problem.
    """
    try:
        return TrainConfig.model_validate(train_config_data(study, cell, output_dir))
    except ValidationError as err:
        first = err.errors()[0]
        where = _blame(study, cell, [str(p) for p in first["loc"]])
        raise PLWError(f"{source}: {where}: {error_text(first)}") from None
