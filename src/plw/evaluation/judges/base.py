"""The judge interface, judge configs and prompt rendering."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from plw.config import Strict, read_yaml, validate
from plw.errors import PLWError

HERE = Path(__file__).resolve().parent
PLACEHOLDERS = ("{instruction}", "{output_a}", "{output_b}")
# An unknown key whose name says it holds a secret gets a hint: keys come from the environment.
_SECRET_NAME = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)
KEY_HINT = (
    "a judge file never holds an API key: put the key in an environment variable and name it with api_key_env"
)


class JudgeFile(Strict):
    """The keys a judge YAML may hold; any other key is an error (see `JudgeConfig` for meanings)."""

    type: Literal["local", "endpoint"]
    prompt: str = "pairwise.txt"
    verdicts: tuple[str, ...] = ("Output (a)", "Output (b)")
    model: str = ""
    chat_template: bool = True
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)

    @field_validator("verdicts")
    @classmethod
    def _two_or_three(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) not in (2, 3) or not all(v.strip() for v in value):
            raise ValueError("two non-empty strings ((a) better, (b) better), or three (then a tie)")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        # The message does not repeat the value: it may be a key pasted into the wrong field.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must name an environment variable (letters, digits, _), not hold the key")
        return value


@dataclass(frozen=True)
class JudgeConfig:
    """A judge's settings, as read from its YAML file.

    Attributes:
        type: "local" or "endpoint".
        prompt: the prompt template text (placeholders {instruction}, {output_a}, {output_b}).
        verdicts: the answers meaning "(a) is better" and "(b) is better", and optionally a third
            meaning a tie, which counts half for each side.
        model: judge model (local: a plw model name; endpoint: the served model's name).
        chat_template: local only; wrap the prompt in the judge model's chat template.
        base_url, api_key_env, timeout, max_retries: endpoint only.
        source: the config file.

    The YAML file holds the same keys (`JudgeFile`), with `prompt` a path relative to it.
    """

    type: str
    prompt: str
    verdicts: tuple[str, ...] = ("Output (a)", "Output (b)")
    model: str = ""
    chat_template: bool = True
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 3
    source: str = ""

    @classmethod
    def from_file(cls, path: Path | str) -> JudgeConfig:
        """Read a judge YAML; its `prompt` path is resolved relative to the YAML file.

        Raises:
            PLWError: a missing or malformed file, an unknown key (an inline `api_key` among them:
                keys come from the environment variable named by `api_key_env`), a bad value, or a
                prompt template without the placeholders.
        """
        path = Path(path)
        if not path.is_file():
            raise PLWError(f"judge config not found: {path}")
        raw = read_yaml(path)
        for key in raw:
            if str(key) not in JudgeFile.model_fields:
                hint = (
                    KEY_HINT
                    if _SECRET_NAME.search(str(key))
                    else f"allowed: {', '.join(JudgeFile.model_fields)}"
                )
                raise PLWError(f"{path}: unknown key '{key}' ({hint})")
        try:
            settings = validate(JudgeFile, raw, str(path))
        except PLWError as err:  # our validator's message reads better without pydantic's prefix
            raise PLWError(str(err).replace(": Value error, ", ": ")) from err.__cause__
        prompt_path = path.parent / settings.prompt
        if not prompt_path.is_file():
            raise PLWError(f"{path}: prompt file not found: {prompt_path}")
        prompt = prompt_path.read_text(encoding="utf-8")
        missing = [p for p in PLACEHOLDERS if p not in prompt]
        if missing:
            raise PLWError(f"{prompt_path}: prompt template lacks {', '.join(missing)}")
        return cls(prompt=prompt, source=str(path), **settings.model_dump(exclude={"prompt"}))


def render(template: str, instruction: str, output_a: str, output_b: str) -> str:
    """Fill the placeholders in one pass, so braces inside the outputs are left alone."""
    values = dict(zip(PLACEHOLDERS, (instruction, output_a, output_b), strict=True))
    out, i = [], 0
    while i < len(template):
        hit = next((p for p in PLACEHOLDERS if template.startswith(p, i)), None)
        out.append(values[hit] if hit else template[i])
        i += len(hit) if hit else 1
    return "".join(out)


class Judge(ABC):
    """Compares two outputs for one instruction.

    Attributes:
        name: identifier recorded with results.
    """

    name: str = "judge"

    @abstractmethod
    def prefer_a(self, triples: Sequence[tuple[str, str, str]]) -> list[float | None]:
        """P(output a is better than output b) for each (instruction, output_a, output_b).

        None marks a verdict the judge gave but that could not be read (endpoint judges).
        """


SHIPPED = ("local", "endpoint", "pandalm", "pandalm-endpoint")
"""Judge configs shipped beside this file, loadable by name."""


def preference(probabilities: Sequence[float]) -> float:
    """P(a better) from verdict probabilities (a, b[, tie]): a tie counts half for each side."""
    p_a, p_b, *tie = probabilities
    p_tie = tie[0] if tie else 0.0
    return (p_a + 0.5 * p_tie) / (p_a + p_b + p_tie)


def load_judge(spec: str | Path, lm=None) -> Judge:
    """A judge from a YAML config path, a shipped name (SHIPPED), or "local:MODEL".

    Args:
        spec: config file, a shipped config name, or "local:MODEL" for the shipped local judge with
            another judge model.
        lm: an already-loaded `EvalLM` to judge with (local judges only; skips loading `model`).
    """
    spec = str(spec)
    model = None
    if spec.startswith("local:"):
        spec, model = "local", spec.split(":", 1)[1]
    path = HERE / f"{spec}.yaml" if spec in SHIPPED else Path(spec)
    config = JudgeConfig.from_file(path)
    if model:
        config = replace(config, model=model)
    if config.type == "local":
        from plw.evaluation.judges.local import LocalJudge

        return LocalJudge.from_config(config, lm=lm)
    from plw.evaluation.judges.endpoint import EndpointJudge

    return EndpointJudge(config)
