"""Task families of the synthetic suite: each turns a seeded RNG into one record with a known answer.

A generator returns `{"instruction", "input", "output"}`. Short-completion families put a long context
in `input` and a one-line answer in `output` (Rg well below 1); the long-completion families live in
`plw.data.synthetic_long`. All randomness comes from the `random.Random` passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from plw.data import synthetic_words as w

Sampler = Callable[[random.Random], str]


def _num(lo: int, hi: int) -> Sampler:
    def sample(rng: random.Random) -> str:
        return str(rng.randint(lo, hi))

    sample.numeric = True  # type: ignore[attr-defined]  # marks fields `compare` can order
    return sample


def _pick(words: tuple[str, ...]) -> Sampler:
    return lambda rng: rng.choice(words)


# Record schemas for `lookup`, `compare` and `expand`: the first field names the entity. Field
# names carry their unit so every value is a bare word or number.
SCHEMAS: dict[str, dict[str, Sampler]] = {
    "person": {
        "name": w.person, "age": _num(19, 88), "home town": w.town, "occupation": _pick(w.OCCUPATIONS),
        "favourite colour": _pick(w.COLOURS), "pet": _pick(w.ANIMALS), "hobby": _pick(w.HOBBIES),
        "birth month": _pick(w.MONTHS), "height in cm": _num(150, 199),
        "employee number": _num(1000, 9999), "instrument": _pick(w.INSTRUMENTS),
        "favourite fruit": _pick(w.FRUITS), "shoe size": _num(36, 47), "car colour": _pick(w.COLOURS),
    },
    "product": {
        "name": w.product, "price in dollars": _num(5, 900), "weight in grams": _num(100, 9000),
        "colour": _pick(w.COLOURS), "material": _pick(w.MATERIALS), "warranty in years": _num(1, 9),
        "units in stock": _num(10, 999), "model code": w.code, "factory town": w.town,
        "release month": _pick(w.MONTHS), "designer": w.person, "battery life in hours": _num(2, 80),
        "rating out of 100": _num(20, 99),
    },
    "city": {
        "name": w.town, "population": _num(2000, 990000), "mayor": w.person,
        "founded in year": _num(1100, 1950), "river": _pick(w.RIVERS), "main industry": _pick(w.INDUSTRIES),
        "altitude in metres": _num(3, 2900), "twin town": w.town, "postal code": _num(10000, 99999),
        "area in square km": _num(5, 800), "rainfall in mm": _num(200, 2400), "mascot": _pick(w.ANIMALS),
        "town colour": _pick(w.COLOURS),
    },
}  # fmt: skip
# Numeric fields of each schema: the attributes `compare` asks about.
NUMERIC = {
    kind: [f for f, s in fields.items() if getattr(s, "numeric", False)] for kind, fields in SCHEMAS.items()
}
LABEL_PAIRS = (
    ("HIGH", "LOW"), ("HEAVY", "LIGHT"), ("ACCEPT", "REJECT"), ("PASS", "FAIL"), ("KEEP", "DISCARD"),
    ("PRIORITY", "ROUTINE"), ("EXPRESS", "STANDARD"), ("GOLD", "SILVER"),
)  # fmt: skip
# `rule` item attributes: name -> (unit, low, high). Ranges overlap so the ruled one must be read.
RULE_ATTRS = {
    "weight": ("kg", 1, 99), "price": ("dollars", 5, 95), "age": ("years", 1, 60),
    "height": ("cm", 10, 99), "speed": ("km/h", 5, 90), "score": ("points", 0, 100),
}  # fmt: skip


def distinct_values(rng: random.Random, schema: dict[str, Sampler], fields: list[str]) -> dict[str, str]:
    """Sample each field, redrawing until no two values are equal (so an answer is never ambiguous)."""
    values: dict[str, str] = {}
    for field in fields:
        value = schema[field](rng)
        while value.casefold() in {v.casefold() for v in values.values()}:
            value = schema[field](rng)
        values[field] = value
    return values


def lookup(rng: random.Random) -> dict[str, str]:
    """A record of 6-12 "field: value" lines; ask for one field."""
    kind = rng.choice(list(SCHEMAS))
    schema = SCHEMAS[kind]
    others = rng.sample(list(schema)[1:], rng.randint(5, 11))
    values = distinct_values(rng, schema, ["name", *others])
    field = rng.choice(others)
    lines = "\n".join(f"{key}: {value}" for key, value in values.items())
    instruction = (
        f'Read the {kind} record below and give the value of its "{field}" field. Answer with the value only.'
    )
    return {
        "instruction": instruction,
        "input": f"{kind.capitalize()} record\n{lines}",
        "output": values[field],
    }


def count(rng: random.Random) -> dict[str, str]:
    """A list of 16-30 words from a small vocabulary; how often does one of them appear."""
    theme = rng.choice(list(w.THEMES))
    vocab = rng.sample(w.THEMES[theme], rng.randint(4, 7))
    size = rng.randint(16, 30)
    times = rng.randint(1, 6)
    items = [vocab[0]] * times + [rng.choice(vocab[1:]) for _ in range(size - times)]
    rng.shuffle(items)
    instruction = (
        f'How many times does the word "{vocab[0]}" appear in the list of {theme} below? '
        "Answer with a number only."
    )
    return {
        "instruction": instruction,
        "input": f"List of {theme}:\n" + ", ".join(items),
        "output": str(times),
    }


def rule(rng: random.Random) -> dict[str, str]:
    """A classification rule (numeric threshold or material set) and one item to label."""
    yes, no = rng.sample(rng.choice(LABEL_PAIRS), 2)
    attrs = rng.sample(list(RULE_ATTRS), rng.randint(3, 5))
    item = {name: str(rng.randint(*RULE_ATTRS[name][1:])) for name in attrs}
    item["material"], item["colour"] = rng.choice(w.MATERIALS), rng.choice(w.COLOURS)
    if rng.random() < 0.7:
        text, answer = _threshold_rule(rng, attrs[0], item, yes, no)
    else:
        chosen = rng.sample(w.MATERIALS, 3)
        text = (
            f"Label an item {yes} if it is made of {chosen[0]}, {chosen[1]} or {chosen[2]}, otherwise {no}."
        )
        # Half the items match; a uniform material would match only 3 in 10 and favour the "otherwise" label.
        matches = rng.random() < 0.5
        item["material"] = rng.choice(chosen if matches else [m for m in w.MATERIALS if m not in chosen])
        answer = yes if matches else no
    keys = list(item)
    rng.shuffle(keys)
    lines = "\n".join(
        f"{k}: {item[k]} {RULE_ATTRS[k][0]}" if k in RULE_ATTRS else f"{k}: {item[k]}" for k in keys
    )
    body = f"Rule: {text}\n\nItem: {w.product(rng)}\n{lines}"
    instruction = "Apply the rule to the item. Answer with the label only."
    return {"instruction": instruction, "input": body, "output": answer}


def _threshold_rule(
    rng: random.Random, attr: str, item: dict[str, str], yes: str, no: str
) -> tuple[str, str]:
    """Fix a threshold and move the item's value to a random side of it (never onto it)."""
    unit, low, high = RULE_ATTRS[attr]
    threshold = rng.randint(low + 2, high - 2)
    above = rng.random() < 0.5
    item[attr] = str(rng.randint(threshold + 1, high) if above else rng.randint(low, threshold - 1))
    word = rng.choice(("above", "below"))
    text = f"Label an item {yes} if its {attr} is {word} {threshold} {unit}, otherwise {no}."
    return text, yes if above == (word == "above") else no


def extract(rng: random.Random) -> dict[str, str]:
    """Pick an item by position (numbered or comma list) or the word right after a given word."""
    mode = rng.choice(("numbered", "ordinal", "after"))
    if mode == "after":
        return _word_after(rng)
    first, second = rng.sample(list(w.THEMES), 2)
    items = rng.sample(
        w.THEMES[first] + w.THEMES[second], rng.randint(14, 24) if mode == "numbered" else rng.randint(20, 28)
    )
    # Ordinals are spelled out only up to "sixteenth"; longer comma lists just add context.
    index = rng.randrange(min(len(items), len(w.ORDINALS)))
    if mode == "numbered":
        body = "\n".join(f"{i}. {item}" for i, item in enumerate(items, start=1))
        question = f"What is item number {index + 1} in the numbered list below?"
    else:
        body = ", ".join(items)
        question = f"What is the {w.ORDINALS[index]} item in the comma-separated list below?"
    return {"instruction": f"{question} Answer with the item only.", "input": body, "output": items[index]}


def _word_after(rng: random.Random) -> dict[str, str]:
    pool = [word for words in w.THEMES.values() for word in words]
    query = rng.choice(pool)
    # The asked word occurs exactly once, or "the word after it" would be ambiguous.
    rest = [word for word in pool if word != query]
    words = [rng.choice(rest) for _ in range(rng.randint(35, 60))]
    position = rng.randrange(len(words) - 1)
    words[position] = query
    instruction = f'Which word comes right after "{query}" in the sequence below? Answer with the word only.'
    return {"instruction": instruction, "input": " ".join(words), "output": words[position + 1]}


def compare(rng: random.Random) -> dict[str, str]:
    """Two entries with the same numeric fields; which has the larger (or smaller) value of one."""
    kind = rng.choice(list(SCHEMAS))
    schema = SCHEMAS[kind]
    attrs = rng.sample(NUMERIC[kind], rng.randint(4, len(NUMERIC[kind])))
    asked = rng.choice(attrs)
    first = distinct_values(rng, schema, ["name", *attrs])
    second = distinct_values(rng, schema, ["name", *attrs])
    while second["name"] == first["name"] or second[asked] == first[asked]:
        second = distinct_values(rng, schema, ["name", *attrs])
    larger = rng.random() < 0.5
    pick = max if larger else min
    winner = pick((first, second), key=lambda entry: int(entry[asked]))
    blocks = ["\n".join(f"{key}: {value}" for key, value in entry.items()) for entry in (first, second)]
    size = "larger" if larger else "smaller"
    instruction = (
        f'Which of the two {kind} entries below has the {size} value for "{asked}"? '
        "Answer with the name only."
    )
    return {"instruction": instruction, "input": "\n\n".join(blocks), "output": winner["name"]}
