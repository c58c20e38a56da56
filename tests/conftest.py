"""Shared fixtures: the shared data folder, real tiny tokenizers/models, and a tokenizer built here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLW_SHARED_DATA", REPO.parent / "shared" / "data"))
STORIES = SHARED / "models" / "stories260K"
ALPACA = SHARED / "instruct" / "alpaca_5000.json"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def need(path: Path) -> Path:
    """Skip the test with a reason when a shared data file is absent."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(scope="session")
def stories_path() -> Path:
    return need(STORIES / "model.safetensors").parent


@pytest.fixture(scope="session")
def stories_tokenizer(stories_path):
    from plw.models import load_tokenizer

    return load_tokenizer(str(stories_path))


@pytest.fixture(scope="session")
def alpaca_path() -> Path:
    return need(ALPACA)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from plw.errors import PLWError
    from plw.models import load_tokenizer

    try:
        return load_tokenizer("smollm2-135m-instruct")
    except PLWError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A byte-level BPE tokenizer trained here, so tokenizer tests never depend on downloads."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["### Response: the cat sat on the mat.", "Below is an instruction", "Hello world!"] * 50
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant: {% endif %}"
    )
    return fast
