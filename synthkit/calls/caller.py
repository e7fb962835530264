"""What the engine calls a model through: one interface (`Caller`), two implementations, the online
ModelCaller (synthkit.calls.online) and the BatchCaller of llm.batch=true (synthkit.calls.batch.caller). Either
answers a call from the response cache when it can, else within the budget and the rate limits, retried through
transient failures, priced, and reported to the run ledger; either raises RequestFailed when every retry failed,
RowRefused when the provider refuses this request, and a RunStopped when the run must make no more requests."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from synthkit.calls.providers import Completion

MAX_ANSWER_CHARS = 256_000  # an answer longer than this is kept cut short (cache, rejects) and rejected
OVERSIZE = "oversize"  # the finish reason of an answer cut short here
BUDGET_CHECK_S = 1.0  # a request waiting for room under max_cost_usd asks again at least this often (other processes)
BUDGET_WAIT_S = 600.0  # ... and stops the run after this long (reservations of a process that died, on a store)


class RunStopped(Exception):
    """No further requests in this run; rows so far are kept."""

    graceful = False  # True: rows already in flight finish; False: they are abandoned


class BudgetReached(RunStopped):
    graceful = True  # requests in flight are paid for: let them finish


class EndpointDown(RunStopped):
    pass


class StoreDown(RunStopped):
    """The shared store stayed unreachable for longer than the run waits for it."""

    graceful = True  # answers in flight are paid for: they become rows (the store fails fast from now on)


@dataclass(frozen=True)
class Answer:
    completion: Completion
    cost_usd: Optional[float]  # paid for this answer now: 0 when replayed from the cache, None if unpriced
    cached: bool


class Caller(ABC):
    model_name: str  # the model answering, as rows record it

    @abstractmethod
    async def call(
        self, messages: list, schema: dict, schema_name: str, row_id: str, max_tokens: Optional[int] = None
    ) -> Answer:
        """The answer to `messages` for the row `row_id` (its part of the response cache's key). `max_tokens`: this
        request's cap on its answer (the LLM judge's small one) instead of llm.max_tokens; it is sent, reserved
        against the budget and part of the cache key."""

    def workers(self, concurrency: int) -> int:
        """How many rows to keep in flight for `concurrency` requests at once."""
        return concurrency

    def watch(self, rows_in_flight: Callable[[], int]) -> None:  # noqa: B027 - most callers need not know
        """The count of rows in flight of the stage now running (a batch round goes when every one of them asks)."""

    async def aclose(self) -> None:  # noqa: B027 - most callers open nothing
        """Close what the caller opened (a batch client and its journal)."""
