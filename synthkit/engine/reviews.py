"""The reviews of an answer, listed in one place and run in this order once it parsed and fit its schema: the
task's checks, dedup, relabelling (relabel=true, generation only) and the LLM judge (judge=true, or a task's own
judge: switch). Cheap ones first: an answer a check rejects costs no judge call. Each is a synthkit.core.review.Review;
a failure re-asks the row with its reason (when asking again can help), then rejects it naming the review."""

from typing import Optional

from synthkit.core.ledger import GENERATE, Ledger
from synthkit.core.review import CheckFailure, Review
from synthkit.quality.dedup import Deduplicator


def reviews_of(
    stage: str, ledger: Ledger, checks: bool, dedup: Optional[Deduplicator], relabel=None, judge=None
) -> list:
    """The reviews of `stage` (brainstorm or generate) in the order they run."""
    listed: list[Review] = []
    if checks:
        listed.append(TaskChecks(ledger))
    if dedup is not None:
        listed.append(Duplicates(dedup, ledger))
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

    async def review(self, task, row, outputs: dict) -> Optional[CheckFailure]:
        if task.checks:
            self.ledger.answer_checked(task.name)
        for check in task.checks:
            failure = check.failure(outputs, row.attributes)
            if failure is not None:
                if check.degenerate:
                    self.ledger.degenerate_answer(task.name, failure.name)
                return CheckFailure(failure.name, f"check {failure.name}: {failure.message}", failure.reask)
        return None


class Duplicates:
    """An answer that repeats an earlier row of the run, exactly or nearly (synthkit/quality/dedup.py)."""

    name = "duplicate"

    def __init__(self, dedup: Deduplicator, ledger: Ledger):
        self.dedup, self.ledger = dedup, ledger

    async def review(self, task, row, outputs: dict) -> Optional[CheckFailure]:
        row.outputs = outputs
        earlier = self.dedup.add(row.key, row.text())
        if earlier is None:
            return None
        self.ledger.duplicate()
        _, cell, index = earlier
        where = f"row {index}" + (f" of cell {cell}" if cell else "")
        return CheckFailure("duplicate", f"check duplicate: the same as (or nearly) {where}", True)
