"""The batch schema shared by data, loss and training (the ground floor: imports nothing from plw).

A tokenised example, and a collated batch, carries per token:

- `input_ids`: the token ids, [T] (a batch: [B, T]);
- `labels`: the ids to predict, `IGNORE_INDEX` only where nothing is predicted (padding, the first
  token of a packed example); prompt tokens keep their ids because their weight, not a -100 label,
  decides how much they count;
- `loss_weights`: float in [0, 1], the weight of predicting this token from the ones before it;
- `completion_mask`: 1 on completion tokens (what the normaliser "completion" counts and what
  `completion_loss` is logged over), 0 on prompt tokens;
- `token_parts`: optional, which part of the example the token belongs to, as an index into `PARTS`,
  so losses can be logged per part and weights recomputed without re-tokenising;
- `seq_lengths`: optional, the lengths of the examples packed into one row.
"""

from __future__ import annotations

IGNORE_INDEX = -100

# Batch keys the loss consumes; the model's forward never sees them.
LOSS_KEYS: tuple[str, ...] = ("labels", "loss_weights", "completion_mask", "token_parts", "seq_lengths")

# Parts of an example. Non-chat records have prompt and completion; chat records have one part per
# role, "template" for the chat template's own tokens (role headers, end-of-turn markers),
# "assistant_earlier" for assistant turns before the last one, and "reasoning" / "reasoning_earlier"
# for the reasoning of the last / an earlier assistant turn. New parts go at the end: cached
# tokenisations store these indices.
PARTS: tuple[str, ...] = (
    "prompt",
    "completion",
    "system",
    "user",
    "assistant",
    "tool",
    "template",
    "assistant_earlier",
    "reasoning",
    "reasoning_earlier",
)
PART_IDS: dict[str, int] = {name: i for i, name in enumerate(PARTS)}
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
