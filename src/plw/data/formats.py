"""Record formats and prompt templates: a record becomes a list of text segments.

A segment is a run of text on the prompt or the completion side, labelled with its part
(`plw.batch.PARTS`) and, for chat messages, the message's own weight. Three record formats are
understood:

- alpaca: `instruction`, optional `input`, `output`, rendered with Stanford Alpaca's prompt;
- prompt_completion: `prompt`, `completion`;
- chat: `messages`, a list of `{role, content}` with an optional `weight` in [0, 1] on any message
  (OpenAI's fine-tuning format allows 0 or 1 on assistant messages), rendered with the tokenizer's
  chat template; system, user and tool turns are prompt, assistant turns completion.

A record-level `weight` is refused in every format: per-record weights are the sample weight field
(`data.sample_weight_field`), so a misplaced message weight is never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from plw.batch import ROLES
from plw.data.sources import Record
from plw.data.weights import number_weight

Format = Literal["alpaca", "prompt_completion", "chat"]
Template = Literal["alpaca", "chat", "none"]
FORMATS: tuple[str, ...] = ("alpaca", "prompt_completion", "chat")
TEMPLATES: tuple[str, ...] = ("alpaca", "chat", "none")

# Stanford Alpaca's prompts, verbatim (train.py, PROMPT_DICT). The response follows "### Response:"
# with no separator; the output is appended directly, then EOS.
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
DEFAULT_TEMPLATE: dict[str, str] = {"alpaca": "alpaca", "prompt_completion": "none", "chat": "chat"}
# Stands in for a message's content to find where the chat template puts it (role header before,
# end-of-turn marker after); letters only, so no template's trimming or escaping changes it.
_SENTINEL = "PLWmessageCONTENTsentinel"


@dataclass(frozen=True)
class Segment:
    """A run of text: its side (completion or prompt), part (`plw.batch.PARTS`) and message weight.

    `message_weight` is the chat message's own `weight`, -1.0 where none is given.
    """

    text: str
    is_completion: bool
    part: str = "prompt"
    message_weight: float = -1.0


class RecordError(ValueError):
    """A malformed record; `where` and `field` locate it."""

    def __init__(self, where: str, field: str, message: str):
        super().__init__(f"{where}: field '{field}': {message}")
        self.where, self.field = where, field


def detect_format(record: Record) -> str:
    """Guess a record's format from its keys."""
    keys = record.data.keys()
    if "messages" in keys:
        return "chat"
    if "prompt" in keys or "completion" in keys:
        return "prompt_completion"
    if "instruction" in keys or "output" in keys:
        return "alpaca"
    raise RecordError(record.where, "?", f"unknown record format (keys: {', '.join(sorted(keys)) or 'none'})")


def text_field(record: Record, name: str, *, required: bool = True, allow_empty: bool = False) -> str:
    """A string field, validated: present, a string, and non-empty unless allowed."""
    value = record.data.get(name)
    if value is None:
        if required:
            raise RecordError(record.where, name, "missing")
        return ""
    if not isinstance(value, str):
        raise RecordError(record.where, name, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(record.where, name, "empty")
    return value


def prompt_and_completion(record: Record, fmt: str) -> tuple[str, str]:
    """The raw prompt and completion texts of a non-chat record, without any template.

    For alpaca records the prompt is instruction + input, as the paper measures Rg.
    """
    if fmt == "alpaca":
        instruction = text_field(record, "instruction")
        extra = text_field(record, "input", required=False, allow_empty=True)
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return prompt, text_field(record, "output")
    return text_field(record, "prompt"), text_field(record, "completion")


def render_alpaca(record: Record, fmt: str) -> tuple[str, str]:
    """Prompt and completion with Stanford Alpaca's template."""
    if fmt == "alpaca":
        instruction = text_field(record, "instruction")
        extra = text_field(record, "input", required=False, allow_empty=True)
        output = text_field(record, "output")
    else:
        instruction, extra = text_field(record, "prompt"), ""
        output = text_field(record, "completion")
    if extra.strip():
        return ALPACA_PROMPT_INPUT.format(instruction=instruction, input=extra), output
    return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction), output


def unit_number(value: Any, where: str, field: str) -> float:
    """A weight read from a record (`plw.data.weights.number_weight`'s rule), located on error."""
    try:
        return number_weight(value)
    except ValueError as err:
        raise RecordError(where, field, str(err)) from None


def sample_weight(record: Record, field: str | None) -> float:
    """The record's sample weight from `field` (1.0 when no field is configured or it is absent).

    Raises:
        RecordError: not a number in [0, 1], or 0 (the example would train on nothing).
    """
    if field != "weight" and "weight" in record.data:
        raise RecordError(
            record.where, "weight", "a record-level weight is not read: weights go on chat messages, "
            "or name a sample weight field with data.sample_weight_field"
        )  # fmt: skip
    if field is None or record.data.get(field) is None:
        return 1.0
    value = unit_number(record.data[field], record.where, field)
    if value == 0.0:
        raise RecordError(record.where, field, "sample weight 0 leaves no token to train on")
    return value


def chat_messages(record: Record, fmt: str) -> list[dict[str, Any]]:
    """A record as a list of chat messages `{role, content, weight}` (weight None: not given), validated."""
    if fmt != "chat":
        prompt, completion = prompt_and_completion(record, fmt)
        return [
            {"role": "user", "content": prompt, "weight": None},
            {"role": "assistant", "content": completion, "weight": None},
        ]
    messages = record.data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RecordError(record.where, "messages", "expected a non-empty list of {role, content}")
    out = []
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RecordError(record.where, field, "expected an object with role and content")
        if message.get("role") not in ROLES:
            raise RecordError(
                record.where, f"{field}.role", f"unknown role {message.get('role')!r} ({', '.join(ROLES)})"
            )
        if not isinstance(message.get("content"), str):
            raise RecordError(record.where, f"{field}.content", "expected a string")
        weight = message.get("weight")
        if weight is not None:
            weight = unit_number(weight, record.where, f"{field}.weight")
        out.append({"role": message["role"], "content": message["content"], "weight": weight})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        raise RecordError(record.where, "messages", "no non-empty assistant turn")
    return out


def render_chat(
    messages: list[dict[str, Any]], tokenizer: Any, *, where: str, assistant_turns: str = "all"
) -> list[Segment]:
    """Render messages with the tokenizer's chat template, split into segments per message.

    Sides are as they always were: each assistant turn's generation header ("<|im_start|>assistant\\n")
    is prompt, its content and end-of-turn marker completion; with `assistant_turns="last"` earlier
    assistant turns are prompt. Parts: a message's content is its role ("assistant_earlier" for an
    assistant turn before the last one), the template's tokens around it are "template". A message's
    `weight` covers its content and the end-of-turn marker after it. Messages after the last
    assistant turn are not trained on and not rendered.

    Raises:
        RecordError: the template is missing or re-renders earlier turns differently (not prefix-stable).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise RecordError(where, "messages", "template 'chat' needs a tokenizer with a chat template")
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    segments: list[Segment] = []
    done = ""
    for i, message in enumerate(plain[: last + 1]):
        assistant = message["role"] == "assistant"
        if assistant:
            head = _render(tokenizer, plain[:i], where, i, generation=True)
            _check_prefix(done, head, where, i)
            segments.append(Segment(head[len(done) :], False, "template"))
            done = head
        full = _render(tokenizer, plain[: i + 1], where, i)
        _check_prefix(done, full, where, i)
        probe = _render(tokenizer, [*plain[:i], {"role": message["role"], "content": _SENTINEL}], where, i)
        side = assistant and (assistant_turns == "all" or i == last)
        part = "assistant_earlier" if assistant and i < last else message["role"]
        weight = -1.0 if messages[i]["weight"] is None else messages[i]["weight"]
        segments.extend(_message_segments(full[len(done) :], probe, done, side, part, weight))
        done = full
    return [s for s in segments if s.text]


def _render(tokenizer: Any, messages: list[dict[str, str]], where: str, i: int, *, generation=False) -> str:
    if not messages:
        return ""
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    except Exception as err:  # jinja raises its own errors (roles must alternate, ...)
        raise RecordError(where, f"messages[{i}]", f"chat template cannot render: {err}") from err


def _check_prefix(done: str, text: str, where: str, i: int) -> None:
    if not text.startswith(done):
        raise RecordError(where, f"messages[{i}]", "chat template is not prefix-stable across turns")


def _message_segments(
    text: str, probe: str, done: str, side: bool, part: str, weight: float
) -> list[Segment]:
    """One message's rendered text split into header (template), content (its part), end (template).

    `probe` is the same conversation rendered with the sentinel for the content; where it does not
    show the header and end around the content, the whole text counts as content.
    """
    if probe.startswith(done) and probe.count(_SENTINEL) == 1:
        header, _, end = probe[len(done) :].partition(_SENTINEL)
        if text.startswith(header) and text.endswith(end) and len(text) >= len(header) + len(end):
            return [
                Segment(header, side, "template"),
                Segment(text[len(header) : len(text) - len(end)], side, part, weight),
                Segment(end, side, "template", weight),
            ]
    return [Segment(text, side, part, weight)]


def to_segments(
    record: Record, fmt: str, template: str, tokenizer: Any, *, assistant_turns: str = "all"
) -> tuple[list[Segment], bool]:
    """Render a record into segments.

    Returns:
        (segments, append_eos): chat templates carry their own end-of-turn token; the other
        templates need EOS appended after the completion, as Alpaca's training script does.
    """
    if template == "chat":
        messages = chat_messages(record, fmt)
        return render_chat(messages, tokenizer, where=record.where, assistant_turns=assistant_turns), False
    if fmt == "chat":
        raise RecordError(record.where, "messages", f"chat records need template 'chat', not '{template}'")
    if template == "alpaca":
        prompt, completion = render_alpaca(record, fmt)
    else:
        prompt, completion = prompt_and_completion(record, fmt)
    return [Segment(prompt, False, "prompt"), Segment(completion, True, "completion")], True
