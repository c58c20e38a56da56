"""Shared fixtures: the shared data folder, real tiny tokenizers/models, a tokenizer built here, an
isolated plw cache, `plw` run in this process, and sweeps whose cells run in this process.

Plain helpers (paths, file writers, process handling) are in tests/support.py.
"""

from __future__ import annotations

import os

import pytest
from support import ALPACA, STORIES, run_plw, shared, write_jsonl

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def stories_path():
    """The real 260K-parameter TinyStories model's folder (skips without the shared data)."""
    return shared(STORIES / "model.safetensors").parent


@pytest.fixture(scope="session")
def stories_tokenizer(stories_path):
    from plw.models import load_tokenizer

    return load_tokenizer(str(stories_path))


@pytest.fixture(scope="session")
def alpaca_path():
    return shared(ALPACA)


@pytest.fixture(scope="session")
def stories(stories_path):
    """stories260K as an HFModel (plw.evaluation.hf), batch size 8."""
    from plw.evaluation.hf import HFModel

    return HFModel.from_spec(str(stories_path), batch_size=8)


@pytest.fixture(scope="module")
def stories_model(stories_path):
    """stories260K as the Transformers model plw.models.load_model gives (one per test module: tests
    may change its gradients)."""
    from plw.models import load_model

    return load_model(str(stories_path))


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


@pytest.fixture
def plw_cache(tmp_path_factory, monkeypatch):
    """One plw cache per test session ($PLW_CACHE_DIR), never the user's."""
    cache = tmp_path_factory.getbasetemp() / "plw-cache"
    monkeypatch.setenv("PLW_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def plw_cli(capsys):
    """plw_cli(*args) -> (exit code, stdout, stderr): `plw ARGS` through the real entry point in this
    process (support.run_plw; errors exit 2), its output as a user sees it."""

    def run(*args) -> tuple[int, str, str]:
        code = run_plw(*args)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(name="write_jsonl")
def _write_jsonl():
    """`write_jsonl(path, rows)`: write rows as JSON lines (parents created); support.write_jsonl."""
    return write_jsonl


@pytest.fixture
def in_process(monkeypatch):
    """in_process(runner=None): `plw sweep` and run_sweep by executor name run their cells in this
    process with `runner` (a cell runner; None: the real one), through one LocalExecutor, returned."""
    import plw.experiment.driver
    from plw.experiment.executor_local import LocalExecutor

    def use(runner=None) -> LocalExecutor:
        executor = LocalExecutor(runner, isolate=False)
        monkeypatch.setattr(plw.experiment.driver, "make_executor", lambda *a, **k: executor)
        return executor

    return use
