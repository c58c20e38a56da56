"""Record formats and prompt templates: a record becomes a list of text segments.

A segment is a run of text on the prompt or the completion side, labelled with its part
(`plw.batch.PARTS`) and, for chat messages, the message's own weight. Three record formats are
understood:

- alpaca: `instruction`, optional `input`, `output`, rendered with Stanford Alpaca's prompt;
- prompt_completion: `prompt`, `completion`;
- chat: `messages`, a list of `{role, content}` with an optional weight in [0, 1] on any message
  (OpenAI's fine-tuning format allows 0 or 1 on assistant messages), reasoning, tool calls and
  weighted character spans (`plw.data.messages` reads them, also in LLaMA-Factory's and Axolotl's
  fields), rendered with the tokenizer's chat template (`plw.data.chat_render`); system, user and
  tool turns are prompt, assistant turns completion.

A record-level `weight` is refused in every format: per-record weights are the sample weight field
(`data.sample_weight_field`), so a misplaced message weight is never silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from plw.data.chat_render import render_chat
from plw.data.messages import plain_message, read_messages, record_tools
from plw.data.records import RecordError, Segment, unit_number
from plw.data.sources import Record

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
    """A record as chat messages (`plw.data.messages.read_messages`' dicts), validated.

    A non-chat record is one user message (its prompt) and one assistant message (its completion).
    """
    if fmt != "chat":
        prompt, completion = prompt_and_completion(record, fmt)
        return [plain_message("user", prompt), plain_message("assistant", completion)]
    return read_messages(record)


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
        tools = record_tools(record) if fmt == "chat" else None
        segments = render_chat(
            messages, tokenizer, where=record.where, assistant_turns=assistant_turns, tools=tools
        )
        return segments, False
    if fmt == "chat":
        raise RecordError(record.where, "messages", f"chat records need template 'chat', not '{template}'")
    if template == "alpaca":
        prompt, completion = render_alpaca(record, fmt)
    else:
        prompt, completion = prompt_and_completion(record, fmt)
    return [Segment(prompt, False, "prompt"), Segment(completion, True, "completion")], True
