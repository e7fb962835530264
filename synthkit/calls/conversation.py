"""The one re-ask loop: ask a model until an answer is accepted, telling it on each re-ask what was wrong with its
last answer (the same conversation goes on, so it sees its answer and the reason). Generation, the LLM judge and
relabelling all ask through it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from synthkit.calls.caller import Caller
from synthkit.calls.providers import Completion, RowRefused
from synthkit.core.record import Usage
from synthkit.core.review import CheckFailure


@dataclass(frozen=True)
class Asked:
    value: Any  # what `read` made of the accepted answer (None when none was accepted)
    problem: Optional[CheckFailure]  # why the last answer was not accepted; None when one was
    text: str  # the last answer's text
    attempts: int  # answers asked for


async def ask(
    caller: Caller,
    messages: list,
    schema: dict,
    schema_name: str,
    call_id: str,
    attempts: int,
    read: Callable[[Completion], Awaitable[tuple]],
    reask: Callable[[CheckFailure], str],
    usage: Usage,
    refused: Callable[[RowRefused], CheckFailure],
    max_tokens: Optional[int] = None,
) -> Asked:
    """Ask until `read` accepts an answer ((value, None)), `attempts` answers were asked, or a problem says asking
    again is no use (`reask=False`). Every answer's tokens and cost go into `usage`. A refusal of this request
    ends the asking with `refused(error)`; the caller's RequestFailed and RunStopped propagate. `max_tokens`
    caps each answer below llm.max_tokens (see Caller.call)."""
    text, problem = "", None
    for attempt in range(1, attempts + 1):
        try:
            answer = await caller.call(messages, schema, schema_name, call_id, max_tokens)
        except RowRefused as e:
            return Asked(None, refused(e), text, attempt)
        completion = answer.completion
        usage.add(completion.prompt_tokens, completion.completion_tokens, answer.cost_usd, answer.cached)
        text = completion.text
        value, problem = await read(completion)
        if problem is None:
            return Asked(value, None, text, attempt)
        if not problem.reask or attempt == attempts:
            return Asked(None, problem, text, attempt)
        messages = messages + [
            {"role": "assistant", "content": text},
            {"role": "user", "content": reask(problem)},
        ]
    return Asked(None, problem, text, attempts)
