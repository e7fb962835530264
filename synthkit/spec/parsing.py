"""Turn a model's answer into JSON data. Only JSON is accepted: nothing from a model is ever
evaluated as code (ast.literal_eval reads literals only)."""

import ast
import itertools
import json
import re

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
MAX_STARTS = 64  # embedded values tried from this many opening brackets at most: prose is not a maze


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
        except (ValueError, RecursionError):  # RecursionError: nested deeper than any answer should be
            continue
        if isinstance(value, dict):
            return value
    # Prose around the object: decode from each opening brace in turn.
    for match in itertools.islice(re.finditer(r"\{", text), MAX_STARTS):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise ParseError("the answer holds no JSON object")


def parse_only_json_object(text: str) -> dict:
    """The one JSON object of `text`, read strictly for answers that are verdicts (a judge's rating): the whole
    answer, the one fenced block, or a single object in prose. Unlike parse_json_object it never picks among
    objects: a second object (or any other brace) outside the one read makes the answer unreadable, since a
    verdict that quotes the row's `{"score": 5}` before its own `{"score": 1}` holds two."""
    if not text or not text.strip():
        raise ParseError("the answer is empty")
    try:
        value = json.loads(text.strip())
    except (ValueError, RecursionError):
        pass
    else:
        return _only_object(value)
    fences = list(_FENCE.finditer(text))
    if len(fences) > 1:
        raise ParseError(f"the answer holds {len(fences)} fenced blocks; exactly one JSON object is wanted")
    if fences:
        outside = text[: fences[0].start()] + text[fences[0].end() :]
        if "{" in outside:
            raise ParseError("the answer holds JSON outside its fenced block; exactly one JSON object is wanted")
        try:
            return _only_object(json.loads(fences[0].group(1).strip()))
        except (ValueError, RecursionError):
            raise ParseError("the fenced block is not one JSON object") from None
    start = text.find("{")
    if start < 0:
        raise ParseError("the answer holds no JSON object")
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        raise ParseError("the answer's JSON object is malformed or cut short") from None
    if "{" in text[end:]:
        raise ParseError("the answer holds more than one JSON object; exactly one is wanted")
    return value


def _only_object(value) -> dict:
    if not isinstance(value, dict):
        raise ParseError(f"the answer is a JSON {type(value).__name__}, not an object")
    return value


_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$")


def parse_list(text: str) -> list:
    """The list in `text`: a JSON list (whole, fenced or embedded), an object holding one list, a
    Python literal list of strings (read with ast.literal_eval, which runs nothing), or else the
    items of a bullet or numbered list."""
    if not text or not text.strip():
        raise ParseError("the answer is empty")
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    if "[" in text and "]" in text:  # a list in prose: from the first [ to the last ]
        candidates.append(text[text.index("[") : text.rindex("]") + 1])
    starts = [m.start() for m in itertools.islice(re.finditer(r"[\[{]", text), MAX_STARTS)]
    for candidate in candidates:
        value = _list_in(candidate)
        if value is not None:
            return value
    for start in starts:
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        value = _as_list(value)
        if value is not None:
            return value
    items = [m.group(1) for m in map(_ITEM.match, text.splitlines()) if m]
    if items:
        return [item.strip("\"'") for item in items]
    raise ParseError("the answer holds no list")


def _list_in(candidate: str):
    try:
        return _as_list(json.loads(candidate))
    except (ValueError, RecursionError):
        pass
    try:
        value = ast.literal_eval(candidate)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return _as_list(value)


def _as_list(value):
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def schema_error(validator, value) -> "str | None":
    """The first reason `value` breaks the schema of `validator` (a jsonschema validator), as a model is told it
    (`path/to/key: message`), or None when it is valid."""
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message
