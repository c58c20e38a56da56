import torch

from plw.evaluation.retention import base_references, retention
from plw.models import load_model


def test_base_model_retains_itself_and_a_perturbed_model_drifts(stories_path, tmp_path):
    options = {"n_prompts": 3, "max_new_tokens": 12, "seed": 0}
    same = retention(load_model(str(stories_path)).eval(), str(stories_path), tmp_path, **options)
    assert abs(same["kl_estimate"]) < 1e-5 and same["base_nll"] > 0
    refs = base_references(str(stories_path), tmp_path, **options)
    assert len(refs["refs"]) == 3 and all(r["continuation"] for r in refs["refs"])
    assert len(list(tmp_path.glob("retention-*.json"))) == 1, "references are cached"
    noisy = load_model(str(stories_path)).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for param in noisy.parameters():
            param.add_(0.05 * torch.randn_like(param))
    assert retention(noisy, str(stories_path), tmp_path, **options)["kl_estimate"] > 0.01
