"""The model caller of `llm.batch=true`: the Caller interface (synthkit/calls/caller.py: `call(messages, schema,
schema_name, row_id)`), so the path of a row is the same online and in batch, but each call waits
for a provider batch. Calls queue up; once every row in flight is waiting (or a batch is full) the
collector sends the queue as one round through the journaled driver (synthkit/calls/batch/rounds.py),
polls, and answers each call as its batch ends, so rows are written batch by batch. Re-asks, and
requests a batch failed or let expire, make the next round. Requests carry the online request body
and the response cache's key as custom_id: the same config gives the same rows online or in batch,
and cached answers are never sent."""

import asyncio
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from synthkit.calls.batch.client import BatchClient
from synthkit.calls.batch.journal import TERMINAL, BatchJournal
from synthkit.calls.batch.price import check_batch
from synthkit.calls.batch.rounds import BatchResult, run_batches
from synthkit.calls.caller import (
    BUDGET_CHECK_S,
    BUDGET_WAIT_S,
    MAX_ANSWER_CHARS,
    OVERSIZE,
    Answer,
    BudgetReached,
    Caller,
    EndpointDown,
    StoreDown,
)
from synthkit.calls.cost import CHARS_PER_TOKEN
from synthkit.calls.providers import Completion, RequestFailed, RowRefused
from synthkit.calls.stores.base import BudgetBusy, BudgetExhausted, Stores, StoreUnavailable
from synthkit.calls.stores.cache import call_key
from synthkit.core.config import LLMConfig
from synthkit.core.errors import UserError
from synthkit.core.ledger import Ledger

QUIET_TURNS = 3  # loop turns with every row in flight waiting before a round goes: rows a pool worker wakes ask too
SETTLE_MAX_S = 2.0  # a round goes after this long even if the count of rows in flight says more will ask


@dataclass
class _Pending:
    body: dict
    future: asyncio.Future
    prompt_tokens: int
    max_tokens: int  # the request's cap on its answer: what its reservation counts
    reserved: Any = None  # the budget's reservation (an amount, or a shared store's token)
    error: Optional[str] = None  # why the last submission brought no answer
    refused: bool = False  # the provider refused this request itself (HTTP 400/422): asking again is no use


class BatchCaller(Caller):
    def __init__(
        self,
        llm: LLMConfig,
        api_key: Optional[str],
        structured: bool,
        stores: Stores,  # the run's cache (None: off) and budget, local or shared; batches have no rate limits
        ledger: Ledger,
        journal: Path,
        max_attempts: int,
        progress_every_s: float = 0.0,
    ):
        from synthkit.calls.providers.openai_http import chat_body  # aiohttp: only when a run calls

        self.llm, self.cache, self.budget, self.ledger = llm, stores.cache, stores.budget, ledger
        self.model_name = llm.model
        self.max_attempts, self.progress_every_s = max_attempts, progress_every_s
        self._body = functools.partial(chat_body, llm, structured=structured)
        self.client = BatchClient(check_batch(llm), api_key, llm.timeout_s, name=llm.provider)
        self.journal = BatchJournal(journal)
        # The rows in flight (the scheduler's count, set per stage): a round goes when all of them wait.
        self.rows_in_flight: Callable[[], int] = lambda: 0
        self._queue: dict[str, _Pending] = {}
        self._round: dict[str, _Pending] = {}
        self._orphans: dict[str, Completion] = {}  # answers no call waits for (a resumed run's earlier batches)
        self._tries: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._collector: Optional[asyncio.Task] = None
        self._error: Optional[BaseException] = None
        self._failed_rows_in_a_row = 0
        self._busy_since: Optional[float] = None  # since when requests wait for another process's reservations

    def workers(self, concurrency: int) -> int:
        return max(concurrency, self.llm.batch_max_requests)  # a round goes when every row in flight waits

    def watch(self, rows_in_flight: Callable[[], int]) -> None:
        self.rows_in_flight = rows_in_flight

    async def call(
        self, messages: list, schema: dict, schema_name: str, row_id: str, max_tokens: Optional[int] = None
    ) -> Answer:
        """The answer to `messages` for the row `row_id`, through a batch."""
        try:
            return await self._call(messages, schema, schema_name, row_id, max_tokens)
        except StoreUnavailable as e:
            raise StoreDown(str(e)) from None

    async def _call(
        self, messages: list, schema: dict, schema_name: str, row_id: str, max_tokens: Optional[int]
    ) -> Answer:
        key = call_key(self.llm, messages, schema, row_id, max_tokens)
        cap = self.llm.max_tokens if max_tokens is None else max_tokens
        cached = await self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return self._answered(cached, 0.0, True, cap)
        if key in self._orphans:
            completion = self._orphans.pop(key)
            return self._answered(completion, await self.budget.settle(0.0, *_tokens(completion)), False, cap)
        if self._error is not None:
            raise self._error
        pending = _Pending(
            self._body(messages, schema, schema_name, max_tokens=max_tokens),
            asyncio.get_running_loop().create_future(),
            sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN,
            cap,
        )
        self._queue[key] = pending
        self._wake.set()
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect())
        return await pending.future

    def _answered(self, completion: Completion, cost: Optional[float], cached: bool, cap: int) -> Answer:
        # As online: the ledger's `truncated` counts answers cut off at llm.max_tokens (the summary's advice is to
        # raise it); a call's own smaller cap reports its cut-off answers itself (the judge's `truncated`).
        truncated = completion.finish_reason == "length" and cap == self.llm.max_tokens
        worth = self.budget.cost(completion.prompt_tokens, completion.completion_tokens) if cached else None
        self.ledger.answered(
            completion.prompt_tokens, completion.completion_tokens, cost, cached, truncated, cached_cost_usd=worth
        )
        return Answer(completion, cost, cached)

    async def _collect(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._settle()
            if not self._queue:
                continue
            self._round, self._queue = self._queue, {}
            try:
                await self._ask(self._round)
            except BaseException as e:  # a rejected batch, a refused key: every waiting row ends with it
                if isinstance(e, StoreUnavailable):
                    e = StoreDown(str(e))
                self._error = e if isinstance(e, Exception) else UserError("the batch collector stopped")
                for pending in [*self._round.values(), *self._queue.values()]:
                    if not pending.future.done():
                        await self._release(pending)
                        pending.future.set_exception(self._error)
                raise

    async def _settle(self) -> None:
        """Wait until every row in flight asks (its first request or a re-ask), or a batch is full."""
        loop = asyncio.get_running_loop()
        deadline, quiet = loop.time() + SETTLE_MAX_S, 0
        while len(self._queue) < self.llm.batch_max_requests and loop.time() < deadline:
            quiet = quiet + 1 if len(self._queue) >= self.rows_in_flight() else 0
            if quiet >= QUIET_TURNS:
                return
            await asyncio.sleep(0 if quiet else 0.001)

    async def _ask(self, round_: dict[str, _Pending]) -> None:
        """One round: reserve its cost, submit what the journal does not hold, answer as batches end."""
        for key in [k for k in round_ if k in self._orphans]:  # answered meanwhile by an earlier run's batch
            completion, pending = self._orphans.pop(key), round_.pop(key)
            pending.future.set_result(
                self._answered(
                    completion, await self.budget.settle(0.0, *_tokens(completion)), False, pending.max_tokens
                )
            )
        deferred = await self._reserve(round_)
        answered = self.journal.answered()
        again = frozenset(k for k in round_ if k in answered)  # the journal's answer is lost to this run
        held = self.journal.settled() - again
        for key in round_:
            if key not in held:
                self.ledger.request_sent()
        ticker = asyncio.get_running_loop().create_task(self._tick()) if self.progress_every_s > 0 else None
        try:
            await run_batches(
                [(k, p.body) for k, p in round_.items()],
                self.client,
                self.journal,
                self.llm.batch_poll_s,
                self._on_result,
                self.llm.batch_max_requests,
                self.llm.batch_max_bytes,
                again=again,
            )
        finally:
            if ticker is not None:
                ticker.cancel()
        if deferred:  # the round's reservations are settled now: they go in the next
            self._queue.update(deferred)
            self._wake.set()
        for key, pending in round_.items():
            if pending.future.done():
                continue
            await self._release(pending)
            tries = self._tries[key] = self._tries.get(key, 0) + 1
            if pending.refused:
                pending.future.set_exception(RowRefused(f"the provider refused this request: {pending.error}"))
            elif tries >= self.max_attempts:
                # As online (the pool's circuit breaker): rows that keep failing end the run instead of
                # fresh rows taking their place in batch after batch for ever.
                self._failed_rows_in_a_row += 1
                if self._failed_rows_in_a_row >= self.llm.circuit_breaker and self._error is None:
                    self._error = EndpointDown(
                        f"the batches kept failing ({self._failed_rows_in_a_row} rows in a row, each after "
                        f"{tries} batch submissions; last: {pending.error})"
                    )
                pending.future.set_exception(
                    self._error or RequestFailed(f"no answer after {tries} batch submissions (last: {pending.error})")
                )
            else:
                self._queue[key] = pending  # the next round asks it again
                self._wake.set()

    async def _reserve(self, round_: dict[str, _Pending]) -> dict[str, _Pending]:
        """Reserve the most each request of the round may cost before it is sent, one by one (a reservation
        on a shared store is a token per request): max_cost_usd holds across rounds. Requests that do not fit
        beside the round's reservations are taken out of it for the next round (the round's answers mostly cost
        far less than they reserved), and returned; once the cap is spent, rows stop as online (BudgetReached)."""
        deferred: dict[str, _Pending] = {}
        last_busy = None
        for key, pending in list(round_.items()):
            try:
                pending.reserved = await self.budget.reserve(pending.prompt_tokens, pending.max_tokens)
            except BudgetExhausted as e:
                pending.future.set_exception(BudgetReached(str(e)))
                del round_[key]
            except BudgetBusy as busy:
                deferred[key] = round_.pop(key)
                last_busy = busy
        if deferred and not round_:
            await self._wait_for_room(deferred, last_busy)
        else:
            self._busy_since = None
        return deferred

    async def _wait_for_room(self, deferred: dict[str, _Pending], busy: BudgetBusy) -> None:
        """Nothing of this run holds a reservation: another process sharing the budget does. Wait for it to
        settle, within a bound."""
        loop = asyncio.get_running_loop()
        self._busy_since = self._busy_since or loop.time()
        if loop.time() - self._busy_since < BUDGET_WAIT_S:
            await asyncio.sleep(min(self.llm.batch_poll_s, BUDGET_CHECK_S))
            return
        stop = BudgetReached(f"{busy}, for {BUDGET_WAIT_S:g} s: raise max_cost_usd, or lower llm.max_tokens")
        for pending in deferred.values():
            pending.future.set_exception(stop)
        deferred.clear()

    async def _release(self, pending: _Pending) -> None:
        reserved, pending.reserved = pending.reserved, None
        if reserved is not None:
            await self.budget.release(reserved)

    async def _on_result(self, result: BatchResult) -> None:
        """A request's result, as its batch ends: cached, then handed to the row that waits for it."""
        completion = _completion(result.body) if result.ok else None
        pending = self._round.get(result.custom_id)
        if completion is None:
            if pending is not None:
                pending.error = result.error or "the answer has no choices"
                pending.refused = result.status_code in (400, 422)
            return
        self._failed_rows_in_a_row = 0
        if self.cache is not None:
            await self.cache.put(result.custom_id, completion)
        if pending is None or pending.future.done():
            self._orphans[result.custom_id] = completion
            return
        reserved, pending.reserved = pending.reserved, None
        cost = await self.budget.settle(reserved if reserved is not None else 0.0, *_tokens(completion))
        pending.future.set_result(self._answered(completion, cost, False, pending.max_tokens))

    def status_line(self) -> str:
        entries = [e for e in self.journal.entries.values() if not e.dropped]
        submitted = sum(e.batch_id is not None for e in entries)
        ended = sum(e.collected or e.status in TERMINAL for e in entries)
        total = sum(len(e.custom_ids) for e in entries)
        done = sum(len(e.custom_ids) - len(e.failed) if e.collected else e.counts.get("completed", 0) for e in entries)
        return (
            f"synthkit: batches: {submitted} submitted, {ended} ended; requests {done}/{total} answered; "
            f"next check within {self.llm.batch_poll_s:g} s (synthkit batches <output_dir> for each batch)"
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.progress_every_s)
            print(self.status_line(), file=sys.stderr, flush=True)

    async def aclose(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        await self.client.aclose()
        self.journal.close()


def _tokens(completion: Completion) -> tuple:
    return completion.prompt_tokens, completion.completion_tokens


def _completion(body: dict) -> Optional[Completion]:
    """A batch answer's chat completion, read as the online client reads it; None without choices."""
    try:
        choice = body["choices"][0]
        text = str(choice["message"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    count = lambda v: v if isinstance(v, int) and v >= 0 else 0  # noqa: E731
    completion = Completion(
        text,
        count(usage.get("prompt_tokens")),
        count(usage.get("completion_tokens")),
        str(choice.get("finish_reason") or "stop"),
    )
    if len(completion.text) > MAX_ANSWER_CHARS:
        completion = replace(completion, text=completion.text[:MAX_ANSWER_CHARS], finish_reason=OVERSIZE)
    return completion
