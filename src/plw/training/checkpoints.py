"""Which Trainer checkpoint a run resumes from, and what happens to half-written ones.

Trainer writes a checkpoint file by file into `checkpoint-N/` (weights, optimizer and scheduler, RNG
state) and `trainer_state.json` last. A process killed in between (SIGKILL, the OOM killer, a lost
node) leaves a `checkpoint-N/` that Trainer cannot load, and as the newest checkpoint it would be
picked by every later run, which would then fail the same way. So a run resumes from the newest
complete checkpoint, and incomplete ones are renamed to `incomplete-checkpoint-N-<time>`: outside
the `checkpoint-*` pattern that Trainer's resume and rotation (and plw's sweep) look for, and kept
rather than deleted, since they are evidence of what went wrong.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

log = logging.getLogger("plw.train")

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # Trainer's PREFIX_CHECKPOINT_DIR pattern
# The weight files Trainer's `_load_from_checkpoint` accepts: a full model (maybe sharded) or an adapter.
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    *ADAPTER_FILES,
)


def incomplete_reason(checkpoint: Path, *, needs_optimizer: bool = True) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is complete.

    Args:
        checkpoint: a `checkpoint-N` directory.
        needs_optimizer: require the optimizer and scheduler state (False with `save_only_model`).
    """
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        if not isinstance(json.loads(state.read_text(encoding="utf-8")), dict):
            return "trainer_state.json is not a JSON object"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "trainer_state.json is unreadable"
    try:
        names = {p.name for p in checkpoint.iterdir()}
    except FileNotFoundError:
        return "moved away while being read"  # by another process of the same run
    # FSDP writes pytorch_model_fsdp*, several adapters go to sub-directories: accept those as weights.
    has_weights = bool(names & set(WEIGHT_FILES)) or any(
        n.startswith("pytorch_model_fsdp") or any((checkpoint / n / a).is_file() for a in ADAPTER_FILES)
        for n in names
    )
    if not has_weights:
        return "no model or adapter weights"
    # optimizer.pt, or accelerate's optimizer.bin / FSDP's optimizer_0; DeepSpeed keeps it in global_step*.
    has_optimizer = any(n.startswith(("optimizer", "global_step")) for n in names)
    if needs_optimizer and not (has_optimizer and "scheduler.pt" in names):
        return "no optimizer or scheduler state"
    return None


def resumable_checkpoint(folder: Path, *, needs_optimizer: bool = True) -> Path | None:
    """The newest complete `checkpoint-N` in `folder`, setting incomplete ones aside; None if none.

    Several processes of one run (DDP) may call this at once: each judges every checkpoint itself,
    so all choose the same one, and a rename another process has already done is not an error.
    """
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    chosen = None
    for _, path in sorted(found, reverse=True):
        reason = incomplete_reason(path, needs_optimizer=needs_optimizer)
        if reason is not None:
            set_aside(path, reason)
        elif chosen is None:
            chosen = path
    return chosen


def set_aside(checkpoint: Path, reason: str) -> Path | None:
    """Rename an incomplete checkpoint to `incomplete-checkpoint-N-<time>`, logged in one line."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = checkpoint.with_name(f"incomplete-{checkpoint.name}-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = checkpoint.with_name(f"incomplete-{checkpoint.name}-{stamp}-{suffix}")
    try:
        checkpoint.rename(target)
    except FileNotFoundError:
        return None  # another process of this run moved it first
    log.warning(
        "checkpoint %s is incomplete (%s): moved to %s, not resumed from", checkpoint, reason, target.name
    )
    return target
