"""Where each rendered segment's tokens end, and the per-token labels that follow from it.

A record renders to segments (`plw.data.formats.Segment`: text, side, part, message weight). The full
text is tokenised once; each boundary is the longest common prefix of the full ids and the ids of the
text up to it. The prompt's tokens are thus exactly its own tokenisation (a prefix of the full
sequence), and a token straddling the prompt/completion boundary (a merge across it) is completion,
never prompt. Parts are cut the same way, inside each prompt or completion run.
"""

from __future__ import annotations

from plw.batch import PART_IDS
from plw.data.formats import Segment


def segment_ends(full: list[int], prefixes: list[list[int]], segments: list[Segment]) -> list[int]:
    """The token index where each segment ends.

    The prompt/completion runs are cut exactly as when segments were only prompt and completion: a
    token straddling a run boundary goes to the completion side. Parts are then cut inside each run,
    clamped to it, so a token's part is always on its side.
    """
    runs = [k for k in range(len(segments) - 1) if segments[k].is_completion != segments[k + 1].is_completion]
    run_ends = _cut(full, [prefixes[k] for k in runs], [segments[k].is_completion for k in runs])
    ends = _cut(full, prefixes, [s.is_completion for s in segments[:-1]])
    lower, previous = 0, 0
    for k in range(len(segments)):
        run = sum(1 for r in runs if r < k)  # the run segment k lies in
        upper = run_ends[run]
        ends[k] = upper if k in runs or k == len(segments) - 1 else min(max(ends[k], lower, previous), upper)
        previous = ends[k]
        if k in runs:
            lower = upper
    return ends


def _cut(full: list[int], prefixes: list[list[int]], completion: list[bool]) -> list[int]:
    """Token boundaries after each prefix (monotone), plus the end; a straddling token goes to a
    completion segment before the boundary."""
    bounds, previous = [], 0
    for prefix, is_completion in zip(prefixes, completion, strict=True):
        cut = _common_prefix(prefix, full)
        if cut < len(prefix) and is_completion:
            cut = min(cut + 1, len(full))  # a straddling token keeps its completion characters completion
        previous = max(previous, cut)
        bounds.append(previous)
    bounds.append(len(full))
    return bounds


def per_token(segments: list[Segment], ends: list[int]) -> dict[str, list]:
    """Per-token `completion_mask`, `token_parts` and `message_weights` from segment ends."""
    out: dict[str, list] = {"completion_mask": [], "token_parts": [], "message_weights": []}
    start = 0
    for segment, end in zip(segments, ends, strict=True):
        n = max(end - start, 0)
        out["completion_mask"].extend([int(segment.is_completion)] * n)
        out["token_parts"].extend([PART_IDS[segment.part]] * n)
        out["message_weights"].extend([float(segment.message_weight)] * n)
        start = max(start, end)
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
