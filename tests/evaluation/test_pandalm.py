"""The PandaLM judge preset: its prompt, its three verdicts (a tie counts half), local and endpoint."""

import math

import pytest
from judge_support import chat_endpoint

from plw.evaluation.judges.base import HERE, JudgeConfig, load_judge, preference, render
from plw.evaluation.judges.endpoint import parse_verdict
from plw.evaluation.model import DummyLM

PROMPT = """Below are two responses for a given task. The task is defined by the Instruction. \
Evaluate the responses and generate a reference answer for the task.

### Instruction:
Name a colour.

### Response 1:
Blue.

### Response 2:
A {braced} answer.

### Evaluation:
"""


def test_prompt_is_pandalms_own_format():
    config = JudgeConfig.from_file(HERE / "pandalm.yaml")
    assert render(config.prompt, "Name a colour.", "Blue.", "A {braced} answer.") == PROMPT
    assert config.verdicts == ("1", "2", "Tie") and not config.chat_template
    assert JudgeConfig.from_file(HERE / "pandalm-endpoint.yaml").prompt == config.prompt


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("1\n\n### Reason: Response 1 names a colour; Response 2 does not.", 1.0),
        ("2\n\n### Reason: Response 1 is wrong.\n\n### Reference: Red.", 0.0),
        ("Tie\n\n### Reason: Both responses name a colour.", 0.5),
        ("I cannot decide.", None),
    ],
)
def test_pandalm_replies_are_parsed(reply, expected):
    assert parse_verdict(reply, ("1", "2", "Tie")) == expected


def test_a_tie_counts_half():
    assert preference([0.5, 0.2, 0.3]) == pytest.approx(0.65)
    assert preference([0.3, 0.1]) == pytest.approx(0.75)  # two verdicts: the plain softmax


def test_local_pandalm_scores_the_three_verdicts():
    logps = {"1": math.log(0.5), "2": math.log(0.2), "Tie": math.log(0.3)}
    lm = DummyLM(logprobs=lambda context, verdict: logps[verdict])
    judge = load_judge("pandalm", lm=lm)
    assert judge.prefer_a([("Name a colour.", "Blue.", "A {braced} answer.")]) == [pytest.approx(0.65)]
    # PandaLM reads the plain prompt (no chat template), each verdict a continuation of it.
    assert [c for c, _ in lm.calls] == [PROMPT] * 3 and [v for _, v in lm.calls] == ["1", "2", "Tie"]


def test_local_pandalm_runs_a_real_tiny_model(stories):
    """stories260K is no judge; this checks the plumbing on a real model: a probability per pair."""
    judge = load_judge("pandalm", lm=stories)
    [p, q] = judge.prefer_a([("Say hi.", "Hi!", "Bye."), ("Say hi.", "Bye.", "Hi!")])
    assert 0 < p < 1 and 0 < q < 1


def _panda_reply(body: dict) -> str:
    return "Tie\n\n### Reason: both fine." if "Blue" in body["messages"][0]["content"] else "2\n\n"


def test_endpoint_pandalm(tmp_path):
    with chat_endpoint(_panda_reply) as (url, _):
        text = (HERE / "pandalm-endpoint.yaml").read_text().replace("http://127.0.0.1:8000/v1", url)
        (tmp_path / "pandalm.txt").write_text((HERE / "pandalm.txt").read_text())
        (tmp_path / "judge.yaml").write_text(text.replace("max_retries: 3", "max_retries: 0"))
        judge = load_judge(tmp_path / "judge.yaml")
        assert judge.prefer_a([("Name a colour.", "Blue.", "x"), ("q", "a", "b")]) == [0.5, 0.0]
