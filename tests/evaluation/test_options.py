"""The evaluation option rules shared by `plw eval`, `evaluate` and a study's `eval:` section."""

import pytest

from plw.data.formats import TEMPLATES
from plw.errors import PLWError
from plw.evaluation.options import DTYPES, check_options, valid_dtype, valid_template

BAD = [
    ({"dtype": "float16"}, "dtype", "unknown dtype 'float16' (allowed: float32, bfloat16)"),
    ({"template": "alpca"}, "template", "unknown template 'alpca' (allowed: alpaca, chat, none)"),
    ({"batch_size": 0}, "batch_size", "must be at least 1, got 0"),
    ({"batch_size": -4}, "batch_size", "must be at least 1, got -4"),
    ({"limit": 0}, "limit", "must be at least 1, got 0"),
    ({"num_fewshot": -1}, "num_fewshot", "must be at least 0, got -1"),
    ({"max_new_tokens": 0}, "max_new_tokens", "must be at least 1, got 0"),
]


@pytest.mark.parametrize(("options", "name", "reason"), BAD, ids=[n for _, n, _ in BAD])
def test_each_rule_names_the_argument_or_the_flag(options, name, reason):
    with pytest.raises(PLWError) as err:
        check_options(**options)
    assert str(err.value) == f"{name}: {reason}"
    with pytest.raises(PLWError) as err:
        check_options(**options, flags=True)
    assert str(err.value) == f"--{name.replace('_', '-')}: {reason}"


def test_allowed_values_pass():
    for template in TEMPLATES:
        for dtype in DTYPES:
            check_options(
                dtype=dtype, template=template, batch_size=1, limit=1, num_fewshot=0, max_new_tokens=1
            )
    check_options()  # the defaults of evaluate and plw eval
    assert valid_template("chat") == "chat" and valid_dtype("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="unknown template"):  # ValueError: usable as a pydantic validator
        valid_template("Alpaca")
