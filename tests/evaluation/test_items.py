"""item_rows: per-item scores of an eval directory as tidy rows, with margin and ll_per_byte by hand."""

from __future__ import annotations

import json

import pytest
from support import write_jsonl

from plw.errors import PLWError
from plw.evaluation.items import item_rows


def write(path, records, task=None):
    write_jsonl(path, records)
    if task:
        path.with_name(f"{path.stem}.metrics.json").write_text(json.dumps({"task": task}))


def table(rows):
    return {(r["task"], r["item"], r["metric"]): r["value"] for r in rows}


def test_multiple_choice_scores_margin_and_ll_per_byte(tmp_path):
    arc = {"doc_id": 0, "gold": 1, "loglikelihoods": [-4.0, -2.5, -3.0], "is_greedy": [False, True, False],
           "pred": 1, "pred_norm": 2, "acc": 1.0, "acc_norm": 0.0, "continuation_bytes": [4, 5, 6],
           "item_hash": "abc"}  # fmt: skip
    write(tmp_path / "arc_easy.jsonl", [arc, {**arc, "doc_id": 1, "gold": 0, "item_hash": "def"}])
    rows = item_rows(tmp_path)
    got = table(rows)
    assert got[("arc_easy", "0", "acc")] == 1.0 and got[("arc_easy", "0", "acc_norm")] == 0.0
    assert got[("arc_easy", "0", "margin")] == pytest.approx(-2.5 - -3.0)
    assert got[("arc_easy", "0", "ll_per_byte")] == pytest.approx(-2.5 / 5)
    assert got[("arc_easy", "1", "margin")] == pytest.approx(-4.0 - -2.5)
    assert got[("arc_easy", "1", "ll_per_byte")] == pytest.approx(-4.0 / 4)
    # Indices and lists are not scores.
    assert {m for _, _, m in got} == {"acc", "acc_norm", "margin", "ll_per_byte"}
    assert {r["item_hash"] for r in rows if r["item"] == "0"} == {"abc"}
    assert set(rows[0]) == {"task", "item", "metric", "value", "item_hash"}


def test_mc2_margin_uses_labels_and_is_skipped_without_them(tmp_path):
    mc2 = {"doc_id": 3, "gold": 0, "loglikelihoods": [-1.0, -2.0, -0.5, -3.0], "labels": [1, 1, 0, 0],
           "mc2": 0.4}  # fmt: skip
    no_labels = {k: v for k, v in mc2.items() if k != "labels"} | {"doc_id": 4}
    write(tmp_path / "truthfulqa_mc2.jsonl", [mc2, no_labels])
    got = table(item_rows(tmp_path))
    assert got[("truthfulqa_mc2", "3", "margin")] == pytest.approx(-1.0 - -0.5)  # best true - best false
    assert ("truthfulqa_mc2", "4", "margin") not in got  # which choices are wrong is unknown
    assert ("truthfulqa_mc2", "3", "ll_per_byte") not in got  # no continuation_bytes: not computed
    assert got[("truthfulqa_mc2", "4", "mc2")] == 0.4


def test_synthetic_items_are_also_scored_per_family(tmp_path):
    records = [
        {"doc_id": 0, "family": "lookup", "answer": "a", "target": "a", "exact_match": 1.0},
        {"doc_id": 1, "family": "copy", "answer": "b", "target": "c", "exact_match": 0.0},
    ]
    write(tmp_path / "synthetic.jsonl", records, task="synthetic")
    write(tmp_path / "synthetic_copy.jsonl", records[1:], task="synthetic_copy")
    got = table(item_rows(tmp_path))
    assert got == {
        ("synthetic", "0", "exact_match"): 1.0,
        ("synthetic:lookup", "0", "exact_match"): 1.0,
        ("synthetic", "1", "exact_match"): 0.0,
        ("synthetic:copy", "1", "exact_match"): 0.0,
        ("synthetic_copy", "1", "exact_match"): 0.0,  # one family already: no split
    }


def test_generation_scores_and_task_name_from_the_metrics_file(tmp_path):
    item = {"doc_id": 0, "question": "q", "answer": "a", "bleu_max": 12.5, "bleu_acc": 1, "bleu_diff": -0.5,
            "win": None}  # fmt: skip
    write(tmp_path / "wmt16_de_en.jsonl", [item], task="wmt16:de-en")
    got = table(item_rows(tmp_path))
    assert got == {
        ("wmt16:de-en", "0", "bleu_max"): 12.5,
        ("wmt16:de-en", "0", "bleu_acc"): 1.0,
        ("wmt16:de-en", "0", "bleu_diff"): -0.5,
    }


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('{"acc": 1}', "no doc_id"),
        ('{"doc_id": 0, "gold": 5, "loglikelihoods": [-1.0, -2.0]}', "gold 5"),
        ('{"doc_id": 0, "gold": 0, "loglikelihoods": [-1.0, "x"]}', "loglikelihoods"),
        (
            '{"doc_id": 0, "gold": 0, "loglikelihoods": [-1.0], "continuation_bytes": [1, 2]}',
            "continuation_bytes",
        ),
    ],
)
def test_a_garbled_line_names_file_and_line(tmp_path, line, needle):
    path = tmp_path / "piqa.jsonl"
    path.write_text('{"doc_id": 9, "acc": 1}\n\n' + line + "\n")
    with pytest.raises(PLWError, match=rf"piqa.jsonl:3: .*{needle}"):
        item_rows(tmp_path)


def test_a_repeated_doc_id_is_an_error(tmp_path):
    (tmp_path / "piqa.jsonl").write_text('{"doc_id": 1, "acc": 1}\n{"doc_id": 1, "acc": 0}\n')
    with pytest.raises(PLWError, match="piqa.jsonl:2: doc_id 1 appears twice"):
        item_rows(tmp_path)


def test_scores_the_record_carries_are_not_recomputed(tmp_path):
    # What multiple_choice.py writes for TruthfulQA MC2: its own margin (from labels it does not
    # store) and a null margin when every choice is true.
    own = {"doc_id": 0, "gold": 0, "loglikelihoods": [-1.0, -2.0, -0.5], "mc2": 0.3, "margin": 0.25,
           "ll_per_byte": -0.1, "continuation_bytes": [5, 5, 5]}  # fmt: skip
    write(tmp_path / "truthfulqa_mc2.jsonl", [own, {**own, "doc_id": 1, "margin": None}])
    got = table(item_rows(tmp_path))
    assert (
        got[("truthfulqa_mc2", "0", "margin")] == 0.25 and got[("truthfulqa_mc2", "0", "ll_per_byte")] == -0.1
    )
    assert ("truthfulqa_mc2", "1", "margin") not in got
