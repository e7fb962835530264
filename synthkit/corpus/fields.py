"""Where a row's training texts are: an export block names each by a key (or a list of keys, the first
present wins), looked up in the row's outputs, then in its attributes (a grounded row's positive is the
chunk it was drawn from, an attribute, unless relabelling wrote another into its outputs)."""

from typing import Any, Optional


def lookup(row: dict, keys: Any) -> Optional[str]:
    """The text under `keys` in a flat row (Row.to_json()), or None."""
    for key in [keys] if isinstance(keys, str) else list(keys or []):
        for source in (row, row.get("attributes") or {}):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None
