"""Token loss weights: parts, message and sample weights, the precedence table, bad input."""

from __future__ import annotations

import pytest
import torch
from support import write_jsonl

from plw.batch import PART_IDS, PARTS
from plw.data.collator import PLWDataCollator
from plw.data.formats import Segment, render_chat
from plw.data.options import EncodeOptions
from plw.data.sources import Record
from plw.data.tokenize import check_trainable, encode_batch, encode_records, tokenize_records
from plw.data.weights import NO_WEIGHT, TokenWeights, example_loss_weights, example_weights
from plw.errors import PLWError

TOKENIZERS = ["bpe_tokenizer", "stories_chat_tokenizer", "smollm2_tokenizer"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello"},
    {"role": "tool", "content": "sunny"},
    {"role": "user", "content": "Bye now"},
    {"role": "assistant", "content": "Goodbye"},
]


@pytest.fixture(scope="module")
def stories_chat_tokenizer(stories_path):
    """The stories260K (LLaMA SentencePiece) tokenizer with a ChatML template set here."""
    from plw.models import load_tokenizer

    tok = load_tokenizer(str(stories_path))
    tok.chat_template = CHATML
    return tok


def chat(messages=CHAT, where="c.jsonl:1", **extra):
    return Record({"messages": messages, **extra}, where)


def alpaca(where="a.json[0]", **extra):
    return Record({"instruction": "Name a colour.", "input": "", "output": "Blue.", **extra}, where)


def weighed(example, spec) -> list[float]:
    """The example's weights under `spec` from the one producer; the collator hands the loss the same."""
    weights = example_loss_weights(example, spec)
    assert torch.equal(PLWDataCollator(0, weights=spec)([example])["loss_weights"][0], weights.float())
    return weights.tolist()


def part_texts(tokenizer, example) -> dict[str, str]:
    """The decoded tokens of each part, concatenated in order."""
    out: dict[str, list[int]] = {}
    for token, part in zip(example["input_ids"], example["token_parts"], strict=True):
        out.setdefault(PARTS[part], []).append(token)
    return {part: tokenizer.decode(ids) for part, ids in out.items()}


# --- the precedence table, one row per case -------------------------------------------------------

PRECEDENCE = [
    # (part, completion side, message weight, spec, expected weight before the sample weight)
    ("prompt", 0, NO_WEIGHT, {}, 0.1),
    ("completion", 1, NO_WEIGHT, {}, 1.0),
    ("completion", 1, NO_WEIGHT, {"completion": 0.5}, 0.5),
    ("user", 0, NO_WEIGHT, {}, 0.1),
    ("user", 0, NO_WEIGHT, {"roles": {"user": 0.3}}, 0.3),
    ("assistant", 1, NO_WEIGHT, {"roles": {"assistant": 0.7}}, 0.7),
    ("template", 0, NO_WEIGHT, {}, 0.1),
    ("template", 1, NO_WEIGHT, {}, 1.0),
    ("template", 1, NO_WEIGHT, {"template": 0.2, "roles": {"assistant": 0.7}}, 0.2),
    ("assistant_earlier", 1, NO_WEIGHT, {}, 1.0),
    ("assistant_earlier", 1, NO_WEIGHT, {"roles": {"assistant": 0.7}}, 0.7),
    ("assistant_earlier", 0, NO_WEIGHT, {"roles": {"assistant": 0.7}}, 0.1),
    ("assistant_earlier", 1, NO_WEIGHT, {"earlier_assistant": 0.4, "roles": {"assistant": 0.7}}, 0.4),
    ("assistant", 1, 0.0, {"roles": {"assistant": 0.7}}, 0.0),
    ("template", 1, 0.6, {"template": 0.2}, 0.6),
    ("assistant_earlier", 1, 0.9, {"earlier_assistant": 0.4}, 0.9),
]


@pytest.mark.parametrize(("part", "side", "message", "spec", "expected"), PRECEDENCE)
@pytest.mark.parametrize("sample", [1.0, 0.5])
def test_precedence_table(part, side, message, spec, expected, sample):
    weights = TokenWeights(prompt=0.1, **spec)
    got = example_weights(
        [side], weights, token_parts=[PART_IDS[part]], message_weights=[message], sample_weight=sample
    )
    assert got.tolist() == [pytest.approx(expected * sample)]


def test_unknown_role_and_out_of_range_specs():
    with pytest.raises(PLWError, match="unknown role 'bot'"):
        TokenWeights(prompt=0.1, roles={"bot": 0.5})
    with pytest.raises(PLWError, match=r"role_weights.user must be in \[0, 1\]"):
        TokenWeights(prompt=0.1, roles={"user": 1.5})
    with pytest.raises(PLWError, match=r"completion_loss_weight must be in \[0, 1\]"):
        TokenWeights(prompt=0.1, completion=-0.1)


# --- PLW alone means what it always meant -----------------------------------------------------------


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@pytest.mark.parametrize("plw", [0.0, 0.1, 0.25, 1.0])
def test_plw_alone_gives_todays_weights(tok_name, plw, request):
    tok = request.getfixturevalue(tok_name)
    records = [alpaca(), Record({"prompt": "Q: 2+2?", "completion": " 4"}, "p:1"), chat()]
    for turns in ("all", "last"):
        examples, _ = encode_records(records, tok, max_length=None, assistant_turns=turns)
        for example in examples:
            today = [1.0 if m else plw for m in example["completion_mask"]]
            assert weighed(example, TokenWeights(prompt=plw)) == today
        features, _ = tokenize_records(
            records, tok, prompt_loss_weight=plw, max_length=None, assistant_turns=turns
        )
        collate = PLWDataCollator(0, prompt_loss_weight=plw)
        assert [collate([f])["loss_weights"][0].tolist() for f in features] == [
            torch.tensor([1.0 if m else plw for m in e["completion_mask"]]).tolist() for e in examples
        ]


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@pytest.mark.parametrize("turns", ["all", "last"])
def test_chat_completion_mask_is_todays(tok_name, turns, request):
    """Parts split the prompt and completion runs, never move them: the mask is that of the runs alone."""
    tok = request.getfixturevalue(tok_name)
    plain = [{**m, "weight": None} for m in CHAT]
    fine = render_chat(plain, tok, where="x", assistant_turns=turns)
    runs: list[Segment] = []
    for segment in fine:
        if runs and runs[-1].is_completion == segment.is_completion:
            runs[-1] = Segment(runs[-1].text + segment.text, segment.is_completion)
        else:
            runs.append(Segment(segment.text, segment.is_completion))
    # The runs are exactly the generation-prompt / turn renderings the template gives.
    last = max(i for i, m in enumerate(CHAT) if m["role"] == "assistant")
    assert "".join(s.text for s in runs) == tok.apply_chat_template(CHAT[: last + 1], tokenize=False)
    completion = [s.text for s in runs if s.is_completion]
    assistants = [i for i, m in enumerate(CHAT) if m["role"] == "assistant"]
    expected = []
    for i in assistants if turns == "all" else assistants[-1:]:
        head = tok.apply_chat_template(CHAT[:i], tokenize=False, add_generation_prompt=True)
        expected.append(tok.apply_chat_template(CHAT[: i + 1], tokenize=False)[len(head) :])
    assert completion == expected
    (by_parts,) = encode_batch(tok, [(fine, False, False)])
    (by_runs,) = encode_batch(tok, [(runs, False, False)])
    assert by_parts["input_ids"] == by_runs["input_ids"]
    assert by_parts["completion_mask"] == by_runs["completion_mask"]
    # A token's part is always on its side.
    for part, m in zip(by_parts["token_parts"], by_parts["completion_mask"], strict=True):
        assert PARTS[part] in ("template", "assistant", "assistant_earlier") or m == 0


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_chat_parts_hold_each_messages_content(tok_name, request):
    tok = request.getfixturevalue(tok_name)
    (example,), _ = encode_records([chat()], tok, max_length=None)
    texts = part_texts(tok, example)
    squash = {part: text.replace(" ", "").replace("\n", "") for part, text in texts.items()}
    assert squash["system"] == "Bebrief."
    assert squash["user"] == "HithereByenow"
    assert squash["tool"] == "sunny"
    assert squash["assistant_earlier"] == "Hello"
    assert squash["assistant"] == "Goodbye"
    assert "user" in texts["template"] and "assistant" in texts["template"]  # the role headers
    assert "prompt" not in texts and "completion" not in texts


def test_non_chat_parts_are_prompt_and_completion(bpe_tokenizer):
    (example,), _ = encode_records([alpaca()], bpe_tokenizer, max_length=None)
    expected = [PART_IDS["completion"] if m else PART_IDS["prompt"] for m in example["completion_mask"]]
    assert example["token_parts"] == expected
    assert set(example["message_weights"]) == {NO_WEIGHT} and example["sample_weight"] == 1.0


def test_role_template_and_earlier_assistant_weights(bpe_tokenizer):
    spec = TokenWeights(
        prompt=0.1, completion=0.9, roles={"system": 0.0, "user": 0.5}, template=0.05, earlier_assistant=0.3
    )
    (feature,), _ = tokenize_records([chat()], bpe_tokenizer, weights=spec, max_length=None)
    by_part: dict[str, set[float]] = {}
    for part, weight in zip(feature["token_parts"], weighed(feature, spec), strict=True):
        by_part.setdefault(PARTS[part], set()).add(weight)
    assert by_part == {
        "system": {0.0},
        "user": {0.5},
        "tool": {0.1},
        "template": {0.05},
        "assistant_earlier": {0.3},
        "assistant": {0.9},
    }
    # Weight-free: the collator makes the weights (and labels) from these.
    assert set(feature) == {"input_ids", "completion_mask", "token_parts", "message_weights", "sample_weight"}


def test_message_weight_covers_content_and_end_of_turn(bpe_tokenizer):
    messages = [dict(m) for m in CHAT]
    messages[2]["weight"] = 0  # OpenAI's "do not train on this turn"
    messages[4]["weight"] = 0.75
    (example,), _ = encode_records([chat(messages)], bpe_tokenizer, max_length=None)
    weighted = weighed(example, TokenWeights(prompt=0.1, template=0.2))
    tokens = list(zip(example["input_ids"], example["token_parts"], weighted, strict=True))
    earlier = [w for _, p, w in tokens if PARTS[p] == "assistant_earlier"]
    bye = [w for _, p, w in tokens if PARTS[p] == "user"][-1]
    assert set(earlier) == {0.0} and bye == 0.75
    zeros = bpe_tokenizer.decode([t for t, _, w in tokens if w == 0.0])
    assert zeros.replace(" ", "") == "Hello</s>\n"  # the content and its end-of-turn marker
    assert 0.2 in weighted  # other template tokens (headers) keep the template weight


def test_sample_weight_multiplies_every_token(bpe_tokenizer):
    records = [alpaca(score=0.5), alpaca(where="a.json[1]")]
    features, _ = tokenize_records(
        records, bpe_tokenizer, prompt_loss_weight=0.2, max_length=None, sample_weight_field="score"
    )
    spec = TokenWeights(prompt=0.2)
    half, full = (weighed(f, spec) for f in features)
    assert half == [w * 0.5 for w in full]
    unread, _ = tokenize_records(records, bpe_tokenizer, prompt_loss_weight=0.2, max_length=None)
    assert weighed(unread[0], spec) == full  # no field configured: not read


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        (chat([{**CHAT[0], "weight": 1.5}, *CHAT[1:]]), r"messages\[0\]\.weight", r"must be in \[0, 1\]"),
        (chat([{**CHAT[0], "weight": "1"}, *CHAT[1:]]), r"messages\[0\]\.weight", "expected a number"),
        (chat([{**CHAT[0], "weight": True}, *CHAT[1:]]), r"messages\[0\]\.weight", "expected a number"),
        (chat([{"role": "bot", "content": "x"}, *CHAT]), r"messages\[0\]\.role", "unknown role 'bot'"),
        (alpaca(weight=0.5), "weight", "a record-level weight is not read"),
        (chat(weight=1), "weight", "a record-level weight is not read"),
        (alpaca(score=1.2), "score", r"must be in \[0, 1\]"),
        (alpaca(score="high"), "score", "expected a number"),
        (alpaca(score=0), "score", "sample weight 0 leaves no token"),
    ],
)
def test_bad_weights_name_file_record_and_field(bpe_tokenizer, record, field, message):
    where = record.where.replace("[", ".").replace("]", ".")
    with pytest.raises(PLWError, match=rf"^{where}: field '{field}': {message}.*skip_bad_records"):
        encode_records([record], bpe_tokenizer, sample_weight_field="score")
    examples, report = encode_records(
        [record, alpaca(where="ok:1")], bpe_tokenizer, sample_weight_field="score", skip_bad_records=True
    )
    assert len(examples) == 1 and report.skipped == [record.where]


def test_an_example_weighing_nothing_is_refused_or_skipped(bpe_tokenizer):
    silent = [{**m, "weight": 0} for m in CHAT]
    records = [chat(silent, where="c.jsonl:4"), chat(where="c.jsonl:5")]
    spec = TokenWeights(prompt=0.0, template=0.0)
    examples, report = encode_records(records, bpe_tokenizer, max_length=None)
    with pytest.raises(PLWError, match=r"^c\.jsonl:4: field 'messages': every token weighs 0"):
        check_trainable(examples, spec)
    kept = check_trainable(examples, spec, skip_bad_records=True, report=report)
    assert len(kept) == 1 and report.skipped == ["c.jsonl:4"] and report.kept == 1


def test_cache_keeps_parts_and_weights(bpe_tokenizer, tmp_path, monkeypatch):
    from plw.data.cache import encode_cached

    monkeypatch.setenv("PLW_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "d.jsonl"
    rows = [
        {"messages": [{**m, "weight": 0.5} for m in CHAT], "score": 0.25},
        {"prompt": "a", "completion": "b"},
    ]
    write_jsonl(path, rows)
    reads = []

    def records():
        from plw.data.load import load_records

        reads.append(1)
        return load_records(str(path))

    options = EncodeOptions(max_length=None, sample_weight_field="score")
    first, _ = encode_cached({"path": str(path)}, bpe_tokenizer, options, records=records)
    again, _ = encode_cached({"path": str(path)}, bpe_tokenizer, options, records=records)
    assert again == first and len(reads) == 1  # the second came from the cache, reading nothing
    assert first[0]["sample_weight"] == 0.25 and first[0]["where"].endswith("d.jsonl:1")
    assert 0.5 in first[0]["message_weights"] and max(first[0]["token_parts"]) > PART_IDS["completion"]
