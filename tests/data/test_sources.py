import json

import pytest

from plw.data.sources import load_records
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
