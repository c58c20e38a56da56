"""`LossConfig`: validated once, immutable, and the one source of the loss object's settings."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from plw.loss.config import LOSS_IMPLS, NORMALIZERS, LossConfig
from plw.loss.next_token import NextTokenLoss


def test_defaults_are_the_trainers_defaults():
    assert LossConfig().model_dump() == {
        "normalizer": "weight_sum",
        "impl": "auto",
        "chunk_size": 1024,
        "label_smoothing": 0.0,
        "minkowski_lambda": 0.0,
        "minkowski_p": 2.0,
    }


def test_allowed_values_are_the_constants():
    properties = LossConfig.model_json_schema()["properties"]
    assert tuple(properties["normalizer"]["enum"]) == NORMALIZERS
    assert tuple(properties["impl"]["enum"]) == LOSS_IMPLS
    assert all(field.description for field in LossConfig.model_fields.values())


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"normalizer": "mean"}, "normalizer"),
        ({"impl": "triton"}, "impl"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"label_smoothing": float("nan")}, "label_smoothing"),
        ({"minkowski_lambda": -1.0}, "minkowski_lambda"),
        ({"minkowski_lambda": float("inf")}, "minkowski_lambda"),
        ({"minkowski_p": 0.5}, "minkowski_p"),
        ({"loss_impl": "full"}, "loss_impl"),  # a misspelt key is an error, not a silent default
    ],
)
def test_refuses_bad_values(values, field):
    with pytest.raises(ValidationError) as err:
        LossConfig(**values)
    assert err.value.errors()[0]["loc"] == (field,)


def test_is_frozen():
    config = LossConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.impl = "full"


def test_the_loss_object_takes_only_a_config():
    assert NextTokenLoss().config == LossConfig()
    config = LossConfig(impl="chunked", chunk_size=7, label_smoothing=0.1)
    assert NextTokenLoss(config).config is config
    with pytest.raises(TypeError, match="takes a LossConfig"):
        NextTokenLoss("chunked")


def test_normaliser_follows_the_config():
    labels = torch.tensor([[5, 6, 7, 8, -100]])
    weights = torch.tensor([[0.0, 0.5, 0.0, 1.0, 0.0]])
    completion = torch.tensor([[0, 0, 0, 1, 0]])
    shares = {
        kind: NextTokenLoss(LossConfig(normalizer=kind)).normaliser(labels, weights, completion).item()
        for kind in NORMALIZERS
    }
    assert shares == {"weight_sum": 1.5, "nonzero": 2.0, "completion": 1.0}
    with pytest.raises(ValueError, match="completion_mask"):
        NextTokenLoss(LossConfig(normalizer="completion")).normaliser(labels, weights)
