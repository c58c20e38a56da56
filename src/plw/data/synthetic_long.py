"""Long-completion families of the synthetic suite: a short prompt, a longer fixed-template answer.

Both keep Rg above 1 (completion longer than instruction + input, in words and in tokens) while the
answer stays fully determined by the prompt, so exact match still applies.
"""

from __future__ import annotations

import random

from plw.data import synthetic_words as w
from plw.data.synthetic_families import SCHEMAS, distinct_values

EXPAND_SENTENCE = "According to the record, the {field} of {name} is {value}."


def expand(rng: random.Random) -> dict[str, str]:
    """3-5 fields of a record, each to be written out as a fixed-template sentence on its own line."""
    kind = rng.choice(list(SCHEMAS))
    schema = SCHEMAS[kind]
    fields = rng.sample(list(schema)[1:], rng.randint(3, 5))
    values = distinct_values(rng, schema, ["name", *fields])
    name = values.pop("name")
    # The name is a header, not a field, so the instruction needs no "except the name" clause.
    body = f"Record of {name}\n" + "\n".join(f"{field}: {value}" for field, value in values.items())
    instruction = (
        'Rewrite each field as one line: "According to the record, the <field> of <name> is <value>."'
    )
    lines = [EXPAND_SENTENCE.format(field=f, name=name, value=v) for f, v in values.items()]
    return {"instruction": instruction, "input": body, "output": "\n".join(lines)}


def reverse(rng: random.Random) -> dict[str, str]:
    """A comma list of 12-20 distinct words, to be written back reversed, one numbered item per line.

    The numbering is what makes the answer longer than the prompt: a plain reversed list would be
    exactly as long as the list itself, so Rg could never exceed 1.
    """
    first, second = rng.sample(list(w.THEMES), 2)
    items = rng.sample(w.THEMES[first] + w.THEMES[second], rng.randint(12, 20))
    output = "\n".join(f"{i}. {item}" for i, item in enumerate(reversed(items), start=1))
    instruction = "Write the list in reverse order, one numbered item per line."
    return {"instruction": instruction, "input": ", ".join(items), "output": output}
