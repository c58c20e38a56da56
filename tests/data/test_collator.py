import pytest
import torch

from plw.batch import PART_IDS
from plw.data.collator import PART_PAD, PLWDataCollator, pack_examples


def ex(ids, mask, plw=0.5):
    return {"input_ids": ids, "completion_mask": mask, "loss_weights": [1.0 if m else plw for m in mask]}


def test_padding_has_zero_weight_and_ignored_labels():
    batch = PLWDataCollator(pad_token_id=0)([ex([5, 6, 7], [0, 1, 1]), ex([8, 9], [0, 1])])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, 9, -100]]
    assert batch["loss_weights"].tolist() == [[0.5, 1.0, 1.0], [0.5, 1.0, 0.0]]
    assert batch["loss_weights"].dtype == torch.float32


def test_weights_built_from_plw_when_absent():
    collator = PLWDataCollator(pad_token_id=0, prompt_loss_weight=0.1, pad_to_multiple_of=4)
    batch = collator([{"input_ids": [1, 2, 3], "completion_mask": [0, 0, 1]}])
    assert batch["input_ids"].shape == (1, 4)
    assert torch.allclose(batch["loss_weights"], torch.tensor([[0.1, 0.1, 1.0, 0.0]]))


def test_padding_free_resets_positions_and_cuts_boundary_weight():
    batch = PLWDataCollator(pad_token_id=0, padding_free=True)([ex([5, 6, 7], [0, 1, 1]), ex([8, 9], [0, 1])])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert "attention_mask" not in batch
    # token 8 would be predicted from token 7 of the previous example: no loss there
    assert batch["loss_weights"].tolist() == [[0.0, 1.0, 1.0, 0.0, 1.0]]
    assert batch["labels"].tolist()[0][3] == -100


T, U, A = PART_IDS["template"], PART_IDS["user"], PART_IDS["assistant"]


def test_pack_examples_fits_and_preserves_weights():
    examples = [ex(list(range(n)), [0] * (n - 1) + [1], plw=0.2) for n in (5, 3, 4, 2, 6)]
    packed = pack_examples(examples, max_length=8)
    assert all(len(row["input_ids"]) <= 8 for row in packed)
    assert sorted(n for row in packed for n in row["seq_lengths"]) == [2, 3, 4, 5, 6]
    assert sum(sum(row["loss_weights"]) for row in packed) == sum(sum(e["loss_weights"]) for e in examples)
    batch = PLWDataCollator(pad_token_id=0, padding_free=True)(packed[:1])
    assert batch["position_ids"][0].eq(0).sum().item() == len(packed[0]["seq_lengths"])


def test_completion_loss_weight_builds_weights():
    collator = PLWDataCollator(pad_token_id=0, prompt_loss_weight=0.1, completion_loss_weight=0.6)
    batch = collator([{"input_ids": [1, 2, 3], "completion_mask": [0, 1, 1]}])
    assert torch.allclose(batch["loss_weights"], torch.tensor([[0.1, 0.6, 0.6]]))


def test_weights_out_of_range_are_refused():
    with pytest.raises(ValueError, match="completion_loss_weight"):
        PLWDataCollator(pad_token_id=0, prompt_loss_weight=0.1, completion_loss_weight=1.5)
    with pytest.raises(ValueError, match="prompt_loss_weight"):
        PLWDataCollator(pad_token_id=0, prompt_loss_weight=-0.1)


def test_example_weights_must_match_both_configured_weights():
    with pytest.raises(ValueError, match="prompt_loss_weight"):
        PLWDataCollator(0, prompt_loss_weight=0.0)([ex([5, 6, 7], [0, 1, 1], plw=0.5)])
    with pytest.raises(ValueError, match="completion_loss_weight"):
        PLWDataCollator(0, prompt_loss_weight=0.5, completion_loss_weight=0.8)([ex([5, 6, 7], [0, 1, 1])])
    PLWDataCollator(0, prompt_loss_weight=0.5)([ex([5, 6, 7], [0, 1, 1])])  # agrees: accepted


def test_weights_of_chat_records_are_not_checked_but_others_are():
    plain = {**ex([5, 6, 7], [0, 1, 1]), "token_parts": [PART_IDS["prompt"]] + [PART_IDS["completion"]] * 2}
    with pytest.raises(ValueError, match="prompt_loss_weight"):
        PLWDataCollator(0, prompt_loss_weight=0.1)([plain])
    # A role spec can weight user and template tokens apart; the mask alone cannot say so.
    example = {
        **ex([5, 6, 7, 8], [0, 0, 1, 1]),
        "loss_weights": [0.0, 0.3, 1.0, 1.0],
        "token_parts": [T, U, A, A],
    }
    batch = PLWDataCollator(0, prompt_loss_weight=0.1)([example])
    assert batch["loss_weights"].tolist() == [[0.0, pytest.approx(0.3), 1.0, 1.0]]


def test_token_parts_are_padded_with_no_part():
    parts = {"token_parts": [T, U, A]}
    batch = PLWDataCollator(pad_token_id=0)([{**ex([5, 6, 7], [0, 1, 1]), **parts}, ex([8, 9], [0, 1])])
    # the second example has no parts (not a chat record): its prompt / completion mask stands in
    assert batch["token_parts"].tolist() == [[T, U, A], [0, 1, PART_PAD]]
    assert "token_parts" not in PLWDataCollator(pad_token_id=0)([ex([8, 9], [0, 1])])


def test_token_parts_in_padding_free_and_packed_layouts():
    examples = [
        {**ex([5, 6, 7], [0, 1, 1]), "token_parts": [T, U, A]},
        {**ex([8, 9], [0, 1]), "token_parts": [U, A]},
    ]
    batch = PLWDataCollator(pad_token_id=0, padding_free=True)(examples)
    assert batch["token_parts"].tolist() == [[T, U, A, U, A]]
    packed = pack_examples(examples, max_length=8)
    assert packed[0]["token_parts"] == [T, U, A, U, A]
    batch = PLWDataCollator(pad_token_id=0, padding_free=True)(packed)
    assert batch["token_parts"].tolist() == [[T, U, A, U, A]]
    assert batch["token_parts"].shape == batch["input_ids"].shape
