"""The stores on a Redis (or Valkey) server shared by every process of a sweep on any number of machines
(store=redis://host:port/db): the response cache, the rpm/tpm schedules and the budget ledger, each operation one
script on the server (synthkit.calls.stores.redis_store). A request costs two round trips: admit (the cache lookup
with the reservation and the rate slots) and finish (the settlement with the answer's cache write)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from synthkit.calls.stores.base import Stores, StoreSettings, endpoint
from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install


@dataclass
class RedisStores(Stores):
    redis: Any = None  # the RedisStore (server connection) behind them
    settings: Optional[StoreSettings] = None

    @classmethod
    def open(cls, settings: StoreSettings, llm, price, use_cache: bool) -> "RedisStores":
        store = connect(settings)
        return cls(
            store.cache if use_cache else None,
            store.rate_limits(endpoint(llm), llm.rpm, llm.tpm),
            _budget(store, settings, price),
            store,
            settings,
        )

    async def admit(self, key, prompt_tokens, completion_tokens, slot_tokens=None) -> tuple:
        if key is None or self.cache is None:  # no lookup: a reservation alone; the slots come when it is sent
            return None, await self.budget.reserve(prompt_tokens, completion_tokens), None
        slots = self.limits.slots(slot_tokens) if slot_tokens is not None else ([], [])
        return await self.budget.admit(key, prompt_tokens, completion_tokens, slots)  # one round trip

    async def finish(self, key, reservation, completion, estimated_tokens: int) -> Optional[float]:
        used = completion.prompt_tokens + completion.completion_tokens
        correction = self.limits.correction(estimated_tokens, used)
        return await self.budget.finish(reservation, completion, key if self.cache is not None else None, correction)

    def for_model(self, llm, price) -> "RedisStores":
        limits = self.redis.rate_limits(endpoint(llm), llm.rpm, llm.tpm)
        return RedisStores(self.cache, limits, _budget(self.redis, self.settings, price), self.redis, self.settings)

    async def aclose(self) -> None:
        await self.redis.aclose()


def _budget(store, settings: StoreSettings, price) -> "SharedBudget":
    # One ledger per output dir, or per sweep dir for its jobs: named by the dir's absolute path, the same
    # on every machine that mounts the shared filesystem at the same place.
    ledger = store.budget(str(Path(settings.budget_file).parent.resolve()), settings.max_cost_usd)
    return SharedBudget(price, settings.max_cost_usd, ledger)


def connect(settings: StoreSettings):
    """The server connection; checks the URL, the server and the login (one line for what is wrong)."""
    from synthkit.core.secrets import protect

    protect(settings.password_env)
    try:
        import redis  # noqa: F401
    except ImportError:
        raise UserError(f"store=redis://... needs the redis client: {pip_install('redis')}") from None
    from synthkit.calls.stores.redis_store import RedisStore

    return RedisStore(settings.url, password_env=settings.password_env, outage_s=settings.outage_s)


class SharedBudget:
    """The budget on the Redis store, priced: a reservation is a token, settled once with the real cost."""

    def __init__(self, price, max_cost_usd: Optional[float], ledger):
        self.price, self.max_cost_usd, self._ledger = price, max_cost_usd, ledger

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        return None if self.price is None else self.price.cost(prompt_tokens, completion_tokens)

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> Optional[str]:
        """A token (None without a cap: nothing to reserve); raises BudgetBusy or BudgetExhausted as
        synthkit.calls.stores.base.reservation decides."""
        if self.max_cost_usd is None:
            return None
        return await self._ledger.reserve(self.cost(prompt_tokens, completion_tokens) or 0.0)

    async def settle(self, token: Optional[str], prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        cost = self.cost(prompt_tokens, completion_tokens)
        if cost or token is not None:
            await self._ledger.settle(token or _fresh_token(), cost or 0.0)
        return cost

    async def release(self, token: Optional[str]) -> None:
        if token is not None:
            await self._ledger.release(token)

    async def admit(self, key: str, prompt_tokens: int, completion_tokens: int, slots: tuple) -> tuple:
        """The cached answer under `key`, or a reservation and the rate slots, in one script (Stores.admit)."""
        estimate = self.cost(prompt_tokens, completion_tokens) or 0.0
        cached, token, wait = await self._ledger.admit(key, estimate, slots)
        if cached is not None:
            return cached, None, None
        return None, token if self.max_cost_usd is not None else None, wait

    async def finish(self, token: Optional[str], completion, key: Optional[str], correction: tuple) -> Optional[float]:
        """Settle, cache and correct the tpm schedule in one script (Stores.finish); returns the answer's cost."""
        cost = self.cost(completion.prompt_tokens, completion.completion_tokens)
        if token is None and cost:
            token = _fresh_token()
        if token is not None or key is not None or correction[0]:
            await self._ledger.finish(token, cost or 0.0, key, completion, correction)
        return cost


def _fresh_token() -> str:
    import uuid

    return uuid.uuid4().hex
