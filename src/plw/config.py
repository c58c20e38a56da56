"""Load typed configs from YAML with `key=value` overrides; errors become one line.

Configs are pydantic models with `extra="forbid"`, so a misspelt key is an error, not a silent
default. Overrides use dotted paths (`lora.r=16`, `data.path=x.json`) and YAML values
(`prompt_loss_weight=0.1`, `lora=null`, `trainer_args={fp16: false}`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from plw.errors import PLWError

T = TypeVar("T", bound=BaseModel)


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with file and line in any error."""
    if not path.is_file():
        raise PLWError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PLWError(f"{where}: invalid YAML: {getattr(err, 'problem', None) or err}") from err
    except UnicodeDecodeError as err:
        raise PLWError(f"{path}: not valid UTF-8") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PLWError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys from `key=value` strings; values are parsed as YAML."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PLWError(f"override '{item}': expected key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as err:
            raise PLWError(f"override '{item}': invalid value") from err
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


def validate(model: type[T], data: dict[str, Any], source: str) -> T:
    """Validate `data` as `model`; the first problem becomes a one-line PLWError naming the key."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"]
        if not key:  # a check across keys (a model validator): its message names them
            raise PLWError(f"{source}: {message.removeprefix('Value error, ')}") from err
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
        elif "input" in first and first["type"] not in ("value_error",):
            message = f"{message} (got {first['input']!r})"
        raise PLWError(f"{source}: {key}: {message}") from err


def load_config(model: type[T], path: Path | None, overrides: list[str] | None = None) -> T:
    """Read YAML (if any), apply overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    return validate(model, data, str(path) if path else "config")


def yaml_text(config: BaseModel) -> str:
    """A config as YAML text, fields in declaration order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def dump_yaml(config: BaseModel, path: Path) -> None:
    """Write a config as YAML (the resolved config saved next to outputs), atomically."""
    from plw.files import write_text_atomic

    write_text_atomic(path, yaml_text(config))
