"""The reviews of an answer, listed in one place and run in this order once it parsed and fit its schema: the
task's checks, dedup, relabelling (relabel=true, generation only) and the LLM judge (judge=true, or a task's own
judge: switch). Cheap ones first: an answer a check rejects costs no judge call. Each is a synthkit.core.review.Review;
a failure re-asks the row with its reason (when asking again can help), then rejects it naming the review."""

from typing import Optional

from synthkit.core.ledger import GENERATE, Ledger
from synthkit.core.record import text_of
from synthkit.core.review import Asking, CheckFailure, Review
from synthkit.quality.dedup import Deduplicator
from synthkit.spec.checks import ready


def reviews_of(
    stage: str, ledger: Ledger, checks: bool, dedup: Optional["Duplicates"], relabel=None, judge=None
) -> list:
    """The reviews of `stage` (brainstorm or generate) in the order they run."""
    listed: list[Review] = []
    if checks:
        listed.append(TaskChecks(ledger))
    if dedup is not None:
        listed.append(dedup)
    if relabel is not None and stage == GENERATE:
        listed.append(relabel)
    if judge is not None:
        listed.append(judge)
    return listed


class TaskChecks:
    """The checks the task's YAML declares (synthkit/spec/checks.py); degenerate answers are counted apart."""

    name = "checks"

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        ready()  # before the first request: what the checks load (the language identifier) is never awaited later

    async def review(self, asking: Asking, row, outputs: dict) -> Optional[CheckFailure]:
        task, checks = asking.task, asking.step.checks
        if checks:
            self.ledger.answer_checked(task.name)
        fields = {**row.outputs, **outputs}  # a step's checks may compare its fields with an earlier step's
        for check in checks:
            failure = check.failure(fields, row.attributes)
            if failure is not None:
                if check.degenerate:
                    self.ledger.degenerate_answer(task.name, failure.name)
                return CheckFailure(failure.name, f"check {failure.name}: {failure.message}", failure.reask)
        return None


class Duplicates:
    """An answer that repeats an earlier row of the run, exactly or nearly (synthkit/quality/dedup.py). A task of
    several steps is compared step by step: a repeated query is caught at its step, not after the others."""

    name = "duplicate"

    def __init__(self, dedup: Deduplicator, ledger: Ledger):
        self.dedup, self.ledger = dedup, ledger

    def remember(self, row, task) -> None:
        """A row an earlier run into this dir wrote, so that no new one repeats it."""
        if task is None or not task.multi_step:
            self.dedup.add(row.key, row.text())
            return
        for step in task.steps:
            self.dedup.add((*row.key, step.name), text_of({k: row.outputs.get(k) for k in step.output_keys}))

    async def review(self, asking: Asking, row, outputs: dict) -> Optional[CheckFailure]:
        key = row.key if asking.step.only else (*row.key, asking.step.name)
        earlier = self.dedup.add(key, text_of(outputs))  # each step's own text: a repeat is caught where it is made
        if earlier is None:
            return None
        self.ledger.duplicate()
        _, cell, index = earlier[:3]
        where = f"row {index}" + (f" of cell {cell}" if cell else "")
        return CheckFailure("duplicate", f"check duplicate: the same as (or nearly) {where}", True)
