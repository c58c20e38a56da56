"""Extra factors: any training setting varied across cells, named by its config path.

Beside the five fixed factors, a study's `factors:` may vary any TrainConfig setting, keyed by
`train.<path>`: `train.learning_rate: [1.0e-5, 2.0e-5]`, `train.lora: [null, {r: 8}, {r: 64}]`,
`train.lora.r: [8, 64]`, `train.trainer_args.adam_beta2: [0.95, 0.999]`. The nested spelling
`train: {learning_rate: [...]}` (what an override `factors.train.learning_rate=[...]` writes) means
the same; where both name one path, the nested one wins, so an override replaces the file's list.

A value's exact text (`value_text`) is part of the cell id; its label (`value_label`) is the
filesystem-safe form. Every study key is `factors.train.<path>`; the results table has one column
per extra factor, named `train.<path>` (`factor_column`), so analyses can tell factors from any
other column a hand-made table carries.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

PREFIX = "train."
# YAML 1.1 (PyYAML) reads 1e-5 (no dot) as a string; such values are numbers here, as users mean.
_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")
# TrainConfig paths a study sets otherwise (the five factors, the datasets, the cell directory).
OWNED = {
    "model": "factors.model",
    "data": "factors.dataset (and the datasets: section)",
    "eval_data": "the datasets: section",
    "prompt_loss_weight": "factors.plw",
    "seed": "factors.seed",
    "output_dir": "the cell directory",
    "regularization.weight_decay": "factors.regularizer",
    "regularization.dropout": "factors.regularizer",
    "regularization.label_smoothing": "factors.regularizer",
    "regularization.minkowski_lambda": "factors.regularizer",
    "regularization": "factors.regularizer",
    "loss.label_smoothing": "factors.regularizer",
    "loss.minkowski_lambda": "factors.regularizer",
}


def canonical(value: Any) -> Any:
    """The value as a factor level: exponent strings (`1e-5`) become floats, containers recursively."""
    if isinstance(value, str) and _EXPONENT.match(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def value_json(value: Any) -> str:
    """Canonical JSON of a value (sorted keys, no spaces): how a level is stored and compared."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def format_number(value: float) -> str:
    """Shortest exact text of a float, without a trailing '.0' (0.1 -> '0.1', 1.0 -> '1')."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def value_text(value: Any) -> str:
    """The exact text of a level in a cell id: numbers shortest (1e-05, 8), null, true, strings as they are,
    mappings and lists as compact JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, str):
        return value
    return value_json(value)


def value_label(value: Any) -> str:
    """A filesystem-safe label of a level: {r: 8, alpha: 16} -> 'alpha-16+r-8'."""
    if isinstance(value, dict):
        return "+".join(f"{_UNSAFE.sub('_', k)}-{value_label(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return "+".join(value_label(v) for v in value)
    return _UNSAFE.sub("_", value_text(value))


def factor_column(path: str) -> str:
    """The results-table column (and factors key) of the extra factor at `path`: `train.<path>`."""
    return PREFIX + path


def flatten(mapping: dict[str, Any], paths: set[str] | None = None, prefix: str = "") -> dict[str, Any]:
    """{dotted path: leaf} of a nested mapping.

    Without `paths`, descends until a list (the value list of a factor); a scalar leaf is an error.
    With `paths` (the declared factor paths, for include / exclude entries), stops at a declared path,
    so `{lora: {r: 8}}` is the level {r: 8} of `lora` when `lora` is the factor.

    Raises:
        ValueError: a leaf that is not a list (without `paths`).
    """
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if paths is not None and path in paths:
            out[path] = value
        elif isinstance(value, dict) and (paths is None or any(p.startswith(path + ".") for p in paths)):
            out.update(flatten(value, paths, path + "."))
        elif paths is None and not isinstance(value, list):
            raise ValueError(f"{PREFIX}{path}: expected a list of values, got {value!r}")
        else:
            out[path] = value
    return out


def split_keys(data: dict[str, Any], paths: set[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a factors mapping (or an include / exclude entry) into (fixed factors, {path: extra})."""
    data = dict(data)
    flat = {k[len(PREFIX) :]: data.pop(k) for k in list(data) if isinstance(k, str) and k.startswith(PREFIX)}
    nested = data.pop("train", None) or {}
    if not isinstance(nested, dict):
        raise ValueError(f"train: expected a mapping of setting paths to values, got {nested!r}")
    merged = (
        {**flatten(flat, paths), **flatten(nested, paths)}
        if paths is not None
        else {**flatten(flat), **flatten(nested)}
    )
    return data, merged


def overlap(paths: list[str]) -> tuple[str, str] | None:
    """Two paths where one lies inside the other (`lora` and `lora.r`), or None."""
    for a in paths:
        for b in paths:
            if b.startswith(a + "."):
                return a, b
    return None


def setting_path(path: str) -> str:
    """The TrainConfig path an extra factor at `path` sets: `path`, or the new key of an old loss key
    (`chunk_size` -> `loss.chunk_size`). The factor keeps its declared name, so cell ids stay."""
    from plw.training.legacy import LEGACY_LOSS_KEYS

    return LEGACY_LOSS_KEYS.get(path, path)


def path_problem(path: str) -> str | None:
    """Why `path` cannot be a factor (not a TrainConfig setting, or set by the study elsewhere), or None."""
    from pydantic import BaseModel

    from plw.training.config import TrainConfig

    path = setting_path(path)
    for owned, owner in OWNED.items():
        if path == owned or path.startswith(owned + "."):
            return f"collides with {owner}, which sets {owned}"
    model: type[BaseModel] = TrainConfig
    parts = path.split(".")
    for index, part in enumerate(parts):
        if part not in model.model_fields:
            where = ".".join(parts[:index]) or "TrainConfig"
            return f"unknown training setting {part!r} (in {where}; see plw.training.config)"
        annotation = model.model_fields[part].annotation
        if index == len(parts) - 1:
            return None
        sub = _submodel(annotation)
        if sub is None:
            # A free mapping (trainer_args) takes any key; TrainConfig checks it per cell.
            return None if _is_mapping(annotation) else f"{'.'.join(parts[: index + 1])} has no sub-settings"
        model = sub
    return None


def _members(annotation: Any) -> tuple:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return (annotation,)


def _submodel(annotation: Any):
    from pydantic import BaseModel

    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _is_mapping(annotation: Any) -> bool:
    return any(typing.get_origin(m) is dict or m is dict for m in _members(annotation))


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in a config mapping, creating (or copying) the mappings along it.

    A mapping already at an intermediate key (from `train:`) keeps its other keys.
    """
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = json.loads(value_json(value))  # a copy: cells never share mutable values


def column_values(values: list[Any]) -> list[Any]:
    """The results-table entries of one factor's levels: numbers stay numbers when every level is a
    number, otherwise every level is its exact text (so a column never mixes types)."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return list(values) if numeric else [value_text(v) for v in values]
