"""The study file: factors, shared training and evaluation settings, and grid edits.

A study is a factorial design over five factors (PLW, model, dataset, seed, regulariser). Everything
that is not a factor is shared by all cells: `train:` holds TrainConfig fields, `eval:` the
benchmarks and mechanism measures. `exclude:` / `include:` trim and extend the full grid (see
`plw.experiment.cells.expand`). Structure is checked here by pydantic; whether models, data files and
tasks exist is checked by `plw.experiment.validate`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, field_validator, model_validator

from plw.config import Strict, apply_overrides, read_yaml, validate
from plw.errors import PLWError
from plw.evaluation.options import BenchmarkOptions
from plw.experiment.factors import (
    PREFIX,
    canonical,
    format_number,
    overlap,
    setting_path,
    split_keys,
    value_json,
)
from plw.training.config import MAX_SEED
from plw.training.legacy import move_legacy_loss_keys

PAPER_PLW_LEVELS = (0.0, 5e-4, 2.236e-3, 1e-2, 2.463e-2, 5e-2, 1e-1, 2.463e-1, 5e-1, 1.0)
"""The paper's ten PLW levels (arXiv 2401.13586)."""

FACTORS = ("plw", "model", "dataset", "seed", "regularizer")
# The TrainConfig setting each regulariser of the `regularizer` factor sets.
REGULARIZER_PATHS = {
    "weight_decay": "regularization.weight_decay",
    "dropout": "regularization.dropout",
    "label_smoothing": "loss.label_smoothing",
    "minkowski": "loss.minkowski_lambda",
}
REGULARIZERS = tuple(REGULARIZER_PATHS)
# TrainConfig fields that factors (or the cell directory) set; a study's `train:` may not set them.
FACTOR_FIELDS = {
    "model": "factors.model",
    "data": "factors.dataset (and the datasets: section)",
    "prompt_loss_weight": "factors.plw",
    "seed": "factors.seed",
    "output_dir": "the cell directory",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
logger = logging.getLogger("plw")


def parse_regularizer(value: str) -> tuple[str, float | None]:
    """Split 'name=value' into (name, value); 'none' gives ('none', None).

    Raises:
        ValueError: an unknown regulariser name or a value that is not a non-negative number.
    """
    text = str(value).strip()
    if text == "none":
        return "none", None
    name, sep, raw = text.partition("=")
    if not sep or name not in REGULARIZERS:
        raise ValueError(
            f"expected 'none' or NAME=VALUE with NAME one of {', '.join(REGULARIZERS)}, got {text!r}"
        )
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{name}: value {raw!r} is not a number") from None
    if number < 0:
        raise ValueError(f"{name}: value must be >= 0, got {raw}")
    return name, number


def _canonical_regularizer(value: str) -> str:
    name, number = parse_regularizer(value)
    return name if number is None else f"{name}={format_number(number)}"


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


PLWLevel = Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=1)]
Name = Annotated[str, AfterValidator(_non_empty)]
Regularizer = Annotated[str, AfterValidator(_canonical_regularizer)]
Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]  # checked here too, so the dry run names factors.seed


class Factors(Strict):
    """The factors; the grid is their Cartesian product.

    Besides the five fixed factors, `train.<path>` keys vary any training setting (see
    `plw.experiment.factors`); they are gathered into `train`, {path: values}.
    """

    plw: list[PLWLevel] = Field(
        default_factory=lambda: list(PAPER_PLW_LEVELS),
        min_length=1,
        description="prompt loss weights in [0, 1]",
    )
    model: list[Name] = Field(min_length=1, description="model names (keys of `models:`) or model specs")
    dataset: list[Name] = Field(min_length=1, description="dataset names (keys of `datasets:`) or data paths")
    seed: list[Seed] = Field(
        default_factory=lambda: [0], min_length=1, description="random seeds, 0 .. 2**32 - 1"
    )
    regularizer: list[Regularizer] = Field(
        default_factory=lambda: ["none"],
        min_length=1,
        description="none, weight_decay=X, dropout=X, label_smoothing=X or minkowski=X",
    )

    train: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="extra factors: training setting path (as in train:) -> values, "
        "e.g. learning_rate: [1.0e-5, 2.0e-5]",
    )

    @model_validator(mode="before")
    @classmethod
    def _gather_train(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fixed, extra = split_keys(data)
        return {**fixed, "train": {path: canonical(values) for path, values in extra.items()}}

    @field_validator("plw", "model", "dataset", "seed", "regularizer")
    @classmethod
    def _distinct(cls, values: list) -> list:
        seen = set()
        for value in values:
            if value in seen:
                raise ValueError(f"duplicate value {value!r}")
            seen.add(value)
        return values

    @field_validator("train")
    @classmethod
    def _extra_levels(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        both = overlap(list(value))
        if both:
            raise ValueError(f"{both[0]} and {both[1]} overlap: vary one or the other")
        for path, levels in value.items():
            if not levels:
                raise ValueError(f"{path}: must not be empty")
            texts = [value_json(v) for v in levels]
            if len(set(texts)) < len(texts):
                dup = next(t for i, t in enumerate(texts) if t in texts[:i])
                raise ValueError(f"{path}: duplicate value {dup}")
            if setting_path(path) != path:
                logger.warning("plw: factors.train.%s sets %s, its new key (the old key still works)",
                               path, setting_path(path))  # fmt: skip
        return value


class EvalSettings(BenchmarkOptions):
    """Benchmarks (`plw.evaluation.options.BenchmarkOptions`) and the paper's mechanism measures.

    No tasks: no benchmarks. The benchmark fields keep `evaluate`'s rules, so a typo fails at load,
    not in a cell.
    """

    weight_distance: bool = Field(
        True, description="L2 / relative distance of the weights from the base model"
    )
    loss_rsd: bool = Field(True, description="relative standard deviation of the logged training loss")
    validation_loss: bool = Field(True, description="prompt / completion loss on held-out records")
    validation_samples: int = Field(
        64, ge=1, description="held-out records after data.limit, when no eval_data"
    )
    memorization_samples: int = Field(
        100, ge=0, description="training prompts for memorisation BLEU (0 = off)"
    )
    memorization_max_new_tokens: int = Field(
        128, ge=1, description="generation budget per memorisation prompt"
    )
    retention_prompts: int = Field(
        0, ge=0, description="generic prompts for the retention (KL from the base model) estimate; 0 = off"
    )
    retention_max_new_tokens: int = Field(48, ge=1, description="tokens the base model samples per prompt")


class Resources(Strict):
    """What one cell asks of the Ray scheduler, and how it launches training."""

    cpus_per_cell: float = Field(1.0, gt=0, description="CPUs reserved per cell")
    gpus_per_cell: float = Field(0.0, ge=0, description="GPUs reserved per cell (fractions share a GPU)")
    max_retries: int = Field(
        2,
        ge=0,
        description="Ray: times a cell whose worker process or node died is run again, resuming from its "
        "last complete checkpoint (its own errors are not retried)",
    )
    launcher: list[str] = Field(
        default_factory=list,
        description="command prefix for multi-process training, e.g. [torchrun, --nproc_per_node=4]; the "
        "worker then runs `<launcher> -m plw train config.yaml`; empty = train in the worker process",
    )


class Study(Strict):
    """A factorial study; see docs/sweeps.md."""

    name: str = Field(description="study name (default: the study file's name)")
    description: str = Field("", description="free text")
    output_dir: str | None = Field(None, description="study directory; default studies/<name>")
    factors: Factors
    models: dict[str, str] = Field(default_factory=dict, description="short model names -> model specs")
    datasets: dict[str, str | dict[str, Any]] = Field(
        default_factory=dict,
        description="dataset names -> a data path, or a TrainConfig `data` mapping (plus optional eval_data)",
    )
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields shared by all cells")
    eval: EvalSettings = Field(default_factory=EvalSettings)
    resources: Resources = Field(default_factory=Resources)
    exclude: list[dict[str, Any]] = Field(default_factory=list, description="partial factor mappings to drop")
    include: list[dict[str, Any]] = Field(default_factory=list, description="partial factor mappings to add")
    keep_models: bool = Field(True, description="keep each cell's trained model after its measures are taken")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' and '-' only")
        return value

    @field_validator("train")
    @classmethod
    def _no_factor_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, owner in FACTOR_FIELDS.items():
            if key in value:
                raise ValueError(f"'{key}' is set by {owner}, not by train:")
        # Once here, not in every cell: one warning per old key, and factors then set the new keys.
        return move_legacy_loss_keys(value, where="train.")

    @field_validator("exclude", "include")
    @classmethod
    def _factor_keys(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, entry in enumerate(value):
            extra = {k for k in entry if k == "train" or k.startswith(PREFIX)}
            unknown = sorted(set(entry) - set(FACTORS) - extra)
            if unknown:
                raise ValueError(
                    f"entry {index}: unknown factor '{unknown[0]}' (factors: {', '.join(FACTORS)})"
                )
            if not entry:
                raise ValueError(f"entry {index}: empty mapping")
        return value

    def directory(self) -> Path:
        """The study directory: `output_dir`, else `studies/<name>`."""
        return Path(self.output_dir or Path("studies") / self.name).expanduser()


def load_study(path: Path, overrides: list[str] | None = None) -> Study:
    """Read a study file, apply `key=value` overrides, and check its structure.

    Args:
        path: the study YAML; `name` defaults to its file name without suffix.
        overrides: dotted `key=value` strings (`factors.plw=[0,1]`, `train.max_steps=2`).

    Raises:
        PLWError: unreadable YAML, or a structural problem, naming the key.
    """
    data = apply_overrides(read_yaml(path), list(overrides or []))
    data.setdefault("name", path.stem)
    try:
        return validate(Study, data, str(path))
    except PLWError as err:
        # Our own validators' messages read better without pydantic's "Value error, " prefix.
        raise PLWError(str(err).replace(": Value error, ", ": ")) from err.__cause__


def error_text(error: dict[str, Any]) -> str:
    """One pydantic error entry as a short message (as `plw.config.validate` words them)."""
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and error["type"] != "value_error":
        message += f" (got {error['input']!r})"
    return message
