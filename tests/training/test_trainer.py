"""PLWTrainer identities on the real pretrained stories260K model."""

import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from plw.batch import PART_IDS
from plw.data.collator import PLWDataCollator, pack_examples
from plw.data.load import load_records
from plw.data.tokenize import tokenize_records
from plw.data.weights import TokenWeights
from plw.loss.config import LossConfig
from plw.loss.weighted import plw_loss
from plw.models import load_model
from plw.training.trainer import PLWTrainer


@pytest.fixture(scope="module")
def features(stories_tokenizer, alpaca_path):
    records = load_records(str(alpaca_path), limit=24)
    feats, _ = tokenize_records(
        records, stories_tokenizer, prompt_loss_weight=0.1, max_length=96, skip_bad_records=True
    )
    return feats[:8]


def args(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        learning_rate=0.05,
        optim="sgd",
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        lr_scheduler_type="constant",
        seed=0,
        disable_tqdm=True,
    )
    return TrainingArguments(**{**base, **kw})


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def train_plw(path, tok, feats, tmp_path, plw=0.1, **kw):
    torch.manual_seed(0)
    model = load_model(str(path))
    trainer_kw = {
        k: kw.pop(k)
        for k in ("loss", "normalizer", "minkowski_lambda", "label_smoothing", "loss_impl")
        if k in kw
    }
    trainer = PLWTrainer(
        model=model,
        args=args(tmp_path, **kw),
        train_dataset=Dataset.from_list(feats),
        processing_class=tok,
        prompt_loss_weight=plw,
        **trainer_kw,
    )
    trainer.train()
    return params(model), trainer.state.log_history


def test_batch8_equals_batch2_times_accumulation4(stories_path, stories_tokenizer, features, tmp_path):
    a, _ = train_plw(stories_path, stories_tokenizer, features, tmp_path, per_device_train_batch_size=8)
    b, _ = train_plw(
        stories_path,
        stories_tokenizer,
        features,
        tmp_path,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
    )
    assert max_diff(a, b) < 1e-5


@pytest.mark.parametrize("plw", [0.0, 1.0])
def test_matches_transformers_trainer_with_masked_labels(
    stories_path, stories_tokenizer, features, tmp_path, plw
):
    feats = features  # weight-free: the trainer's collator weighs them by plw
    ours, our_log = train_plw(
        stories_path,
        stories_tokenizer,
        feats,
        tmp_path,
        plw=plw,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
    )
    hf_rows = [
        {
            "input_ids": f["input_ids"],
            "labels": [
                t if (m or plw == 1.0) else -100
                for t, m in zip(f["input_ids"], f["completion_mask"], strict=True)
            ],
        }
        for f in feats
    ]
    torch.manual_seed(0)
    model = load_model(str(stories_path))

    def collate(rows):
        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [0] * (n - len(r["input_ids"])) for r in rows])
        labels = torch.tensor([r["labels"] + [-100] * (n - len(r["labels"])) for r in rows])
        mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (n - len(r["input_ids"])) for r in rows])
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    hf = Trainer(
        model=model,
        args=args(tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=2),
        train_dataset=Dataset.from_list(hf_rows),
        data_collator=collate,
    )
    hf.train()
    assert our_log[0]["loss"] == pytest.approx(hf.state.log_history[0]["loss"], rel=1e-5)
    assert max_diff(ours, params(model)) < 1e-5


def test_logs_prompt_and_completion_loss_in_train_and_eval(
    stories_path, stories_tokenizer, features, tmp_path
):
    torch.manual_seed(0)
    trainer = PLWTrainer(
        model=load_model(str(stories_path)),
        args=args(tmp_path, max_steps=2, per_device_train_batch_size=4, eval_strategy="steps", eval_steps=1),
        train_dataset=Dataset.from_list(features),
        eval_dataset=Dataset.from_list(features[:4]),
        processing_class=stories_tokenizer,
        prompt_loss_weight=0.0,
    )
    trainer.train()
    train_logs = [e for e in trainer.state.log_history if "loss" in e]
    eval_logs = [e for e in trainer.state.log_history if "eval_loss" in e]
    assert len(train_logs) == 2 and len(eval_logs) == 2
    for entry in train_logs:
        assert entry["prompt_loss"] > 0 and entry["completion_loss"] > 0
    # PLW 0: the optimised loss is the completion loss (same tokens, same mean)
    assert train_logs[0]["loss"] == pytest.approx(train_logs[0]["completion_loss"], rel=1e-4)
    assert eval_logs[0]["eval_loss"] == pytest.approx(eval_logs[0]["eval_completion_loss"], rel=1e-4)
    assert eval_logs[0]["eval_prompt_loss"] > 0


def test_packed_batch_has_same_loss_as_padded(stories_path, stories_tokenizer, features):
    # use_cache=False as in training: Transformers detects packed rows from position_ids only without a cache.
    model = load_model(str(stories_path)).eval()
    feats = features[:4]
    pad = stories_tokenizer.pad_token_id
    padded = PLWDataCollator(pad, prompt_loss_weight=0.1)(feats)
    packed_rows = pack_examples(feats, max_length=10_000)
    packed = PLWDataCollator(pad, prompt_loss_weight=0.1, padding_free=True)(packed_rows)
    with torch.no_grad():
        a = plw_loss(
            model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits,
            padded["labels"],
            padded["loss_weights"],
        )
        b = plw_loss(
            model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits,
            packed["labels"],
            packed["loss_weights"],
        )
    assert a.item() == pytest.approx(b.item(), rel=1e-4)


def test_minkowski_penalty_keeps_weights_closer(stories_path, stories_tokenizer, features, tmp_path):
    torch.manual_seed(0)
    start = params(load_model(str(stories_path)))
    free, _ = train_plw(
        stories_path, stories_tokenizer, features, tmp_path, max_steps=3, per_device_train_batch_size=4
    )
    held, _ = train_plw(
        stories_path,
        stories_tokenizer,
        features,
        tmp_path,
        max_steps=3,
        per_device_train_batch_size=4,
        minkowski_lambda=5.0,
    )

    def dist(p):
        return sum((p[k] - start[k]).pow(2).sum().item() for k in p) ** 0.5

    assert dist(held) < dist(free)


def test_chunked_loss_is_the_default_and_matches_full_logits(
    stories_path, stories_tokenizer, features, tmp_path
):
    full, full_log = train_plw(
        stories_path, stories_tokenizer, features, tmp_path, per_device_train_batch_size=4, loss_impl="full"
    )
    chunked, chunked_log = train_plw(
        stories_path,
        stories_tokenizer,
        features,
        tmp_path,
        per_device_train_batch_size=4,
        loss_impl="chunked",
    )
    assert chunked_log[0]["loss"] == pytest.approx(full_log[0]["loss"], rel=1e-5)
    assert chunked_log[0]["prompt_loss"] == pytest.approx(full_log[0]["prompt_loss"], rel=1e-5)
    assert max_diff(full, chunked) < 1e-5
    trainer = PLWTrainer(
        model=load_model(str(stories_path)),
        args=args(tmp_path),
        train_dataset=Dataset.from_list(features),
        processing_class=stories_tokenizer,
    )
    assert trainer.next_token_loss.config.impl == "auto" and trainer._path(trainer.model) == "chunked"


def with_parts(feats):
    """Chat-like parts: the first two tokens are template, the rest of the prompt user, then assistant."""
    out = []
    for f in feats:
        parts = [PART_IDS["assistant"] if m else PART_IDS["user"] for m in f["completion_mask"]]
        parts[:2] = [PART_IDS["template"]] * 2
        out.append({**f, "token_parts": parts})
    return out


def test_logs_a_loss_per_part_when_batches_carry_token_parts(
    stories_path, stories_tokenizer, features, tmp_path
):
    feats = with_parts(features)
    torch.manual_seed(0)
    trainer = PLWTrainer(
        model=load_model(str(stories_path)),
        args=args(tmp_path, per_device_train_batch_size=8, eval_strategy="steps", eval_steps=1),
        train_dataset=Dataset.from_list(feats),
        eval_dataset=Dataset.from_list(feats[:4]),
        processing_class=stories_tokenizer,
        prompt_loss_weight=0.1,
    )
    trainer.train()
    train = next(e for e in trainer.state.log_history if "loss" in e)
    evaluation = next(e for e in trainer.state.log_history if "eval_loss" in e)
    assert {"user_loss", "assistant_loss", "template_loss"} <= train.keys()
    assert "system_loss" not in train and "eval_user_loss" in evaluation
    # The parts split the same tokens as the completion mask: assistant is the completion, and the
    # token-count-weighted mean of user and template is the prompt loss.
    assert train["assistant_loss"] == pytest.approx(train["completion_loss"], rel=1e-6)
    batch = PLWDataCollator(0, prompt_loss_weight=0.1)(feats)
    parts = batch["token_parts"][:, 1:][batch["labels"][:, 1:].ne(-100)]
    n_user, n_template = (
        (parts == PART_IDS["user"]).sum().item(),
        (parts == PART_IDS["template"]).sum().item(),
    )
    mixed = (n_user * train["user_loss"] + n_template * train["template_loss"]) / (n_user + n_template)
    assert mixed == pytest.approx(train["prompt_loss"], rel=1e-5)


def test_completion_loss_weight_reaches_the_default_collator(stories_path, stories_tokenizer, tmp_path):
    trainer = PLWTrainer(
        model=load_model(str(stories_path)),
        args=args(tmp_path),
        processing_class=stories_tokenizer,
        prompt_loss_weight=0.2,
        completion_loss_weight=0.7,
    )
    batch = trainer.data_collator([{"input_ids": [5, 6, 7], "completion_mask": [0, 1, 1]}])
    assert torch.allclose(batch["loss_weights"], torch.tensor([[0.2, 0.7, 0.7]]))
    assert trainer.data_collator.weights == TokenWeights(prompt=0.2, completion=0.7)
    with pytest.raises(ValueError, match="completion_loss_weight"):
        PLWTrainer(model=trainer.model, args=args(tmp_path), completion_loss_weight=1.5)
    # Weights for a collator of one's own would be silently unused: refused.
    with pytest.raises(ValueError, match="not both"):
        PLWTrainer(model=trainer.model, args=args(tmp_path), data_collator=trainer.data_collator,
                   prompt_loss_weight=0.2)  # fmt: skip


def test_a_loss_config_and_its_keyword_shorthand_give_the_same_loss(
    stories_path, stories_tokenizer, features, tmp_path
):
    model = load_model(str(stories_path)).eval()  # eval: no Minkowski term, compare the loss alone
    config = LossConfig(normalizer="nonzero", impl="chunked", chunk_size=7, label_smoothing=0.1,
                        minkowski_lambda=0.5, minkowski_p=1.5)  # fmt: skip
    common = {"model": model, "args": args(tmp_path), "processing_class": stories_tokenizer,
              "prompt_loss_weight": 0.1}  # fmt: skip
    by_config = PLWTrainer(**common, loss=config)
    by_keywords = PLWTrainer(**common, normalizer="nonzero", loss_impl="chunked", chunk_size=7,
                             label_smoothing=0.1, minkowski_lambda=0.5, minkowski_p=1.5)  # fmt: skip
    assert by_keywords.next_token_loss.config == config
    assert (by_config.minkowski.lam, by_config.minkowski.p) == (0.5, 1.5)
    batch = by_config.data_collator(features[:4])
    with torch.no_grad():
        a = by_config.compute_loss(model, dict(batch))
        b = by_keywords.compute_loss(model, dict(batch))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        reference = plw_loss(logits, batch["labels"], batch["loss_weights"], normalizer="nonzero",
                             label_smoothing=0.1)  # fmt: skip
    assert torch.equal(a, b)
    torch.testing.assert_close(a, reference, rtol=1e-5, atol=1e-6)
    assert PLWTrainer(**common).next_token_loss.config == LossConfig()


def test_loss_settings_are_checked_with_a_message_naming_the_keyword(stories_path, tmp_path):
    model = load_model(str(stories_path))
    with pytest.raises(ValueError, match=r"give loss=LossConfig\(...\) or normalizer, not both"):
        PLWTrainer(model=model, args=args(tmp_path), loss=LossConfig(), normalizer="nonzero")
    with pytest.raises(ValueError, match=r"loss_impl: Input should be .*\(got 'triton'\)"):
        PLWTrainer(model=model, args=args(tmp_path), loss_impl="triton")
    with pytest.raises(ValueError, match="label_smoothing: Input should be less than 1"):
        PLWTrainer(model=model, args=args(tmp_path), label_smoothing=1.0)
