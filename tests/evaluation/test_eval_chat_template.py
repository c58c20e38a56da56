"""`plw eval --template chat --chat-template T`: a base model evaluated through a chat template."""

from __future__ import annotations

import json

import pytest

from plw.errors import PLWError
from plw.evaluation import evaluate
from plw.evaluation.options import OptionError

CHAT = {"template": "chat", "limit": 2, "max_new_tokens": 2, "progress": False}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLW_CACHE_DIR", str(tmp_path / "cache"))  # the synthetic suite goes here


def test_a_base_model_needs_a_chat_template_and_gets_one(stories_path, tmp_path):
    with pytest.raises(PLWError, match="has no chat template; .* or give one with --chat-template"):
        evaluate(str(stories_path), "synthetic", **CHAT)
    out = tmp_path / "out"
    scores = evaluate(str(stories_path), "synthetic", out, chat_template="chatml", **CHAT)
    assert 0.0 <= scores["synthetic"]["exact_match"] <= 1.0
    items = [json.loads(line) for line in (out / "synthetic.jsonl").read_text().splitlines()]
    assert len(items) == 2
    assert json.loads((out / "synthetic.metrics.json").read_text())["settings"]["chat_template"]


def test_a_bad_template_is_refused_before_any_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("plw.evaluation.run.resolve_lm", refuse)
    with pytest.raises(OptionError, match="^chat_template: does not render a two-turn conversation"):
        evaluate("some-model", "synthetic", chat_template="{{ 'x' }}", **CHAT)


def test_cli_flag_is_one_line_exit_2(tmp_path, monkeypatch, plw_cli):
    monkeypatch.setattr("plw.evaluation.run.resolve_lm", lambda *a, **k: pytest.fail("model loaded"))
    args = ["eval", "-m", "m", "-t", "synthetic", "-o", tmp_path / "o", "--chat-template", "nope"]
    code, _, err = plw_cli(*args)
    assert code == 2 and err.strip().splitlines() == [
        "error: --chat-template: 'nope' is not a built-in template (chatml), a template string or a file"
    ]
