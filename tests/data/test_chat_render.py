"""Chat rendering cut into parts: reasoning (as a field or inline), tool calls, tool results."""

from __future__ import annotations

import copy

import pytest

from plw.batch import PARTS
from plw.data.chat_render import render_chat
from plw.data.chat_templates import read_chat_template
from plw.data.messages import read_messages
from plw.data.sources import Record
from plw.data.tokenize import encode_records
from plw.data.weights import TokenWeights, example_loss_weights
from plw.errors import PLWError

# Renders `reasoning_content` itself, as Qwen3's and DeepSeek-R1's templates do (but in every turn).
NATIVE = (
    "{% for m in messages %}<s>{{ m.role }}: {% if m.reasoning_content %}<think>{{ m.reasoning_content }}"
    "</think> {% endif %}{{ m.content }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)
# Drops the reasoning of earlier turns, as Qwen3's template does: not prefix-stable.
LAST_ONLY = NATIVE.replace("{% if m.reasoning_content %}", "{% if m.reasoning_content and loop.last %}")
TRIMS = "{% for m in messages %}<s>{{ m.role }}: {{ m.content | trim }}</s>\n{% endfor %}" + (
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)
USER = {"role": "user", "content": "Is it?"}


def templated(tokenizer, template: str):
    tok = copy.copy(tokenizer)
    tok.chat_template = read_chat_template(template)
    return tok


def cut(tokenizer, *messages, **kwargs) -> list[tuple[str, str]]:
    """(part, text) of each non-template segment."""
    read = read_messages(Record({"messages": list(messages)}, "d:1"))
    return [
        (s.part, s.text) for s in render_chat(read, tokenizer, where="d:1", **kwargs) if s.part != "template"
    ]


def test_reasoning_goes_into_the_content_of_a_template_without_reasoning(bpe_tokenizer):
    tok = templated(bpe_tokenizer, "chatml")
    answer = {"role": "assistant", "content": "Yes.", "reasoning_content": "Because."}
    assert cut(tok, USER, answer) == [("user", "Is it?"), ("reasoning", "<think>Because.</think>\n"),
                                      ("assistant", "Yes.")]  # fmt: skip


def test_a_template_that_renders_reasoning_gets_it_as_a_field(bpe_tokenizer):
    tok = templated(bpe_tokenizer, NATIVE)
    answer = {"role": "assistant", "content": "Yes.", "thinking": "Because."}
    parts = cut(tok, USER, answer)
    assert parts[1:] == [("reasoning", "<think>"), ("reasoning", "Because."), ("reasoning", "</think> "),
                         ("assistant", "Yes.")]  # fmt: skip


def test_inline_reasoning_is_rendered_as_it_is(bpe_tokenizer):
    tok = templated(bpe_tokenizer, "chatml")
    answer = {"role": "assistant", "content": "<think>\nplan\n</think>\n\nYes."}
    assert cut(tok, USER, answer)[1:] == [("reasoning", "<think>\nplan\n</think>\n\n"), ("assistant", "Yes.")]


def test_earlier_turns_reasoning_is_its_own_part(bpe_tokenizer):
    tok = templated(bpe_tokenizer, "chatml")
    first = {"role": "assistant", "content": "Yes.", "reasoning_content": "One."}
    parts = cut(tok, USER, first, USER, {"role": "assistant", "content": "No.", "reasoning_content": "Two."})
    assert [p for p, _ in parts] == ["user", "reasoning_earlier", "assistant_earlier", "user", "reasoning",
                                     "assistant"]  # fmt: skip


def test_reasoning_weight_scales_what_its_answer_weighs(bpe_tokenizer):
    tok = templated(bpe_tokenizer, "chatml")
    first = {"role": "assistant", "content": "Yes.", "reasoning_content": "One.", "weight": 0.8}
    messages = [USER, first, USER, {"role": "assistant", "content": "No.", "reasoning_content": "Two."}]
    (example,), _ = encode_records([Record({"messages": messages}, "d:1")], tok, max_length=None)
    spec = TokenWeights(prompt=0.1, completion=0.9, reasoning=0.5)
    weights = example_loss_weights(example, spec).tolist()
    by_part: dict[str, set[float]] = {}
    for part, weight in zip(example["token_parts"], weights, strict=True):
        by_part.setdefault(PARTS[part], set()).add(round(weight, 6))
    assert by_part["reasoning"] == {0.45} and by_part["assistant"] == {0.9}
    assert by_part["reasoning_earlier"] == {0.4} and by_part["assistant_earlier"] == {0.8}  # message weight
    plain = example_loss_weights(example, TokenWeights(prompt=0.1, completion=0.9)).tolist()
    answers = {PARTS[p]: w for p, w in zip(example["token_parts"], plain, strict=True)}
    assert answers["reasoning"] == 0.9  # unset: the answer's weight


def test_tool_calls_belong_to_the_assistant_and_tool_results_to_the_tool_role(bpe_tokenizer):
    tok = templated(bpe_tokenizer, "chatml")
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    calling = {"role": "assistant", "content": None, "tool_calls": [call]}
    result = {"role": "tool", "content": "2", "tool_call_id": "c1"}
    parts = cut(tok, USER, calling, result, {"role": "assistant", "content": "Two."})
    assert parts[1] == (
        "assistant_earlier",
        '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>',
    )
    assert parts[2:] == [("tool", "2"), ("assistant", "Two.")]
    records = [
        Record({"messages": [USER, {"role": "assistant", "content": "Sum:", "tool_calls": [call]}]}, "d:1")
    ]
    (example,), _ = encode_records(records, tok, max_length=None)
    text = tok.decode([t for t, p in zip(example["input_ids"], example["token_parts"], strict=True)
                       if PARTS[p] == "assistant"])  # fmt: skip
    assert text == 'Sum:\n<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'


def test_record_tools_reach_the_template(bpe_tokenizer):
    tools = "{% if tools %}TOOLS:{{ tools | length }}\n{% endif %}"
    tok = templated(bpe_tokenizer, tools + read_chat_template("chatml"))
    record = Record(
        {"messages": [USER, {"role": "assistant", "content": "Ok."}], "tools": [{"name": "f"}]}, "d:1"
    )
    (example,), _ = encode_records([record], tok, max_length=None)
    assert tok.decode(example["input_ids"]).startswith("TOOLS:1")


@pytest.mark.parametrize(
    ("template", "answer", "reason"),
    [
        (
            LAST_ONLY,
            {"role": "assistant", "content": "Yes.", "reasoning_content": "One."},
            "not prefix-stable",
        ),
        (TRIMS, {"role": "assistant", "content": "<think>x</think> Yes. "}, "changes this message's text"),
    ],
)
def test_templates_that_lose_the_reasoning_are_one_line_errors(bpe_tokenizer, template, answer, reason):
    tok = templated(bpe_tokenizer, template)
    messages = [USER, answer, USER, {"role": "assistant", "content": "No."}]
    with pytest.raises(PLWError) as err:
        encode_records([Record({"messages": messages}, "d:1")], tok)
    assert str(err.value).startswith("d:1: field 'messages[") and reason in str(err.value)
    assert len(str(err.value).splitlines()) == 1
