"""`synthetic_<family>` tasks: one family's rows, scored as a benchmark of its own."""

from plw.analysis.scores import primary_metric
from plw.data.synthetic import FAMILIES
from plw.evaluation.tasks import expand_tasks, get_task
from plw.evaluation.tasks.base import Settings


def test_family_tasks_load_only_their_family():
    everything = get_task("synthetic").load(Settings())
    for family in FAMILIES:
        rows = get_task(f"synthetic_{family}").load(Settings())
        assert rows and {r["task"] for r in rows} == {family}
        assert len(rows) == sum(r["task"] == family for r in everything)
    assert len(get_task("synthetic_lookup").load(Settings(limit=5))) == 5


def test_family_tasks_are_known_and_scored_by_exact_match():
    assert expand_tasks("synthetic_lookup,synthetic_expand") == ["synthetic_lookup", "synthetic_expand"]
    assert primary_metric("synthetic_rule", ["exact_match"]) == "exact_match"


class _EchoAnswers:
    """A stand-in model that answers each prompt with a fixed text."""

    def __init__(self, answer):
        self.answer = answer

    def generate(self, prompts, max_new_tokens, stop):
        return [self.answer] * len(prompts)


def test_family_task_reports_one_exact_match():
    task = get_task("synthetic_lookup")
    rows = task.load(Settings(limit=3))
    result = task.run(_EchoAnswers(rows[0]["output"]), rows, Settings())
    assert set(result.metrics) <= {"exact_match", "exact_match_stderr"}
    assert result.metrics["exact_match"] >= 1 / 3
