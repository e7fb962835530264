"""A row as one typed record: what every writer and reader of synthkit's JSONL files goes through.

A row is identified by its index, its cell (empty in a one-cell run), the seed and the task type; it
holds the task's outputs, the attributes its prompt was rendered from, tags added by the run around it
(the brainstorm row its definition came from, sweep coordinates, grid cell...), the attempts it took
and what it cost. A rejected row has a reason (and a failed check, and the raw answer) instead of
outputs. The JSON line is flat, as synthkit has always written it: outputs sit beside the identity
keys, so no output key may take a reserved name."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError

PLACEHOLDER_MODEL = "mock"  # the model name of llm=mock rows: schema-valid placeholder text, not training data

IDENTITY = ("row", "cell", "seed", "task_type")
BOOKKEEPING = ("model_name", "attributes", "attempts", "usage", "steps", "reason", "check", "raw")
# Written by the run around the row, never by the model.
TAGS = (
    "recipe",
    "grid",
    "category",
    "brainstorm_row",
    "brainstorm_file",
    "refills",
    "judge_score",  # the LLM judge's 1-5 rating of the row (judge=true)
    "sweep",
    "job",
    "source",
    "corpus",
)
MERGE_TAGS = ("sweep", "job")  # added when a sweep's jobs are merged: written last
RESERVED = frozenset(IDENTITY + BOOKKEEPING + TAGS)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Optional[float] = 0.0  # None when the model has no price
    cached: int = 0  # answers replayed from the response cache

    def add(self, prompt_tokens: int, completion_tokens: int, cost_usd: Optional[float], cached: bool) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cached += cached
        self.cost_usd = None if cost_usd is None or self.cost_usd is None else self.cost_usd + cost_usd

    def to_json(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, data: Optional[dict]) -> "Usage":
        data = data or {}
        return cls(
            data.get("prompt_tokens") or 0,
            data.get("completion_tokens") or 0,
            data.get("cost_usd", 0.0),
            data.get("cached") or 0,
        )


@dataclass
class Row:
    row: int
    task_type: str
    seed: int = 0
    cell: str = ""
    outputs: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    model_name: str = ""
    tags: dict = field(default_factory=dict)
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    # A task of several steps: per step its attempts, usage and model ({name: {attempts, usage, model_name}});
    # `attempts` and `usage` are then the row's totals. Empty for a one-step task.
    steps: dict = field(default_factory=dict)
    reason: Optional[str] = None  # set on a rejected row
    check: Optional[str] = None  # the check that rejected it, if one did
    raw: Optional[str] = None  # the rejected answer

    @property
    def key(self) -> tuple:
        """What identifies the row among the rows of a run (or of a merged sweep)."""
        return self.tags.get("job", ""), self.cell, self.row

    @property
    def call_id(self) -> str:
        """The row's part of a request's cache address (unchanged since the first release: caches replay)."""
        return f"{self.seed}:{self.cell}:{self.row}"

    @property
    def rejected(self) -> bool:
        return self.reason is not None

    @property
    def placeholder(self) -> bool:
        return self.model_name == PLACEHOLDER_MODEL

    def text(self) -> str:
        """The generated text of the row: its outputs that are text, or lists of text, in order."""
        return text_of(self.outputs)

    def to_json(self) -> dict:
        line = {
            "row": self.row,
            **({"cell": self.cell} if self.cell else {}),
            "seed": self.seed,
            "task_type": self.task_type,
        }
        if self.rejected:
            line["reason"] = self.reason
            if self.check:
                line["check"] = self.check
            line["raw"] = self.raw
        else:
            line.update(self.outputs)
            line["model_name"] = self.model_name
        line["attributes"] = self.attributes
        line.update((k, v) for k, v in self.tags.items() if k not in MERGE_TAGS)
        line["attempts"] = self.attempts
        line["usage"] = self.usage.to_json()
        if self.steps:
            line["steps"] = {
                name: {**step, "usage": step["usage"].to_json()} if isinstance(step.get("usage"), Usage) else step
                for name, step in self.steps.items()
            }
        line.update((k, self.tags[k]) for k in MERGE_TAGS if k in self.tags)
        return line

    def to_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: dict) -> "Row":
        if not isinstance(data, dict) or not isinstance(data.get("row"), int) or "task_type" not in data:
            raise ValueError("not a synthkit row (it needs an integer `row` and a `task_type`)")
        return cls(
            row=data["row"],
            task_type=data["task_type"],
            seed=data.get("seed", 0),
            cell=data.get("cell") or "",
            outputs={k: v for k, v in data.items() if k not in RESERVED},
            attributes=data.get("attributes") or {},
            model_name=data.get("model_name", ""),
            tags={k: data[k] for k in TAGS if k in data},
            attempts=data.get("attempts", 0),
            usage=Usage.from_json(data.get("usage")),
            steps=data.get("steps") or {},
            reason=data.get("reason"),
            check=data.get("check"),
            raw=data.get("raw"),
        )


def text_of(outputs: dict) -> str:
    """The text of outputs: their values that are text, or lists of text, in order."""
    parts = []
    for value in outputs.values():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [v for v in value if isinstance(v, str)]
    return "\n".join(parts)


def read_rows(path: Path, missing_ok: bool = True) -> Iterator[Row]:
    """The rows of a synthkit JSONL file (data or rejects), one at a time: runs can be large. A line
    that is not a row is a one-line error naming the file and line."""
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return
        raise UserError(f"{path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield Row.from_json(json.loads(line))
                except (ValueError, RecursionError) as e:
                    raise UserError(
                        f"{path} line {number} is not a synthkit row ({e}): "
                        "repair or remove that line, or choose another output_dir"
                    ) from None
        except UnicodeDecodeError:  # raised while reading ahead, so no line number to name
            raise UserError(f"{path} is not UTF-8 text: is it a synthkit file? Choose another output_dir") from None
