"""A study cell whose training sets `chat_template`: its evaluation and estimate use that template too."""

from __future__ import annotations

from support import REPO

from plw.experiment.estimate import data_tokens
from plw.experiment.runner import load_trained
from plw.training.config import TrainConfig

CHAT = REPO / "configs" / "data-examples" / "openai-chat.jsonl"


def test_a_trained_cell_is_evaluated_with_its_chat_template(stories_path):
    _, tokenizer = load_trained(stories_path, str(stories_path), str(stories_path), "chatml")
    assert tokenizer.chat_template.startswith("{#- ChatML")
    _, plain = load_trained(stories_path, str(stories_path), str(stories_path))
    assert not plain.chat_template  # stories260K has none of its own


def test_the_estimate_tokenises_chat_data_with_the_cells_template(stories_path, tmp_path):
    config = {"model": str(stories_path), "data": {"path": str(CHAT)}, "prompt_loss_weight": 0.1,
              "output_dir": str(tmp_path / "out")}  # fmt: skip
    tokens, examples = data_tokens(TrainConfig(**config, chat_template="chatml"))
    assert examples == 4 and tokens > 4 * 20
    assert "chat template" in data_tokens(TrainConfig(**config))  # why the tokens are unknown
