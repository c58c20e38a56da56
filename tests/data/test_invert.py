"""Prompt inversion (`invert_records`, `plw invert`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from support import ALPACA, LLAMA, needs
from typer.testing import CliRunner

from plw.cli.invert import register
from plw.data.invert import DEFAULT_INVERSION_INSTRUCTION, invert_records, write_records
from plw.data.sources import Record, read_records
from plw.data.spm import SentencePieceTokenizer
from plw.data.stats import generation_ratio
from plw.errors import PLWError


def rec(data: dict, where: str = "t[0]") -> Record:
    return Record(data, where)


def test_layout_with_and_without_input():
    records = [
        rec({"instruction": "Name a colour.", "input": "", "output": "Red."}, "t[0]"),
        rec({"instruction": "Classify the sentiment.", "input": "I love it", "output": "Positive"}, "t[1]"),
        rec({"prompt": "Say hi", "completion": "Hi!"}, "t[2]"),
    ]
    assert invert_records(records) == [
        {
            "instruction": DEFAULT_INVERSION_INSTRUCTION,
            "input": "Red.",
            "output": "Name a colour.",
            "source_index": 0,
        },
        {
            "instruction": DEFAULT_INVERSION_INSTRUCTION,
            "input": "I love it\n\nPositive",
            "output": "Classify the sentiment.",
            "source_index": 1,
        },
        {"instruction": DEFAULT_INVERSION_INSTRUCTION, "input": "Hi!", "output": "Say hi", "source_index": 2},
    ]


def test_custom_instruction_and_determinism():
    records = [rec({"instruction": "a", "output": "b"})]
    assert invert_records(records, "Which instruction?")[0]["instruction"] == "Which instruction?"
    assert invert_records(records) == invert_records(records)
    with pytest.raises(PLWError, match="non-empty"):
        invert_records(records, "  ")


def test_chat_is_not_supported():
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(
        PLWError, match=r"t\[0\]: prompt inversion supports alpaca and prompt_completion.*not chat"
    ):
        invert_records([rec({"messages": messages})], skip_bad_records=True)


def test_bad_records_fail_or_are_skipped_with_their_location():
    records = [
        rec({"instruction": "a", "output": "b"}, "f:1"),
        rec({"instruction": "c", "output": ""}, "f:2"),
    ]
    with pytest.raises(PLWError, match="f:2: field 'output': empty"):
        invert_records(records)
    skipped: list[str] = []
    rows = invert_records(records, skip_bad_records=True, skipped=skipped)
    assert [r["source_index"] for r in rows] == [0] and skipped == ["f:2"]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_written_files_load_back(tmp_path, suffix):
    rows = invert_records([rec({"instruction": "é ünïcode", "input": "x", "output": "y"})])
    path = write_records(rows, tmp_path / f"out{suffix}")
    assert [r.data for r in read_records(str(path))] == rows


def test_write_rejects_other_suffixes(tmp_path):
    with pytest.raises(PLWError, match=r"\.json .* or \.jsonl"):
        write_records([], tmp_path / "out.csv")


def test_inverted_alpaca_5000_is_short_completion_and_round_trips():
    needs(ALPACA, LLAMA)
    records = read_records(str(ALPACA))
    rows = invert_records(records, skip_bad_records=True)
    assert len(rows) == len(records) - 2  # two records have an empty output
    for row in rows:  # source_index maps every inverted record back to its original
        original = records[row["source_index"]].data
        assert row["output"] == original["instruction"]
        assert row["input"].endswith(original["output"])
    inverted = [Record(row, f"inv[{i}]") for i, row in enumerate(rows)]
    assert generation_ratio(inverted, SentencePieceTokenizer(LLAMA)) < 1


# --- CLI ---------------------------------------------------------------------------------------------------


@pytest.fixture
def run():
    app = typer.Typer()
    app.callback()(lambda: None)  # keep `invert` a subcommand
    register(app)
    return lambda *args: CliRunner().invoke(app, ["invert", *map(str, args)])


@pytest.fixture
def data(tmp_path) -> Path:
    rows = [{"instruction": "Write a story.", "input": "", "output": "Once upon a time " * 5}] * 3
    rows.append({"instruction": "Broken.", "input": "", "output": ""})
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_cli_writes_jsonl_and_reports_skips(run, data, tmp_path):
    result = run(data, "-o", tmp_path / "out" / "short.jsonl", "--no-rg", "--instruction", "Guess the task.")
    assert result.exit_code == 0, result.output
    assert "inverted 3 of 4 records" in result.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "short.jsonl").read_text().splitlines()]
    assert [r["source_index"] for r in rows] == [0, 1, 2] and rows[0]["instruction"] == "Guess the task."


def test_cli_prints_rg_before_and_after(run, data, tmp_path):
    needs(LLAMA)
    result = run(data, "-o", tmp_path / "short.json", "--tokenizer", LLAMA)
    assert result.exit_code == 0, result.output
    assert "before" in result.output and "after" in result.output


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--strict"], "data.json\\[3\\]: field 'output': empty"),
        (["-o", "x.csv"], "must end in .json or .jsonl"),
    ],
)
def test_cli_errors(run, data, tmp_path, args, pattern):
    out = [] if "-o" in args else ["-o", tmp_path / "o.json"]
    result = run(data, *out, *args, "--no-rg")
    assert isinstance(result.exception, PLWError)
    assert re.search(pattern, str(result.exception))


def test_cli_refuses_to_overwrite_its_input(run, data):
    result = run(data, "-o", data, "--no-rg")
    assert isinstance(result.exception, PLWError) and "overwrite" in str(result.exception)
