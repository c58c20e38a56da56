"""PLWSFTTrainer is a drop-in for trl.SFTTrainer: PLW 0 and 1 reproduce TRL's two loss modes."""

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from plw import PLWSFTConfig, PLWSFTTrainer
from plw.loss.config import LossConfig
from plw.models import load_model

ANIMALS = ["cat", "dog", "girl", "boy", "bird", "fish", "tree", "car"]


@pytest.fixture(scope="module")
def dataset():
    rows = [
        {"prompt": f"Once upon a time there was a {w} who", "completion": f" liked to play with a {w}."}
        for w in ANIMALS
    ]
    return Dataset.from_list(rows)


def step(trainer_cls, config_cls, path, tok, dataset, tmp_path, **kw):
    torch.manual_seed(0)
    model = load_model(str(path))
    config = config_cls(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        max_steps=1,
        learning_rate=0.05,
        optim="sgd",
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        lr_scheduler_type="constant",
        seed=0,
        bf16=False,
        disable_tqdm=True,
        **kw,
    )
    trainer = trainer_cls(model=model, args=config, train_dataset=dataset, processing_class=tok)
    trainer.train()
    return trainer.state.log_history[0], {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(("plw", "completion_only"), [(0.0, True), (1.0, False)])
def test_matches_trl(stories_path, stories_tokenizer, dataset, tmp_path, plw, completion_only):
    trl_log, trl_params = step(
        SFTTrainer,
        SFTConfig,
        stories_path,
        stories_tokenizer,
        dataset,
        tmp_path,
        completion_only_loss=completion_only,
    )
    log, params = step(
        PLWSFTTrainer,
        PLWSFTConfig,
        stories_path,
        stories_tokenizer,
        dataset,
        tmp_path,
        prompt_loss_weight=plw,
    )
    assert log["loss"] == pytest.approx(trl_log["loss"], rel=1e-5)
    assert max((params[k] - trl_params[k]).abs().max().item() for k in params) < 1e-5
    assert log["prompt_loss"] > 0 and log["completion_loss"] > 0


def test_fractional_plw_lies_between(stories_path, stories_tokenizer, dataset, tmp_path):
    logs = {
        p: step(
            PLWSFTTrainer,
            PLWSFTConfig,
            stories_path,
            stories_tokenizer,
            dataset,
            tmp_path,
            prompt_loss_weight=p,
        )[0]
        for p in (0.0, 0.1, 1.0)
    }
    prompt, completion = logs[0.1]["prompt_loss"], logs[0.1]["completion_loss"]
    lo, hi = sorted((prompt, completion))
    assert lo < logs[0.1]["loss"] < hi
    assert logs[0.0]["loss"] == pytest.approx(completion, rel=1e-5)


def test_needs_plw_config(stories_path, stories_tokenizer, dataset, tmp_path):
    with pytest.raises(TypeError, match="PLWSFTConfig"):
        PLWSFTTrainer(
            model=load_model(str(stories_path)),
            args=SFTConfig(output_dir=str(tmp_path), bf16=False),
            train_dataset=dataset,
            processing_class=stories_tokenizer,
        )


def test_config_gives_the_loss_config(tmp_path):
    config = PLWSFTConfig(output_dir=str(tmp_path), bf16=False, plw_normalizer="completion",
                          label_smoothing_factor=0.1, minkowski_lambda=0.01, minkowski_p=1.5,
                          plw_loss_impl="full", plw_chunk_size=64)  # fmt: skip
    assert config.loss_config() == LossConfig(normalizer="completion", label_smoothing=0.1,
                                              minkowski_lambda=0.01, minkowski_p=1.5, impl="full",
                                              chunk_size=64)  # fmt: skip
    assert PLWSFTConfig(output_dir=str(tmp_path), bf16=False).loss_config() == LossConfig()
    with pytest.raises(ValueError, match="plw_loss_impl: Input should be"):
        PLWSFTConfig(output_dir=str(tmp_path), bf16=False, plw_loss_impl="triton")
    with pytest.raises(ValueError, match="plw_chunk_size: Input should be greater than or equal to 1"):
        PLWSFTConfig(output_dir=str(tmp_path), bf16=False, plw_chunk_size=0)
