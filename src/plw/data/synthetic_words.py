"""Small built-in word lists for the synthetic instruction suite (`plw.data.synthetic`).

Every list here was written for plw; no external dataset is copied. Words within a list are distinct
and none is a prefix-variant of another (no "grey"/"gray"), so an answer is never ambiguous after
casefolding. Surnames, towns and brands are built from syllables, so every person, product and city
is fictional.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Ada", "Bruno", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Kira",
    "Leon", "Mira", "Nadia", "Oscar", "Petra", "Quinn", "Rosa", "Simon", "Tara", "Ugo", "Vera",
    "Walter", "Xenia", "Yusuf", "Zora", "Anton", "Bianca", "Caleb", "Delia", "Emil", "Fiona",
    "Gideon", "Hanna", "Ivo", "Julia", "Karl", "Lena", "Marco", "Nora",
)  # fmt: skip
_SURNAME_HEADS = (
    "Bren", "Tal", "Mor", "Kes", "Val", "Dar", "Fen", "Hol", "Lin", "Quar", "Rav", "Sel", "Thorn",
    "Pim", "Ash", "Corr", "Dun", "Elm", "Gar", "Hart",
)  # fmt: skip
_SURNAME_TAILS = ("nick", "ford", "wick", "ley", "ton", "mere", "by", "holt", "well", "stead", "ridge")
_TOWN_HEADS = (
    "Vel", "Tarn", "Ost", "Mir", "Cal", "Brae", "Lun", "Kor", "Sun", "Ard", "Fal", "Glen", "Hav",
    "Ith", "Jor", "Pell", "Rook", "Sark",
)  # fmt: skip
_TOWN_TAILS = ("mora", "hollow", "vik", "port", "dale", "haven", "mouth", "stad", "wyn", "crest", "field")
_BRAND_HEADS = ("Zen", "Nova", "Kor", "Lumo", "Brio", "Vanta", "Oro", "Pixa", "Tessa", "Umbra", "Quill")
_BRAND_TAILS = ("tek", "line", "craft", "works", "mark", "ora", "ix", "wave")

COLOURS = (
    "red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown", "teal",
    "gold", "silver", "navy", "maroon", "olive",
)  # fmt: skip
ANIMALS = (
    "cat", "dog", "parrot", "rabbit", "hamster", "turtle", "goldfish", "ferret", "lizard", "canary",
    "gecko", "owl", "horse", "goat", "donkey", "pony",
)  # fmt: skip
FRUITS = (
    "apple", "pear", "plum", "cherry", "mango", "lemon", "banana", "peach", "grape", "melon", "kiwi",
    "apricot", "fig", "lime", "papaya", "quince",
)  # fmt: skip
OBJECTS = (
    "hammer", "lantern", "kettle", "ladder", "basket", "compass", "violin", "blanket", "candle",
    "anchor", "bucket", "mirror", "pillow", "saddle", "trumpet", "wagon", "helmet", "barrel",
)  # fmt: skip
OCCUPATIONS = (
    "baker", "nurse", "pilot", "carpenter", "teacher", "chemist", "librarian", "plumber",
    "architect", "farmer", "tailor", "dentist", "engineer", "florist", "journalist", "potter",
)  # fmt: skip
HOBBIES = (
    "chess", "hiking", "painting", "rowing", "knitting", "archery", "gardening", "fishing",
    "juggling", "cycling", "birdwatching", "fencing", "sailing", "origami",
)  # fmt: skip
INSTRUMENTS = ("piano", "cello", "flute", "drums", "harp", "oboe", "banjo", "accordion", "clarinet")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
MATERIALS = ("wood", "glass", "steel", "ceramic", "plastic", "cotton", "leather", "wool", "copper", "stone")
PRODUCT_KINDS = (
    "kettle", "lamp", "backpack", "blender", "bicycle", "umbrella", "speaker", "toaster", "drill",
    "jacket", "tent", "clock", "camera", "chair", "heater", "scooter",
)  # fmt: skip
INDUSTRIES = ("fishing", "mining", "textiles", "shipbuilding", "tourism", "farming", "software", "brewing")
RIVERS = ("Amsel", "Brook", "Corran", "Dova", "Eskel", "Fira", "Grell", "Hun", "Ister", "Jara")
ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
)  # fmt: skip
# Themes for list-based families: a name for the prompt and the words to draw from.
THEMES = {"colours": COLOURS, "animals": ANIMALS, "fruits": FRUITS, "objects": OBJECTS}


def surname(rng: random.Random) -> str:
    """A fictional surname such as "Brenholt"."""
    return rng.choice(_SURNAME_HEADS) + rng.choice(_SURNAME_TAILS)


def person(rng: random.Random) -> str:
    """A fictional full name such as "Clara Brenholt"."""
    return f"{rng.choice(FIRST_NAMES)} {surname(rng)}"


def town(rng: random.Random) -> str:
    """A fictional town such as "Velmora"."""
    return rng.choice(_TOWN_HEADS) + rng.choice(_TOWN_TAILS)


def brand(rng: random.Random) -> str:
    """A fictional brand such as "Lumocraft"."""
    return rng.choice(_BRAND_HEADS) + rng.choice(_BRAND_TAILS)


def product(rng: random.Random) -> str:
    """A fictional product such as "Lumocraft kettle"."""
    return f"{brand(rng)} {rng.choice(PRODUCT_KINDS)}"


def code(rng: random.Random) -> str:
    """A model or reference code such as "KX-482"."""
    letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXZ") for _ in range(2))
    return f"{letters}-{rng.randint(100, 999)}"
