"""The judge interface, judge configs and prompt rendering."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from plw.errors import PLWError

HERE = Path(__file__).resolve().parent
PLACEHOLDERS = ("{instruction}", "{output_a}", "{output_b}")


@dataclass(frozen=True)
class JudgeConfig:
    """A judge's settings, as read from its YAML file.

    Attributes:
        type: "local" or "endpoint".
        prompt: the prompt template text (placeholders {instruction}, {output_a}, {output_b}).
        verdicts: the two answers meaning "(a) is better" and "(b) is better".
        model: judge model (local: a plw model name; endpoint: the served model's name).
        chat_template: local only; wrap the prompt in the judge model's chat template.
        base_url, api_key_env, timeout, max_retries: endpoint only.
        source: the config file.
    """

    type: str
    prompt: str
    verdicts: tuple[str, str] = ("Output (a)", "Output (b)")
    model: str = ""
    chat_template: bool = True
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 3
    source: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path | str) -> JudgeConfig:
        """Read a judge YAML; its `prompt` path is resolved relative to the YAML file."""
        path = Path(path)
        if not path.is_file():
            raise PLWError(f"judge config not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise PLWError(f"{path}: malformed YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(raw, dict) or raw.get("type") not in ("local", "endpoint"):
            raise PLWError(f"{path}: field 'type' must be 'local' or 'endpoint'")
        prompt_path = path.parent / str(raw.pop("prompt", "pairwise.txt"))
        if not prompt_path.is_file():
            raise PLWError(f"{path}: prompt file not found: {prompt_path}")
        prompt = prompt_path.read_text(encoding="utf-8")
        missing = [p for p in PLACEHOLDERS if p not in prompt]
        if missing:
            raise PLWError(f"{prompt_path}: prompt template lacks {', '.join(missing)}")
        verdicts = raw.pop("verdicts", ["Output (a)", "Output (b)"])
        if not (
            isinstance(verdicts, list) and len(verdicts) == 2 and all(isinstance(v, str) for v in verdicts)
        ):
            raise PLWError(f"{path}: field 'verdicts' must be a list of two strings")
        known = {k: raw.pop(k) for k in list(raw) if k in cls.__dataclass_fields__}
        return cls(prompt=prompt, verdicts=(verdicts[0], verdicts[1]), source=str(path), extra=raw, **known)


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


def load_judge(spec: str | Path, lm=None) -> Judge:
    """A judge from a YAML config path, "local", "endpoint", or "local:MODEL".

    Args:
        spec: config file, a shipped config name, or "local:MODEL" for the shipped local judge with
            another judge model.
        lm: an already-loaded `EvalLM` to judge with (local judges only; skips loading `model`).
    """
    spec = str(spec)
    model = None
    if spec.startswith("local:"):
        spec, model = "local", spec.split(":", 1)[1]
    path = HERE / f"{spec}.yaml" if spec in ("local", "endpoint") else Path(spec)
    config = JudgeConfig.from_file(path)
    if model:
        config = replace(config, model=model)
    if config.type == "local":
        from plw.evaluation.judges.local import LocalJudge

        return LocalJudge.from_config(config, lm=lm)
    from plw.evaluation.judges.endpoint import EndpointJudge

    return EndpointJudge(config)
