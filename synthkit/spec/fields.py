"""Where a row's training texts are: an export block names each by a key (or a list of keys, the first present wins),
looked up in the row's outputs, then in its attributes (a grounded row's positive is the chunk it was drawn from, an
attribute, unless relabelling wrote another into its outputs); or by a template of them, as an instructed query is
its query and its instruction: `query: "{{ user_query }} {{ instruction }}"`."""

from typing import Any, Optional

from synthkit.spec.templates import compile_template, render


def lookup(row: dict, keys: Any) -> Optional[str]:
    """The text under `keys` in a flat row (Row.to_json()), or None."""
    attributes = row.get("attributes") or {}
    for key in [keys] if isinstance(keys, str) else list(keys or []):
        if "{{" in key:  # a template of the row's fields
            text = render(compile_template(key, "the export block", "field"), {**attributes, **row}, "the export block")
            if text.strip():
                return " ".join(text.split())
            continue
        for source in (row, attributes):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None
