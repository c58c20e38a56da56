"""TruthfulQA generation and WMT translation: hand-checked scores, real-model runs, lm-eval agreement."""

import pytest
import sacrebleu

from plw.errors import PLWError
from plw.evaluation import DummyLM, evaluate
from plw.evaluation.tasks.multiple_choice import QA_PRIMER
from plw.evaluation.tasks.truthfulqa_gen import METRICS, references

PROMPT = f"{QA_PRIMER}\n\nQ: Is the earth flat?"


def test_truthfulqa_gen_by_hand(tiny_data):
    # The generation stops at the blank line; ROUGE-1 against the best true reference
    # "No, the earth is round." (5 words) for "A: No, the earth is round." (6 words): F = 10/11;
    # against the false "Yes, the earth is flat.": 3 shared words, P 3/6, R 3/5, F = 6/11.
    lm = DummyLM(responses={PROMPT: "\nA: No, the earth is round.\n\nQ: Next?"})
    out = evaluate(lm, "truthfulqa_gen", data_dir=tiny_data, progress=False)["truthfulqa_gen"]
    assert lm.calls == [PROMPT]
    assert out["rouge1_max"] == pytest.approx(100 * 10 / 11)
    assert out["rouge1_diff"] == pytest.approx(100 * (10 / 11 - 6 / 11))
    assert out["rouge1_acc"] == 1.0 and out["bleu_acc"] == 1.0
    assert set(METRICS) <= set(out)


def test_truthfulqa_references_as_lm_eval():
    row = {"correct_answers": ["No", " ", "Round."], "incorrect_answers": ["Yes"]}
    assert references(row) == (["No.", "Round.", "I have no comment."], ["Yes."])


def test_truthfulqa_gen_matches_lm_eval(stories, bench_dir):
    pytest.importorskip("lm_eval")
    from lm_eval.models.huggingface import HFLM

    from plw.evaluation.lmeval_bridge import local_task_config, run_lmeval

    # Short generations keep the test fast; the prompt, stop rule and scoring are the task's own.
    ours = evaluate(stories, "truthfulqa_gen", data_dir=bench_dir, limit=2, max_new_tokens=48, progress=False)
    ours = ours["truthfulqa_gen"]
    config = local_task_config(
        "truthfulqa_gen",
        {"validation": bench_dir / "truthful_qa/generation/validation.jsonl"},
        generation_kwargs={"until": ["\n\n"], "max_gen_toks": 48, "do_sample": False, "temperature": 0.0},
    )
    hf = HFLM(pretrained=stories.model, tokenizer=stories.tokenizer, batch_size=8)
    theirs = run_lmeval(hf, [config], limit=2)["results"]["truthfulqa_gen"]
    for metric in METRICS:
        assert ours[metric] == pytest.approx(theirs[f"{metric},none"], abs=1e-6), metric


WMT_ROWS = [
    # At least four words each: corpus BLEU needs 4-grams.
    {"translation": {"ro": "Buna ziua dragi prieteni mei", "en": "Good day my dear friends"}},
    {"translation": {"ro": "Multumesc foarte mult pentru tot", "en": "Thank you very much for everything"}},
]


@pytest.fixture
def wmt_dir(tmp_path, write_jsonl):
    write_jsonl(tmp_path / "wmt16" / "ro-en" / "test.jsonl", WMT_ROWS)
    write_jsonl(
        tmp_path / "wmt16" / "ro-en" / "validation.jsonl", [{"translation": {"ro": "Da", "en": "Yes"}}]
    )
    return tmp_path


def test_translation_prompts_and_perfect_score(wmt_dir):
    answers = {
        f"English phrase: {r['translation']['en']}\nRomanian phrase:": f" {r['translation']['ro']}\nX"
        for r in WMT_ROWS
    }
    lm = DummyLM(responses=answers)
    out = evaluate(lm, "wmt16-en-ro", data_dir=wmt_dir, progress=False)["wmt16-en-ro"]
    assert lm.calls == list(answers)
    assert out["bleu"] == pytest.approx(100.0) and out["chrf"] == pytest.approx(100.0)


def test_translation_scores_are_sacrebleu_corpus_scores(wmt_dir):
    guesses = {
        "Romanian phrase: Buna ziua dragi prieteni mei\nEnglish phrase:": " Good day my friends",
        "Romanian phrase: Multumesc foarte mult pentru tot\nEnglish phrase:": " Thank you very much for all",
    }
    out = evaluate(DummyLM(responses=guesses), "wmt16-ro-en", data_dir=wmt_dir, progress=False)["wmt16-ro-en"]
    preds = ["Good day my friends", "Thank you very much for all"]
    refs = [["Good day my dear friends", "Thank you very much for everything"]]
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, refs).score)
    assert out["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, refs).score)
    assert out["bleu_stderr"] >= 0


def test_translation_fewshot_uses_validation_split(wmt_dir):
    lm = DummyLM()
    evaluate(lm, "wmt16-ro-en", data_dir=wmt_dir, num_fewshot=1, limit=1, progress=False)
    shot = "Romanian phrase: Da\nEnglish phrase: Yes"
    assert lm.calls == [f"{shot}\n\nRomanian phrase: Buna ziua dragi prieteni mei\nEnglish phrase:"]


def test_translation_real_model_and_missing_direction(stories, wmt_dir):
    out = evaluate(stories, "wmt16-en-ro", data_dir=wmt_dir, max_new_tokens=8, progress=False)
    assert 0.0 <= out["wmt16-en-ro"]["chrf"] <= 100.0
    with pytest.raises(PLWError, match="wmt14/fr-en/test.jsonl"):
        evaluate(stories, "wmt14-fr-en", data_dir=wmt_dir, progress=False)


def test_generate_stops_and_matches_plain_greedy(stories):
    import torch

    prompt = "Once upon a time"
    ids = stories.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        plain = stories.model.generate(ids, max_new_tokens=20, do_sample=False)
    text = stories.tokenizer.decode(plain[0, ids.shape[1] :], skip_special_tokens=True)
    out = stories.generate([prompt, "Tom had a dog"], max_new_tokens=20)
    assert out[0] == text
    stop = text.split()[2]
    cut = stories.generate([prompt], max_new_tokens=20, stop=[stop])[0]
    assert stop not in cut and text.startswith(cut)
