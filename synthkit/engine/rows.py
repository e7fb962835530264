"""The path of one row, top to bottom in `RowMaker.make`: sampled attributes -> prompt + schema ->
model call -> parse -> validate -> reviews (checks, dedup, relabelling, judge) -> write (or re-ask, or reject).

A run is a list of cells: a task with some attributes fixed and a number of rows to write. A plain
run is one cell; a recipe mixture or an in-process grid is many (synthkit/engine/scheduler.py runs
them through one pool of workers)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from synthkit.calls.caller import OVERSIZE, Caller
from synthkit.calls.conversation import ask
from synthkit.calls.providers import RequestFailed
from synthkit.core.ledger import Ledger
from synthkit.core.record import Row
from synthkit.core.review import CheckFailure, Review
from synthkit.corpus.domain import corpus_tags
from synthkit.results.rundir import RowFiles
from synthkit.spec.parsing import ParseError
from synthkit.spec.task import TaskSpec

DEFINITION = "task"  # the attribute that holds a task definition


@dataclass
class Cell:
    task: TaskSpec
    num_rows: int
    key: str = ""  # names the cell in rows and summaries; empty for a one-cell run
    tags: dict = field(default_factory=dict)  # written into each of the cell's rows
    # Tags per task definition: the brainstorm row each definition came from.
    origins: dict = field(default_factory=dict)
    job: str = ""  # a sweep job's coordinates: jobs of one sweep draw apart

    @property
    def stream(self) -> str:
        """What separates this cell's draws from every other cell's (and sweep job's)."""
        return "|".join(part for part in (self.job, self.key) if part)

    def tags_for(self, attributes: dict) -> dict:
        return {**self.tags, **self.origins.get(attributes.get(DEFINITION), {}), **corpus_tags(attributes)}


class Outcome(Enum):
    written = "written"
    rejected = "rejected"
    failed = "failed"  # its requests failed after every retry: a later run makes it


@dataclass(frozen=True)
class RowSettings:
    seed: int
    max_attempts: int
    max_tokens: int  # llm.max_tokens, named when an answer was cut off by it


class RowMaker:
    def __init__(
        self,
        caller: Caller,
        model_name: str,
        files: RowFiles,
        settings: RowSettings,
        ledger: Ledger,
        reviews: Sequence[Review] = (),
    ):
        """`reviews`: what looks at an answer once it parsed and fit its schema, in order (synthkit.engine.reviews
        lists them: the task's checks, dedup, relabelling, the LLM judge)."""
        self.caller, self.model_name, self.files, self.settings = caller, model_name, files, settings
        self.ledger, self.reviews = ledger, reviews

    async def make(self, cell: Cell, index: int, source: Optional[int] = None) -> tuple:
        """Make row `index` of `cell` with the attributes drawn for row `source` (itself, or a rejected row
        it refills): (its outcome, the reason it was rejected or None)."""
        task, seed = cell.task, self.settings.seed
        source = index if source is None else source
        attributes = task.draw_attributes(seed, source, stream=cell.stream)
        tags = cell.tags_for(attributes) | ({"refills": source} if source != index else {})
        row = Row(index, task.name, seed, cell.key, attributes=attributes, model_name=self.model_name, tags=tags)
        messages = [{"role": "user", "content": task.render(attributes)}]

        async def read(completion) -> tuple:
            return await self._read(task, row, completion)

        try:
            asked = await ask(
                self.caller, messages, task.schema, task.name, row.call_id, self.settings.max_attempts, read,
                lambda problem: _reask(problem.message, task.output_keys), row.usage,
                lambda refusal: CheckFailure("refused", str(refusal), reask=False),
            )  # fmt: skip
        except RequestFailed:
            self.ledger.row_failed()
            return Outcome.failed, None
        row.attempts = asked.attempts
        if asked.problem is None:
            row.outputs = asked.value
            self.files.write(row)
            self.ledger.row_written(task.drawn(attributes))
            return Outcome.written, None
        problem = asked.problem
        row.reason, row.check, row.raw = problem.message, problem.name or None, asked.text
        self.files.write(row)
        self.ledger.row_rejected(problem.name, task.drawn(attributes), (cell.key, source))
        return Outcome.rejected, problem.name

    async def _read(self, task: TaskSpec, row: Row, completion) -> tuple:
        """(the answer's outputs, None), or (None, what is wrong with it): parse, schema, then each review."""
        text, finish_reason = completion.text, completion.finish_reason
        if finish_reason == OVERSIZE:
            return None, CheckFailure(
                "oversize",
                f"the answer is longer than {len(text)} characters, far more than a row; it was not read",
                reask=False,
            )
        try:
            outputs = task.parse(text)
        except ParseError as e:
            if finish_reason == "length":  # only more tokens can fix it: no re-ask
                return None, CheckFailure(
                    "truncated",
                    f"the answer was cut off at llm.max_tokens={self.settings.max_tokens} ({e}); raise llm.max_tokens",
                    reask=False,
                )
            return None, CheckFailure("parse", str(e), reask=True)
        reason = task.validation_error(outputs)
        if reason is not None:
            return None, CheckFailure("schema", reason, reask=True)
        for review in self.reviews:
            problem = await review.review(task, row, outputs)
            if problem is not None:
                return None, problem
        return outputs, None


def _reask(reason: str, keys: list) -> str:
    return (
        f"Your answer was not valid: {reason}. Answer again with only the JSON object, "
        f"with the keys {', '.join(keys)}, and nothing else."
    )
