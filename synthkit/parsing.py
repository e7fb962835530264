"""Turn a model's answer into JSON data. Only JSON is accepted: nothing from a model is ever
evaluated as code."""

import json
import re

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class ParseError(ValueError):
    pass


def parse_json_object(text: str) -> dict:
    """The JSON object in `text`: the whole answer, a fenced block, or the first object in prose."""
    if not text or not text.strip():
        raise ParseError("the answer is empty")
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    # Prose around the object: decode from each opening brace in turn.
    for match in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ParseError("the answer holds no JSON object")
