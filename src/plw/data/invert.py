"""Prompt inversion: turn an instruction dataset into a short-completion one.

AlpacaDataShort (Rg 0.08) was built from AlpacaDataCleaned (Rg 7.83) this way: the original response
becomes the input and the original instruction becomes the (short) target, under one fixed
instruction asking which instruction produced the text. Layout of an inverted record:

    instruction: DEFAULT_INVERSION_INSTRUCTION (or the one given)
    input:       original output                               if the original input is empty
                 original input + "\\n\\n" + original output   otherwise
    output:      original instruction
    source_index: position of the original record in the input list

The original input is kept because many instructions ("Classify this sentence") cannot be recovered
from the response alone. Prompt/completion records invert the same way: completion -> input,
prompt -> output. Texts are copied verbatim, order is kept, so inversion is deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plw.data.formats import RecordError, detect_format, text_field
from plw.data.sources import Record
from plw.errors import PLWError
from plw.files import write_text_atomic

DEFAULT_INVERSION_INSTRUCTION = (
    "Write the instruction that the following text was written in response to. "
    "Reply with the instruction only."
)
INVERTIBLE_FORMATS = ("alpaca", "prompt_completion")
INPUT_SEPARATOR = "\n\n"


def invert_record(
    record: Record, fmt: str, instruction: str = DEFAULT_INVERSION_INSTRUCTION
) -> dict[str, str]:
    """The inverted Alpaca fields of one record (without `source_index`).

    Raises:
        RecordError: a missing, empty or mistyped field.
        PLWError: a chat record (not invertible).
    """
    if fmt not in INVERTIBLE_FORMATS:
        raise PLWError(
            f"{record.where}: prompt inversion supports {' and '.join(INVERTIBLE_FORMATS)} records, "
            f"not {fmt}; convert chat data to prompt/completion first"
        )
    if fmt == "prompt_completion":
        target, text = text_field(record, "prompt"), text_field(record, "completion")
    else:
        target = text_field(record, "instruction")
        extra = text_field(record, "input", required=False, allow_empty=True)
        output = text_field(record, "output")
        text = f"{extra}{INPUT_SEPARATOR}{output}" if extra.strip() else output
    return {"instruction": instruction, "input": text, "output": target}


def invert_records(
    records: list[Record],
    instruction: str = DEFAULT_INVERSION_INSTRUCTION,
    *,
    fmt: str = "auto",
    skip_bad_records: bool = False,
    skipped: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Prompt-invert records into Alpaca-format dicts with a `source_index` each.

    Args:
        records: alpaca or prompt_completion records.
        instruction: the fixed instruction of every inverted record.
        fmt: record format, or "auto" to detect it per record.
        skip_bad_records: leave out malformed records (e.g. an empty output) instead of failing.
        skipped: if given, the locations of left-out records are appended to it.

    Raises:
        PLWError: an empty instruction, a chat record, or a malformed record unless skipping.
    """
    if not isinstance(instruction, str) or not instruction.strip():
        raise PLWError("the inversion instruction must be a non-empty string")
    out = []
    for index, record in enumerate(records):
        try:
            record_fmt = detect_format(record) if fmt == "auto" else fmt
            inverted = invert_record(record, record_fmt, instruction)
        except RecordError as err:
            if not skip_bad_records:
                raise PLWError(f"{err} (skip_bad_records=true skips such records)") from err
            if skipped is not None:
                skipped.append(err.where)
            continue
        out.append({**inverted, "source_index": index})
    return out


def write_records(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write records as a JSON list (.json) or JSON lines (.jsonl), atomically.

    Raises:
        PLWError: any other suffix.
    """
    path = Path(path).expanduser()
    if path.suffix not in (".json", ".jsonl"):
        raise PLWError(f"{path}: output must end in .json (a JSON list) or .jsonl (JSON lines)")
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    write_text_atomic(path, text)  # a killed run never leaves half a dataset behind
    return path
