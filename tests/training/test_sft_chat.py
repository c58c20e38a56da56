"""PLWSFTTrainer on chat data, as a TRL user runs it: `messages` datasets weighted by role."""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset

from plw import PLWSFTConfig, PLWSFTTrainer
from plw.batch import PART_IDS
from plw.models import load_model, load_tokenizer

# Prefix-stable and without {% generation %} markers, like SmolLM2's and most chat templates.
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)
ANIMALS = ["cat", "dog", "girl", "boy", "bird", "fish", "tree", "car"]


@pytest.fixture
def chat_tokenizer(stories_path):
    tok = load_tokenizer(str(stories_path))
    tok.chat_template = CHAT_TEMPLATE
    return tok


def conversation(word: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You tell stories."},
        {"role": "user", "content": f"Tell me about a {word}."},
        {"role": "assistant", "content": f"Once upon a time there was a {word}."},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": f"The {word} liked to play."},
    ]


@pytest.fixture
def messages():
    return Dataset.from_list([{"messages": conversation(w)} for w in ANIMALS])


def trainer_for(path, tok, dataset, tmp_path, *, model=None, **kw) -> PLWSFTTrainer:
    torch.manual_seed(0)
    config = PLWSFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=1,
        learning_rate=0.05,
        optim="sgd",
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        bf16=False,
        disable_tqdm=True,
        **kw,
    )
    model = model if model is not None else load_model(str(path))
    return PLWSFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tok)


def collated(trainer: PLWSFTTrainer, n: int = 4) -> dict[str, torch.Tensor]:
    return trainer.data_collator([trainer.train_dataset[i] for i in range(n)])


def test_messages_are_weighted_by_role_and_train(stories_path, chat_tokenizer, messages, tmp_path):
    trainer = trainer_for(stories_path, chat_tokenizer, messages, tmp_path, prompt_loss_weight=0.1)
    row = trainer.train_dataset[0]
    word = chat_tokenizer.decode(row["input_ids"]).split("about a ")[1].split(".")[0]
    text = chat_tokenizer.apply_chat_template(conversation(word), tokenize=False)
    assert row["input_ids"] == chat_tokenizer(text, add_special_tokens=False)["input_ids"]
    batch = collated(trainer)
    weights, mask, parts = batch["loss_weights"], batch["completion_mask"].bool(), batch["token_parts"]
    real = parts >= 0  # not padding
    assert torch.allclose(weights[real & ~mask], torch.tensor(0.1))  # every prompt-side token: PLW
    assert torch.all(weights[real & mask] == 1.0)
    for role in ("system", "user"):
        assert (parts == PART_IDS[role]).any() and not mask[parts == PART_IDS[role]].any()
    assert mask[parts == PART_IDS["assistant"]].all()
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["prompt_loss"] > 0 and log["completion_loss"] > 0
    assert log["prompt_loss"] != log["completion_loss"]


def test_role_and_completion_weights(stories_path, chat_tokenizer, messages, tmp_path):
    trainer = trainer_for(
        stories_path, chat_tokenizer, messages, tmp_path,
        prompt_loss_weight=0.1, completion_loss_weight=0.8, role_weights={"system": 0.0, "user": 0.3},
    )  # fmt: skip
    batch = collated(trainer)
    weights, parts = batch["loss_weights"], batch["token_parts"]
    assert torch.all(weights[parts == PART_IDS["system"]] == 0.0)
    assert torch.allclose(weights[parts == PART_IDS["user"]], torch.tensor(0.3))
    assert torch.allclose(weights[parts == PART_IDS["assistant"]], torch.tensor(0.8))
    # The template's own tokens weigh by side: role headers PLW, the assistant's end-of-turn marker 0.8.
    template, mask = parts == PART_IDS["template"], batch["completion_mask"].bool()
    assert torch.allclose(weights[template & ~mask], torch.tensor(0.1))
    assert torch.allclose(weights[template & mask], torch.tensor(0.8))


def test_assistant_only_loss_needs_no_generation_markers(stories_path, chat_tokenizer, messages, tmp_path):
    trainer = trainer_for(
        stories_path, chat_tokenizer, messages, tmp_path, prompt_loss_weight=0.0, assistant_only_loss=True
    )
    batch = collated(trainer)
    assert torch.all(batch["loss_weights"][batch["completion_mask"] == 0] == 0.0)
    assert torch.all(batch["loss_weights"][batch["token_parts"] == PART_IDS["assistant"]] == 1.0)
    with pytest.raises(ValueError, match="assistant_only_loss=True means prompt_loss_weight=0"):
        trainer_for(stories_path, chat_tokenizer, messages, tmp_path, prompt_loss_weight=0.5,
                    assistant_only_loss=True)  # fmt: skip


def test_weight_that_reaches_no_token_is_reported(stories_path, chat_tokenizer, messages, tmp_path, caplog):
    text = Dataset.from_list([{"text": f"Once upon a time there was a {w}."} for w in ANIMALS])
    with caplog.at_level(logging.WARNING, logger="plw.sft"):
        trainer_for(stories_path, chat_tokenizer, text, tmp_path, prompt_loss_weight=0.1)
        trainer_for(stories_path, chat_tokenizer, messages, tmp_path, role_weights={"tool": 0.5})
    warned = [r.getMessage() for r in caplog.records if r.name == "plw.sft"]
    assert len(warned) == 2, warned
    assert "prompt_loss_weight applies to no token of the train dataset" in warned[0]
    assert "role_weights.tool applies to no token" in warned[1]


def test_packing_and_lora_on_messages(stories_path, chat_tokenizer, messages, tmp_path):
    from peft import LoraConfig, get_peft_model

    packed = trainer_for(
        stories_path, chat_tokenizer, messages, tmp_path, prompt_loss_weight=0.1, packing=True, max_length=256
    )
    row = packed.train_dataset[0]
    assert len(row["seq_lengths"]) > 1 and len(row["token_parts"]) == len(row["input_ids"]) <= 256
    batch = collated(packed, 1)
    first = batch["position_ids"][0] == 0
    prompt = ~batch["completion_mask"][0].bool() & ~first
    assert torch.allclose(batch["loss_weights"][0][prompt], torch.tensor(0.1))
    packed.train()
    assert packed.state.log_history[0]["completion_loss"] > 0
    lora = get_peft_model(load_model(str(stories_path)), LoraConfig(r=4, target_modules="all-linear"))
    adapted = trainer_for(
        stories_path, chat_tokenizer, messages, tmp_path, model=lora, prompt_loss_weight=0.1
    )
    adapted.train()
    log = adapted.state.log_history[0]
    assert log["prompt_loss"] > 0 and log["completion_loss"] > 0


def test_packed_messages_keep_their_message_weights(stories_path, chat_tokenizer, tmp_path):
    """The prepared dataset is weight-free; TRL packs its per-token columns, message weights among them."""
    rows = [{"messages": [{**m, "weight": 0.5} if i == 2 else m for i, m in enumerate(conversation(w))]}
            for w in ANIMALS]  # fmt: skip
    packed = trainer_for(stories_path, chat_tokenizer, Dataset.from_list(rows), tmp_path,
                         prompt_loss_weight=0.1, packing=True, max_length=256)  # fmt: skip
    assert "loss_weights" not in packed.train_dataset.column_names
    batch = collated(packed, 1)
    parts, weights = batch["token_parts"][0], batch["loss_weights"][0]
    inside = batch["position_ids"][0] != 0  # each packed example's first token weighs 0
    earlier = (parts == PART_IDS["assistant_earlier"]) & inside
    assert earlier.any() and torch.allclose(weights[earlier], torch.tensor(0.5))
    assert torch.all(weights[(parts == PART_IDS["assistant"]) & inside] == 1.0)


def test_conversations_column_is_read_as_trl_reads_it(stories_path, chat_tokenizer, tmp_path):
    rows = [
        {"conversations": [{"from": m["role"], "value": m["content"]} for m in conversation(w)]}
        for w in ANIMALS
    ]
    trainer = trainer_for(
        stories_path, chat_tokenizer, Dataset.from_list(rows), tmp_path, prompt_loss_weight=0.1
    )
    batch = collated(trainer)
    assert (batch["token_parts"] == PART_IDS["user"]).any()
    assert torch.allclose(batch["loss_weights"][batch["token_parts"] == PART_IDS["user"]], torch.tensor(0.1))


def test_conversational_prompt_completion_still_works(stories_path, chat_tokenizer, tmp_path):
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Tell me about a {w}."}],
            "completion": [{"role": "assistant", "content": f"There was a {w}."}],
        }
        for w in ANIMALS
    ]
    trainer = trainer_for(
        stories_path, chat_tokenizer, Dataset.from_list(rows), tmp_path,
        prompt_loss_weight=0.2, completion_loss_weight=0.9,
    )  # fmt: skip
    batch = collated(trainer)
    real, mask = batch["token_parts"] >= 0, batch["completion_mask"].bool()
    assert torch.allclose(batch["loss_weights"][real & ~mask], torch.tensor(0.2))
    assert torch.allclose(batch["loss_weights"][real & mask], torch.tensor(0.9))
    trainer.train()
    assert trainer.state.log_history[0]["prompt_loss"] > 0


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"completion_loss_weight": 1.5}, "completion_loss_weight must be in"),
        ({"prompt_loss_weight": -0.1}, "prompt_loss_weight must be in"),
        ({"role_weights": {"bot": 0.5}}, "unknown role 'bot'"),
        ({"template_weight": 2.0}, "template_weight must be in"),
        ({"assistant_turns": "first"}, "assistant_turns"),
    ],
)
def test_config_refuses_bad_weights(tmp_path, kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        PLWSFTConfig(output_dir=str(tmp_path), bf16=False, **kw)


def test_config_from_the_command_line(tmp_path):
    """TRL users parse configs with HfArgumentParser; role weights come as JSON, as TRL's dicts do."""
    from transformers import HfArgumentParser

    args = ["--output_dir", str(tmp_path), "--bf16", "false", "--prompt_loss_weight", "0.1",
            "--completion_loss_weight", "0.9", "--role_weights", '{"user": 0.2}',
            "--template_weight", "0"]  # fmt: skip
    (config,) = HfArgumentParser(PLWSFTConfig).parse_args_into_dataclasses(args)
    weights = config.token_weights()
    assert (weights.prompt, weights.completion, dict(weights.roles), weights.template) == (
        0.1,
        0.9,
        {"user": 0.2},
        0,
    )


def test_a_base_tokenizer_gets_a_chat_template_and_reasoning_its_weight(stories_path, tmp_path):
    tok = load_tokenizer(str(stories_path))  # stories260K has no chat template of its own

    def answer(word: str) -> dict[str, str]:
        return {"role": "assistant", "reasoning_content": f"A {word} is small.", "content": f"A tiny {word}."}

    rows = [{"messages": [{"role": "user", "content": f"Tell me about a {w}."}, answer(w)]} for w in ANIMALS]
    trainer = trainer_for(stories_path, tok, Dataset.from_list(rows), tmp_path, prompt_loss_weight=0.1,
                          chat_template="chatml", reasoning_weight=0.5)  # fmt: skip
    assert tok.chat_template.startswith(
        "{#- ChatML"
    )  # set before the data was prepared, saved with the model
    batch = collated(trainer)
    parts, weights = batch["token_parts"], batch["loss_weights"]
    assert torch.allclose(weights[parts == PART_IDS["reasoning"]], torch.tensor(0.5))
    assert torch.all(weights[parts == PART_IDS["assistant"]] == 1.0)
    trainer.train()
    assert trainer.state.log_history[0]["reasoning_loss"] > 0


def test_trl_chat_template_path_may_name_what_plw_reads(tmp_path):
    config = PLWSFTConfig(output_dir=str(tmp_path), bf16=False, chat_template_path="chatml")
    assert (config.chat_template, config.chat_template_path) == ("chatml", None)
    jinja = tmp_path / "t.jinja"
    jinja.write_text(CHAT_TEMPLATE)
    assert PLWSFTConfig(
        output_dir=str(tmp_path), bf16=False, chat_template_path=str(jinja)
    ).chat_template == str(jinja)
    hub = PLWSFTConfig(output_dir=str(tmp_path), bf16=False, chat_template_path="org/tokenizer")
    assert (hub.chat_template, hub.chat_template_path) == (None, "org/tokenizer")  # TRL clones it


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"chat_template": "{{ 'x' }}"}, "chat_template: does not render a two-turn conversation"),
        ({"chat_template_path": "{{ 'x' }}"}, "chat_template: does not render a two-turn conversation"),
        (
            {"chat_template": "chatml", "chat_template_path": "chatml"},
            "give chat_template or chat_template_path",
        ),
        ({"reasoning_weight": 1.5}, "reasoning_weight must be in"),
    ],
)
def test_config_refuses_bad_templates(tmp_path, kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        PLWSFTConfig(output_dir=str(tmp_path), bf16=False, **kw)
