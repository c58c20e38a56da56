"""Chat templates a run sets on its tokenizer: a built-in, a Jinja file, or a template string.

A `chat_template` value (`plw train`'s and `PLWSFTConfig`'s `chat_template`, `plw show`, `plw stats
--chat-template`, `plw eval --chat-template`) is read as:

- a built-in's name: the `.jinja` files of `src/plw/data/templates/` (`chatml`);
- a template string: any value containing `{{` or `{%`;
- otherwise the path of a Jinja file (any suffix, UTF-8).

It is checked before any model loads (`chat_template_text`): it must render a two-turn conversation
(both messages' text appears in what it renders) and be prefix-stable: the rendering of a
conversation's first k messages is a prefix of the rendering of its first k + 1, and the generation
prompt after a user turn is a prefix of the conversation with the assistant's answer, as plw's chat
tokenisation (`plw.data.chat_render`) needs. The check renders with Transformers' own Jinja
environment and placeholder special tokens, so it needs no tokenizer.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from plw.errors import PLWError

_BUILTINS = resources.files("plw.data") / "templates"
# Probe texts: letters only, so no template's trimming or escaping changes them.
_PROBE = [
    {"role": "user", "content": "PLWprobeQuestionOne"},
    {"role": "assistant", "content": "PLWprobeAnswerOne"},
    {"role": "user", "content": "PLWprobeQuestionTwo"},
    {"role": "assistant", "content": "PLWprobeAnswerTwo"},
]
_SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def builtin_templates() -> tuple[str, ...]:
    """The names of plw's built-in chat templates."""
    return tuple(
        sorted(p.name.removesuffix(".jinja") for p in _BUILTINS.iterdir() if p.name.endswith(".jinja"))
    )


def read_chat_template(value: str) -> str:
    """The template text a `chat_template` value names (see the module docstring).

    Raises:
        ValueError: not a built-in, a template string, or a readable file.
    """
    if value in builtin_templates():
        return (_BUILTINS / f"{value}.jinja").read_text(encoding="utf-8")
    if "{{" in value or "{%" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        names = ", ".join(builtin_templates())
        raise ValueError(f"{value!r} is not a built-in template ({names}), a template string or a file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {value}: {err}") from None


def check_chat_template(text: str) -> None:
    """Refuse a template plw cannot tokenise with: see the module docstring.

    Raises:
        ValueError: it fails to render, drops a message's text, or is not prefix-stable.
    """
    rendered = [_render(text, _PROBE[:k]) for k in range(1, len(_PROBE) + 1)]
    missing = [m["content"] for m in _PROBE[:2] if m["content"] not in rendered[1]]
    if missing:
        raise ValueError(
            "does not render a two-turn conversation: a message's text is missing from its output"
        )
    for k in range(1, len(_PROBE)):
        if not rendered[k].startswith(rendered[k - 1]):
            raise ValueError(f"is not prefix-stable: rendering {k + 1} messages changes the first {k}")
        if _PROBE[k]["role"] == "assistant" and not rendered[k].startswith(_render(text, _PROBE[:k], True)):
            raise ValueError("is not prefix-stable: its generation prompt is not how it renders the answer")


def _render(text: str, messages: list[dict[str, str]], generation: bool = False) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    try:
        rendered, _ = render_jinja_template(
            [messages], chat_template=text, add_generation_prompt=generation, **_SPECIAL
        )
    except Exception as err:  # jinja's syntax, undefined and raise_exception errors, among others
        raise ValueError(f"cannot render a conversation: {_first_line(err)}") from None
    return rendered[0]


def chat_template_text(value: str) -> str:
    """The checked template text of a `chat_template` value.

    Raises:
        ValueError: see `read_chat_template` and `check_chat_template`.
    """
    text = read_chat_template(value)
    check_chat_template(text)
    return text


def apply_chat_template(tokenizer: Any, value: str | None, *, key: str = "chat_template") -> Any:
    """Set the template `value` names on `tokenizer` (None leaves its own); return the tokenizer.

    Raises:
        PLWError: a bad value (naming `key`), or a tokenizer that cannot hold a chat template.
    """
    if value is None:
        return tokenizer
    if not hasattr(tokenizer, "apply_chat_template"):
        raise PLWError(f"{key}: needs a Hugging Face tokenizer, not {type(tokenizer).__name__}")
    try:
        tokenizer.chat_template = chat_template_text(value)
    except ValueError as err:
        raise PLWError(f"{key}: {err}") from None
    return tokenizer


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
