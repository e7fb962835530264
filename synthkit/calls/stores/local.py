"""The stores on files of this machine: the SQLite response cache in cache_dir, flock'd rate schedules beside it,
and the budget ledger in the output (or sweep) dir. Refused on a network filesystem, where neither lock holds."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from synthkit.calls.stores.base import Stores, StoreSettings, endpoint
from synthkit.calls.stores.budget_file import Budget
from synthkit.core.errors import UserError
from synthkit.core.paths import configured_cache_dir


@dataclass
class LocalStores(Stores):
    settings: Optional[StoreSettings] = None

    @classmethod
    def open(cls, settings: StoreSettings, llm, price, use_cache: bool) -> "LocalStores":
        from synthkit.calls.stores.cache import ResponseCache, cache_dir

        limited = bool(llm.rpm or llm.tpm)
        if use_cache or limited:
            refuse_network_dir(configured_cache_dir(settings.cache_dir))
        directory = cache_dir(settings.cache_dir) if use_cache or limited else Path()
        cache = LocalCache(ResponseCache(directory)) if use_cache else None
        return cls(cache, _limits(directory, llm), LocalBudget(_budget(settings, price)), settings)

    async def admit(self, key, prompt_tokens, completion_tokens, slot_tokens=None) -> tuple:
        if key is not None and self.cache is not None:
            cached = await self.cache.get(key)
            if cached is not None:
                return cached, None, None
        return None, await self.budget.reserve(prompt_tokens, completion_tokens), None

    async def finish(self, key, reservation, completion, estimated_tokens: int) -> Optional[float]:
        cost = await self.budget.settle(reservation, completion.prompt_tokens, completion.completion_tokens)
        if key is not None and self.cache is not None:
            await self.cache.put(key, completion)
        await self.limits.settle(estimated_tokens, completion.prompt_tokens + completion.completion_tokens)
        return cost

    def for_model(self, llm, price) -> "LocalStores":
        limited = bool(llm.rpm or llm.tpm)
        if limited:
            refuse_network_dir(configured_cache_dir(self.settings.cache_dir))
        from synthkit.calls.stores.cache import cache_dir

        directory = cache_dir(self.settings.cache_dir) if limited else Path()
        return LocalStores(
            self.cache, _limits(directory, llm), LocalBudget(_budget(self.settings, price)), self.settings
        )

    def close(self) -> None:
        self.budget.record()
        if self.cache is not None:
            self.cache.close()


def _limits(directory: Path, llm):
    from synthkit.calls.stores.limits import RateLimits

    # The rate schedules live beside the cache, shared by the machine's processes.
    return RateLimits(directory / "limits", endpoint(llm), llm.rpm, llm.tpm)


def _budget(settings: StoreSettings, price) -> Budget:
    return Budget(price, settings.max_cost_usd, settings.budget_file)


def refuse_network_dir(directory: Path) -> None:
    from synthkit.calls.stores.fs_check import network_filesystem

    fstype = network_filesystem(directory)
    if fstype is not None:
        raise UserError(
            f"cache_dir={directory} is on a network filesystem ({fstype}), where the SQLite cache and the rate "
            "limits' file locks do not hold across machines: share them with store=redis://host:port/db, "
            "or choose a cache_dir on a local disk"
        )


class LocalCache:
    """The SQLite cache behind the async interface; its calls take microseconds, so they run inline."""

    def __init__(self, cache):
        self._cache = cache

    async def get(self, key: str):
        return self._cache.get(key)

    async def put(self, key: str, completion) -> None:
        self._cache.put(key, completion)

    def close(self) -> None:
        self._cache.close()


class LocalBudget:
    """The ledger file (synthkit.calls.stores.budget_file.Budget) behind the async interface."""

    def __init__(self, budget: Budget):
        self._budget = budget

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        return self._budget.cost(prompt_tokens, completion_tokens)

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self._budget.reserve(prompt_tokens, completion_tokens)

    async def settle(self, reserved: float, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        return self._budget.settle(reserved, prompt_tokens, completion_tokens)

    async def release(self, reserved: float) -> None:
        self._budget.release(reserved)

    def record(self) -> None:
        """Write what was spent and not yet written (without a cap it is written every half second)."""
        self._budget.record()
