"""The path of one row, top to bottom in `RowMaker.make`: sampled attributes -> prompt + schema ->
model call -> parse -> validate and check -> write (or re-ask, or reject).

A run is a list of cells: a task with some attributes fixed and a number of rows to write. A plain
run is one cell; a recipe mixture or an in-process grid is many (synthkit/engine/scheduler.py runs
them through one pool of workers)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from synthkit.calls.caller import OVERSIZE, ModelCaller
from synthkit.calls.providers import RequestFailed, RowRefused
from synthkit.core.ledger import Ledger
from synthkit.core.record import Row
from synthkit.corpus.domain import corpus_tags
from synthkit.quality.dedup import Deduplicator
from synthkit.results.rundir import RunFiles
from synthkit.spec.checks import CheckFailure
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
    max_tokens: int
    checks: bool = True  # the tasks' quality checks


class RowMaker:
    def __init__(
        self,
        caller: ModelCaller,
        model_name: str,
        files: RunFiles,
        settings: RowSettings,
        ledger: Ledger,
        dedup: Optional[Deduplicator],
        reviews: Sequence = (),
    ):
        """`reviews`: what looks at an answer after every check passed, in order, each an async
        (task, row, outputs) -> CheckFailure or None that may make model calls (which can fail like the
        row's own): relabel=true's Gecko relabelling (synthkit/quality/relabel.py), then the LLM judge
        (synthkit/quality/llm_judge.py)."""
        self.caller, self.model_name, self.files, self.settings = caller, model_name, files, settings
        self.ledger, self.dedup, self.reviews = ledger, dedup, reviews

    async def make(self, cell: Cell, index: int, source: Optional[int] = None) -> tuple:
        """Make row `index` of `cell` with the attributes drawn for row `source` (itself, or a rejected row
        it refills): (its outcome, the reason it was rejected or None)."""
        task, seed = cell.task, self.settings.seed
        source = index if source is None else source
        attributes = task.draw_attributes(seed, source, stream=cell.stream)
        tags = cell.tags_for(attributes) | ({"refills": source} if source != index else {})
        row = Row(index, task.name, seed, cell.key, attributes=attributes, model_name=self.model_name, tags=tags)
        messages = [{"role": "user", "content": task.render(attributes)}]
        problem, text = None, ""
        for attempt in range(1, self.settings.max_attempts + 1):
            row.attempts = attempt
            try:
                answer = await self.caller.call(messages, task.schema, task.name, row.call_id)
            except RequestFailed:
                self.ledger.row_failed()
                return Outcome.failed, None
            except RowRefused as e:
                problem = CheckFailure("refused", str(e), reask=False)
                break
            completion = answer.completion
            row.usage.add(completion.prompt_tokens, completion.completion_tokens, answer.cost_usd, answer.cached)
            text = completion.text
            outputs, problem = self._problem(task, row, text, completion.finish_reason)
            for review in self.reviews if problem is None else ():
                try:
                    problem = await review(task, row, outputs)
                except RequestFailed:
                    self.ledger.row_failed()
                    return Outcome.failed, None
                if problem is not None:
                    break
            if problem is None:
                row.outputs = outputs
                self.files.write(row)
                self.ledger.row_written(task.drawn(attributes))
                return Outcome.written, None
            if not problem.reask:
                break
            # Re-ask in the same conversation: the model sees what was wrong with its answer.
            messages = messages + [
                {"role": "assistant", "content": text},
                {"role": "user", "content": _reask(problem.message, task.output_keys)},
            ]
        row.reason, row.check, row.raw = problem.message, problem.name or None, text
        self.files.write(row)
        self.ledger.row_rejected(problem.name, task.drawn(attributes), (cell.key, source))
        return Outcome.rejected, problem.name

    def _problem(self, task: TaskSpec, row: Row, text: str, finish_reason: str) -> tuple:
        """(the parsed outputs, what is wrong with them or None): parse, schema, the task's checks,
        then whether they repeat an earlier row."""
        if finish_reason == OVERSIZE:
            return None, CheckFailure(
                "oversize",
                f"the answer is longer than {len(text)} characters, far more than a row; it was not read",
                reask=False,
            )
        try:
            parsed = task.parse(text)
        except ParseError as e:
            if finish_reason == "length":  # only more tokens can fix it: no re-ask
                return None, CheckFailure(
                    "truncated",
                    f"the answer was cut off at llm.max_tokens={self.settings.max_tokens} ({e}); raise llm.max_tokens",
                    reask=False,
                )
            return None, CheckFailure("parse", str(e), reask=True)
        reason = task.validation_error(parsed)
        if reason is not None:
            return parsed, CheckFailure("schema", reason, reask=True)
        if self.settings.checks and task.checks:
            self.ledger.answer_checked(task.name)
        for c in task.checks if self.settings.checks else ():
            failure = c.failure(parsed, row.attributes)
            if failure is not None:
                if c.degenerate:
                    self.ledger.degenerate_answer(task.name, failure.name)
                return parsed, CheckFailure(failure.name, f"check {failure.name}: {failure.message}", failure.reask)
        if self.dedup is not None:
            row.outputs = parsed
            earlier = self.dedup.add(row.key, row.text())
            if earlier is not None:
                self.ledger.duplicate()
                _, cell, index = earlier
                where = f"row {index}" + (f" of cell {cell}" if cell else "")
                return parsed, CheckFailure("duplicate", f"check duplicate: the same as (or nearly) {where}", True)
        return parsed, None


def _reask(reason: str, keys: list) -> str:
    return (
        f"Your answer was not valid: {reason}. Answer again with only the JSON object, "
        f"with the keys {', '.join(keys)}, and nothing else."
    )
