"""Record formats and prompt templates: a record becomes a list of text segments.

A segment is a run of text that is either prompt (weighted by PLW) or completion (weight 1). Three
record formats are understood:

- alpaca: `instruction`, optional `input`, `output`, rendered with Stanford Alpaca's prompt;
- prompt_completion: `prompt`, `completion`;
- chat: `messages`, a list of `{role, content}`, rendered with the tokenizer's chat template;
  system and user turns are prompt, assistant turns completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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


@dataclass(frozen=True)
class Segment:
    """A run of text and whether it is completion (weight 1) or prompt (weight PLW)."""

    text: str
    is_completion: bool


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


def chat_messages(record: Record, fmt: str) -> list[dict[str, str]]:
    """A record as a list of chat messages, validated."""
    if fmt != "chat":
        prompt, completion = prompt_and_completion(record, fmt)
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    messages = record.data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RecordError(record.where, "messages", "expected a non-empty list of {role, content}")
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RecordError(record.where, field, "expected an object with role and content")
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            raise RecordError(record.where, f"{field}.role", f"unknown role {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            raise RecordError(record.where, f"{field}.content", "expected a string")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise RecordError(record.where, "messages", "no non-empty assistant turn")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render_chat(
    messages: list[dict[str, str]], tokenizer: Any, *, where: str, assistant_turns: str = "all"
) -> list[Segment]:
    """Render messages with the tokenizer's chat template, split into prompt/completion segments.

    Each assistant turn's generation header ("<|im_start|>assistant\\n") stays in the prompt, its
    content and end-of-turn marker are completion. With `assistant_turns="last"` earlier assistant
    turns count as prompt (weight PLW).

    Raises:
        RecordError: the template is missing or re-renders earlier turns differently (not prefix-stable).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise RecordError(where, "messages", "template 'chat' needs a tokenizer with a chat template")
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    segments: list[Segment] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        head = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not head.startswith(done) or not full.startswith(head):
            raise RecordError(where, f"messages[{i}]", "chat template is not prefix-stable across turns")
        segments.append(Segment(head[len(done) :], False))
        segments.append(Segment(full[len(head) :], assistant_turns == "all" or i == last))
        done = full
    return [s for s in segments if s.text]


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
    return [Segment(prompt, False), Segment(completion, True)], True
