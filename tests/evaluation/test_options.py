"""The evaluation options: rules stated once, errors naming the field, shared with a study's `eval:`."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from plw.data.formats import TEMPLATES
from plw.errors import PLWError
from plw.evaluation.judges import Judge
from plw.evaluation.options import (
    DTYPES,
    BenchmarkOptions,
    EvalOptions,
    OptionError,
    eval_options,
    valid_dtype,
    valid_template,
)
from plw.evaluation.tasks.base import FEWSHOT_SEED
from plw.experiment.study import EvalSettings

BAD = [
    ({"dtype": "float16"}, "dtype", "unknown dtype 'float16' (allowed: float32, bfloat16)"),
    ({"template": "alpca"}, "template", "unknown template 'alpca' (allowed: alpaca, chat, none)"),
    ({"batch_size": 0}, "batch_size", "must be at least 1, got 0"),
    ({"batch_size": -4}, "batch_size", "must be at least 1, got -4"),
    ({"limit": 0}, "limit", "must be at least 1, got 0"),
    ({"num_fewshot": -1}, "num_fewshot", "must be at least 0, got -1"),
    ({"max_new_tokens": 0}, "max_new_tokens", "must be at least 1, got 0"),
    ({"batch_size": "many"}, "batch_size", "Input should be a valid integer"),
    ({"batch_szie": 8}, "batch_szie", "unknown option"),
]


@pytest.mark.parametrize(("fields", "name", "reason"), BAD, ids=[n for _, n, _ in BAD])
def test_each_rule_names_the_field(fields, name, reason):
    with pytest.raises(OptionError) as err:
        eval_options(tasks="piqa", **fields)
    assert isinstance(err.value, PLWError)  # plw eval prints it as one line, exit 2
    assert err.value.field == name and err.value.reason.startswith(reason)
    assert str(err.value) == f"{name}: {err.value.reason}"
    with pytest.raises(ValidationError) as direct:  # built directly: pydantic's own error, same field
        EvalOptions(**fields)
    assert direct.value.errors()[0]["loc"][0] == name


def test_allowed_values_pass():
    for template in TEMPLATES:
        for dtype in DTYPES:
            eval_options(
                dtype=dtype, template=template, batch_size=1, limit=1, num_fewshot=0, max_new_tokens=1
            )
    defaults = eval_options()
    assert (defaults.batch_size, defaults.seed, defaults.dtype, defaults.template) == (
        16,
        FEWSHOT_SEED,
        "float32",
        "alpaca",
    )
    assert valid_template("chat") == "chat" and valid_dtype("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="unknown template"):  # ValueError: usable as a pydantic validator
        valid_template("Alpaca")


def test_tasks_from_a_comma_list_and_paths_as_paths():
    options = eval_options(tasks=" arc_easy, piqa,", data_dir="bench", adapter="runs/a")
    assert options.tasks == ["arc_easy", "piqa"]
    assert options.data_dir == Path("bench") and options.adapter == Path("runs/a")
    assert eval_options(tasks=("piqa", "winogrande")).tasks == ["piqa", "winogrande"]


def test_judge_is_a_spec_or_a_judge_object():
    class Fixed(Judge):
        name = "fixed"

        def prefer_a(self, triples):
            return [0.5 for _ in triples]

    judge = Fixed()
    assert eval_options(judge=judge).judge is judge
    assert eval_options(judge="local").judge == "local"
    with pytest.raises(OptionError) as err:
        eval_options(judge=3)
    assert err.value.field.split(".")[0] == "judge"


def test_options_are_checked_on_assignment_too():
    options = eval_options(tasks="piqa")
    with pytest.raises(ValidationError, match="must be at least 1"):
        options.batch_size = 0


def test_a_study_eval_section_shares_the_fields_and_rules():
    assert set(BenchmarkOptions.model_fields) <= set(EvalSettings.model_fields)
    assert set(BenchmarkOptions.model_fields) <= set(EvalOptions.model_fields)
    for name in BenchmarkOptions.model_fields:  # one declaration: the same description and default
        ours, study = EvalOptions.model_fields[name], EvalSettings.model_fields[name]
        assert ours.description == study.description and ours.default == study.default
    with pytest.raises(ValidationError, match="must be at least 1, got 0"):
        EvalSettings(limit=0)
    assert "seed" not in EvalSettings.model_fields  # a cell's fingerprint covers its eval: fields only
