"""A SentencePiece `.model` file as a (small) Hugging Face-style tokenizer, and a loader for any tokenizer.

transformers 5 converts a SentencePiece model into a fast tokenizer on load, and for LLaMA's
`tokenizer.model` the conversion is not exact: it drops the leading-space marker, so "Hello" becomes
10994 instead of LLaMA's 15043 and token counts drift. The paper's Rg values are LLaMA token counts,
so `.model` files are read with the `sentencepiece` library itself, behind the subset of the
tokenizer interface that `plw.data.stats` and `plw.data.tokenize` use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plw.errors import PLWError

# Files that mark a directory as a Hugging Face tokenizer; without them a lone tokenizer.model is
# read with sentencepiece.
_HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json")


class SentencePieceTokenizer:
    """A SentencePiece model with the parts of the HF tokenizer interface plw needs.

    Special tokens follow LLaMA: `add_special_tokens=True` prepends BOS and appends nothing. The
    model has no chat template (`chat_template = None`), so chat records need a HF tokenizer.

    Args:
        model_file: path to a SentencePiece `.model` file.
        add_bos: prepend BOS when `add_special_tokens=True`.
        add_eos: append EOS when `add_special_tokens=True`.
    """

    chat_template = None

    def __init__(self, model_file: str | Path, *, add_bos: bool = True, add_eos: bool = False):
        import sentencepiece

        self.name_or_path = str(model_file)
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        except (OSError, RuntimeError) as err:
            raise PLWError(f"{model_file}: not a readable SentencePiece model: {err}") from err
        self.add_bos, self.add_eos = add_bos, add_eos
        self.bos_token_id = _id_or_none(self.sp.bos_id())
        self.eos_token_id = _id_or_none(self.sp.eos_id())
        self.unk_token_id = _id_or_none(self.sp.unk_id())
        # LLaMA defines no pad id; like plw.models.load_tokenizer, pad with EOS (padding has weight 0).
        self.pad_token_id = _id_or_none(self.sp.pad_id())
        if self.pad_token_id is None:
            self.pad_token_id = self.eos_token_id
        self.bos_token = self._piece(self.bos_token_id)
        self.eos_token = self._piece(self.eos_token_id)
        self.pad_token = self._piece(self.pad_token_id)

    def __call__(self, text: str | list[str], add_special_tokens: bool = True, **_: Any) -> dict[str, list]:
        """Encode one text or a list of texts (one sentencepiece call for the whole list)."""
        single = isinstance(text, str)
        ids = self.sp.encode([text] if single else list(text))
        if add_special_tokens:
            head = [self.bos_token_id] if self.add_bos and self.bos_token_id is not None else []
            tail = [self.eos_token_id] if self.add_eos and self.eos_token_id is not None else []
            ids = [head + row + tail for row in ids]
        return {"input_ids": ids[0] if single else ids}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text."""
        return self(text, add_special_tokens=add_special_tokens)["input_ids"]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        """Text of token ids; BOS/EOS decode to nothing either way (sentencepiece control symbols)."""
        if skip_special_tokens:
            special = {self.bos_token_id, self.eos_token_id, self.pad_token_id}
            ids = [i for i in ids if i not in special]
        return self.sp.decode(list(ids))

    def batch_decode(self, rows: list[list[int]], skip_special_tokens: bool = False) -> list[str]:
        """Texts of several id lists."""
        return [self.decode(row, skip_special_tokens=skip_special_tokens) for row in rows]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        """The pieces of token ids."""
        return [self.sp.id_to_piece(i) for i in ids]

    def get_vocab(self) -> dict[str, int]:
        """Piece -> id for the whole vocabulary."""
        return {self.sp.id_to_piece(i): i for i in range(self.sp.get_piece_size())}

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer({self.name_or_path!r}, vocab_size={self.vocab_size})"

    def _piece(self, token_id: int | None) -> str | None:
        return None if token_id is None else self.sp.id_to_piece(token_id)


def _id_or_none(token_id: int) -> int | None:
    return token_id if token_id >= 0 else None


def sentencepiece_file(spec: str) -> Path | None:
    """The `.model` file `spec` names: the file itself, or a directory holding only `tokenizer.model`."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".model":
        return path
    lone_model = (path / "tokenizer.model").is_file() and not any(
        (path / name).is_file() for name in _HF_TOKENIZER_FILES
    )
    return path / "tokenizer.model" if path.is_dir() and lone_model else None


def load_any_tokenizer(spec: str) -> Any:
    """Load a tokenizer by hub id, local directory, GGUF file, alias, or SentencePiece `.model` file.

    A `.model` file (or a directory with nothing but `tokenizer.model`) gives a
    `SentencePieceTokenizer`; anything else goes through `plw.models.load_tokenizer`.

    Raises:
        PLWError: the tokenizer cannot be found or read.
    """
    model_file = sentencepiece_file(spec)
    if model_file is not None:
        return SentencePieceTokenizer(model_file)
    if spec.endswith(".model"):
        raise PLWError(f"tokenizer '{spec}': SentencePiece model file not found")
    from plw.models import load_tokenizer

    return load_tokenizer(spec)
