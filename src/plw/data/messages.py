"""Chat records as messages: text, reasoning, tool calls, and the weight fields peers write.

A chat record is `{"messages": [...]}`, optionally with `tools` (function definitions the chat
template may render). Each message is read, as the record has it, into a dict:

- `role`: system, user, assistant or tool;
- `content`: its text: a string, or a list of parts as OpenAI (`{"type": "text", "text": ...}`) and
  LLaMA-Factory (`{"type": "text" | "reasoning" | "tool_call", "value": ...}`) write them: text
  parts are joined, reasoning parts are the reasoning, tool_call parts (a JSON `{name, arguments}`)
  tool calls. It may be empty (or null) on an assistant message with tool calls;
- `reasoning`: an assistant's reasoning from `reasoning_content`, `thinking` or `reasoning` (as
  Qwen3, DeepSeek-R1 and gpt-oss data have it, the names Transformers reads), else None;
- `think_end`: when the content holds its reasoning inline (`...</think>` as Qwen3 and DeepSeek-R1
  outputs do), where the answer starts: after `</think>` and the whitespace following it; else 0;
- `weight`: the message's own weight, from `weight` (OpenAI, Axolotl), `loss_weight` (LLaMA-Factory)
  or `train` (Axolotl's per-message boolean: 1 or 0); None when none is given;
- `spans`: weighted character ranges of the content (`plw.data.spans`);
- `template`: the other fields the chat template sees: `tool_calls` (assistant; OpenAI's
  JSON-string arguments parsed into objects, as Hugging Face templates expect), `tool_call_id`, `name`.
"""

from __future__ import annotations

import json
from typing import Any

from plw.batch import ROLES
from plw.data.records import RecordError, unit_number
from plw.data.sources import Record
from plw.data.spans import read_spans

WEIGHT_FIELDS = ("weight", "loss_weight", "train")
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")  # as Transformers aliases them
THINK_END = "</think>"
_PASSED = ("tool_call_id", "name")


def read_messages(record: Record) -> list[dict[str, Any]]:
    """A chat record's messages (see the module docstring), validated.

    Raises:
        RecordError: naming the message and field at fault.
    """
    messages = record.data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RecordError(record.where, "messages", "expected a non-empty list of {role, content}")
    out = [_message(m, record.where, f"messages[{i}]") for i, m in enumerate(messages)]
    if not any(m["role"] == "assistant" and _says_something(m) for m in out):
        raise RecordError(record.where, "messages", "no non-empty assistant turn")
    return out


def record_tools(record: Record) -> list[dict[str, Any]] | None:
    """The record's `tools` (function definitions), for the chat template; None when absent."""
    tools = record.data.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RecordError(record.where, "tools", "expected a list of function definitions (objects)")
    return tools


def _says_something(message: dict[str, Any]) -> bool:
    return bool(message["content"].strip() or message["reasoning"] or message["template"].get("tool_calls"))


def _message(message: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise RecordError(where, field, "expected an object with role and content")
    role = message.get("role")
    if role not in ROLES:
        raise RecordError(where, f"{field}.role", f"unknown role {role!r} ({', '.join(ROLES)})")
    text, reasoning, calls = _content(message.get("content"), where, field)
    reasoning = _reasoning(message, reasoning, where, field)
    calls = calls + _tool_calls(message.get("tool_calls"), where, f"{field}.tool_calls")
    if calls and role != "assistant":
        raise RecordError(where, f"{field}.tool_calls", f"only assistant messages call tools, not {role}")
    if message.get("content") is None and not calls:
        raise RecordError(where, f"{field}.content", "expected a string")
    think_end = _think_end(text) if role == "assistant" else 0
    if reasoning is not None and role != "assistant":
        raise RecordError(where, field, f"reasoning on a {role} message: only assistant messages reason")
    if reasoning is not None and think_end:
        raise RecordError(where, f"{field}.content", "reasoning given twice: in a field and as </think> text")
    template = {k: message[k] for k in _PASSED if isinstance(message.get(k), str)}
    return {
        "role": role,
        "content": text,
        "reasoning": reasoning,
        "think_end": think_end,
        "weight": _weight(message, where, field),
        "spans": read_spans(message, where, field, len(text)),
        "template": {**template, **({"tool_calls": calls} if calls else {})},
    }


def _content(value: Any, where: str, field: str) -> tuple[str, str | None, list[dict[str, Any]]]:
    """(text, reasoning from parts, tool calls from parts) of a message's `content`."""
    if value is None or isinstance(value, str):
        return value or "", None, []
    if not isinstance(value, list):
        raise RecordError(where, f"{field}.content", "expected a string or a list of parts")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, part in enumerate(value):
        name = f"{field}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        body = _first(part, ("text", "value")) if isinstance(part, dict) else None
        if kind not in ("text", "reasoning", "tool_call") or not isinstance(body, str):
            raise RecordError(
                where, name, f"expected a text, reasoning or tool_call part with a string, got {part!r}"
            )
        if kind == "tool_call":
            calls.append(_call(_json(body, where, f"{name}.value"), where, name))
        else:
            (texts if kind == "text" else thoughts).append(body)
    return "".join(texts), "".join(thoughts) if thoughts else None, calls


def _first(part: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of `keys` with a value (a Datasets row holds every key, None where absent)."""
    return next((part[k] for k in keys if part.get(k) is not None), None)


def _reasoning(message: dict[str, Any], from_parts: str | None, where: str, field: str) -> str | None:
    given = [(k, message[k]) for k in REASONING_FIELDS if message.get(k) is not None]
    if from_parts is not None:
        given.append(("content", from_parts))
    if len(given) > 1:
        raise RecordError(where, field, f"reasoning given twice: {' and '.join(k for k, _ in given)}")
    if not given:
        return None
    key, value = given[0]
    if not isinstance(value, str):
        raise RecordError(where, f"{field}.{key}", f"expected a string, got {type(value).__name__}")
    return value


def _think_end(text: str) -> int:
    """Where the answer starts in content holding its reasoning inline; 0 when it holds none."""
    close = text.find(THINK_END)
    if close < 0:
        return 0
    end = close + len(THINK_END)
    return end + len(text[end:]) - len(text[end:].lstrip())


def _tool_calls(value: Any, where: str, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(where, field, "expected a list of tool calls")
    return [_call(call, where, f"{field}[{j}]") for j, call in enumerate(value)]


def _call(call: Any, where: str, field: str) -> dict[str, Any]:
    """A tool call in Hugging Face's form `{type, function: {name, arguments}}` (OpenAI's id kept)."""
    function = call.get("function", call) if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise RecordError(where, field, "expected {function: {name, arguments}} or {name, arguments}")
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):  # OpenAI's JSON text; templates expect the object
        arguments = _json(arguments, where, f"{field}.function.arguments")
    out = {"type": "function", "function": {"name": function["name"], "arguments": arguments}}
    return {**out, "id": call["id"]} if isinstance(call.get("id"), str) else out


def _json(text: str, where: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(where, field, f"not valid JSON: {err.msg}") from None


def _weight(message: dict[str, Any], where: str, field: str) -> float | None:
    given = [k for k in WEIGHT_FIELDS if message.get(k) is not None]
    if len(given) > 1:
        raise RecordError(where, field, f"weight given twice: {' and '.join(given)}; give one")
    if not given:
        return None
    key = given[0]
    if key == "train":
        if not isinstance(message["train"], bool):
            raise RecordError(where, f"{field}.train", f"expected true or false, got {message['train']!r}")
        return float(message["train"])
    return unit_number(message[key], where, f"{field}.{key}")


def plain_message(role: str, content: str) -> dict[str, Any]:
    """A message made from a non-chat record's prompt or completion, in `read_messages`' form."""
    think_end = _think_end(content) if role == "assistant" else 0
    return {"role": role, "content": content, "reasoning": None, "think_end": think_end, "weight": None,
            "spans": (), "template": {}}  # fmt: skip


def generated_texts(message: dict[str, Any]) -> list[str]:
    """What an assistant message generates: its reasoning, content and tool calls (as JSON)."""
    calls = [json.dumps(call["function"]) for call in message["template"].get("tool_calls", [])]
    return [message["reasoning"] or "", message["content"], *calls]
