"""`plw train` and `plw show` on chat data as users have it, on a base model (stories260K) with ChatML.

The data are the shipped examples in configs/data-examples/, each in its own schema: OpenAI's
fine-tuning JSONL (message weights, tool calls), reasoning (fields and inline <think>), plw's weight
spans, LLaMA-Factory's content parts with `loss_weight`, Axolotl's `weight` / `train` / `train_detail`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from support import REPO

EXAMPLES = REPO / "configs" / "data-examples"


@pytest.fixture
def config(tmp_path, stories_path, monkeypatch):
    """config(records, **keys) -> the path of a training config for a few steps on stories260K."""
    monkeypatch.setenv("PLW_CACHE_DIR", str(tmp_path / "cache"))

    def write(records, **keys) -> Path:
        settings = {
            "model": str(stories_path),
            "chat_template": "chatml",
            "data": {"path": str(records)},
            "prompt_loss_weight": 0.1,
            "max_length": 256,
            "max_steps": 2,
            "batch_size": 2,
            "learning_rate": 1e-3,
            "warmup_ratio": 0.0,
            "lr_scheduler": "constant",
            "logging_steps": 1,
            "save_model": False,
            "output_dir": str(tmp_path / "out"),
            **keys,
        }
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    return write


def trained(plw_cli, path: Path, out: Path) -> tuple[dict, list[dict]]:
    code, _, err = plw_cli("train", path)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["final_loss"]) and metrics["final_loss"] > 0
    return metrics, json.loads((out / "log_history.json").read_text())


def shown(plw_cli, path: Path, n: int = 4) -> list[dict]:
    code, out, err = plw_cli("show", "--config", path, "-n", n, "--json")
    assert code == 0, err
    return json.loads(out)["examples"]


def runs(example: dict) -> list[tuple[str, float, str]]:
    """(part, weight, text) of each run of tokens sharing a part and weight, template tokens left out."""
    out: list[tuple[str, float, str]] = []
    for token, weight, part in zip(example["tokens"], example["weights"], example["parts"], strict=True):
        if out and out[-1][:2] == (part, weight):
            out[-1] = (part, weight, out[-1][2] + token)
        else:
            out.append((part, weight, token))
    return [r for r in out if r[0] != "template"]


def test_openai_chat_trains_on_a_base_model_with_chatml(plw_cli, config, tmp_path):
    path = config(EXAMPLES / "openai-chat.jsonl", save_model=True)
    metrics, history = trained(plw_cli, path, tmp_path / "out")
    assert {"final_assistant_loss", "final_tool_loss", "final_user_loss"} <= metrics.keys()
    saved = json.loads((tmp_path / "out" / "model" / "tokenizer_config.json").read_text())
    template = saved.get("chat_template") or (tmp_path / "out" / "model" / "chat_template.jinja").read_text()
    assert template.startswith("{#- ChatML")  # the trained model carries the template it learned
    examples = shown(plw_cli, path)
    first = runs(examples[0])
    assert ("assistant_earlier", 0.0, "Once upon a time a cat sat in the sun all day.") in first  # weight 0
    assert first[-1] == ("assistant", 1.0, "A cat sat in the sun.")
    tool_call = runs(examples[2])
    call = '<tool_call>\n{"name": "multiply", "arguments": {"a": 6, "b": 7}}\n</tool_call>'
    assert ("assistant_earlier", 1.0, call) in tool_call
    assert ("tool", 0.1, "42") in tool_call


def test_reasoning_trains_at_half_weight_and_logs_its_loss(plw_cli, config, tmp_path):
    path = config(EXAMPLES / "reasoning.jsonl", reasoning_weight=0.5)
    metrics, history = trained(plw_cli, path, tmp_path / "out")
    assert metrics["final_reasoning_loss"] > 0 and all("reasoning_loss" in e for e in history if "loss" in e)
    reasons = ["A cat is a small", "Dogs walk", "the sky looks blue", "A short"]
    for example, reasoning in zip(shown(plw_cli, path), reasons, strict=True):
        parts = runs(example)
        assert parts[-1][:2] == ("assistant", 1.0)
        assert [(p, w) for p, w, _ in parts[1:-1]] == [("reasoning", 0.5)] and reasoning in parts[1][2]
        assert parts[1][2].startswith("<think>")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llamafactory", [[("system", 0.0, "You tell tiny stories."), ("user", 0.0, "Tell me about a bird."),
                           ("assistant", 1.0, "A bird sang in a tall tree.")]]),
        ("axolotl", [[("system", 0.0, "You tell tiny stories."), ("user", 0.0, "Tell me about a fish."),
                      ("assistant", 1.0, "A fish swam in the blue sea.")],
                     [("user", 0.0, "Hello"), ("assistant_earlier", 1.0, "Hello"),
                      ("user", 0.0, "How are you?"), ("assistant", 1.0, "I am fine, thank you.")],
                     [("user", 0.1, "Finish the story: The cat"), ("assistant", 0.0, "The cat sat."),
                      ("assistant", 1.0, " It was happy.")]]),
        ("weight-spans", [[("user", 0.1, "Say the magic word."), ("assistant", 0.2, "The magic word is:"),
                           ("assistant", 1.0, " please.")],
                          [("user", 0.1, "Add 2 and 3."), ("assistant", 0.5, "2 + 3 = 5."),
                           ("assistant", 1.0, " The answer is 5.")]]),
    ],
)  # fmt: skip
def test_peer_formats_train_as_they_are(plw_cli, config, tmp_path, name, expected):
    path = config(EXAMPLES / f"{name}.jsonl")
    trained(plw_cli, path, tmp_path / "out")
    examples = shown(plw_cli, path)
    assert [runs(e) for e in examples[: len(expected)]] == expected


BAD_CONFIG = [
    ({"chat_template": "{{ 'x' }}"}, ("chat_template", "does not render a two-turn conversation")),
    ({"chat_template": "no-such.jinja"}, ("chat_template", "'no-such.jinja' is not a built-in template")),
    ({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}{{ messages | length }}"},
     ("chat_template", "is not prefix-stable")),
    ({"reasoning_weight": 1.5}, ("reasoning_weight", "must be in [0, 1]")),
    ({"chat_template": None}, ("openai-chat.jsonl:1", "needs a tokenizer with a chat template")),
]  # fmt: skip
HI = {"role": "assistant", "content": "Hi."}
BAD_RECORDS = [
    ({**HI, "weight_spans": [{"begin": 0, "end": 2, "weight": 1}, {"begin": 1, "end": 3, "weight": 0}]},
     "messages[1].weight_spans[1]': overlaps messages[1].weight_spans[0]"),
    ({**HI, "weight_spans": [{"begin": 0, "end": 9, "weight": 1}]},
     "messages[1].weight_spans[0].end': past the end of the content (3 characters)"),
    ({**HI, "train_detail": [{"begin_offset": 0, "end_offset": 3, "train": True}]},
     "messages[1].train_detail[0].end_offset': past the end"),
    ({**HI, "weight": 1, "loss_weight": 1}, "messages[1]': weight given twice"),
    ({"role": "assistant", "content": [{"type": "image_url", "value": "a.png"}]}, "messages[1].content[0]'"),
]  # fmt: skip


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr("plw.models.load_model", refuse)


@pytest.mark.parametrize(("keys", "needles"), BAD_CONFIG, ids=[str(k)[:40] for k, _ in BAD_CONFIG])
def test_bad_configs_are_one_line_exit_2_before_the_model_loads(
    plw_cli, config, tmp_path, no_model, keys, needles
):
    code, _, err = plw_cli("train", config(EXAMPLES / "openai-chat.jsonl", **keys))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(n in err for n in needles), err
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize(("message", "needle"), BAD_RECORDS, ids=[n[:30] for _, n in BAD_RECORDS])
def test_bad_records_are_one_line_exit_2_or_skipped_and_counted(plw_cli, config, tmp_path, message, needle):
    good = (EXAMPLES / "openai-chat.jsonl").read_text().splitlines()
    bad = json.dumps({"messages": [{"role": "user", "content": "Hello"}, message]})
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join([good[1], bad, *good[2:]]) + "\n")
    code, _, err = plw_cli("train", config(data))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"bad.jsonl:2: field '{needle}" in err, err
    # Skipping keeps everything else: the other records train, the bad one is counted.
    metrics, _ = trained(
        plw_cli, config(data, data={"path": str(data), "skip_bad_records": True}), tmp_path / "out"
    )
    assert metrics["tokenization"]["train"]["skipped"] == 1 and metrics["tokenization"]["train"]["kept"] == 3
