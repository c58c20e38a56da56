import json
import subprocess
import sys

import pytest

from plw.data.load import load_records
from plw.data.sources import read_records
from plw.errors import PLWError


def test_jsonl_records_carry_line_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": "d"}\n')
    records = load_records(str(path))
    assert [r.data["prompt"] for r in records] == ["a", "c"]
    assert records[1].where.endswith("d.jsonl:3")


def test_json_list_csv_parquet_agree(tmp_path):
    rows = [
        {"instruction": "i1", "input": "", "output": "o1"},
        {"instruction": "i2", "input": "x", "output": "o2"},
    ]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    import pandas as pd

    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    loaded = [
        [r.data for r in load_records(str(tmp_path / f"d.{ext}"))] for ext in ("json", "csv", "parquet")
    ]
    assert loaded[0] == loaded[1] == loaded[2] == rows
    assert load_records(str(tmp_path / "d.csv"))[0].where.endswith("d.csv:2")


def test_limit(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([{"prompt": str(i), "completion": "x"} for i in range(5)]))
    assert len(load_records(str(tmp_path / "d.json"), limit=2)) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"prompt": "a"}\n{"prompt": \n', "bad.jsonl:2: invalid JSON line"),
        ("list.jsonl", '[{"prompt": "a"},\n{"prompt": "b"}]\n', "name it .json"),
        ("scalar.jsonl", '"just a string"\n', "scalar.jsonl:1: expected a JSON object"),
        ("items.json", '[{"prompt": "a"}, 3]', "items.json[1]: expected a JSON object"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(PLWError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_records(str(tmp_path / name))


def test_non_utf8_names_line(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(b'{"prompt": "a"}\n{"prompt": "\xff"}\n')
    with pytest.raises(PLWError, match=r"b.jsonl:2: .*not valid UTF-8"):
        load_records(str(tmp_path / "b.jsonl"))


def test_missing_file(tmp_path):
    with pytest.raises(PLWError, match="data file not found"):
        load_records(str(tmp_path / "nope.json"))


def test_readers_read_files_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.json").write_text(json.dumps([{"prompt": "p", "completion": "c"}]))
    assert [r.data for r in read_records("d.json")] == [r.data for r in load_records("d.json")]
    with pytest.raises(PLWError, match="unknown dataset preset 'alpacca'"):
        load_records("alpacca@d.json")  # the router knows presets ...
    import plw.data.sources as sources

    monkeypatch.setattr(sources, "_load_hub", lambda name, config, split: [sources.Record({}, name)])
    assert read_records("alpaca-short")[0].where == "alpaca-short"  # ... the reader only hub ids


def test_router_reaches_presets_and_the_synthetic_suite(tmp_path, monkeypatch):
    rows = [{"instruction": "Say hi.", "input": "", "output": "hi there"}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    assert load_records(f"alpaca@{tmp_path / 'a.json'}", limit=1)[0].data == rows[0]
    import plw.data.load as load

    seen = {}

    def fake_suite(source, config, split):
        seen.update(source=source, config=config, split=split)
        return tmp_path / "a.json" if source == "synthetic" else None

    monkeypatch.setattr(load, "resolve_source", fake_suite)
    assert load_records("synthetic", config="seed=1", split="eval")[0].data == rows[0]
    assert seen == {"source": "synthetic", "config": "seed=1", "split": "eval"}


@pytest.mark.parametrize(
    "module",
    ["sources", "formats", "invert", "presets", "synthetic", "load", "tokenize", "weights", "cache", "stats"],
)
def test_each_data_module_imports_on_its_own(module):
    """A fresh interpreter imports every data module first: no import loop between them."""
    code = f"import plw.data.{module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr.splitlines()[-1:]


def test_readers_import_no_router():
    code = (
        "import sys, plw.data.sources, plw.data.presets, plw.data.synthetic; "
        "print('plw.data.load' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False"
