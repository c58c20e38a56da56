"""Run lm-evaluation-harness tasks on a plw model object, and point lm-eval tasks at local files.

`as_lmeval_lm` wraps any `EvalLM` as an lm-eval `LM`, so lm-eval's tasks get plw's shared-prefix
scoring; rolling log-likelihood (perplexity tasks) is delegated to lm-eval's own HFLM on the same
model object. `LMEvalTask` is the `lmeval:NAME` task; `local_task_config` builds an lm-eval task
config reading a local JSON/JSONL file instead of the hub (used by the agreement test and benchmark).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plw.errors import PLWError
from plw.evaluation.data import DatasetRef
from plw.evaluation.model import EvalLM
from plw.evaluation.tasks.base import Settings, Task, TaskResult

log = logging.getLogger(__name__)
_SPLITS = ("training_split", "validation_split", "test_split", "fewshot_split")
# Folders (under lm_eval/tasks) of the tasks plw mirrors: indexing one folder takes milliseconds,
# indexing all of lm-eval's tasks over ten seconds.
_TASK_DIRS = {
    "arc_easy": "arc",
    "arc_challenge": "arc",
    "piqa": "piqa",
    "winogrande": "winogrande",
    "truthfulqa_mc1": "truthfulqa",
    "truthfulqa_mc2": "truthfulqa",
    "truthfulqa_gen": "truthfulqa",
}


@functools.cache
def task_manager(folder: str | None = None):
    """An lm-eval TaskManager over one task folder, over no folder (""), or over all tasks (None)."""
    from lm_eval import tasks

    if folder is None:
        return tasks.TaskManager()
    if not folder:
        return tasks.TaskManager(include_defaults=False)
    return tasks.TaskManager(include_path=Path(tasks.__file__).parent / folder, include_defaults=False)


def _manager_for(name: str):
    if name in _TASK_DIRS:
        return task_manager(_TASK_DIRS[name])
    if name.startswith(("wmt14-", "wmt16-")):
        return task_manager("translation")
    return task_manager(None)


def as_lmeval_lm(lm: EvalLM):
    """An lm-eval `LM` answering through `lm`."""
    from lm_eval.api.model import LM

    class PLWBridgeLM(LM):
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return lm.loglikelihood([tuple(r.args[:2]) for r in requests])

        def generate_until(self, requests, disable_tqdm: bool = False):
            out: list[str | None] = [None] * len(requests)
            batches: dict[tuple, list[int]] = {}
            for i, r in enumerate(requests):
                kwargs = r.args[1] or {}
                until = kwargs.get("until") or []
                until = (until,) if isinstance(until, str) else tuple(until)
                batches.setdefault((until, int(kwargs.get("max_gen_toks", 256))), []).append(i)
            for (until, max_new), idx in batches.items():
                texts = lm.generate([requests[i].args[0] for i in idx], max_new, until)
                for i, t in zip(idx, texts, strict=True):
                    out[i] = t
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            model, tokenizer = getattr(lm, "model", None), getattr(lm, "tokenizer", None)
            if model is None or tokenizer is None:
                raise PLWError(f"model '{lm.name}' cannot compute rolling log-likelihoods (perplexity tasks)")
            from lm_eval.models.huggingface import HFLM

            hf = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=getattr(lm, "batch_size", 1))
            return hf.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    return PLWBridgeLM()


def local_task_config(name: str, data_files: dict[str, str | Path], **overrides: Any) -> dict:
    """lm-eval's config of task `name`, reading `data_files` ({split: path}) with the json loader.

    Splits without a file are dropped from the config, so lm-eval never asks the hub for them.
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    manager = _manager_for(name)
    if name not in manager.task_index:
        raise PLWError(f"lm-eval has no task '{name}'")
    config = load_yaml(manager.task_index[name].yaml_path, resolve_func=True)
    files = {split: str(path) for split, path in data_files.items()}
    config.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": files})
    for key in _SPLITS:
        if config.get(key) is not None and config[key] not in files:
            config[key] = None
    config.update(overrides)
    return config


def run_lmeval(lm: EvalLM, tasks: list, *, limit=None, num_fewshot=None, seed: int = 1234) -> dict:
    """`lm_eval.simple_evaluate` on `lm` (an `EvalLM` or an lm-eval `LM`) with samples logged.

    Args:
        tasks: lm-eval task names, task YAML paths, or inline configs (see `local_task_config`).
    """
    from lm_eval.api.model import LM
    from lm_eval.evaluator import simple_evaluate

    # Inline configs and YAML paths need no index; bare task names need lm-eval's full one.
    named = [t for t in tasks if isinstance(t, str) and not t.endswith((".yaml", ".yml"))]
    manager = _manager_for(named[0]) if len(named) == 1 else task_manager(None) if named else task_manager("")
    target = lm if isinstance(lm, LM) else as_lmeval_lm(lm)
    return simple_evaluate(
        model=target,
        tasks=tasks,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=manager,
        log_samples=True,
        fewshot_random_seed=seed,
    )


def flatten_results(results: dict) -> dict[str, dict[str, float]]:
    """lm-eval's {"task": {"acc,none": v, "acc_stderr,none": s}} as {"task": {"acc": v, "acc_stderr": s}}."""
    out: dict[str, dict[str, float]] = {}
    for task, values in results.get("results", {}).items():
        metrics = {}
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if not filt or not isinstance(value, int | float):
                continue
            metrics[metric if filt == "none" else f"{metric}/{filt}"] = float(value)
        out[task] = metrics
    return out


@dataclass(frozen=True)
class LMEvalTask(Task):
    """`lmeval:NAME`: lm-eval task NAME (or a task YAML path) through the bridge."""

    name: str
    lmeval_name: str
    data: DatasetRef = DatasetRef("(lm-eval)", None, "", "")

    def validate(self, row: dict) -> None:  # lm-eval loads and checks its own data
        return None

    def load(self, settings: Settings) -> list[dict]:
        if settings.data_dir is not None:
            log.info("%s: lm-eval loads its own data; --data-dir does not apply", self.name)
        return []

    def run(self, lm: EvalLM, rows: list[dict], settings: Settings) -> TaskResult:
        spec: str = self.lmeval_name
        if spec.endswith((".yaml", ".yml")) and not Path(spec).is_file():
            raise PLWError(f"task {self.name}: lm-eval task file not found: {spec}")
        settings.start(1)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            results = run_lmeval(
                lm, [spec], limit=settings.limit, num_fewshot=settings.num_fewshot or None, seed=settings.seed
            )
        except (KeyError, ValueError, FileNotFoundError, ConnectionError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise PLWError(f"task {self.name}: lm-eval failed: {first}") from err
        settings.advance(1)
        flat = flatten_results(results)
        main = flat.pop(Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec, None)
        if main is None and len(flat) == 1:
            main = flat.popitem()[1]
        items = [
            json.loads(json.dumps({"task": task, **sample}, default=str))
            for task, samples in results.get("samples", {}).items()
            for sample in samples
        ]
        extra = {f"lmeval:{task}": metrics for task, metrics in flat.items()}
        return TaskResult(items, main or {}, [], extra)
