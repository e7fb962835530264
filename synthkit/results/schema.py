"""The column types of a JSONL file of rows, as a dataset card declares them (`dataset_info.features`). Rows of
several task types hold different keys, and their attributes differ: `datasets` infers a schema from the first
block it reads and fails on a later one with other keys, unless the card declares the union of all of them."""

from typing import Any

STRING = "string"


def infer(value: Any):
    """The type of one JSON value: a dtype name, ("struct", {key: type}), ("list", type), or None (null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return STRING
    if isinstance(value, dict):
        return ("struct", {k: infer(v) for k, v in value.items()})
    if isinstance(value, list):
        item = None
        for v in value:
            item = merge(item, infer(v))
        return ("list", item)
    return STRING


def merge(a, b):
    """The type that holds values of both: numbers widen to float, structs take the union of their keys,
    anything else that disagrees is read as text."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, str) and isinstance(b, str) and {a, b} == {"int64", "float64"}:
        return "float64"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        if a[0] == "struct":
            return ("struct", {k: merge(a[1].get(k), b[1].get(k)) for k in {**a[1], **b[1]}})
        return ("list", merge(a[1], b[1]))
    return STRING


def yaml_features(schema) -> list:
    """`dataset_info.features` of the card, in the YAML form `datasets` reads."""
    return [_feature(name, kind) for name, kind in schema[1].items()] if schema else []


def _feature(name: str, kind) -> dict:
    if isinstance(kind, tuple) and kind[0] == "struct":
        fields = [_feature(k, v) for k, v in kind[1].items()]
        return {"name": name, "struct": fields} if fields else {"name": name, "dtype": STRING}
    if isinstance(kind, tuple):
        item = _feature("item", kind[1])
        return {"name": name, "list": item["struct"] if "struct" in item else item["dtype"]}
    return {"name": name, "dtype": kind or STRING}


def datasets_features(schema):
    """The schema as datasets.Features, to read a JSONL file of rows with the union of their columns."""
    import datasets

    def feature(kind):
        if isinstance(kind, tuple) and kind[0] == "struct":
            return {k: feature(v) for k, v in kind[1].items()} if kind[1] else datasets.Value(STRING)
        if isinstance(kind, tuple):
            return datasets.List(feature(kind[1]))
        return datasets.Value(kind or STRING)

    return datasets.Features({name: feature(kind) for name, kind in schema[1].items()})
