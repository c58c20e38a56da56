import torch

from plw.data.collator import PLWDataCollator, pack_examples


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


def test_pack_examples_fits_and_preserves_weights():
    examples = [ex(list(range(n)), [0] * (n - 1) + [1], plw=0.2) for n in (5, 3, 4, 2, 6)]
    packed = pack_examples(examples, max_length=8)
    assert all(len(row["input_ids"]) <= 8 for row in packed)
    assert sorted(n for row in packed for n in row["seq_lengths"]) == [2, 3, 4, 5, 6]
    assert sum(sum(row["loss_weights"]) for row in packed) == sum(sum(e["loss_weights"]) for e in examples)
    batch = PLWDataCollator(pad_token_id=0, padding_free=True)(packed[:1])
    assert batch["position_ids"][0].eq(0).sum().item() == len(packed[0]["seq_lengths"])
