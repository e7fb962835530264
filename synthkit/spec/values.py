"""`file:` values: an attribute given as `file:path` takes its values from that file. The one place
that reads the syntax; the plan asks it whether such a file is an earlier brainstorm's output."""

import json
from pathlib import Path
from typing import Any, Optional

from synthkit.core.errors import UserError
from synthkit.core.paths import open_regular

FILE_PREFIX = "file:"
MAX_VALUES_FILE_BYTES = 64 * 2**20  # a values file is read whole: refuse what cannot be one


def file_path(value: Any) -> Optional[Path]:
    """The path a `file:...` value names, or None for any other value."""
    if isinstance(value, str) and value.startswith(FILE_PREFIX):
        return Path(value[len(FILE_PREFIX) :]).expanduser()
    return None


def read_values_file(name: str, path: Path) -> list:
    """Values from a file: one per line (.txt and others), a JSON list (.json), or JSONL rows holding `name`."""
    try:
        if path.stat().st_size > MAX_VALUES_FILE_BYTES:
            raise UserError(
                f"task.{name}: {path} is larger than {MAX_VALUES_FILE_BYTES >> 20} MB; is it a list of values?"
            )
        with open_regular(path, f"task.{name}:") as f:  # a FIFO would block the run for ever
            raw = f.read()
    except OSError as e:
        raise UserError(f"task.{name}: cannot read {path}: {e.strerror}") from None
    if b"\x00" in raw:
        raise UserError(f"task.{name}: {path} is a binary file; give a text file of values, one per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"task.{name}: {path} is not UTF-8 text; give a text file of values, one per line") from None
    try:
        if path.suffix == ".json":
            values = json.loads(text)
        elif path.suffix == ".jsonl":
            values = [json.loads(line)[name] for line in text.splitlines() if line.strip()]
        else:
            values = [line.strip() for line in text.splitlines()]
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise UserError(f"task.{name}: {path} is not a list of values ({type(e).__name__}: {e})") from None
    if not isinstance(values, list):
        raise UserError(f"task.{name}: {path} must hold a JSON list")
    return values
