import pytest
import torch

from plw.batch import PART_IDS
from plw.data.collator import PART_PAD, PLWDataCollator, pack_examples
from plw.data.weights import NO_WEIGHT, TokenWeights, example_loss_weights


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


def test_a_spec_and_example_weights_at_once_are_refused_and_user_weights_kept():
    # A user's own weights (here a chat example's, which the mask alone cannot give) are taken as
    # they are when the collator has no spec; with a spec as well, one of them would be ignored.
    example = {
        **ex([5, 6, 7, 8], [0, 0, 1, 1]),
        "loss_weights": [0.0, 0.3, 1.0, 1.0],
        "token_parts": [T, U, A, A],
    }
    batch = PLWDataCollator(0)([example])
    assert batch["loss_weights"].tolist() == [[0.0, pytest.approx(0.3), 1.0, 1.0]]
    with pytest.raises(ValueError, match="give one"):
        PLWDataCollator(0, prompt_loss_weight=0.1)([example])
    with pytest.raises(ValueError, match="give one"):
        PLWDataCollator(0)([{"input_ids": [5, 6], "completion_mask": [0, 1]}])
    with pytest.raises(ValueError, match="not both"):
        PLWDataCollator(0, prompt_loss_weight=0.1, weights=TokenWeights(prompt=0.1))


def chat_example() -> dict:
    """Weight-free features of a chat example: template, user (a message weight on one token), assistant."""
    return {
        "input_ids": [5, 6, 7, 8, 9],
        "completion_mask": [0, 0, 0, 1, 1],
        "token_parts": [T, U, U, A, A],
        "message_weights": [NO_WEIGHT, NO_WEIGHT, 0.6, NO_WEIGHT, NO_WEIGHT],
        "sample_weight": 0.5,
    }


def test_the_collator_weighs_by_its_spec_through_example_weights():
    spec = TokenWeights(prompt=0.1, completion=0.9, roles={"user": 0.3}, template=0.2)
    batch = PLWDataCollator(0, weights=spec)([chat_example(), {**chat_example(), "sample_weight": 1.0}])
    expected = [[0.1, 0.15, 0.3, 0.45, 0.45], [0.2, 0.3, 0.6, 0.9, 0.9]]
    assert batch["loss_weights"].tolist() == [[pytest.approx(w) for w in row] for row in expected]
    assert torch.equal(batch["loss_weights"][0], example_loss_weights(chat_example(), spec).float())
    assert batch["labels"].tolist()[0] == chat_example()["input_ids"]  # prompt labels are kept


def test_packed_examples_keep_their_own_sample_weights_and_no_loss_crosses_them():
    spec = TokenWeights(prompt=0.1, template=0.2)
    other = {**chat_example(), "input_ids": [1, 2, 3, 4, 5], "sample_weight": 0.25}
    packed = pack_examples([chat_example(), other], max_length=16)
    assert len(packed) == 1 and packed[0]["sample_weight"] == [0.5] * 5 + [0.25] * 5
    batch = PLWDataCollator(0, padding_free=True, weights=spec)(packed)
    alone = [example_loss_weights(e, spec).float() for e in (chat_example(), other)]
    first = torch.tensor([True, False, False, False, False] * 2)
    assert torch.equal(batch["loss_weights"][0], torch.cat(alone).masked_fill(first, 0.0))
    assert batch["labels"][0][first].eq(-100).all()


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
