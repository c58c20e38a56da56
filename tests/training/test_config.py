"""TrainConfig's token weight fields: defaults, ranges, the spec they build."""

from __future__ import annotations

import pytest

from plw.config import apply_overrides, validate
from plw.data.weights import TokenWeights
from plw.errors import PLWError
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
