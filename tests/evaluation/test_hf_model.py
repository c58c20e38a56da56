"""HFModel: lm-eval's tokenisation rules, and loading a base model plus a LoRA adapter directory."""

import pytest
import torch

from plw.errors import PLWError
from plw.evaluation.hf import HFModel


def test_encode_pair_moves_trailing_space_and_splits_whole(stories):
    ctx, cont = stories.encode_pair("Once upon a time ", "there was")
    whole = stories.tokenizer.encode("Once upon a time there was")
    assert ctx == stories.tokenizer.encode("Once upon a time") and ctx + cont == whole
    bos, rest = stories.encode_pair("", "Hello")
    assert bos == [stories.tokenizer.bos_token_id] and rest


def test_loglikelihood_groups_by_context_and_keeps_order(stories):
    requests = [("The dog", " ran"), ("A cat", " sat"), ("The dog", " sat")]
    together = stories.loglikelihood(requests)
    alone = [stories.loglikelihood([r])[0] for r in requests]
    assert [lp for lp, _ in together] == pytest.approx([lp for lp, _ in alone], abs=1e-4)


def test_lora_adapter_directory(stories_path, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(stories_path)
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(0)
    tuned = peft.get_peft_model(base, config)
    tuned.save_pretrained(tmp_path / "adapter")
    # peft records the base model's path, which is how plw finds the base to load.
    assert str(stories_path) in (tmp_path / "adapter" / "adapter_config.json").read_text()
    loaded = HFModel.from_spec(str(tmp_path / "adapter"))
    plain = HFModel.from_spec(str(stories_path))
    request = [("Once upon a time", " there was a girl")]
    lora_lp = loaded.loglikelihood(request)[0][0]
    with torch.inference_mode():
        ids = plain.tokenizer("Once upon a time there was a girl", return_tensors="pt").input_ids
        n = len(plain.tokenizer.encode("Once upon a time"))
        logp = torch.log_softmax(tuned(ids).logits[0, :-1].float(), -1)
        want = sum(logp[p, ids[0, p + 1]].item() for p in range(n - 1, ids.shape[1] - 1))
    assert lora_lp == pytest.approx(want, abs=1e-3)
    assert lora_lp != pytest.approx(plain.loglikelihood(request)[0][0], abs=1e-3)  # the adapter matters


def test_adapter_without_base_is_a_plw_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(PLWError, match="base_model_name_or_path"):
        HFModel.from_spec(str(tmp_path))
