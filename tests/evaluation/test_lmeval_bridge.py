"""The lm-eval bridge: lm-eval tasks answered by a plw model (dummy here, so scores are known)."""

import json

import pytest

from plw.evaluation import DummyLM, evaluate
from plw.evaluation.lmeval_bridge import flatten_results, local_task_config, run_lmeval

pytest.importorskip("lm_eval")


def test_lmeval_arc_easy_on_local_file_through_bridge(tiny_data):
    # Same hand computation as plw's own arc_easy test: acc 1, acc_norm 0 with the default dummy.
    config = local_task_config("arc_easy", {"test": tiny_data / "ai2_arc/ARC-Easy/test.jsonl"})
    lm = DummyLM()
    results = flatten_results(run_lmeval(lm, [config]))
    assert results["arc_easy"]["acc"] == 1.0 and results["arc_easy"]["acc_norm"] == 0.0
    assert ("Question: What is 1+1?\nAnswer:", " two") in lm.calls


def test_lmeval_task_yaml_via_evaluate(tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "qa.jsonl", [{"q": "2+2", "a": "4"}, {"q": "3+3", "a": "6"}])
    spec = tmp_path / "toy_qa.yaml"
    spec.write_text(
        "task: toy_qa\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        'doc_to_text: "Q: {{q}}\\nA:"\n'
        'doc_to_target: "{{a}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 5\n'
        "metric_list:\n  - metric: exact_match\n"
    )
    lm = DummyLM(responses={"Q: 2+2\nA:": "4\nQ: more", "Q: 3+3\nA:": "7"})
    out = evaluate(lm, f"lmeval:{spec}", output_dir=tmp_path / "out", progress=False)
    assert out[f"lmeval:{spec}"]["exact_match"] == 0.5
    items = (tmp_path / "out" / f"lmeval_{str(spec).replace('/', '_')}.jsonl").read_text().splitlines()
    assert len(items) == 2 and json.loads(items[0])["task"] == "toy_qa"
