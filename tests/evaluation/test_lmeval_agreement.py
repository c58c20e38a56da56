"""plw's multiple-choice numbers equal lm-evaluation-harness's on SmolLM2-135M-Instruct (0-shot).

lm-eval's own HFLM runs on the same in-memory model object, with its task YAMLs pointed at the same
local files. Required: acc and acc_norm within 0.5 points on 40 items of ARC-Easy and of PIQA; we
also check every choice's log-likelihood.
"""

import pytest

from plw.evaluation import evaluate

N_ITEMS = 24  # every item must agree; the full comparison is bench/eval.py
FILES = {"arc_easy": ("test", "ai2_arc/ARC-Easy/test.jsonl"), "piqa": ("validation", "piqa/validation.jsonl")}


@pytest.mark.slow
def test_arc_easy_and_piqa_agree_with_lm_eval(smollm2, bench_dir, tmp_path):
    pytest.importorskip("lm_eval")
    import json

    from lm_eval.models.huggingface import HFLM

    from plw.evaluation.lmeval_bridge import local_task_config, run_lmeval

    ours = evaluate(
        smollm2, list(FILES), data_dir=bench_dir, limit=N_ITEMS, output_dir=tmp_path, progress=False
    )
    configs = [local_task_config(task, {split: bench_dir / path}) for task, (split, path) in FILES.items()]
    hf = HFLM(pretrained=smollm2.model, tokenizer=smollm2.tokenizer, batch_size=16)
    theirs = run_lmeval(hf, configs, limit=N_ITEMS)
    for task in FILES:
        for metric in ("acc", "acc_norm"):
            assert abs(ours[task][metric] - theirs["results"][task][f"{metric},none"]) <= 0.005, (
                task,
                metric,
            )
        items = [json.loads(line) for line in (tmp_path / f"{task}.jsonl").read_text().splitlines()]
        samples = sorted(theirs["samples"][task], key=lambda s: s["doc_id"])
        assert len(items) == len(samples) == N_ITEMS
        for item, sample in zip(items, samples, strict=True):
            lls = [resp[0] for resp in sample["filtered_resps"]]
            assert item["loglikelihoods"] == pytest.approx(lls, abs=2e-3)
