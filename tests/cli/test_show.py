"""`plw show`: examples as the model sees them, weights exactly those of training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import REPO, assert_one_line_error, write_jsonl

from plw.config import validate
from plw.training.config import TrainConfig
from plw.training.run import build_dataset

# A prefix-stable chat template without generation markers, as most chat templates are.
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)
RECORDS = [
    {"instruction": "Tell a story about a cat.", "input": "", "output": "Once upon a time there was a cat."},
    {
        "messages": [
            {"role": "system", "content": "You tell short stories."},
            {"role": "user", "content": "A story about a dog, please."},
            {"role": "assistant", "content": "The dog ran to the park and played."},
        ]
    },
    {"instruction": "Name a colour.", "input": "The sky is", "output": "blue"},
    {"instruction": "Not shown: only the first three are.", "output": "no"},
]


@pytest.fixture
def chat_tokenizer(stories_tokenizer, tmp_path) -> Path:
    """stories260K's tokenizer with a chat template, saved where `--model` can load it."""
    stories_tokenizer.chat_template = CHAT_TEMPLATE
    try:
        stories_tokenizer.save_pretrained(tmp_path / "tok")
    finally:
        stories_tokenizer.chat_template = None  # the session fixture is shared
    return tmp_path / "tok"


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "mixed.jsonl", RECORDS)


def training_examples(tokenizer_dir: Path, data: Path, plw: float) -> list[dict]:
    """What `plw train` trains on for the same settings."""
    from plw.data.collator import PLWDataCollator
    from plw.models import load_tokenizer

    cfg = validate(TrainConfig, {"model": str(tokenizer_dir), "data": {"path": str(data)},
                                 "prompt_loss_weight": plw}, "test")  # fmt: skip
    tokenizer = load_tokenizer(str(tokenizer_dir))
    dataset, _ = build_dataset(cfg.data, tokenizer, cfg, cfg.token_weights(plw), use_cache=False)
    # Datasets are weight-free; the collator makes the weights the loss sees.
    collate = PLWDataCollator(0, weights=cfg.token_weights(plw))
    return [{**row, "loss_weights": collate([row])["loss_weights"][0].tolist()} for row in dataset.to_list()]


def test_json_weights_are_the_training_weights(plw_cli, chat_tokenizer, data):
    code, out, err = plw_cli("show", data, "--model", chat_tokenizer, "--plw", "0.1", "-n", "3", "--json")
    assert code == 0, err
    shown = json.loads(out)
    expected = training_examples(chat_tokenizer, data, 0.1)[:3]
    assert len(shown["examples"]) == 3
    for example, train in zip(shown["examples"], expected, strict=True):
        assert example["ids"] == train["input_ids"]
        assert example["weights"] == pytest.approx(train["loss_weights"])
        assert len(example["tokens"]) == len(example["parts"]) == len(example["ids"])
    chat = shown["examples"][1]
    assert "".join(chat["tokens"]).count("The dog ran to the park") == 1
    # System and user tokens weigh PLW, the assistant's answer 1.
    by_part: dict[str, list[float]] = {}
    for weight, part in zip(chat["weights"], chat["parts"], strict=True):
        by_part.setdefault(part, []).append(weight)
    assert all(w == pytest.approx(0.1) for p in ("system", "user") for w in by_part.get(p, []))
    answer = by_part.get("assistant") or by_part["completion"]
    assert answer and all(w == 1.0 for w in answer)
    summary = shown["summary"]
    assert summary["tokens"] == sum(len(e["input_ids"]) for e in expected)
    mass = sum(sum(e["loss_weights"][1:]) for e in expected)  # the first token is never predicted
    assert summary["weight_mass"] == pytest.approx(mass, abs=1e-4)
    assert sum(p["tokens"] for p in summary["parts"].values()) == summary["tokens"]


def test_config_and_overrides(plw_cli, chat_tokenizer, data, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(f"model: {chat_tokenizer}\ndata: {{path: {data}}}\nprompt_loss_weight: 0.5\n")
    code, out, err = plw_cli("show", "--config", config, "prompt_loss_weight=0.0", "-n", "1", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["prompt_loss_weight"] == 0.0 and len(shown["examples"]) == 1
    parts = shown["summary"]["parts"]
    assert parts["prompt"]["weight_mass"] == 0.0 and parts["completion"]["mean_weight"] == 1.0


def test_human_output_has_legend_and_summary(plw_cli, chat_tokenizer, data):
    code, out, err = plw_cli("show", data, "--model", chat_tokenizer, "--plw", "0.25", "-n", "2")
    assert code == 0, err
    assert "example 0" in out and "example 1" in out and "example 2" not in out
    assert "weight:" in out and "0.25" in out  # the legend
    assert "weight per part" in out and "completion" in out and "total" in out
    assert "Once upon a time there was a cat." in out.replace("\u21b5", "")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--plw", "2"), ("prompt_loss_weight",)),
        (("--plw", "0.1", "max_length=3"), ("max_length",)),
        (("--plw", "0.1", "bogus_key=1"), ("bogus_key", "unknown key")),
    ],
)
def test_bad_input_is_one_line(plw_cli, chat_tokenizer, data, args, needles):
    code, _, err = plw_cli("show", data, "--model", chat_tokenizer, *args)
    assert_one_line_error(code, err, *needles)


def test_missing_data_file_is_one_line(plw_cli, chat_tokenizer, tmp_path):
    code, _, err = plw_cli("show", tmp_path / "nope.jsonl", "--model", chat_tokenizer, "--plw", "0")
    assert_one_line_error(code, err, "nope.jsonl")


def test_chat_template_option_and_reasoning_colours(plw_cli, stories_path):
    data = REPO / "configs" / "data-examples" / "reasoning.jsonl"
    args = ("show", data, "--model", stories_path, "--plw", "0.1", "-n", "1", "reasoning_weight=0.5")
    code, out, err = plw_cli(*args, "--chat-template", "chatml")
    assert code == 0, err
    assert "reasoning: " in out and "reasoning" in out.split("weight per part")[1]  # its legend and row
    code, _, err = plw_cli(*args)
    assert_one_line_error(code, err, "needs a tokenizer with a chat template", "chat_template: chatml")
    code, _, err = plw_cli(*args, "--chat-template", "{{ 'x' }}")
    assert_one_line_error(code, err, "chat_template", "does not render a two-turn conversation")
