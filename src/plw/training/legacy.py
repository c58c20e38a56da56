"""The loss settings' keys from before they moved into the `loss:` section (a `LossConfig`).

Old configs, overrides and studies keep working: `move_legacy_loss_keys` moves each old key to its
new one, with a warning naming the new key. `legacy_layout` does the reverse for a dumped config,
for what must not change with the move (study fingerprints, `plw.experiment.plan.fingerprint`).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

# Old dotted key -> new key.
LEGACY_LOSS_KEYS = {
    "normalizer": "loss.normalizer",
    "loss_impl": "loss.impl",
    "chunk_size": "loss.chunk_size",
    "regularization.label_smoothing": "loss.label_smoothing",
    "regularization.minkowski_lambda": "loss.minkowski_lambda",
    "regularization.minkowski_p": "loss.minkowski_p",
}
logger = logging.getLogger("plw")


def move_legacy_loss_keys(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A copy of a TrainConfig mapping with each old loss key moved to its `loss.` key, logging one
    warning each (logger "plw"); `where` prefixes keys in messages (a study's `train.`).

    Raises:
        ValueError: an old key and its new key both given, with different values.
    """
    data = dict(data)
    for old, new in LEGACY_LOSS_KEYS.items():
        *parent, key = old.split(".")
        section = data.get(parent[0]) if parent else data
        loss = data.get("loss")
        loss = loss.model_dump(exclude_unset=True) if isinstance(loss, BaseModel) else loss
        if not isinstance(section, dict) or key not in section or not isinstance(loss, dict | None):
            continue  # nothing to move, or a `loss` that is no mapping, which validation reports
        if parent:
            section = data[parent[0]] = dict(section)
        value, field = section.pop(key), new.removeprefix("loss.")
        if loss and field in loss and loss[field] != value:
            raise ValueError(
                f"{where}{old} (the old key of {where}{new}) and {where}{new} are both given, with "
                f"different values ({value!r} and {loss[field]!r}); give only {where}{new}"
            )
        data["loss"] = {**(loss or {}), field: value}
        logger.warning("plw: %s%s is now %s%s (the old key still works)", where, old, where, new)
    return data


def legacy_layout(dump: dict[str, Any]) -> dict[str, Any]:
    """A TrainConfig's `model_dump` with its `loss` section back at the old keys (no `loss` key)."""
    dump = dict(dump)
    loss = dump.pop("loss")
    dump["regularization"] = dict(dump["regularization"])
    for old, new in LEGACY_LOSS_KEYS.items():
        *parent, key = old.split(".")
        (dump[parent[0]] if parent else dump)[key] = loss[new.removeprefix("loss.")]
    return dump
