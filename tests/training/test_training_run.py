"""`plw.training.run.train` on stories260K: records read once, token weights reach the trainer."""

from __future__ import annotations

import pytest
import torch
import yaml
from support import write_jsonl

from plw.training.config import TrainConfig
from plw.training.run import final_metrics, train

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture
def base(tmp_path, stories_path, monkeypatch):
    monkeypatch.setenv("PLW_CACHE_DIR", str(tmp_path / "cache"))
    return {
        "model": str(stories_path),
        "max_length": 96,
        "max_steps": 1,
        "batch_size": 4,
        "logging_steps": 1,
        "save_model": False,
        "output_dir": str(tmp_path / "out"),
    }


def test_plw_auto_reads_and_tokenises_once_and_other_plw_levels_reuse_it(base, tmp_path, monkeypatch):
    import plw.data.cache
    import plw.data.load

    rows = [
        {"prompt": f"Once a {w} sat by the river. Who sat?", "completion": f" A {w}."} for w in "abcdefgh"
    ]
    data = {"path": str(write_jsonl(tmp_path / "d.jsonl", rows))}
    reads = []
    real = plw.data.load.load_records

    def counted(*args, **kwargs):
        reads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(plw.data.load, "load_records", counted)
    encodes = []
    real_encode = plw.data.cache.encode_records
    monkeypatch.setattr(
        plw.data.cache, "encode_records", lambda *a, **k: encodes.append(1) or real_encode(*a, **k)
    )
    metrics = train(TrainConfig(**base, data=data, prompt_loss_weight="auto"), progress=False)
    assert len(reads) == 1 and metrics["prompt_loss_weight_source"] != "given"
    assert len(encodes) == 1  # tokenised once (Rg's raw field counts aside)
    # Datasets hold no weights: another PLW level reuses the cached tokenisation, reading nothing.
    other = {**base, "output_dir": str(tmp_path / "other")}
    train(TrainConfig(**other, data=data, prompt_loss_weight=0.5), progress=False)
    assert len(reads) == 1 and len(encodes) == 1


def test_chat_token_weights_reach_training(base, tmp_path, stories_tokenizer):
    tokenizer_dir = tmp_path / "tokenizer"
    stories_tokenizer.save_pretrained(tokenizer_dir)
    (tokenizer_dir / "chat_template.jinja").write_text(CHATML)
    chat = [
        {"role": "system", "content": "Tell tiny stories."},
        {"role": "user", "content": "A story about a cat?"},
        {"role": "assistant", "content": "Once a cat sat.", "weight": 0.5},
        {"role": "user", "content": "And a dog?"},
        {"role": "assistant", "content": "A dog ran home."},
    ]
    rows = [{"messages": chat, "quality": q} for q in (1.0, 0.5, 0.25, 1.0)]
    config = TrainConfig(
        **base,
        tokenizer=str(tokenizer_dir),
        data={"path": str(write_jsonl(tmp_path / "chat.jsonl", rows)), "sample_weight_field": "quality"},
        prompt_loss_weight=0.1,
        completion_loss_weight=0.9,
        role_weights={"system": 0.0, "user": 0.3},
        template_weight=0.05,
    )
    metrics = train(config, progress=False)
    assert {"final_user_loss", "final_assistant_loss", "final_template_loss"} <= metrics.keys()
    saved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert saved["role_weights"]["user"] == 0.3 and saved["completion_loss_weight"] == 0.9


def test_final_metrics_keep_every_part_loss():
    history = [
        {"loss": 2.0, "prompt_loss": 3.0, "user_loss": 3.5, "step": 1},
        {"loss": 1.5, "user_loss": 3.0, "assistant_loss": 1.2, "grad_norm": 1.0},
    ]
    metrics = final_metrics(history, {"train_runtime": 1.0}, {"eval_user_loss": 2.5})
    assert metrics["final_loss"] == 1.5 and metrics["final_prompt_loss"] == 3.0
    assert metrics["final_user_loss"] == 3.0 and metrics["final_assistant_loss"] == 1.2
    assert "final_grad_norm" not in metrics and metrics["eval_user_loss"] == 2.5


def test_a_weight_that_reaches_no_token_is_logged(base, tmp_path, stories_tokenizer, caplog):
    from plw.training.run import build_dataset

    rows = [{"prompt": f"Once a {w} sat. Who sat?", "completion": f" A {w}."} for w in "abcd"]
    config = TrainConfig(
        **base,
        data={"path": str(write_jsonl(tmp_path / "d.jsonl", rows))},
        prompt_loss_weight=0.1,
        role_weights={"user": 0.3},  # prompt/completion records have no chat roles
    )
    with caplog.at_level("WARNING", logger="plw.train"):
        build_dataset(config.data, stories_tokenizer, config, config.token_weights(0.1), use_cache=False)
    warned = [r.getMessage() for r in caplog.records]
    assert any("role_weights.user applies to no token" in m for m in warned), warned
    assert not any("prompt_loss_weight" in m for m in warned)


def test_sample_weights_on_prompt_completion_records_train(base, tmp_path):
    rows = [{"prompt": f"Once a {w} sat. Who sat?", "completion": f" A {w}.", "q": 0.5} for w in "abcdefgh"]
    data = {"path": str(write_jsonl(tmp_path / "d.jsonl", rows)), "sample_weight_field": "q"}
    metrics = train(TrainConfig(**base, data=data, prompt_loss_weight=0.1), progress=False)
    assert metrics["final_loss"] > 0


def test_sample_weights_reach_the_loss_through_the_collator(base, tmp_path, stories_tokenizer):
    """The dataset is weight-free; Trainer keeps the columns the collator weighs them from."""
    from plw.data.weights import example_loss_weights
    from plw.models import load_model
    from plw.training.run import build_dataset, build_trainer

    rows = [{"prompt": f"Once a {w} sat. Who sat?", "completion": f" A {w}.", "q": q}
            for w, q in zip("abcd", (1.0, 0.5, 0.25, 1.0), strict=True)]  # fmt: skip
    data = {"path": str(write_jsonl(tmp_path / "d.jsonl", rows)), "sample_weight_field": "q"}
    config = TrainConfig(**base, data=data, prompt_loss_weight=0.1)
    weights = config.token_weights(0.1)
    dataset, _ = build_dataset(config.data, stories_tokenizer, config, weights, use_cache=False)
    assert "loss_weights" not in dataset.column_names and "sample_weight" in dataset.column_names
    trainer = build_trainer(config, load_model(base["model"]), stories_tokenizer, weights, dataset, None, [])
    batch = next(iter(trainer.get_train_dataloader()))  # shuffled: rows are matched by their ids
    expected = {tuple(row["input_ids"]): example_loss_weights(row, weights).float() for row in dataset}
    for ids, got, real in zip(
        batch["input_ids"], batch["loss_weights"], batch["attention_mask"], strict=True
    ):
        n = int(real.sum())
        assert torch.equal(got[:n], expected[tuple(ids[:n].tolist())]) and not got[n:].any()
    assert sorted({round(float(w.max()), 6) for w in batch["loss_weights"]}) == [0.25, 0.5, 1.0]
