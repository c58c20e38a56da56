"""The rules for evaluation options, stated once for `plw eval`, `evaluate` and a study's `eval:`.

Each rule is a function that returns the value or raises `ValueError` with the reason, so pydantic
models (a study's `EvalSettings`) can use it as a validator. `check_options` applies all of them
before any model loads and names the culprit as the caller knows it: the flag (`--batch-size`) for
the CLI, the argument (`batch_size`) for the library.
"""

from __future__ import annotations

from collections.abc import Sequence

from plw.data.formats import TEMPLATES
from plw.errors import PLWError

DTYPES: tuple[str, ...] = ("float32", "bfloat16")
"""Weight dtypes a model can be loaded in (`plw.models.load_model`)."""

__all__ = ["DTYPES", "TEMPLATES", "check_options", "valid_dtype", "valid_template"]


def one_of(value: object, allowed: Sequence[str], what: str) -> str:
    """`value` when it is one of `allowed`, else ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r} (allowed: {', '.join(allowed)})")
    return value  # type: ignore[return-value]


def valid_template(value: object) -> str:
    """An instruction prompt template (the ones plw renders: `plw.data.formats.TEMPLATES`)."""
    return one_of(value, TEMPLATES, "template")


def valid_dtype(value: object) -> str:
    """A weight dtype (`DTYPES`)."""
    return one_of(value, DTYPES, "dtype")


def at_least(value: int | None, low: int) -> int | None:
    """`value` (None passes: the option is unset) when it is at least `low`."""
    if value is not None and value < low:
        raise ValueError(f"must be at least {low}, got {value}")
    return value


def check_options(
    *,
    dtype: str = "float32",
    template: str = "alpaca",
    batch_size: int = 16,
    limit: int | None = None,
    num_fewshot: int = 0,
    max_new_tokens: int | None = None,
    flags: bool = False,
) -> None:
    """Check evaluation options; the first bad one raises a one-line PLWError naming it.

    Args:
        flags: name options as `plw eval` flags (`--batch-size`) instead of `evaluate` arguments.
    """
    rules = (
        ("dtype", valid_dtype, dtype),
        ("template", valid_template, template),
        ("batch_size", lambda v: at_least(v, 1), batch_size),
        ("limit", lambda v: at_least(v, 1), limit),
        ("num_fewshot", lambda v: at_least(v, 0), num_fewshot),
        ("max_new_tokens", lambda v: at_least(v, 1), max_new_tokens),
    )
    for name, rule, value in rules:
        try:
            rule(value)
        except ValueError as err:
            raise PLWError(f"{'--' + name.replace('_', '-') if flags else name}: {err}") from None
