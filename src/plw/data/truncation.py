"""Fitting an example into `max_length` without silently losing completion tokens."""

from __future__ import annotations

TRUNCATIONS = ("left", "right", "drop")


def truncate(
    ids: list[int], mask: list[int], max_length: int | None, how: str, *, bos_id: int | None = None
) -> tuple[str, list[int], list[int]]:
    """Fit an example into `max_length` (see `truncation_plan`).

    Returns:
        (status, ids, mask) with status "ok", "truncated" or "dropped".
    """
    status, keep = truncation_plan(mask, ids, max_length, how, bos_id)
    if keep is None or status == "dropped":
        return status, ids, mask
    return status, [ids[i] for i in keep], [mask[i] for i in keep]


def truncation_plan(
    mask: list[int], ids: list[int], max_length: int | None, how: str, bos_id: int | None = None
) -> tuple[str, list[int] | None]:
    """Which tokens of an example to keep so it fits `max_length` without silently losing completion.

    `left` (default) cuts prompt tokens from the left, keeping a leading BOS and everything from the
    start of the last completion run; an example whose last completion alone does not fit is
    dropped. `right` cuts from the end (completion tokens may be lost; dropped if none remain).
    `drop` drops every over-long example.

    Returns:
        (status, kept token indices or None for all) with status "ok", "truncated" or "dropped".
    """
    if max_length is None or len(ids) <= max_length:
        return "ok", None
    if how == "drop":
        return "dropped", None
    if how == "right":
        return ("truncated" if any(mask[:max_length]) else "dropped"), list(range(max_length))
    keep_bos = bos_id is not None and ids[0] == bos_id and mask[0] == 0
    start = _last_run_start(mask)
    room = max_length - (len(ids) - start) - int(keep_bos)
    if room < 0:
        return "dropped", None
    cut = max(start - room, int(keep_bos))
    return "truncated", ([0] if keep_bos else []) + list(range(cut, len(ids)))


def _last_run_start(mask: list[int]) -> int:
    end = max(i for i, m in enumerate(mask) if m) if any(mask) else len(mask) - 1
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return start
