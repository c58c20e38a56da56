"""Dataset presets (`alpaca`, `alpaca-cleaned`, `alpaca-short`, `dolly`, `NAME@SOURCE`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import ALPACA, LLAMA, needs, write_jsonl

import plw.data.presets as presets
from plw.data.invert import DEFAULT_INVERSION_INSTRUCTION
from plw.data.load import load_records
from plw.data.presets import PRESETS, parse_preset, preset_local_file
from plw.data.spm import SentencePieceTokenizer
from plw.data.stats import dataset_stats
from plw.errors import PLWError

ALPACA_ROWS = [
    {"instruction": "Name a colour.", "input": "", "output": "Red is a colour."},
    {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
    {"instruction": "Say nothing.", "input": "", "output": ""},
]


@pytest.fixture
def alpaca_file(tmp_path) -> Path:
    path = tmp_path / "alpaca_cleaned.json"
    path.write_text(json.dumps(ALPACA_ROWS), encoding="utf-8")
    return path


def test_known_presets_and_hub_ids():
    assert {name: p.hub_id for name, p in PRESETS.items()} == {
        "alpaca": "tatsu-lab/alpaca",
        "alpaca-cleaned": "yahma/alpaca-cleaned",
        "alpaca-short": "yahma/alpaca-cleaned",
        "dolly": "databricks/databricks-dolly-15k",
    }


def test_parse_preset_syntax(tmp_path):
    assert parse_preset("alpaca-short") == (PRESETS["alpaca-short"], None)
    assert parse_preset("dolly@/x/dolly.jsonl") == (PRESETS["dolly"], "/x/dolly.jsonl")
    assert parse_preset("data/train.json") is None and parse_preset("tatsu-lab/alpaca") is None
    assert parse_preset("/no/such/dir@v2/x.json") is None  # a path, not NAME@
    with pytest.raises(PLWError, match="unknown dataset preset 'alpacca'.*alpaca-short"):
        parse_preset("alpacca@x.json")
    with pytest.raises(PLWError, match="after '@'"):
        parse_preset("alpaca@")


def test_existing_file_wins_over_preset_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("dolly").write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n", encoding="utf-8")
    assert parse_preset("dolly") is None
    assert load_records("dolly")[0].data == {"prompt": "p", "completion": "c"}


def test_preset_local_file(alpaca_file):
    assert preset_local_file(f"alpaca-short@{alpaca_file}") == alpaca_file
    assert preset_local_file("alpaca-short") is None and preset_local_file(str(alpaca_file)) is None


def test_alpaca_short_from_local_file(alpaca_file, caplog):
    records = load_records(f"alpaca-short@{alpaca_file}")
    assert [(r.data["input"], r.data["output"], r.data["source_index"]) for r in records] == [
        ("Red is a colour.", "Name a colour.", 0),
        ("cat\n\nchat", "Translate to French.", 1),
    ]
    assert {r.data["instruction"] for r in records} == {DEFAULT_INVERSION_INSTRUCTION}
    assert records[1].where == f"{alpaca_file}[1]"  # errors point into the source file
    assert "left out 1 record" in caplog.text


def test_limit_applies_after_inversion(alpaca_file):
    assert len(load_records(f"alpaca-short@{alpaca_file}", limit=1)) == 1


@pytest.mark.parametrize("name", ["alpaca", "alpaca-cleaned"])
def test_alpaca_presets_keep_records(alpaca_file, name):
    assert [r.data for r in load_records(f"{name}@{alpaca_file}")] == ALPACA_ROWS


def test_dolly_maps_to_alpaca_fields(tmp_path):
    rows = [
        {
            "instruction": "Who wrote it?",
            "context": "Hamlet, by Shakespeare.",
            "response": "Shakespeare",
            "category": "qa",
        },
        {"instruction": "Name a fruit.", "context": "", "response": "Apple", "category": "brainstorming"},
    ]
    path = write_jsonl(tmp_path / "dolly.jsonl", rows)
    records = load_records(f"dolly@{path}")
    expected = {"instruction": "Who wrote it?", "input": "Hamlet, by Shakespeare.", "output": "Shakespeare"}
    assert records[0].data == {**expected, "category": "qa"}
    assert records[1].data["input"] == "" and records[1].where == f"{path}:2"


def test_dolly_with_the_wrong_schema_names_the_field(tmp_path):
    path = tmp_path / "wrapped.jsonl"
    path.write_text(json.dumps({"prompt": "### Instruction: hi", "answer": "hello"}) + "\n", encoding="utf-8")
    with pytest.raises(PLWError, match=r"wrapped\.jsonl:1: field 'instruction': missing"):
        load_records(f"dolly@{path}")


def test_hub_failure_suggests_a_local_copy(monkeypatch):
    def offline(source, **_):
        raise PLWError(f"dataset '{source}': cannot load from the hub: offline")

    monkeypatch.setattr(presets, "read_records", offline)
    with pytest.raises(
        PLWError, match=r"offline\? use a local copy: alpaca-short@/path/to/alpaca-cleaned\.json"
    ):
        load_records("alpaca-short")


def test_alpaca_short_preset_on_shared_data_is_short_completion():
    needs(ALPACA, LLAMA)
    stats = dataset_stats(load_records(f"alpaca-short@{ALPACA}"), SentencePieceTokenizer(LLAMA))
    assert stats["records"] == 4998 and stats["generation_ratio"] < 1
    assert stats["class"] == "short-completion"
