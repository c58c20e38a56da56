"""Per-item fields for paired analyses: margin, ll_per_byte, continuation_bytes and item_hash."""

import re

import pytest

from plw.evaluation import DummyLM
from plw.evaluation.tasks import get_task
from plw.evaluation.tasks.base import Settings, item_hash
from plw.evaluation.tasks.multiple_choice import MCDoc, _continuous


def items(task_name, data, **settings):
    task = get_task(task_name)
    rows = task.load(Settings(data_dir=data))
    return task.run(DummyLM(), rows, Settings(data_dir=data, **settings)).items


def test_arc_margin_and_ll_per_byte_by_hand(tiny_data):
    # Dummy log-likelihood is -len(continuation). Row 1: " two" -4 (gold), " three" -6, " four" -5:
    # margin -4 - (-5) = 1, per byte -4 / 4. Row 2: " green" -6, " blue" -5 (gold): margin 1, -5 / 5.
    first, second = items("arc_easy", tiny_data)
    assert first["continuation_bytes"] == [4, 6, 5] and second["continuation_bytes"] == [6, 5]
    assert first["margin"] == 1.0 and first["ll_per_byte"] == -1.0
    assert second["margin"] == 1.0 and second["ll_per_byte"] == -1.0
    # The existing fields are unchanged.
    assert first["acc"] == 1.0 and first["acc_norm"] == 0.0 and first["pred_norm"] == 1


def test_truthfulqa_mc2_margin_is_best_true_minus_best_false(tiny_data):
    # " No." -4 and " It is round." -13 are true, " Yes." -5 is false: margin -4 - (-5), per byte -4/4.
    (item,) = items("truthfulqa_mc2", tiny_data)
    assert item["margin"] == 1.0 and item["ll_per_byte"] == -1.0
    assert item["continuation_bytes"] == [4, 13, 5]


def test_margin_negative_when_a_wrong_choice_wins_and_bytes_are_utf8():
    doc = MCDoc(["Q:"] * 2, [" café", " tea"], [4.0, 3.0], gold=0)
    out = _continuous(doc, [-3.0, -1.0])
    assert out["continuation_bytes"] == [6, 4]  # "é" takes two bytes
    assert out["margin"] == -2.0 and out["ll_per_byte"] == pytest.approx(-0.5)


def test_item_hash_is_short_stable_and_ignores_fewshot_examples(tiny_data):
    plain = [x["item_hash"] for x in items("arc_easy", tiny_data)]
    shots = [x["item_hash"] for x in items("arc_easy", tiny_data, num_fewshot=1)]
    assert plain == shots and len(set(plain)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{12}", h) for h in plain)
    assert item_hash("ab", "c") != item_hash("a", "bc")


def test_truthfulqa_gen_and_synthetic_items_carry_a_hash(tiny_data):
    (gen,) = items("truthfulqa_gen", tiny_data)
    assert re.fullmatch(r"[0-9a-f]{12}", gen["item_hash"])
    task = get_task("synthetic_lookup")
    rows = task.load(Settings(limit=3))

    class Echo:
        def generate(self, prompts, max_new_tokens, stop):
            return ["x"] * len(prompts)

    hashes = [x["item_hash"] for x in task.run(Echo(), rows, Settings()).items]
    assert len(set(hashes)) == 3
    assert hashes == [x["item_hash"] for x in task.run(Echo(), rows, Settings(template="none")).items]
