"""The online caller: one request at a time per row, answered from the response cache when it can be, else
within the budget and the rate limits, retried through transient failures, and priced. A provider only makes
single attempts; everything that makes calls survive lives here. Each request sent and each answer is reported
to the run ledger. The cache, limits and budget are those of synthkit.calls.stores (files of this machine, or a
Redis store), all awaited."""

import asyncio
import contextlib
import functools
import random
import sys
from dataclasses import replace
from typing import Optional

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
from synthkit.calls.providers import Completion, Provider, ProviderRefused, RequestFailed, RowRefused
from synthkit.calls.stores.base import BudgetBusy, BudgetExhausted, Stores, StoreUnavailable
from synthkit.calls.stores.cache import call_key
from synthkit.core.config import LLMConfig
from synthkit.core.ledger import Ledger

RETRY_AFTER_CAP_S = 600.0  # a server asking for more than this is down, not busy
RELEASE_WAIT_S = 5.0  # a run being stopped waits this long to free a reservation (a store's lease frees it later)


class ModelCaller(Caller):
    def __init__(
        self,
        provider: Provider,
        llm: LLMConfig,
        stores: Stores,
        ledger: Ledger,
    ):
        self.provider, self.llm, self.stores, self.ledger = provider, llm, stores, ledger
        self.model_name = provider.model_name
        self._store_down: Optional[str] = None
        # Imported here: dry runs and --cfg job load this module but make no call.
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        self._mean_completion_tokens = min(llm.max_tokens, 512)
        # Under rate limits the first request goes alone, so that the client's one-off setup does not
        # bunch the next requests past the limits (and a wrong key costs one request).
        self._first_done: Optional[asyncio.Event] = None if stores.limits.active else _done()
        self._refused: Optional[ProviderRefused] = None
        self._endpoint_answered = False  # any answer at all (an error too): a refused connection is then transient
        self._budget_freed = asyncio.Event()  # set (and replaced) whenever a reservation of this caller settles
        self._noted_room = False
        # The retries after a first failure (which is waited for outside, to keep the happy path lean).
        self._retrying = functools.partial(
            AsyncRetrying,
            retry=retry_if_exception_type(RequestFailed),
            stop=stop_after_attempt(llm.max_retries),
            wait=lambda state: self._wait(state.outcome.exception(), failures=state.attempt_number + 1),
            reraise=True,
        )

    def _wait(self, error: RequestFailed, failures: int) -> float:
        """Retry-After when the server gives one, else exponential backoff with full jitter."""
        if error.retry_after is not None:
            return min(error.retry_after, RETRY_AFTER_CAP_S)
        return random.uniform(0, min(self.llm.backoff_max_s, self.llm.backoff_s * 2 ** (failures - 1)))

    async def call(
        self, messages: list, schema: dict, schema_name: str, row_id: str, max_tokens: Optional[int] = None
    ) -> Answer:
        """The answer to `messages` for the row `row_id`. Raises RequestFailed when every retry
        failed, RowRefused when the provider refuses this request, and RunStopped when the run must
        make no more requests."""
        if self._store_down is not None:
            raise StoreDown(self._store_down)
        try:
            return await self._call(messages, schema, schema_name, row_id, max_tokens)
        except StoreUnavailable as e:
            self._store_down = str(e)
            raise StoreDown(str(e)) from None

    async def _call(
        self, messages: list, schema: dict, schema_name: str, row_id: str, max_tokens: Optional[int]
    ) -> Answer:
        key = call_key(self.llm, messages, schema, row_id, max_tokens) if self.stores.cache is not None else None
        answer_cap = self.llm.max_tokens if max_tokens is None else max_tokens
        prompt_tokens = _estimate(messages)
        # What the tpm limit reserves for each attempt.
        tokens = prompt_tokens + min(self._mean_completion_tokens, answer_cap)
        # Once the first request is done, a request may take its rate slots as it is admitted (one round trip
        # less on a shared store); before, they wait for it (see _first_done).
        early = self.stores.limits.active and self._first_done is not None and self._first_done.is_set()
        cached, reserved, wait = await self._admit(key, prompt_tokens, answer_cap, tokens if early else None)
        if cached is not None:
            return self._answered(cached, 0.0, True, answer_cap)
        try:
            completion = await self._request(messages, schema, schema_name, tokens, wait, max_tokens)
        except RequestFailed:
            await self._release(reserved)
            raise
        except BaseException:
            # Stopping (Ctrl-C, a store gone for good) must not hang on the store.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._release(reserved), RELEASE_WAIT_S)
            raise
        if max_tokens is None:  # a running mean of the rows' answers (not the judge's short ratings) makes the
            # next reservations closer to what answers really take
            self._mean_completion_tokens += (completion.completion_tokens - self._mean_completion_tokens) / 16
        if len(completion.text) > MAX_ANSWER_CHARS:
            completion = replace(completion, text=completion.text[:MAX_ANSWER_CHARS], finish_reason=OVERSIZE)
        try:
            cost = await self.stores.finish(key, reserved, completion, tokens)
        except StoreUnavailable as e:
            # This answer is paid for: it still becomes a row, and the next call stops the run.
            self._store_down = str(e)
            cost = self.stores.budget.cost(completion.prompt_tokens, completion.completion_tokens)
        finally:
            self._room_freed()
        return self._answered(completion, cost, False, answer_cap)

    async def _admit(self, key, prompt_tokens: int, answer_cap: int, slot_tokens: Optional[int]) -> tuple:
        """Stores.admit; while requests in flight leave no room under max_cost_usd, wait for them to settle
        (they mostly cost far less than they reserved) instead of ending the run with the cap far from spent."""
        waited = 0.0
        while True:
            freed = self._budget_freed
            try:
                return await self.stores.admit(key, prompt_tokens, answer_cap, slot_tokens)
            except BudgetExhausted as e:
                raise BudgetReached(str(e)) from None
            except BudgetBusy as e:
                if waited >= BUDGET_WAIT_S:
                    raise BudgetReached(
                        f"{e}, for {BUDGET_WAIT_S:g} s (a process that died keeps its reservation on a shared store "
                        "until its lease ends): raise max_cost_usd, or lower llm.max_tokens"
                    ) from None
                self._note_room(e)
                started = asyncio.get_running_loop().time()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(freed.wait(), BUDGET_CHECK_S)
                waited += asyncio.get_running_loop().time() - started

    def _note_room(self, busy: BudgetBusy) -> None:
        """Once: a cap that holds few requests in flight while far from spent slows a run down; say why."""
        cap = busy.cap
        if self._noted_room or busy.spent > cap / 2:
            return
        self._noted_room = True
        print(
            f"synthkit: note: max_cost_usd={cap:g} holds about {max(1, int(cap / busy.estimate))} requests in "
            f"flight: each reserves up to ${busy.estimate:.4f} (its prompt and llm.max_tokens={self.llm.max_tokens} "
            "of answer) until it is answered, and the others wait; lower llm.max_tokens for more at once",
            file=sys.stderr,
        )

    async def _release(self, reserved) -> None:
        try:
            await self.stores.budget.release(reserved)
        finally:
            self._room_freed()

    def _room_freed(self) -> None:
        freed, self._budget_freed = self._budget_freed, asyncio.Event()
        freed.set()

    def _answered(self, completion: Completion, cost: Optional[float], cached: bool, cap: int) -> Answer:
        self.ledger.answered(
            completion.prompt_tokens,
            completion.completion_tokens,
            cost,
            cached,
            # cut off at llm.max_tokens (the summary says to raise it); a call's own smaller cap reports its own
            truncated=completion.finish_reason == "length" and cap == self.llm.max_tokens,
            cached_cost_usd=self.stores.budget.cost(completion.prompt_tokens, completion.completion_tokens)
            if cached
            else None,
        )
        return Answer(completion, cost, cached)

    async def _request(
        self, messages: list, schema: dict, schema_name: str, tokens: int, wait: Optional[float], max_tokens
    ) -> Completion:
        if self._first_done is None:
            self._first_done = asyncio.Event()
            try:
                completion = await self._request_with_retries(messages, schema, schema_name, tokens, None, max_tokens)
                # The client's setup delayed this request past its reserved slot by an unknown time:
                # reserve one more slot from now, so that the next request cannot follow it too closely.
                await self.stores.limits.acquire(0)
                return completion
            except ProviderRefused as e:
                self._refused = e  # every request would be refused alike
                raise
            finally:
                self._first_done.set()
        await self._first_done.wait()
        if self._refused is not None:
            raise self._refused
        return await self._request_with_retries(messages, schema, schema_name, tokens, wait, max_tokens)

    async def _request_with_retries(
        self, messages: list, schema: dict, schema_name: str, tokens: int, wait: Optional[float], max_tokens
    ) -> Completion:
        async def attempt() -> Completion:
            await self.stores.limits.acquire(tokens)
            return await sent()

        async def sent() -> Completion:
            self.ledger.request_sent()
            try:
                completion = await self.provider.complete(messages, schema, schema_name, max_tokens)
            except RequestFailed as e:
                if e.cannot_connect and not self._endpoint_answered:
                    raise EndpointDown(self._unreachable(e)) from None
                self._endpoint_answered = self._endpoint_answered or e.status is not None
                raise
            except (ProviderRefused, RowRefused):
                self._endpoint_answered = True
                raise
            self._endpoint_answered = True
            return completion

        try:
            if wait is None:
                return await attempt()  # most requests succeed at once: no retry machinery for them
            await asyncio.sleep(wait)  # its slots were taken when it was admitted
            return await sent()
        except RequestFailed as first:
            if not self.llm.max_retries:
                raise
            await asyncio.sleep(self._wait(first, failures=1))
            async for retry in self._retrying():
                with retry:
                    completion = await attempt()
            return completion

    def _unreachable(self, error: RequestFailed) -> str:
        """One line for an endpoint no request ever got an answer from: retrying for minutes would not help."""
        where = (
            f"llm.api_base={self.llm.api_base}"
            if self.llm.api_base
            else f"{self.llm.provider}'s API (llm.api_base is not set: the default endpoint for {self.llm.model})"
        )
        return f"cannot connect to {where} ({error}): is the server running there, and are the host and port right?"


def _estimate(messages: list) -> int:
    return sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN


def _done() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event
