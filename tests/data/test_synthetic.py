"""The synthetic instruction suite (`plw.data.synthetic`, `plw synth`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest
import typer
from typer.testing import CliRunner

from plw.cli.synth import register
from plw.data import synthetic_words as words
from plw.data.formats import render_alpaca
from plw.data.sources import Record, read_records
from plw.data.synthetic import (
    FAMILIES,
    LONG_FAMILIES,
    SHORT_FAMILIES,
    SUITE_VERSION,
    allocate,
    ensure_suite,
    exact_match,
    generate,
    prompt_text,
    word_ratio,
    write_suite,
)
from plw.errors import PLWError

# Digest of generate(seed=0, n_train=200, n_eval=50). If a generator change moves it, bump
# SUITE_VERSION (it keys the ensure_suite cache) and update both constants here.
GOLDEN = (1, "b444a6609f60692af3c45a6ff899a53064144cc8956143cd979cb335392c4f44")


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    """A larger mixed sample for per-family checks."""
    train, held_out = generate(seed=11, n_train=420, n_eval=70, long_share=0.3)
    return train + held_out


def _dump(records: list[dict]) -> str:
    return json.dumps(records, sort_keys=True)  # the bytes written, up to key order


def test_same_seed_same_bytes_other_seed_differs():
    first, second = generate(seed=5, n_train=40, n_eval=15), generate(seed=5, n_train=40, n_eval=15)
    assert _dump(first[0] + first[1]) == _dump(second[0] + second[1])
    other = generate(seed=6, n_train=40, n_eval=15)
    assert _dump(other[0]) != _dump(first[0]) and _dump(other[1]) != _dump(first[1])


def test_output_pinned_to_suite_version():
    train, held_out = generate(seed=0, n_train=200, n_eval=50)
    digest = hashlib.sha256(_dump(train + held_out).encode()).hexdigest()
    assert (SUITE_VERSION, digest) == GOLDEN, "generator output changed: bump SUITE_VERSION, update GOLDEN"


def test_eval_split_does_not_depend_on_n_train():
    assert _dump(generate(n_train=10, n_eval=20)[1]) == _dump(generate(n_train=200, n_eval=20)[1])


def test_splits_disjoint_and_ids_unique():
    train, held_out = generate(seed=2, n_train=400, n_eval=100)
    train_prompts = {prompt_text(r) for r in train}
    assert len(train_prompts) == len(train)
    assert not train_prompts & {prompt_text(r) for r in held_out}
    assert len({r["id"] for r in train + held_out}) == len(train) + len(held_out)


def test_mix_follows_long_share_and_order_is_shuffled():
    train, held_out = generate(n_train=400, n_eval=100)
    tasks = Counter(r["task"] for r in train)
    assert {tasks[f] for f in SHORT_FAMILIES} == {64} and {tasks[f] for f in LONG_FAMILIES} == {40}
    assert [r["task"] for r in train[:10]] != sorted(r["task"] for r in train[:10])
    assert allocate(7, ["count", "rule"], 0.5) == {"count": 4, "rule": 3}  # no long family: all short
    assert allocate(5, ["reverse"], 0.0) == {"reverse": 5}
    assert allocate(10, list(FAMILIES), 0.0)["expand"] == 0


def test_record_shape(sample):
    for record in sample:
        assert set(record) == {"instruction", "input", "output", "task", "id"}
        assert record["id"].startswith(record["task"] + "-")
        assert all(record[k].strip() == record[k] and record[k] for k in ("instruction", "input", "output"))
        assert ("\n" in record["output"]) == (record["task"] in LONG_FAMILIES)
        assert exact_match(record["output"], record["output"])


def _fields(block: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)


def _check_lookup(r: dict) -> None:
    field = re.search(r'its "(.+)" field', r["instruction"]).group(1)
    lines = r["input"].splitlines()[1:]
    assert 6 <= len(lines) <= 12
    matches = [line for line in lines if line.split(": ", 1)[1] == r["output"]]
    assert matches == [f"{field}: {r['output']}"]


def _check_count(r: dict) -> None:
    target = re.search(r'word "(.+)" appear', r["instruction"]).group(1)
    items = r["input"].splitlines()[1].split(", ")
    assert 16 <= len(items) <= 30 and items.count(target) == int(r["output"]) >= 1


def _check_rule(r: dict) -> None:
    rule_text, item_text = r["input"].split("\n\n")
    item = _fields(item_text)
    numeric = re.search(r"item (\w+) if its (\w+) is (above|below) (\d+) \S+, otherwise (\w+)", rule_text)
    if numeric:
        yes, attr, word, threshold, no = numeric.groups()
        value = int(item[attr].split()[0])
        hit = value > int(threshold) if word == "above" else value < int(threshold)
    else:
        pattern = r"item (\w+) if it is made of (\w+), (\w+) or (\w+), otherwise (\w+)"
        yes, m1, m2, m3, no = re.search(pattern, rule_text).groups()
        hit = item["material"] in (m1, m2, m3)
    assert r["output"] == (yes if hit else no)


def _check_extract(r: dict) -> None:
    instruction, body = r["instruction"], r["input"]
    if match := re.search(r"item number (\d+)", instruction):
        expected = body.splitlines()[int(match.group(1)) - 1].split(". ", 1)[1]
    elif match := re.search(r"the (\w+) item in the comma", instruction):
        expected = body.split(", ")[words.ORDINALS.index(match.group(1))]
    else:
        query = re.search(r'after "(.+)" in', instruction).group(1)
        sequence = body.split()
        assert sequence.count(query) == 1
        expected = sequence[sequence.index(query) + 1]
    assert r["output"] == expected


def _check_compare(r: dict) -> None:
    size, attr = re.search(r'has the (larger|smaller) value for "(.+)"\?', r["instruction"]).groups()
    entries = [_fields(block) for block in r["input"].split("\n\n")]
    assert len(entries) == 2 and entries[0][attr] != entries[1][attr]
    pick = max if size == "larger" else min
    assert r["output"] == pick(entries, key=lambda e: int(e[attr]))["name"]


def _check_expand(r: dict) -> None:
    header, *lines = r["input"].splitlines()
    name = header.removeprefix("Record of ")
    assert 3 <= len(lines) <= 5
    expected = [
        f"According to the record, the {k} of {name} is {v}." for k, v in _fields("\n".join(lines)).items()
    ]
    assert r["output"] == "\n".join(expected)


def _check_reverse(r: dict) -> None:
    items = r["input"].split(", ")
    assert 12 <= len(items) <= 20 and len(set(items)) == len(items)
    assert r["output"] == "\n".join(f"{i}. {x}" for i, x in enumerate(items[::-1], start=1))


CHECKS = {
    "lookup": _check_lookup, "count": _check_count, "rule": _check_rule, "extract": _check_extract,
    "compare": _check_compare, "expand": _check_expand, "reverse": _check_reverse,
}  # fmt: skip


@pytest.mark.parametrize("family", list(FAMILIES))
def test_answers_are_derivable_from_the_prompt(sample, family):
    records = [r for r in sample if r["task"] == family]
    assert len(records) >= 30
    for record in records:
        CHECKS[family](record)


def test_labels_and_positions_are_balanced(sample):
    # A constant answer would make a family learnable without reading the prompt.
    rules = Counter(r["output"] for r in sample if r["task"] == "rule")
    assert max(rules.values()) < 0.25 * sum(rules.values())
    counts = Counter(r["output"] for r in sample if r["task"] == "count")
    assert len(counts) == 6 and max(counts.values()) < 0.3 * sum(counts.values())


def test_word_lists_are_distinct():
    themed = [word for group in words.THEMES.values() for word in group]
    assert len(set(themed)) == len(themed)  # reverse/extract draw from two themes and need distinct items
    for group in (words.FIRST_NAMES, words.OCCUPATIONS, words.HOBBIES, words.MONTHS, words.MATERIALS):
        assert len(set(group)) == len(group)


def test_word_level_generation_ratio(sample):
    for family in FAMILIES:
        ratio = word_ratio([r for r in sample if r["task"] == family])
        assert ratio < 0.3 if family in SHORT_FAMILIES else ratio > 1, (family, ratio)
    assert word_ratio(generate()[0]) < 0.3


def test_token_generation_ratio_below_one(stories_tokenizer):
    stats = pytest.importorskip("plw.data.stats")
    if not hasattr(stats, "generation_ratio"):
        pytest.skip("plw.data.stats.generation_ratio not available")
    train, held_out = generate()
    records = [Record(r, f"synthetic[{i}]") for i, r in enumerate(train + held_out)]
    assert stats.generation_ratio(records, stories_tokenizer, "alpaca") < 1


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("teal", "teal", True),
        ("  Teal.  \nThe colour is teal.", "teal", True),
        ("\n\n**TEAL**", "teal", True),
        ('"Clara  Brenholt"', "Clara Brenholt", True),
        ("7", "7", True),
        ("17", "7", False),
        ("The answer is: Marco Fenwell\n### Instruction:", "Marco Fenwell", True),
        ("Answer:\n\nteal", "teal", True),
        ("**Answer:** Teal", "teal", True),
        ("The colour is teal.", "teal", False),
        ("Answers: teal", "teal", False),
        ("", "teal", False),
        ("1. plum\n2.  Pear\n", "1. plum\n2. pear", True),
        ("1. plum\n2. pear\n3. fig", "1. plum\n2. pear", False),
        ("1. plum", "1. plum\n2. pear", False),
    ],
)
def test_exact_match(prediction, answer, expected):
    assert exact_match(prediction, answer) is expected


def test_bad_arguments_raise_plw_error():
    for kwargs in ({"families": ["lookup", "nope"]}, {"families": []}, {"long_share": 1.5}, {"n_train": -1}):
        with pytest.raises(PLWError):
            generate(**kwargs)


def test_write_suite_is_idempotent_and_loadable(tmp_path):
    paths = write_suite(tmp_path / "suite", seed=3, n_train=20, n_eval=5)
    stamps = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    again = write_suite(tmp_path / "suite", seed=3, n_train=20, n_eval=5)
    assert again == paths and {k: p.stat().st_mtime_ns for k, p in again.items()} == stamps
    elsewhere = write_suite(tmp_path / "copy", seed=3, n_train=20, n_eval=5)
    assert all(elsewhere[k].read_bytes() == paths[k].read_bytes() for k in paths)
    records = read_records(str(paths["train"]))
    assert len(records) == 20 and len(read_records(str(paths["eval"]))) == 5
    prompt, completion = render_alpaca(records[0], "alpaca")
    assert prompt.endswith("### Response:") and completion == records[0].data["output"]
    assert json.loads(paths["meta"].read_text())["suite_version"] == SUITE_VERSION


def test_ensure_suite_caches_by_arguments(tmp_path):
    train, held_out = ensure_suite(tmp_path, seed=1, n_train=12, n_eval=4)
    assert train.parent == held_out.parent and train.parent.parent == tmp_path / "synthetic"
    stamp = train.stat().st_mtime_ns
    assert ensure_suite(tmp_path, seed=1, n_train=12, n_eval=4) == (train, held_out)
    assert train.stat().st_mtime_ns == stamp
    other, _ = ensure_suite(tmp_path, seed=1, n_train=12, n_eval=4, families=["count", "reverse"])
    assert other.parent != train.parent
    assert {json.loads(line)["task"] for line in other.read_text().splitlines()} == {"count", "reverse"}


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    register(app)
    return app


def test_cli_writes_suite_and_prints_table(tmp_path):
    out = tmp_path / "out"
    args = [
        "synth",
        "-o",
        str(out),
        "--seed",
        "4",
        "--train",
        "30",
        "--eval",
        "10",
        "--families",
        "lookup, reverse",
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "lookup" in result.output and "reverse" in result.output and "word Rg" in result.output
    assert len((out / "train.jsonl").read_text().splitlines()) == 30
    assert len((out / "eval.jsonl").read_text().splitlines()) == 10


def test_cli_bad_family_is_a_plw_error(tmp_path):
    result = CliRunner().invoke(_app(), ["synth", "-o", str(tmp_path), "--families", "lookup,bogus"])
    assert isinstance(result.exception, PLWError) and "bogus" in str(result.exception)
    assert not (tmp_path / "train.jsonl").exists()
