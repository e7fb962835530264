"""What looks at an answer before it becomes a row, and what it says when the answer cannot be one. Every review
of a row (the task's checks, dedup, relabelling, the LLM judge) is a `Review`; the engine lists them in one place
(synthkit.engine.reviews) and runs them in order after the answer parsed and fit its schema."""

from dataclasses import dataclass
from typing import Any, Optional, Protocol


@dataclass(frozen=True)
class CheckFailure:
    name: str  # the check, as rejects and summaries name it
    message: str  # what was wrong, as the model is told when asked again
    reask: bool  # whether asking again can help


@dataclass(frozen=True)
class Asking:
    """What an answer under review answers: the task, the step of it (a one-step task is its one step), the prompt
    the model was given and the call's id (its part of the response cache's key)."""

    task: Any  # synthkit.spec.task.TaskSpec
    step: Any  # synthkit.spec.steps.Step
    prompt: str
    call_id: str


class Review(Protocol):
    name: str

    async def review(self, asking: Asking, row: Any, outputs: dict) -> Optional[CheckFailure]:
        """What is wrong with the answer `outputs` to `asking` (a step of `row`, a synthkit.core.record.Row whose
        outputs hold the earlier steps' fields), or None. May change the outputs and the row's tags, and make model
        calls (raising the caller's RequestFailed and RunStopped like the row's own call)."""
