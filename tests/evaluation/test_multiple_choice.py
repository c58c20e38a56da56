"""Multiple-choice tasks: hand-computed scores with the dummy model, and the real files and model."""

import math

import pytest

from plw.errors import PLWError
from plw.evaluation import DummyLM, evaluate
from plw.evaluation.tasks.multiple_choice import QA_PRIMER


def run(lm, task, data, **kw):
    return evaluate(lm, task, data_dir=data, progress=False, **kw)[task]


@pytest.mark.parametrize("task", ["arc_easy", "arc_challenge"])
def test_arc_acc_and_acc_norm_by_hand(tiny_data, task):
    # Dummy log-likelihood is -len(continuation): " two" -4, " three" -6, " four" -5 -> pred 0 (gold);
    # per character -4/3, -6/5, -5/4 -> pred_norm 1. Row 2: " green" -6, " blue" -5 -> pred 1 (gold),
    # -6/5 vs -5/4 -> pred_norm 0.
    lm = DummyLM()
    out = run(lm, task, tiny_data)
    assert out["acc"] == 1.0 and out["acc_norm"] == 0.0
    assert lm.calls[:3] == [("Question: What is 1+1?\nAnswer:", f" {c}") for c in ("two", "three", "four")]


def test_piqa_by_hand(tiny_data):
    # " twist the lid" -14 vs " eat the lid" -12 -> pred 1 (gold 0); per char -14/13 > -12/11: pred_norm 0.
    # " use water" -10 vs " use a towel" -12 -> pred 0 (gold 1); -10/9 vs -12/11 -> pred_norm 1.
    out = run(DummyLM(), "piqa", tiny_data)
    assert out == pytest.approx({"acc": 0.0, "acc_stderr": 0.0, "acc_norm": 1.0, "acc_norm_stderr": 0.0})


def test_winogrande_partial_scoring(tiny_data):
    lm = DummyLM(lambda context, continuation: -1.0 if context.endswith("Bob") else -2.0)
    out = run(lm, "winogrande", tiny_data)
    assert out["acc"] == 1.0 and set(out) == {"acc", "acc_stderr"}
    assert lm.calls == [("Ann beat Bob so Ann", " was sad."), ("Ann beat Bob so Bob", " was sad.")]


def test_truthfulqa_mc1_and_mc2_by_hand(tiny_data, tmp_path):
    lm = DummyLM()
    mc1 = run(lm, "truthfulqa_mc1", tiny_data)
    context = f"{QA_PRIMER}\n\nQ: Is the earth flat?\nA:"
    assert lm.calls[0] == (context, " No.")
    assert mc1["acc"] == 1.0  # " No." (-4) beats " Yes." (-5) and " Maybe." (-7)
    mc2 = run(DummyLM(), "truthfulqa_mc2", tiny_data)
    p = [math.exp(-4), math.exp(-13), math.exp(-5)]  # " No.", " It is round.", " Yes."
    assert mc2["mc2"] == pytest.approx((p[0] + p[1]) / sum(p))


def test_items_written_per_task(tiny_data, tmp_path):
    evaluate(DummyLM(), "arc_easy", data_dir=tiny_data, output_dir=tmp_path / "out", progress=False)
    import json

    items = [json.loads(x) for x in (tmp_path / "out" / "arc_easy.jsonl").read_text().splitlines()]
    assert [x["gold"] for x in items] == [0, 1]
    assert items[0]["loglikelihoods"] == [-4.0, -6.0, -5.0] and items[0]["pred_norm"] == 1


def test_fewshot_from_eval_split_excludes_current_item(tiny_data):
    lm = DummyLM()
    evaluate(lm, "arc_easy", data_dir=tiny_data, num_fewshot=1, progress=False)
    assert lm.calls[0][0] == "Question: Sky color?\nAnswer: blue\n\nQuestion: What is 1+1?\nAnswer:"
    assert lm.calls[3][0].startswith("Question: What is 1+1?\nAnswer: two\n\nQuestion: Sky color?")


def test_fewshot_from_training_split_is_seeded(tiny_data, write_jsonl):
    train = [
        {
            "id": f"t{i}",
            "question": f"Q{i}?",
            "choices": {"text": ["x", "y"], "label": ["A", "B"]},
            "answerKey": "B",
        }
        for i in range(5)
    ]
    write_jsonl(tiny_data / "ai2_arc" / "ARC-Easy" / "train.jsonl", train)
    first, second = DummyLM(), DummyLM()
    evaluate(first, "arc_easy", data_dir=tiny_data, num_fewshot=2, progress=False)
    evaluate(second, "arc_easy", data_dir=tiny_data, num_fewshot=2, progress=False)
    assert first.calls == second.calls
    context = first.calls[0][0]
    assert context.count("Question: Q") == 2 and context.endswith("Question: What is 1+1?\nAnswer:")


def test_malformed_row_names_file_and_line(tiny_data):
    path = tiny_data / "piqa" / "validation.jsonl"
    path.write_text(path.read_text() + '{"goal": "x", "sol1": "a", "sol2": "b", "label": 3}\n')
    with pytest.raises(PLWError, match=r"validation.jsonl:3: malformed row for task piqa: field 'label'"):
        run(DummyLM(), "piqa", tiny_data)


def test_malformed_row_after_a_blank_line_names_its_own_line(tiny_data):
    # The line is the file's (plw.data.sources.read_json_records), not the row's index plus one.
    path = tiny_data / "piqa" / "validation.jsonl"
    path.write_text(path.read_text() + '\n{"goal": "x", "sol1": "a", "sol2": "b", "label": 3}\n')
    with pytest.raises(PLWError, match=r"validation.jsonl:4: malformed row for task piqa"):
        run(DummyLM(), "piqa", tiny_data)


def test_bad_json_and_missing_file(tiny_data):
    (tiny_data / "winogrande" / "winogrande_xl" / "validation.jsonl").write_text("{not json\n")
    with pytest.raises(PLWError, match=r"validation.jsonl:1: invalid JSON line"):
        run(DummyLM(), "winogrande", tiny_data)
    (tiny_data / "ai2_arc" / "ARC-Challenge" / "test.jsonl").unlink()
    with pytest.raises(
        PLWError, match=r"task arc_challenge: data file not found: .*ARC-Challenge/test.jsonl"
    ):
        run(DummyLM(), "arc_challenge", tiny_data)


MC_TASKS = ["arc_easy", "piqa", "winogrande", "truthfulqa_mc1", "truthfulqa_mc2"]


def test_shared_files_with_stories260k_match_lm_eval(stories, bench_dir):
    """Every multiple-choice task on the real files: same prompts and numbers as lm-eval's HFLM."""
    lmeval = pytest.importorskip("lm_eval")
    from lm_eval.models.huggingface import HFLM

    from plw.evaluation.lmeval_bridge import local_task_config, run_lmeval

    ours = evaluate(stories, MC_TASKS, data_dir=bench_dir, limit=8, progress=False)
    files = {
        "arc_easy": ("test", "ai2_arc/ARC-Easy/test.jsonl"),
        "piqa": ("validation", "piqa/validation.jsonl"),
        "winogrande": ("validation", "winogrande/winogrande_xl/validation.jsonl"),
        "truthfulqa_mc1": ("validation", "truthful_qa/multiple_choice/validation.jsonl"),
        "truthfulqa_mc2": ("validation", "truthful_qa/multiple_choice/validation.jsonl"),
    }
    configs = [local_task_config(t, {split: bench_dir / f}) for t, (split, f) in files.items()]
    hf = HFLM(pretrained=stories.model, tokenizer=stories.tokenizer, batch_size=8)
    theirs = run_lmeval(hf, configs, limit=8)["results"]
    assert lmeval is not None
    for task in ("arc_easy", "piqa", "winogrande", "truthfulqa_mc1"):
        for metric in ("acc", "acc_norm"):
            if metric in ours[task]:
                assert ours[task][metric] == pytest.approx(theirs[task][f"{metric},none"]), (task, metric)
    assert ours["truthfulqa_mc2"]["mc2"] == pytest.approx(theirs["truthfulqa_mc2"]["acc,none"], abs=1e-4)


def test_arc_challenge_missing_from_shared_files(bench_dir):
    if (bench_dir / "ai2_arc" / "ARC-Challenge" / "test.jsonl").is_file():
        pytest.skip("ARC-Challenge file present")
    with pytest.raises(PLWError, match="ARC-Challenge/test.jsonl"):
        run(DummyLM(), "arc_challenge", bench_dir)
