"""TrainConfig's token weight fields (defaults, ranges, the spec they build) and its loss section."""

from __future__ import annotations

import logging

import pytest

from plw.config import apply_overrides, validate
from plw.data.weights import TokenWeights
from plw.errors import PLWError
from plw.loss.config import LossConfig
from plw.training.config import TrainConfig


@pytest.fixture
def base(tmp_path) -> dict:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n')
    return {"model": "m", "data": {"path": str(path)}, "prompt_loss_weight": 0.1}


def load(base: dict, *overrides: str) -> TrainConfig:
    return validate(TrainConfig, apply_overrides(dict(base), list(overrides)), "c.yaml")


def test_defaults_mean_plw_alone(base):
    config = load(base)
    assert config.completion_loss_weight == 1.0 and config.data.sample_weight_field is None
    spec = config.token_weights(0.1)
    assert spec == TokenWeights(prompt=0.1) and spec.is_plain()


def test_overrides_build_the_spec(base):
    config = load(
        base,
        "completion_loss_weight=0.8",
        "role_weights.user=0.5",
        "role_weights.system=0",
        "template_weight=0.05",
        "earlier_assistant_weight=0.3",
        "data.sample_weight_field=score",
    )
    assert config.token_weights(0.2) == TokenWeights(
        prompt=0.2, completion=0.8, roles={"system": 0.0, "user": 0.5}, template=0.05, earlier_assistant=0.3
    )
    assert config.data.sample_weight_field == "score"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("prompt_loss_weight=1.5", "prompt_loss_weight: Value error, must be in [0, 1], got 1.5"),
        ("completion_loss_weight=-0.1", "completion_loss_weight: Value error, must be in [0, 1], got -0.1"),
        ("template_weight=2", "template_weight: Value error, must be in [0, 1], got 2"),
        ("earlier_assistant_weight=1.01", "earlier_assistant_weight: Value error, must be in [0, 1]"),
        ("role_weights.user=3", "role_weights.user: Value error, must be in [0, 1], got 3"),
        ("role_weights.bot=0.5", "role_weights.bot: unknown key"),
        ("completion_loss_weight=heavy", "completion_loss_weight: Input should be a valid number"),
        ("completion_loss_weight=.nan", "completion_loss_weight: Input should be a finite number"),
    ],
)
def test_bad_weights_are_one_line_naming_the_key(base, override, message):
    with pytest.raises(PLWError) as err:
        load(base, override)
    assert str(err.value).startswith(f"c.yaml: {message}")


def test_no_token_may_count_for_nothing_in_every_example(base):
    with pytest.raises(PLWError, match="both 0: no token would count"):
        load(base, "prompt_loss_weight=0", "completion_loss_weight=0")
    assert load(base, "prompt_loss_weight=0", "completion_loss_weight=0", "role_weights.user=0.5")


OLD_LOSS_KEYS = {
    "normalizer": ("nonzero", "loss.normalizer"),
    "loss_impl": ("full", "loss.impl"),
    "chunk_size": (64, "loss.chunk_size"),
    "regularization.label_smoothing": (0.1, "loss.label_smoothing"),
    "regularization.minkowski_lambda": (0.01, "loss.minkowski_lambda"),
    "regularization.minkowski_p": (1.5, "loss.minkowski_p"),
}


def test_old_loss_keys_still_work_with_a_warning_naming_the_new_key(base, caplog):
    with caplog.at_level(logging.WARNING, logger="plw"):
        old = load(
            base, *(f"{k}={v}" for k, (v, _) in OLD_LOSS_KEYS.items()), "regularization.weight_decay=0.1"
        )
    warnings = [r.getMessage() for r in caplog.records if r.name == "plw"]
    assert warnings == [
        f"plw: {k} is now {new} (the old key still works)" for k, (_, new) in OLD_LOSS_KEYS.items()
    ]
    new = load(base, *(f"{new}={v}" for v, new in OLD_LOSS_KEYS.values()), "regularization.weight_decay=0.1")
    assert old == new
    assert old.loss == LossConfig(normalizer="nonzero", impl="full", chunk_size=64, label_smoothing=0.1,
                                  minkowski_lambda=0.01, minkowski_p=1.5)  # fmt: skip
    assert old.regularization.weight_decay == 0.1 and TrainConfig.model_validate(base).loss == LossConfig()
    # The same value at the old and the new key is no conflict.
    assert load(base, "chunk_size=8", "loss.chunk_size=8") == load(base, "loss.chunk_size=8")


def test_an_old_and_a_new_loss_key_differing_are_one_line_naming_both(base):
    with pytest.raises(PLWError) as err:
        load(base, "regularization.minkowski_p=3", "loss.minkowski_p=2")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("c.yaml: regularization.minkowski_p (the old key")  # no pydantic prefix
    assert (
        "regularization.minkowski_p (the old key of loss.minkowski_p) and loss.minkowski_p are both given, "
        "with different values (3 and 2); give only loss.minkowski_p" in message
    )
