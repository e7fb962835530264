"""The path of one row, top to bottom in `RowMaker.make`: sampled attributes -> prompt + schema ->
model call -> parse -> validate -> reviews (checks, dedup, relabelling, judge) -> write (or re-ask, or reject).

A run is a list of cells: a task with some attributes fixed and a number of rows to write. A plain
run is one cell; a recipe mixture or an in-process grid is many (synthkit/engine/scheduler.py runs
them through one pool of workers)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from synthkit.calls.caller import OVERSIZE
from synthkit.calls.conversation import ask
from synthkit.calls.providers import RequestFailed
from synthkit.core.ledger import Ledger
from synthkit.core.record import Row, Usage
from synthkit.core.review import Asking, CheckFailure, Review
from synthkit.corpus.domain import corpus_tags
from synthkit.results.rundir import RowFiles
from synthkit.spec.parsing import ParseError
from synthkit.spec.steps import Step, context
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
        callers: Callable,
        model_name: str,
        files: RowFiles,
        settings: RowSettings,
        ledger: Ledger,
        reviews: Sequence[Review] = (),
    ):
        """`callers`: the caller of a step (its model's; the run's unless the step names another). `reviews`: what
        looks at an answer once it parsed and fit its schema, in order (synthkit.engine.reviews lists them: the
        task's checks, dedup, relabelling, the LLM judge)."""
        self.callers, self.model_name, self.files, self.settings = callers, model_name, files, settings
        self.ledger, self.reviews = ledger, reviews

    async def make(self, cell: Cell, index: int, source: Optional[int] = None) -> tuple:
        """Make row `index` of `cell` with the attributes drawn for row `source` (itself, or a rejected row
        it refills): (its outcome, the reason it was rejected or None). A row of several steps asks them in
        order, each seeing the fields of the ones before; it is written only when every step passed."""
        task, seed = cell.task, self.settings.seed
        source = index if source is None else source
        attributes = task.draw_attributes(seed, source, stream=cell.stream)
        tags = cell.tags_for(attributes) | ({"refills": source} if source != index else {})
        row = Row(index, task.name, seed, cell.key, attributes=attributes, model_name=self.model_name, tags=tags)
        problem, raw = None, ""
        try:
            for number, step in enumerate(task.steps):
                problem, raw = await self._step(task, step, row, context(attributes, task.steps[:number], row.outputs))
                if problem is not None:
                    break
        except RequestFailed as e:
            self.ledger.row_failed()
            return Outcome.failed, str(e)
        if problem is None:
            self.files.write(row)
            self.ledger.row_written(task.drawn(attributes))
            return Outcome.written, None
        row.reason, row.check, row.raw = problem.message, problem.name or None, raw
        self.files.write(row)
        self.ledger.row_rejected(problem.name, task.drawn(attributes), (cell.key, source))
        return Outcome.rejected, problem.name

    async def _step(self, task: TaskSpec, step: Step, row: Row, seen: dict) -> tuple:
        """Ask one step until an answer passes (its fields join the row's outputs): (None, its text), or (what
        was wrong with the last answer, its text)."""
        prompt = step.render(seen)
        asking = Asking(task, step, prompt, row.call_id if step.only else f"{row.call_id}:{step.name}")
        caller = self.callers(step)

        async def read(completion) -> tuple:
            return await self._read(asking, row, completion)

        usage = row.usage if step.only else Usage()
        asked = await ask(
            caller, [{"role": "user", "content": prompt}], step.schema, step.schema_name, asking.call_id,
            self.settings.max_attempts, read, lambda problem: _reask(problem.message, step.output_keys), usage,
            lambda refusal: CheckFailure("refused", str(refusal), reask=False),
        )  # fmt: skip
        if step.only:
            row.attempts = asked.attempts
        else:
            row.attempts += asked.attempts
            row.usage.add(usage.prompt_tokens, usage.completion_tokens, usage.cost_usd, usage.cached)
            row.steps[step.name] = {"attempts": asked.attempts, "usage": usage, "model_name": caller.model_name}
        if asked.problem is None:
            row.outputs.update(asked.value)
            return None, asked.text
        if step.only:
            return asked.problem, asked.text
        problem = asked.problem
        return CheckFailure(problem.name, f"step {step.name}: {problem.message}", problem.reask), asked.text

    async def _read(self, asking: Asking, row: Row, completion) -> tuple:
        """(the answer's outputs, None), or (None, what is wrong with it): parse, schema, then each review."""
        step, text, finish_reason = asking.step, completion.text, completion.finish_reason
        if finish_reason == OVERSIZE:
            return None, CheckFailure(
                "oversize",
                f"the answer is longer than {len(text)} characters, far more than a row; it was not read",
                reask=False,
            )
        try:
            outputs = step.parse(text)
        except ParseError as e:
            if finish_reason == "length":  # only more tokens can fix it: no re-ask
                return None, CheckFailure(
                    "truncated",
                    f"the answer was cut off at llm.max_tokens={self.settings.max_tokens} ({e}); raise llm.max_tokens",
                    reask=False,
                )
            return None, CheckFailure("parse", str(e), reask=True)
        reason = step.validation_error(outputs)
        if reason is not None:
            return None, CheckFailure("schema", reason, reask=True)
        for review in self.reviews:
            problem = await review.review(asking, row, outputs)
            if problem is not None:
                return None, problem
        return outputs, None


def _reask(reason: str, keys: list) -> str:
    return (
        f"Your answer was not valid: {reason}. Answer again with only the JSON object, "
        f"with the keys {', '.join(keys)}, and nothing else."
    )
