"""Where a run keeps the state it shares with other processes, chosen in one place: the response
cache, the rpm/tpm schedules and the budget ledger. With `store` unset they are files of this
machine (SQLite in cache_dir, flock'd schedules beside it, a ledger in the output or sweep dir),
refused on a network filesystem where neither holds; with `store=redis://host:port/db` they all
live on that server, shared by every process of a sweep on any number of machines. Either way the
caller sees one async interface: admit (a cached answer, or a budget reservation) before each request,
limits.acquire (the rpm and tpm slots) before each attempt, and finish (settle, cache, correct the tpm
schedule) after the answer. On the Redis store each is one script, and admit takes the first attempt's
slots too: a request sent once costs two round trips."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from synthkit.calls.cost import BUDGET_LEDGER, Budget, BudgetExhausted, Price
from synthkit.core.errors import UserError


@dataclass
class Stores:
    cache: Optional[Any]  # None: every request goes to the model
    limits: Any
    budget: Any
    redis: Optional[Any] = None  # the RedisStore behind them, when store=redis://

    def close(self) -> None:
        """Close what can be closed outside the event loop (the run never started)."""
        if self.cache is not None and self.redis is None:
            self.cache.close()

    async def aclose(self) -> None:
        self.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def admit(
        self, key: Optional[str], prompt_tokens: int, completion_tokens: int, slot_tokens: Optional[int] = None
    ) -> tuple:
        """Before a request: (the cached answer, None, None), or (None, its budget reservation, wait). With
        `slot_tokens` (the request may take its rpm/tpm slots now) a shared store takes them with the
        reservation, and `wait` is how long to wait for them; else `wait` is None and the request takes its
        slots when it is sent. Raises BudgetExhausted past the cap. `key` None: no cache lookup."""
        if self.redis is not None and key is not None and self.cache is not None:
            slots = self.limits.slots(slot_tokens) if slot_tokens is not None else ([], [])
            return await self.budget.admit(key, prompt_tokens, completion_tokens, slots)  # one round trip
        if key is not None and self.cache is not None:
            cached = await self.cache.get(key)
            if cached is not None:
                return cached, None, None
        return None, await self.budget.reserve(prompt_tokens, completion_tokens), None

    async def finish(self, key: Optional[str], reservation, completion, estimated_tokens: int) -> Optional[float]:
        """After an answer: settle its reservation with what it cost (returned), cache it under `key`,
        and correct the tpm schedule by the tokens it used beyond (or below) `estimated_tokens`."""
        used = completion.prompt_tokens + completion.completion_tokens
        if self.redis is not None:
            correction = self.limits.correction(estimated_tokens, used)
            return await self.budget.finish(
                reservation, completion, key if self.cache is not None else None, correction
            )
        cost = await self.budget.settle(reservation, completion.prompt_tokens, completion.completion_tokens)
        if key is not None and self.cache is not None:
            await self.cache.put(key, completion)
        await self.limits.settle(estimated_tokens, used)
        return cost

    def for_model(self, cfg, llm, price: Optional[Price], ledger_dir: Path) -> "Stores":
        """The stores of another model of the run (the LLM judge's): the run's cache, its endpoint's
        own rate schedule, and the run's budget ledger priced for it, so max_cost_usd counts both models."""
        endpoint = f"{llm.model}|{llm.api_base}"
        if self.redis is not None:
            ledger = self.redis.budget(str(Path(ledger_dir).resolve()), cfg.max_cost_usd)
            limits = self.redis.rate_limits(endpoint, llm.rpm, llm.tpm)
            return Stores(self.cache, limits, SharedBudget(price, cfg.max_cost_usd, ledger), self.redis)
        from synthkit.calls.stores.cache import cache_dir
        from synthkit.calls.stores.limits import RateLimits

        limited = bool(llm.rpm or llm.tpm)
        if limited:
            refuse_network_dir(_configured_cache_dir(cfg))
        directory = cache_dir(cfg) if limited else Path()
        budget = LocalBudget(Budget(price, cfg.max_cost_usd, ledger_dir / BUDGET_LEDGER))
        return Stores(self.cache, RateLimits(directory / "limits", endpoint, llm.rpm, llm.tpm), budget)


def open_stores(cfg, price: Optional[Price], ledger_dir: Path, use_cache: bool) -> Stores:
    """The cache (when `use_cache`), limits and budget of a run as `cfg.store` says. Every refusal
    (a network filesystem, a store that cannot be reached or refuses the login) comes from here,
    before any request or output file."""
    endpoint = f"{cfg.llm.model}|{cfg.llm.api_base}"
    if cfg.get("store"):
        return _redis_stores(cfg, price, ledger_dir, use_cache, endpoint)
    from synthkit.calls.stores.cache import ResponseCache, cache_dir
    from synthkit.calls.stores.limits import RateLimits

    limited = bool(cfg.llm.rpm or cfg.llm.tpm)
    if use_cache or limited:
        refuse_network_dir(_configured_cache_dir(cfg))
    directory = cache_dir(cfg) if use_cache or limited else Path()
    cache = LocalCache(ResponseCache(directory)) if use_cache else None
    # The rate schedules live beside the cache, shared by the machine's processes.
    limits = RateLimits(directory / "limits", endpoint, cfg.llm.rpm, cfg.llm.tpm)
    return Stores(cache, limits, LocalBudget(Budget(price, cfg.max_cost_usd, ledger_dir / BUDGET_LEDGER)))


def refuse_network_dir(directory: Path) -> None:
    from synthkit.calls.stores.fs_check import network_filesystem

    fstype = network_filesystem(directory)
    if fstype is not None:
        raise UserError(
            f"cache_dir={directory} is on a network filesystem ({fstype}), where the SQLite cache and the rate "
            "limits' file locks do not hold across machines: share them with store=redis://host:port/db, "
            "or choose a cache_dir on a local disk"
        )


def _configured_cache_dir(cfg) -> Path:
    from synthkit.calls.stores.cache import default_cache_dir

    return Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()


def check_store(cfg) -> None:
    """Refuse, as one line, a store that cannot be used (before a sweep launches jobs that would all fail)."""
    if cfg.get("store"):
        _connect(cfg)  # checks the URL, the server and the login; opens nothing that needs closing


def _redis_stores(cfg, price: Optional[Price], ledger_dir: Path, use_cache: bool, endpoint: str) -> Stores:
    store = _connect(cfg)
    limits = store.rate_limits(endpoint, cfg.llm.rpm, cfg.llm.tpm)
    # One ledger per output dir, or per sweep dir for its jobs: named by the dir's absolute path, the same
    # on every machine that mounts the shared filesystem at the same place.
    ledger = store.budget(str(Path(ledger_dir).resolve()), cfg.max_cost_usd)
    return Stores(store.cache if use_cache else None, limits, SharedBudget(price, cfg.max_cost_usd, ledger), store)


def _connect(cfg):
    from synthkit.calls.stores import redis_store as store_redis
    from synthkit.core.secrets import protect

    password_env = cfg.get("store_password_env") or store_redis.PASSWORD_ENV
    protect(password_env)
    try:
        import redis  # noqa: F401
    except ImportError:
        from synthkit.core.extras import pip_install

        raise UserError(f"store=redis://... needs the redis client: {pip_install('redis')}") from None
    return store_redis.RedisStore(cfg.store, password_env=password_env, outage_s=cfg.store_outage_s)


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
    """synthkit.calls.cost.Budget (a flock'd ledger file) behind the async interface."""

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


class SharedBudget:
    """The budget on the Redis store, priced: a reservation is a token, settled once with the real cost."""

    def __init__(self, price: Optional[Price], max_cost_usd: Optional[float], ledger):
        self.price, self.max_cost_usd, self._ledger = price, max_cost_usd, ledger

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        return None if self.price is None else self.price.cost(prompt_tokens, completion_tokens)

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> Optional[str]:
        """A token (None without a cap: nothing to reserve); raises BudgetExhausted past the cap."""
        if self.max_cost_usd is None:
            return None
        token = await self._ledger.reserve(self.cost(prompt_tokens, completion_tokens) or 0.0)
        if token is None:
            spent = await self._ledger.spent()
            raise BudgetExhausted(f"max_cost_usd={self.max_cost_usd:g} reached (spent ${spent:.4f})")
        return token

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
        cached, token, granted, wait = await self._ledger.admit(key, estimate, slots)
        if cached is not None:
            return cached, None, None
        if not granted:
            spent = await self._ledger.spent()
            raise BudgetExhausted(f"max_cost_usd={self.max_cost_usd:g} reached (spent ${spent:.4f})")
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
