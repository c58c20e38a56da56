"""Chat messages as users have them: OpenAI, LLaMA-Factory and Axolotl fields, reasoning, tool calls."""

from __future__ import annotations

import pytest

from plw.data.messages import read_messages
from plw.data.sources import Record
from plw.data.tokenize import encode_records
from plw.errors import PLWError

USER = {"role": "user", "content": "Hi"}


def read(*messages, **extra):
    return read_messages(Record({"messages": list(messages), **extra}, "d.jsonl:3"))


def test_peers_weight_fields_are_the_message_weight():
    openai, factory, axolotl, unweighted = read(
        {**USER, "weight": 1},
        {"role": "assistant", "content": "a", "loss_weight": 0.25},
        {**USER, "train": False},
        {"role": "assistant", "content": "b"},
    )
    assert (openai["weight"], factory["weight"], axolotl["weight"], unweighted["weight"]) == (
        1.0,
        0.25,
        0.0,
        None,
    )


def test_content_parts_of_openai_and_llamafactory():
    call = '{"name": "add", "arguments": {"a": 1}}'
    (user, assistant) = read(
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "reasoning", "value": "think"},
                {"type": "text", "value": "Sum:"},
                {"type": "tool_call", "value": call},
            ],
        },
    )
    assert user["content"] == "Hi there"
    assert assistant["content"] == "Sum:" and assistant["reasoning"] == "think"
    assert assistant["template"]["tool_calls"] == [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 1}}}
    ]


@pytest.mark.parametrize("field", ["reasoning_content", "thinking", "reasoning"])
def test_reasoning_fields(field):
    (_, assistant) = read(USER, {"role": "assistant", "content": "Yes.", field: "Because."})
    assert assistant["reasoning"] == "Because." and assistant["think_end"] == 0


def test_inline_reasoning_ends_after_the_closing_tag_and_its_whitespace():
    content = "<think>\nplan\n</think>\n\nYes."
    (_, assistant) = read(USER, {"role": "assistant", "content": content})
    assert assistant["reasoning"] is None and content[assistant["think_end"] :] == "Yes."


def test_openai_tool_calls_get_their_arguments_parsed():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": [1, 2]}'}}
    (_, assistant, tool, _) = read(
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "3", "tool_call_id": "c1"},
        {"role": "assistant", "content": "Three."},
    )
    assert assistant["content"] == "" and assistant["template"]["tool_calls"] == [
        {"type": "function", "function": {"name": "f", "arguments": {"x": [1, 2]}}, "id": "c1"}
    ]
    assert tool["template"] == {"tool_call_id": "c1"}


def test_an_assistant_turn_of_tool_calls_alone_is_a_turn():
    call = {"function": {"name": "f", "arguments": {}}}
    assert len(read(USER, {"role": "assistant", "content": "", "tool_calls": [call]})) == 2


BAD = [
    ({**USER, "weight": 0.5, "loss_weight": 0.5}, "messages[0]", "weight given twice: weight and loss"),
    ({**USER, "train": "yes"}, "messages[0].train", "expected true or false, got 'yes'"),
    ({**USER, "loss_weight": 2}, "messages[0].loss_weight", r"must be in [0, 1], got 2"),
    ({**USER, "thinking": "hm"}, "messages[0]", "reasoning on a user message"),
    ({"role": "user", "content": [{"type": "image_url", "value": "x.png"}]}, "messages[0].content[0]",
     "expected a text, reasoning or tool_call part"),
    ({"role": "user", "content": 3}, "messages[0].content", "expected a string or a list of parts"),
    ({"role": "user", "content": None}, "messages[0].content", "expected a string"),
    ({"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}, "messages[0].tool_calls",
     "only assistant messages call tools"),
    ({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]},
     "messages[0].tool_calls[0].function.arguments", "not valid JSON"),
    ({"role": "assistant", "content": "", "tool_calls": [{"type": "function"}]}, "messages[0].tool_calls[0]",
     "expected {function: {name, arguments}}"),
    ({"role": "assistant", "content": "<think>a</think>b", "reasoning_content": "c"}, "messages[0].content",
     "reasoning given twice"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "field", "reason"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_messages_are_one_line_naming_file_record_and_field(bpe_tokenizer, message, field, reason):
    record = Record({"messages": [message, {"role": "assistant", "content": "ok"}]}, "d.jsonl:3")
    with pytest.raises(PLWError) as err:
        encode_records([record], bpe_tokenizer)
    text = str(err.value)
    assert text.startswith(f"d.jsonl:3: field '{field}': {reason}") and len(text.splitlines()) == 1, text
    kept, report = encode_records([record], bpe_tokenizer, skip_bad_records=True)
    assert kept == [] and report.skipped == ["d.jsonl:3"]


def test_record_tools_must_be_a_list_of_objects(bpe_tokenizer):
    record = Record({"messages": [USER, {"role": "assistant", "content": "ok"}], "tools": "add"}, "d.jsonl:4")
    with pytest.raises(
        PLWError, match=r"^d\.jsonl:4: field 'tools': expected a list of function definitions"
    ):
        encode_records([record], bpe_tokenizer)
