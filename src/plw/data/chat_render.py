"""Chat messages rendered with the tokenizer's chat template, cut into weighted segments.

Sides are as they always were: each assistant turn's generation header ("<|im_start|>assistant\\n")
is prompt, its content and end-of-turn marker completion; with `assistant_turns="last"` earlier
assistant turns are prompt. Parts: a message's content is its role ("assistant_earlier" for an
assistant turn before the last one), its reasoning "reasoning" ("reasoning_earlier"), and the
template's tokens around a message (role header, end-of-turn marker) "template". A message's
`weight` covers its content, reasoning, tool calls and the end-of-turn marker after it. Messages
after the last assistant turn are not trained on and not rendered.

How a message is cut: a probe renders it with a sentinel for its content (the role and the sentinel
alone), which shows the role header before the content and the end-of-turn marker after it. A
message with reasoning, tool calls or weight spans is rendered once more with sentinels for its
content and reasoning; what the template adds between header and end for them belongs to the
message: text next to the reasoning (`<think>` tags) is reasoning, the rest (tool calls) the
message's role part.

Reasoning from a field (`reasoning_content`, `thinking`, `reasoning`) goes to the template as
`reasoning_content` when the template renders it; a template that does not (plw's `chatml` among
them) gets it in the content instead, as "<think>REASONING</think>\\n" before the answer. Reasoning
already in the content (`...</think>`) is rendered as it is; the content up to `</think>` and the
whitespace after it is the reasoning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from plw.data.records import RecordError, Segment, Span

_SENTINEL = "PLWmessageCONTENTsentinel"  # letters only: no template's trimming or escaping changes them
_REASONING = "PLWmessageREASONINGsentinel"
_SENTINELS = re.compile(f"({_SENTINEL}|{_REASONING})")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>\n"


@dataclass(frozen=True)
class _Turn:
    """One message being cut: as the record has it, as the template sees it, and how it is weighed."""

    index: int
    message: dict[str, Any]
    fields: dict[str, Any]  # what the template sees
    reasoning_end: int  # fields["content"][:reasoning_end] is reasoning (inline)
    shift: int  # where the record's content starts in fields["content"]
    side: bool
    earlier: bool

    @property
    def part(self) -> str:
        return "assistant_earlier" if self.earlier else self.message["role"]

    @property
    def reasoning_part(self) -> str:
        return "reasoning_earlier" if self.earlier else "reasoning"

    @property
    def weight(self) -> float:
        return -1.0 if self.message.get("weight") is None else float(self.message["weight"])

    @property
    def exact(self) -> bool:
        """Whether cutting needs the template to show the message's text as it is."""
        return bool(self.reasoning_end or "reasoning_content" in self.fields or self.message.get("spans"))


class _Renderer:
    def __init__(self, tokenizer: Any, where: str, tools: list | None):
        self.tokenizer, self.where, self.tools = tokenizer, where, tools

    def __call__(self, messages: list[dict[str, Any]], i: int, *, generation: bool = False) -> str:
        if not messages:
            return ""
        extra = {"tools": self.tools} if self.tools else {}
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation, **extra
            )
        except Exception as err:  # jinja raises its own errors (roles must alternate, ...)
            raise RecordError(self.where, f"messages[{i}]", f"chat template cannot render: {err}") from err


def render_chat(
    messages: list[dict[str, Any]],
    tokenizer: Any,
    *,
    where: str,
    assistant_turns: str = "all",
    tools: list[dict[str, Any]] | None = None,
) -> list[Segment]:
    """Render messages (`plw.data.messages.read_messages`' dicts) into segments; see the module docstring.

    Raises:
        RecordError: the template is missing, fails, re-renders earlier turns differently (not
            prefix-stable), or changes the text of a message whose reasoning or spans must be found.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise RecordError(
            where, "messages", "template 'chat' needs a tokenizer with a chat template "
            "(set chat_template: chatml, a Jinja file or a template string)"
        )  # fmt: skip
    render = _Renderer(tokenizer, where, tools)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    shown: list[dict[str, Any]] = []  # the messages so far, as the template sees them
    segments: list[Segment] = []
    done = ""
    for i, message in enumerate(messages[: last + 1]):
        assistant = message["role"] == "assistant"
        if assistant:
            head = render(shown, i, generation=True)
            _check_prefix(done, head, where, i)
            segments.append(Segment(head[len(done) :], False, "template"))
            done = head
        side = assistant and (assistant_turns == "all" or i == last)
        turn = _turn(message, render, shown, i, side, earlier=assistant and i < last)
        full = render([*shown, turn.fields], i)
        _check_prefix(done, full, where, i)
        segments.extend(_message_segments(turn, full[len(done) :], render, shown, done))
        shown.append(turn.fields)
        done = full
    return [s for s in segments if s.text]


def _turn(
    message: dict[str, Any], render: _Renderer, shown: list, i: int, side: bool, earlier: bool
) -> _Turn:
    """The message as the template will see it: its reasoning as a field, or inline in the content."""
    content = message["content"]
    fields = {"role": message["role"], "content": content, **message.get("template", {})}
    reasoning = message.get("reasoning")
    if reasoning is None:
        return _Turn(i, message, fields, message.get("think_end", 0), 0, side, earlier)
    probe = render([*shown, {**fields, "content": _SENTINEL, "reasoning_content": _REASONING}], i)
    if _REASONING in probe:
        return _Turn(i, message, {**fields, "reasoning_content": reasoning}, 0, 0, side, earlier)
    prefix = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}"
    return _Turn(i, message, {**fields, "content": prefix + content}, len(prefix), len(prefix), side, earlier)


def _message_segments(turn: _Turn, text: str, render: _Renderer, shown: list, done: str) -> list[Segment]:
    """One message's rendered text: header (template), body (its parts), end (template)."""
    plain = {k: v for k, v in turn.fields.items() if k not in ("tool_calls", "reasoning_content")}
    probe = render([*shown, {**plain, "content": _SENTINEL}], turn.index)
    header, end = _frame(probe, done)
    if (
        header is None
        or not (text.startswith(header) and text.endswith(end))
        or len(text) < len(header) + len(end)
    ):
        return _unlocated(turn, text, render.where)
    body = text[len(header) : len(text) - len(end)]
    if turn.exact or turn.fields.get("tool_calls"):
        pieces = _body_segments(turn, body, render, shown, done + header, end)
    else:  # the content alone, as the template shows it (trimmed, escaped, ...)
        pieces = [Segment(body, turn.side, turn.part, turn.weight)]
    return [Segment(header, turn.side, "template"), *pieces, Segment(end, turn.side, "template", turn.weight)]


def _frame(probe: str, done: str) -> tuple[str | None, str]:
    """(header, end) around the sentinel in a probe rendering; (None, "") where it does not show them."""
    if not probe.startswith(done) or probe.count(_SENTINEL) != 1:
        return None, ""
    header, _, end = probe[len(done) :].partition(_SENTINEL)
    return header, end


def _unlocated(turn: _Turn, text: str, where: str) -> list[Segment]:
    """A message whose parts the template does not show: all of it is content, unless parts were needed."""
    if turn.exact:
        raise RecordError(
            where, f"messages[{turn.index}]", "the chat template changes this message's text (trims or "
            "escapes it), so its reasoning or weight_spans cannot be located"
        )  # fmt: skip
    return [Segment(text, turn.side, turn.part, turn.weight)]


def _body_segments(turn: _Turn, body: str, render: _Renderer, shown: list, before: str, end: str):
    """The body cut at the content and reasoning, as a probe with sentinels for them shows."""
    probe_fields = dict(turn.fields)
    if turn.fields["content"]:
        probe_fields["content"] = _SENTINEL
    if "reasoning_content" in turn.fields:
        probe_fields["reasoning_content"] = _REASONING
    probe = render([*shown, probe_fields], turn.index)
    pieces = _SENTINELS.split(probe[len(before) : len(probe) - len(end)])
    actual = {_SENTINEL: turn.fields["content"], _REASONING: turn.fields.get("reasoning_content", "")}
    framed = probe.startswith(before) and probe.endswith(end) and len(probe) >= len(before) + len(end)
    once = all(pieces[1::2].count(s) <= 1 for s in actual)
    if not (framed and once and "".join(actual.get(p, p) for p in pieces) == body):
        return _unlocated(turn, body, render.where)
    out = []
    for k, piece in enumerate(pieces):
        if piece == _SENTINEL:
            out.extend(_content_segments(turn))
        elif piece == _REASONING:
            out.append(Segment(actual[_REASONING], turn.side, turn.reasoning_part, turn.weight))
        else:  # text the template adds for the message's fields: tags around its reasoning, tool calls
            near = {pieces[j] for j in (k - 1, k + 1) if 0 <= j < len(pieces)}
            part = turn.reasoning_part if _REASONING in near else turn.part
            out.append(Segment(piece, turn.side, part, turn.weight))
    return out


def _content_segments(turn: _Turn) -> list[Segment]:
    """The content as rendered: its inline reasoning, then the answer, each with its share of spans."""
    content, cut = turn.fields["content"], turn.reasoning_end
    spans = [(b + turn.shift, e + turn.shift, w) for b, e, w in turn.message.get("spans", ())]
    return [
        Segment(content[:cut], turn.side, turn.reasoning_part, turn.weight, _clip(spans, 0, cut)),
        Segment(content[cut:], turn.side, turn.part, turn.weight, _clip(spans, cut, len(content))),
    ]


def _clip(spans: list[Span], low: int, high: int) -> tuple[Span, ...]:
    """Spans cut to [low, high), relative to low."""
    out = ((max(b, low) - low, min(e, high) - low, w) for b, e, w in spans)
    return tuple((b, e, w) for b, e, w in out if b < e)


def _check_prefix(done: str, text: str, where: str, i: int) -> None:
    if not text.startswith(done):
        raise RecordError(
            where, f"messages[{i}]", "chat template is not prefix-stable across turns (it renders earlier "
            "turns differently once later ones follow, as templates that drop earlier reasoning do)"
        )  # fmt: skip
