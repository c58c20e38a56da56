"""Weight spans: character ranges of a message's content whose tokens take the span's weight."""

from __future__ import annotations

import re

import pytest

from plw.batch import PART_IDS
from plw.data.sources import Record
from plw.data.tokenize import encode_records
from plw.data.weights import NO_WEIGHT, TokenWeights, example_loss_weights
from plw.errors import PLWError

# Offsets counted by hand:  T h e _ m a g i c _ w o r d _ i s : _ p l e a s e .
#                           0     3 4       9 10     14 15 17 19         25 26
MAGIC = "The magic word is: please."
STORY = "The cat sat. It was happy."  # "The cat sat." is 0-11, " It was happy." 12-25 (inclusive)


@pytest.fixture(scope="module")
def words():
    """A fast tokenizer with one token per word or punctuation run, and a plain chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1, "</s>": 2}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tok.chat_template = (
        "{% for m in messages %}<s> {{ m.role }} {{ m.content }} </s> {% endfor %}"
        "{% if add_generation_prompt %}<s> assistant {% endif %}"
    )
    return tok


def answer_weights(tokenizer, answer: dict, part: str = "assistant") -> list[float]:
    """The `message_weights` of the answer's content tokens."""
    record = Record({"messages": [{"role": "user", "content": "Go"}, {"role": "assistant", **answer}]}, "d:1")
    (example,), _ = encode_records([record], tokenizer, max_length=None)
    pairs = zip(example["token_parts"], example["message_weights"], strict=True)
    return [w for p, w in pairs if p == PART_IDS[part]]


def test_span_weights_land_on_exactly_the_tokens_of_their_spans(words):
    spans = [{"begin": 4, "end": 14, "weight": 0.25}, {"begin": 19, "end": 25, "weight": 0.5}]
    weights = answer_weights(words, {"content": MAGIC, "weight_spans": spans})
    #                   The        magic word  is         :          please  .
    assert weights == [NO_WEIGHT, 0.25, 0.25, NO_WEIGHT, NO_WEIGHT, 0.5, NO_WEIGHT]
    given = answer_weights(words, {"content": MAGIC, "weight": 0.9, "weight_spans": spans})
    assert given == [0.9, 0.25, 0.25, 0.9, 0.9, 0.5, 0.9]  # outside the spans: the message's weight


def test_a_token_overlapping_two_spans_takes_the_smaller_weight(words):
    spans = [{"begin": 0, "end": 6, "weight": 0.5}, {"begin": 6, "end": 14, "weight": 0.25}]
    weights = answer_weights(words, {"content": MAGIC, "weight_spans": spans})
    assert weights[:3] == [0.5, 0.25, 0.25]  # "magic" (4-9) overlaps both spans


def test_axolotl_train_detail_trains_only_tokens_wholly_inside_its_train_spans(words):
    detail = [
        {"begin_offset": 0, "end_offset": 11, "train": False},
        {"begin_offset": 12, "end_offset": 25, "train": True},
    ]
    weights = answer_weights(words, {"content": STORY, "weight": 1, "train_detail": detail})
    #                   The  cat  sat  .    It   was  happy .
    assert weights == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    straddled = [{"begin_offset": 14, "end_offset": 25, "train": True}]  # "It" is 13-14: half inside
    assert answer_weights(words, {"content": STORY, "train_detail": straddled})[:5] == [0.0] * 5


@pytest.mark.parametrize("tok_name", ["stories_tokenizer", "bpe_tokenizer"])
def test_real_tokenizers_weight_the_spanned_word(tok_name, request):
    from plw.data.chat_templates import apply_chat_template

    tok = request.getfixturevalue(tok_name)
    before = tok.chat_template
    apply_chat_template(tok, "chatml")
    try:
        record = Record(
            {"messages": [{"role": "user", "content": "Go"}, {"role": "assistant", "content": MAGIC,
             "weight_spans": [{"begin": 19, "end": 25, "weight": 0.5}]}]}, "d:1"
        )  # fmt: skip
        (example,), _ = encode_records([record], tok, max_length=None)
    finally:
        tok.chat_template = before
    spanned = [t for t, w in zip(example["input_ids"], example["message_weights"], strict=True) if w == 0.5]
    assert tok.decode(spanned).strip() == "please"
    weighted = example_loss_weights(example, TokenWeights(prompt=0.1)).tolist()
    assert sorted(set(weighted)) == [0.1, 0.5, 1.0]


BAD_SPANS = [
    ([{"begin": 0, "end": 10, "weight": 0.5}, {"begin": 5, "end": 12, "weight": 1}], "weight_spans[1]",
     "overlaps messages[1].weight_spans[0]"),
    ([{"begin": 0, "end": 27, "weight": 0.5}], "weight_spans[0].end",
     "past the end of the content (26 characters)"),
    ([{"begin": 4, "end": 4, "weight": 0.5}], "weight_spans[0]", "empty: its end is not after its begin"),
    ([{"begin": -1, "end": 4, "weight": 0.5}], "weight_spans[0].begin", "expected a character offset"),
    ([{"begin": 0, "end": 4, "weight": 1.5}], "weight_spans[0].weight", r"must be in [0, 1]"),
    ([{"begin": 0, "end": 4}], "weight_spans[0]", "expected {begin, end, weight}"),
    ({"begin": 0}, "weight_spans", "expected a list of {begin, end, weight}"),
]  # fmt: skip


@pytest.mark.parametrize(("spans", "field", "reason"), BAD_SPANS, ids=[b[2][:25] for b in BAD_SPANS])
def test_bad_spans_are_one_line_naming_record_and_message(words, spans, field, reason):
    with pytest.raises(PLWError) as err:
        answer_weights(words, {"content": MAGIC, "weight_spans": spans})
    text = str(err.value)
    assert text.startswith(f"d:1: field 'messages[1].{field}': {reason}") and len(text.splitlines()) == 1, (
        text
    )


@pytest.mark.parametrize(
    ("answer", "field", "reason"),
    [
        ({"train_detail": [{"begin_offset": 0, "end_offset": 26, "train": True}]},
         "train_detail[0].end_offset", "past the end of the content"),
        ({"train_detail": [{"begin_offset": 0, "end_offset": 3, "train": 1}]}, "train_detail[0].train",
         "expected true or false"),
        ({"train_detail": [], "weight_spans": []}, "", "give weight_spans or train_detail, not both"),
    ],
)  # fmt: skip
def test_bad_train_detail_is_one_line(words, answer, field, reason):
    name = f"messages[1].{field}" if field else "messages[1]"
    with pytest.raises(PLWError, match="^" + re.escape(f"d:1: field '{name}': {reason}")):
        answer_weights(words, {"content": STORY, **answer})


class NoOffsets:
    """A tokenizer that cannot map tokens to characters (as slow tokenizers cannot)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, *args, **kwargs):
        if kwargs.get("return_offsets_mapping"):
            raise NotImplementedError("return_offset_mapping is not available when using Python tokenizers")
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_spans_need_a_tokenizer_with_offsets(words):
    with pytest.raises(PLWError, match=r"^d:1: weight_spans need a tokenizer with an offset mapping"):
        answer_weights(
            NoOffsets(words), {"content": MAGIC, "weight_spans": [{"begin": 0, "end": 3, "weight": 0}]}
        )
