"""Chat templates set on a tokenizer: built-ins, files and strings, checked before anything loads."""

from __future__ import annotations

import re

import pytest

from plw.data.chat_templates import (
    apply_chat_template,
    builtin_templates,
    chat_template_text,
    read_chat_template,
)
from plw.errors import PLWError

TWO_TURNS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
PLAIN = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def test_chatml_is_built_in_and_renders_turns_tool_calls_and_tool_results(stories_path):
    from plw.models import load_tokenizer

    assert "chatml" in builtin_templates()
    tok = load_tokenizer(str(stories_path), chat_template="chatml")
    call = {"type": "function", "function": {"name": "add", "arguments": {"a": 1}}}
    chat = [
        *TWO_TURNS,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "2"},
    ]
    assert tok.apply_chat_template(chat, tokenize=False) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>\n'
        "<|im_start|>tool\n2<|im_end|>\n"
    )
    head = tok.apply_chat_template(TWO_TURNS[:1], tokenize=False, add_generation_prompt=True)
    assert head == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_a_value_is_a_built_in_a_template_string_or_a_file(tmp_path):
    assert read_chat_template(PLAIN) == PLAIN
    path = tmp_path / "mine.jinja"
    path.write_text(PLAIN)
    assert chat_template_text(str(path)) == PLAIN
    assert read_chat_template("chatml").startswith("{#-")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nochance", "'nochance' is not a built-in template (chatml), a template string or a file"),
        ("{{ messages[0]['content'] }", "cannot render a conversation"),
        ("{{ 'same for everyone' }}", "does not render a two-turn conversation"),
        ("{{ messages | length }}{% for m in messages %}{{ m.content }}{% endfor %}",
         "is not prefix-stable: rendering 2 messages changes the first 1"),
        ("{% for m in messages %}{{ m.content }}|{% endfor %}{% if add_generation_prompt %}A:{% endif %}",
         "is not prefix-stable: its generation prompt"),
        ("{{ raise_exception('no system prompt') }}", "cannot render a conversation: no system prompt"),
    ],
)  # fmt: skip
def test_bad_templates_are_refused_in_words(value, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        chat_template_text(value)


def test_apply_names_the_key_and_leaves_the_tokenizer_as_it_was(stories_tokenizer):
    before = stories_tokenizer.chat_template
    with pytest.raises(PLWError, match="^--chat-template: 'x' is not a built-in template"):
        apply_chat_template(stories_tokenizer, "x", key="--chat-template")
    assert stories_tokenizer.chat_template == before
    assert apply_chat_template(stories_tokenizer, None) is stories_tokenizer


def test_a_config_with_a_bad_template_is_one_line_naming_the_key(tmp_path):
    from plw.config import validate
    from plw.training.config import TrainConfig

    raw = {"model": "m", "data": {"path": "hub/id"}, "prompt_loss_weight": 0.1, "output_dir": str(tmp_path)}
    assert validate(TrainConfig, {**raw, "chat_template": "chatml"}, "c.yaml").chat_template == "chatml"
    with pytest.raises(PLWError) as err:
        validate(TrainConfig, {**raw, "chat_template": "{{ 'x' }}"}, "c.yaml")
    assert "chat_template" in str(err.value) and "two-turn" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
