"""Evaluation options: their rules and the typed settings `evaluate` runs with, each stated once.

`BenchmarkOptions` declares the fields a study's `eval:` section shares with the library (the
study's `EvalSettings` extends it); `EvalOptions` adds what only a standalone run chooses (few-shot
seed, how a model spec loads). Both are validated once, when built: `evaluate` takes an
`EvalOptions` as it is, and `eval_options` builds one from keywords, turning the first bad value
into an `OptionError` that names the field (`batch_size: must be at least 1, got 0`). Callers with
their own names for the fields (`plw eval`'s flags) reword it from `OptionError.field`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, InstanceOf, ValidationError

from plw.config import Strict
from plw.data.formats import TEMPLATES
from plw.errors import PLWError
from plw.evaluation.judges.base import Judge
from plw.evaluation.tasks.base import FEWSHOT_SEED

DTYPES: tuple[str, ...] = ("float32", "bfloat16")
"""Weight dtypes a model can be loaded in (`plw.models.load_model`)."""

__all__ = [
    "DTYPES",
    "TEMPLATES",
    "BenchmarkOptions",
    "EvalOptions",
    "OptionError",
    "eval_options",
    "valid_dtype",
    "valid_template",
]


def one_of(value: object, allowed: Sequence[str], what: str) -> str:
    """`value` when it is one of `allowed`, else ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r} (allowed: {', '.join(allowed)})")
    return value  # type: ignore[return-value]


def valid_template(value: object) -> str:
    """An instruction prompt template (the ones plw renders: `plw.data.formats.TEMPLATES`)."""
    return one_of(value, TEMPLATES, "template")


def valid_chat_template(value: str | None) -> str | None:
    """A chat template value that renders two turns prefix-stably (`plw.data.chat_templates`)."""
    from plw.data.chat_templates import chat_template_text

    if value is not None:
        chat_template_text(value)
    return value


def valid_dtype(value: object) -> str:
    """A weight dtype (`DTYPES`)."""
    return one_of(value, DTYPES, "dtype")


def at_least(value: int | None, low: int) -> int | None:
    """`value` (None passes: the option is unset) when it is at least `low`."""
    if value is not None and value < low:
        raise ValueError(f"must be at least {low}, got {value}")
    return value


def task_list(value: Any) -> Any:
    """A comma-separated string of task names as a list (other values pass to the type check)."""
    return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value


Positive = AfterValidator(partial(at_least, low=1))


class BenchmarkOptions(Strict):
    """Which benchmarks to score and how: the options a study's `eval:` section shares with `evaluate`."""

    tasks: Annotated[list[str], BeforeValidator(task_list)] = Field(
        default_factory=list,
        description="benchmark names or aliases (a list or a comma-separated string); evaluate needs one",
    )
    data_dir: Path | None = Field(
        None, description="local benchmark files (hub row schema); unset loads from the hub"
    )
    limit: Annotated[int | None, Positive] = Field(
        None, description="score only the first N items of each task"
    )
    num_fewshot: Annotated[int, AfterValidator(partial(at_least, low=0))] = Field(
        0, description="few-shot examples per prompt"
    )
    batch_size: Annotated[int, Positive] = Field(16, description="sequences per forward pass")
    template: Annotated[str, AfterValidator(valid_template)] = Field(
        "alpaca", description=f"prompt template of instruction tasks: {', '.join(TEMPLATES)}"
    )
    max_new_tokens: Annotated[int | None, Positive] = Field(
        None, description="override each generation task's budget"
    )
    judge: str | Path | InstanceOf[Judge] | None = Field(
        None, description="alpaca_eval judge: local, endpoint, local:MODEL or a judge YAML"
    )  # or, from Python, a Judge object


class EvalOptions(BenchmarkOptions):
    """Everything `plw.evaluation.run.evaluate` needs besides the model and where to write."""

    seed: int = Field(FEWSHOT_SEED, description="few-shot sampling seed")
    dtype: Annotated[str, AfterValidator(valid_dtype)] = Field(
        "float32", description=f"weights dtype of a model loaded from a spec: {', '.join(DTYPES)}"
    )
    adapter: Path | None = Field(None, description="LoRA adapter directory applied on top of a model spec")
    chat_template: Annotated[str | None, AfterValidator(valid_chat_template)] = Field(
        None,
        description="chat template set on the model's tokenizer (for template chat): a built-in (chatml), "
        "a Jinja file or a template string; default: the tokenizer's own",
    )


class OptionError(PLWError):
    """A bad evaluation option: `field` names it as `EvalOptions` declares it, `reason` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def eval_options(**fields: Any) -> EvalOptions:
    """An `EvalOptions` from its fields as keywords.

    Raises:
        OptionError: the first field that is unknown or breaks its rule.
    """
    try:
        return EvalOptions(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        raise OptionError(".".join(map(str, first["loc"])), _reason(first)) from None


def _reason(error: dict[str, Any]) -> str:
    """One pydantic error entry in words: our own rules' messages as they are, pydantic's with the value."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "extra_forbidden":
        return "unknown option"
    return f"{error['msg']} (got {error['input']!r})"
