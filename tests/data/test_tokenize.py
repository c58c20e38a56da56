import pytest

from plw.data.collator import PLWDataCollator
from plw.data.formats import ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT, render_alpaca
from plw.data.sources import Record
from plw.data.tokenize import encode_records, tokenize_records
from plw.data.truncation import truncate
from plw.errors import PLWError

TOKENIZERS = ["bpe_tokenizer", "stories_tokenizer", "smollm2_tokenizer"]


def alpaca(instruction="Name a colour.", extra="", output="Blue is a colour.", where="t.json[0]"):
    return Record({"instruction": instruction, "input": extra, "output": output}, where)


def test_alpaca_prompts_are_stanford_text():
    prompt, completion = render_alpaca(alpaca(extra="ctx"), "alpaca")
    assert prompt == ALPACA_PROMPT_INPUT.format(instruction="Name a colour.", input="ctx")
    assert prompt.startswith("Below is an instruction that describes a task, paired with an input")
    assert prompt.endswith("### Input:\nctx\n\n### Response:")
    prompt, _ = render_alpaca(alpaca(), "alpaca")
    assert prompt == ALPACA_PROMPT_NO_INPUT.format(instruction="Name a colour.")
    assert completion == "Blue is a colour."


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_prompt_tokens_are_prefix_and_completion_intact(tok_name, request):
    tok = request.getfixturevalue(tok_name)
    records = [alpaca(), alpaca(extra="some input"), Record({"prompt": "Q: 2+2?", "completion": " 4"}, "x:1")]
    examples, report = encode_records(records, tok, max_length=None)
    assert report.kept == 3
    for record, example in zip(records, examples, strict=True):
        ids, mask = example["input_ids"], example["completion_mask"]
        n_prompt = mask.index(1)
        assert all(m == 1 for m in mask[n_prompt:]), "completion is one run at the end"
        assert ids[-1] == tok.eos_token_id and mask[-1] == 1
        # The prompt's tokens never hold completion characters: they decode to a prefix of the prompt.
        prompt_text = tok.decode(ids[:n_prompt], skip_special_tokens=True)
        rendered = render_alpaca(record, "alpaca")[0] if "instruction" in record.data else "Q: 2+2?"
        assert rendered.startswith(prompt_text.lstrip()) or rendered.replace(" ", "").startswith(
            prompt_text.replace(" ", "")
        )
        full = tok.decode(ids[:-1], skip_special_tokens=True)
        completion = record.data.get("output", record.data.get("completion"))
        assert full.endswith(completion.strip())


def test_straddling_token_goes_to_completion(bpe_tokenizer):
    # "### Response:" + " the" would merge differently if the boundary cut a token; whatever merges
    # across it must be labelled completion.
    record = Record({"prompt": "the ca", "completion": "t sat"}, "x:1")
    (example,), _ = encode_records([record], bpe_tokenizer, max_length=None)
    ids, mask = example["input_ids"], example["completion_mask"]
    prompt_ids = bpe_tokenizer("the ca")["input_ids"]
    n_prompt = mask.index(1)
    assert ids[:n_prompt] == prompt_ids[:n_prompt]
    completion_text = bpe_tokenizer.decode(ids[n_prompt:-1])
    assert completion_text.endswith("t sat") and "t sat" in completion_text


def test_weights_and_labels(stories_tokenizer):
    features, _ = tokenize_records([alpaca()], stories_tokenizer, prompt_loss_weight=0.25)
    f = features[0]
    assert "loss_weights" not in f and "labels" not in f  # weight-free: the collator makes both
    batch = PLWDataCollator(0, prompt_loss_weight=0.25)([f])
    labels, weights = batch["labels"][0].tolist(), batch["loss_weights"][0].tolist()
    assert labels == f["input_ids"], "prompt labels are kept, never -100"
    assert {w for w, m in zip(weights, f["completion_mask"], strict=True) if m} == {1.0}
    assert {w for w, m in zip(weights, f["completion_mask"], strict=True) if not m} == {0.25}


def test_chat_roles(bpe_tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye"},
    ]
    record = Record({"messages": messages}, "c.jsonl:1")
    (ex,), _ = encode_records([record], bpe_tokenizer, max_length=None)
    completion = bpe_tokenizer.decode(
        [i for i, m in zip(ex["input_ids"], ex["completion_mask"], strict=True) if m]
    )
    assert completion.replace(" ", "") == "Hello</s>\nGoodbye</s>\n".replace(" ", "")
    (ex,), _ = encode_records([record], bpe_tokenizer, max_length=None, assistant_turns="last")
    completion = bpe_tokenizer.decode(
        [i for i, m in zip(ex["input_ids"], ex["completion_mask"], strict=True) if m]
    )
    assert "Hello" not in completion and "Goodbye" in completion


def test_truncation_keeps_completion():
    ids, mask = [1, 10, 11, 12, 13, 14, 20, 21, 2], [0, 0, 0, 0, 0, 0, 1, 1, 1]
    status, new_ids, new_mask = truncate(ids, mask, 6, "left", bos_id=1)
    assert status == "truncated"
    assert new_ids == [1, 13, 14, 20, 21, 2] and new_mask == [0, 0, 0, 1, 1, 1]
    assert truncate(ids, mask, 3, "left", bos_id=1)[0] == "dropped"
    assert truncate(ids, mask, 20, "left")[0] == "ok"
    assert truncate(ids, mask, 6, "drop")[0] == "dropped"
    status, right_ids, _ = truncate(ids, mask, 7, "right")
    assert status == "truncated" and right_ids == ids[:7]


def test_report_counts_truncated_and_dropped(stories_tokenizer):
    long_prompt = alpaca(extra="word " * 200, output="short")
    long_output = alpaca(output="word " * 200)
    (short,), _ = encode_records([alpaca()], stories_tokenizer, max_length=None)
    limit = len(short["input_ids"]) + 2
    _, report = encode_records([alpaca(), long_prompt, long_output], stories_tokenizer, max_length=limit)
    assert (report.kept, report.truncated, report.dropped) == (2, 1, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instruction": "x", "input": ""}, "field 'output': missing"),
        ({"instruction": "x", "output": "   "}, "field 'output': empty"),
        ({"instruction": 3, "output": "y"}, "field 'instruction': expected a string, got int"),
        ({"prompt": "x", "completion": ["y"]}, "field 'completion': expected a string"),
        ({"messages": [{"role": "user", "content": "x"}]}, "no non-empty assistant turn"),
        ({"messages": [{"role": "bot", "content": "x"}]}, r"messages\[0\].role"),
        ({"text": "x"}, "unknown record format"),
    ],
)
def test_bad_records_are_named(bpe_tokenizer, data, message):
    with pytest.raises(PLWError, match=r"data.jsonl:7: .*" + message):
        encode_records([Record(data, "data.jsonl:7")], bpe_tokenizer)


def test_skip_bad_records_counts(bpe_tokenizer):
    records = [alpaca(), Record({"instruction": "x", "output": ""}, "d.json[1]")]
    examples, report = encode_records(records, bpe_tokenizer, skip_bad_records=True)
    assert len(examples) == 1 and report.skipped == ["d.json[1]"]


def test_plw_out_of_range(bpe_tokenizer):
    with pytest.raises(PLWError, match=r"\[0, 1\]"):
        tokenize_records([alpaca()], bpe_tokenizer, prompt_loss_weight=1.5)
