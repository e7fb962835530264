"""A Redis (or Valkey) server as the shared state of runs spread over machines, where files on a
network filesystem cannot be (store=redis://host:port/db): the response cache, the rpm/tpm GCRA
schedules and the budget ledger of a sweep. Every change of shared state is one Lua script, atomic
on the server and timed by the server's clock, so the machines' clocks never matter. The password
comes from an environment variable (SYNTHKIT_REDIS_PASSWORD unless store_password_env names
another), never from the URL (Hydra saves overrides to disk). When
the server goes away mid-run, operations wait for it with backoff for up to `outage_s`, after one
warning line, and resume where they were."""

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Optional, TypeVar
from urllib.parse import urlparse

from synthkit.calls.stores.base import StoreUnavailable, budget_busy, budget_reached
from synthkit.calls.stores.limits import EndpointLimits, rate_name
from synthkit.core.errors import UserError
from synthkit.core.secrets import url_password_refusal
from synthkit.core.text import printable

if TYPE_CHECKING:
    from synthkit.calls.providers.base import Completion

SCHEMES = ("redis", "rediss", "unix")
OUTAGE_S = 300.0  # how long operations wait for a server that went away before the run stops
BACKOFF_MAX_S = 5.0
REWARN_AFTER_S = 60.0  # reconnections right after an outage are the same outage: no second warning
RATE_TTL_S = 3600  # a schedule nobody has used for an hour is gone; its next user starts afresh

T = TypeVar("T")

# GCRA: reserve `units` from max(next free time, now) (or, to correct, from the next free time) and
# return how long the caller waits, measured on the server's clock.
RATE_FUNCTIONS = """
local function shift(key, units, interval, reserve, ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local stored = tonumber(redis.call('GET', key) or '0')
  local start = stored
  if reserve == '1' then start = math.max(stored, now) end
  local nxt = start + tonumber(units) * tonumber(interval)
  redis.call('SET', key, string.format('%.6f', nxt), 'EX', math.max(0, math.ceil(nxt - now)) + tonumber(ttl))
  return start - now
end
"""

# KEYS: schedules (a request's rpm and tpm). ARGV: reserve ('1' or '0'), ttl, then units and interval
# for each key. Returns the longest wait, so one round trip takes every slot a request needs.
RATE_SCRIPT = (
    RATE_FUNCTIONS
    + """
local wait = -math.huge
for i, key in ipairs(KEYS) do
  wait = math.max(wait, shift(key, ARGV[1 + 2 * i], ARGV[2 + 2 * i], ARGV[1], ARGV[2]))
end
return string.format('%.6f', wait)
"""
)

# The budget ledger's keys: spent, reserved (sum of open reservations), reservations (token ->
# estimate), times (token -> when). Scripts are built from these functions, so that a request's
# cache lookup and reservation go to the server as one script, and its settlement and cache write as another.
BUDGET_FUNCTIONS = """
-- Reserve under token as synthkit.calls.stores.base.reservation decides: the estimate where it fits beside
-- spent + reserved; else wait while other requests hold reservations (2), or, with none in flight, go with what is
-- left of the cap (a run passes it by one request at most); refused once spent reaches the cap (0). Returns
-- {verdict, spent, reserved}. Reservations older than the lease (their process died) are released first. A token
-- seen already is granted again without reserving twice: a retry after a lost reply must not double-count.
local function reserve(spent_key, reserved_key, tokens_key, times_key, token, estimate, cap, lease)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local stale = redis.call('ZRANGEBYSCORE', times_key, '-inf', now - tonumber(lease))
  for _, old in ipairs(stale) do
    local amount = tonumber(redis.call('HGET', tokens_key, old) or '0')
    redis.call('INCRBYFLOAT', reserved_key, string.format('%.17g', -amount))
    redis.call('HDEL', tokens_key, old)
    redis.call('ZREM', times_key, old)
  end
  local spent = tonumber(redis.call('GET', spent_key) or '0')
  local reserved = tonumber(redis.call('GET', reserved_key) or '0')
  local verdict = {1, string.format('%.17g', spent), string.format('%.17g', reserved)}
  if redis.call('HEXISTS', tokens_key, token) == 1 then return verdict end
  local amount, limit = tonumber(estimate), tonumber(cap)
  if spent >= limit then verdict[1] = 0 return verdict end
  if spent + reserved + amount > limit then
    if reserved > 1e-12 then verdict[1] = 2 return verdict end
    amount = limit - spent
  end
  local text = string.format('%.17g', amount)
  redis.call('HSET', tokens_key, token, text)
  redis.call('ZADD', times_key, now, token)
  redis.call('INCRBYFLOAT', reserved_key, text)
  return verdict
end

-- Charge `cost` and release the token's reservation, once: a token settled already (a retry after a
-- lost reply) is not charged again. A token with no reservation (no cap) is charged as is; with
-- only_release the reservation is dropped and nothing charged.
local function settle(spent_key, reserved_key, tokens_key, times_key, token, cost, only_release, memory)
  local done = spent_key .. ':settled:' .. token
  if redis.call('EXISTS', done) == 1 then return redis.call('GET', spent_key) or '0' end
  redis.call('SET', done, '1', 'EX', tonumber(memory))
  local amount = redis.call('HGET', tokens_key, token)
  if amount then
    redis.call('INCRBYFLOAT', reserved_key, string.format('%.17g', -tonumber(amount)))
    redis.call('HDEL', tokens_key, token)
    redis.call('ZREM', times_key, token)
  end
  if only_release == '1' then return redis.call('GET', spent_key) or '0' end
  return redis.call('INCRBYFLOAT', spent_key, cost)
end
"""

# KEYS: the ledger's four. ARGV: token, estimate, cap, lease.
RESERVE_SCRIPT = BUDGET_FUNCTIONS + "return reserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], unpack(ARGV))"

# KEYS: the ledger's four. ARGV: token, cost, only_release ('1' or '0'), memory (s).
SETTLE_SCRIPT = BUDGET_FUNCTIONS + "return settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4], unpack(ARGV))"

# Before a request. KEYS: the cache key, the ledger's four, then the rate schedules whose slots the request
# takes now (none: it takes them when it is sent). ARGV: token, estimate, cap ('' for no cap), lease, the
# schedules' ttl, then units and interval per schedule. Returns {'hit', answer}, {'reserved', 1, wait}, or
# {'reserved', 0 or 2, '', spent, reserved} (the budget's verdict): a cached answer takes no slot, nor does a
# request the budget refuses or makes wait.
ADMIT_SCRIPT = (
    BUDGET_FUNCTIONS
    + RATE_FUNCTIONS
    + """
local hit = redis.call('GET', KEYS[1])
if hit then return {'hit', hit} end
if ARGV[3] ~= '' then
  local verdict = reserve(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
  if verdict[1] ~= 1 then return {'reserved', verdict[1], '', verdict[2], verdict[3]} end
end
local wait = 0
for i = 6, #KEYS do
  wait = math.max(wait, shift(KEYS[i], ARGV[2 * i - 6], ARGV[2 * i - 5], '1', ARGV[5]))
end
return {'reserved', 1, string.format('%.6f', wait)}
"""
)

# After an answer. KEYS: the cache key, then the ledger's four, then the tpm schedule when its
# reservation is corrected. ARGV: token ('' when there is nothing to settle), cost, memory, the answer
# to cache ('' for none), then the correction's units and interval, and the schedules' ttl.
FINISH_SCRIPT = (
    BUDGET_FUNCTIONS
    + RATE_FUNCTIONS
    + """
if ARGV[4] ~= '' then redis.call('SET', KEYS[1], ARGV[4]) end
if KEYS[6] then shift(KEYS[6], ARGV[5], ARGV[6], '0', ARGV[7]) end
if ARGV[1] == '' then return '0' end
return settle(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], '0', ARGV[3])
"""
)


def check_url(url: str, password_env: Optional[str] = None) -> None:
    """Refuse, as one line, a store URL that is malformed or carries a password."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as e:
        raise UserError(f"store={url!r} is not a valid URL ({e}): write store=redis://host:port/db") from None
    if parsed.scheme not in SCHEMES:
        raise UserError(f"store={url!r}: only redis://host:port/db (or rediss:// for TLS) is supported")
    refusal = url_password_refusal(url, password_env)
    if refusal:
        raise UserError(refusal)
    if parsed.scheme != "unix" and not parsed.hostname:
        raise UserError(f"store={url!r} names no host: write store=redis://host:port/db")
    db = parsed.path.strip("/")
    if parsed.scheme != "unix" and db and not db.isdigit():
        raise UserError(f"store={url!r}: the database after the port must be a number, as in redis://host:6379/0")


class RedisStore:
    """One server's shared state for this process. Construct it outside the event loop (it checks
    the server at once, synchronously); use it from one event loop; `await aclose()` at the end."""

    def __init__(
        self, url: str, namespace: str = "synthkit", outage_s: float = OUTAGE_S, password_env: Optional[str] = None
    ):
        """`password_env`: the environment variable holding the password (store_password_env); None: no password."""
        check_url(url, password_env)
        self.url, self.namespace, self.outage_s, self.password_env = url, namespace, outage_s, password_env
        self._password = (os.environ.get(password_env) or None) if password_env else None
        self._client = None
        self._scripts: dict = {}
        self._down_since: float | None = None
        self._warned_at = float("-inf")
        self._gone: str | None = None  # set once an outage outlasted outage_s: later operations fail at once
        self._check_server()
        self.cache = RedisCache(self)

    def _options(self) -> dict:
        # The client's own retries are off: _retrying waits for outages, with the one warning.
        return {
            "password": self._password,
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
            "decode_responses": True,
            "retry_on_error": [],
            "retry": None,
        }

    def _check_server(self) -> None:
        import redis

        client = None
        try:
            client = redis.Redis.from_url(self.url, **self._options())
            client.ping()
            self._check_memory_policy(client)
        except (TypeError, ValueError) as e:  # an option in the query string that redis does not know
            raise UserError(f"store={self.url!r} is not a valid URL ({e}): write store=redis://host:port/db") from None
        except redis.AuthenticationError as e:
            variable = self.password_env or "the variable store_password_env names"
            hint = f"set {variable}" if self._password is None else f"check {variable}"
            raise UserError(f"the store at {self.url} refused the login ({_reason(e)}): {hint}") from None
        except redis.ConnectionError as e:
            raise UserError(
                f"cannot reach the store at {self.url} ({_reason(e)}): is the server running there, "
                "and the host and port right?"
            ) from None
        except redis.RedisError as e:  # e.g. a db number the server does not have
            raise UserError(f"the store at {self.url} refused the connection ({_reason(e)})") from None
        finally:
            if client is not None:
                client.close()

    def _check_memory_policy(self, client) -> None:
        """A server that evicts keys under memory pressure could drop the budget's (the cap would be overspent) or
        the rate schedules': refused once it has a memory limit, warned of while it has none."""
        import redis

        try:
            config = client.config_get("maxmemory*")
        except redis.ResponseError:  # CONFIG is disabled (a managed Redis): it cannot be read, so it is not judged
            return
        policy = str(config.get("maxmemory-policy") or "noeviction")
        if policy == "noeviction":
            return
        fix = "set maxmemory-policy noeviction on it (CONFIG SET maxmemory-policy noeviction, or in redis.conf)"
        if str(config.get("maxmemory") or "0") != "0":
            raise UserError(
                f"the store at {self.url} evicts keys when its memory is full (maxmemory-policy {policy}): "
                f"the budget's keys could be dropped and max_cost_usd overspent; {fix}"
            )
        print(
            f"synthkit: warning: the store at {self.url} has maxmemory-policy {policy}: once a memory limit is set it "
            f"evicts keys, the budget's among them; {fix}",
            file=sys.stderr,
        )

    @property
    def client(self):
        if self._client is None:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self.url, **self._options())
            scripts = {
                "rate": RATE_SCRIPT,
                "reserve": RESERVE_SCRIPT,
                "settle": SETTLE_SCRIPT,
                "admit": ADMIT_SCRIPT,
                "finish": FINISH_SCRIPT,
            }
            for name, text in scripts.items():
                self._scripts[name] = self._client.register_script(text)
        return self._client

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    async def script(self, name: str, keys: list, args: list):
        client = self.client
        return await self.retrying(lambda: self._scripts[name](keys=keys, args=args, client=client))

    async def retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation`, retried with backoff while the server is unreachable, for up to outage_s."""
        import redis

        deadline, delay = None, 0.1
        while True:
            if self._gone is not None:
                raise StoreUnavailable(self._gone)
            try:
                result = await operation()
            except redis.AuthenticationError:
                raise
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                # ReadOnlyError, BusyLoadingError (a ConnectionError) and BUSY: a replica, a server still
                # reading its data back after a restart, a long script; all pass. Any other refusal of the
                # operation itself (out of memory, a key of another type) would not: the run stops now.
                if isinstance(e, redis.ResponseError) and not isinstance(e, redis.ReadOnlyError):
                    if not str(e).startswith(("BUSY", "LOADING", "TRYAGAIN")):
                        self._gone = f"the store at {self.url} refused an operation ({_reason(e)}){_hint(e)}"
                        raise StoreUnavailable(self._gone) from None
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.outage_s
                self._outage(e, now)
                if now >= deadline:
                    self._gone = f"the store at {self.url} has been unreachable for {self.outage_s:g} s ({_reason(e)})"
                    raise StoreUnavailable(self._gone) from None
                await asyncio.sleep(min(random.uniform(delay / 2, delay), deadline - now))
                delay = min(delay * 2, BACKOFF_MAX_S)
            else:
                self._down_since = None
                return result

    def _outage(self, error: Exception, now: float) -> None:
        if self._down_since is not None:
            return
        self._down_since = now
        if now - self._warned_at >= REWARN_AFTER_S:
            self._warned_at = now
            print(
                f"synthkit: warning: the store at {self.url} is unreachable ({_reason(error)}); "
                f"waiting for it for up to {self.outage_s:g} s",
                file=sys.stderr,
                flush=True,
            )

    def rate_limits(self, endpoint: str, rpm: float | None, tpm: float | None) -> "RedisRateLimits":
        return RedisRateLimits(self, endpoint, rpm, tpm)

    def budget(self, ledger: str, max_cost_usd: float | None, lease_s: float = 3600.0) -> "RedisBudget":
        return RedisBudget(self, ledger, max_cost_usd, lease_s)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _hint(error: Exception) -> str:
    if "maxmemory" in str(error):  # OOM (redis-py keeps the message, not the code)
        return ": free memory on the server or raise its maxmemory (keep maxmemory-policy noeviction), then resume"
    return ": check that nothing else writes synthkit's keys on that server, then resume"


def _reason(error: Exception) -> str:
    """The server's reason, printable (it reaches stderr and error lines)."""
    return printable(str(error).strip().splitlines()[0]) if str(error).strip() else type(error).__name__


class RedisCache:
    """The response cache (keys from synthkit.calls.stores.cache.request_key), each answer a JSON string."""

    def __init__(self, store: RedisStore):
        self.store = store

    def key(self, key: str) -> str:
        return self.store.key("cache", key)

    async def get(self, key: str) -> "Completion | None":
        raw = await self.store.retrying(lambda: self.store.client.get(self.key(key)))
        return None if raw is None else decode(raw)

    async def put(self, key: str, completion: "Completion") -> None:
        raw = encode(completion)
        await self.store.retrying(lambda: self.store.client.set(self.key(key), raw))


def encode(completion: "Completion") -> str:
    return json.dumps(
        {
            "text": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "finish_reason": completion.finish_reason,
        },
        ensure_ascii=False,
    )


def decode(raw: str) -> "Completion | None":
    """The cached answer, or None for a value that is not one (another writer, or a damaged value): as the
    local cache's damaged page, it is asked of the model again and overwritten."""
    # Imported here: synthkit.calls.providers pulls in the config module, and Hydra with it.
    from synthkit.calls.providers.base import Completion

    try:
        value = json.loads(raw)
        text, prompt, completion, finish = (
            value["text"],
            value["prompt_tokens"],
            value["completion_tokens"],
            value.get("finish_reason", "stop"),
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    if not (isinstance(text, str) and isinstance(finish, str) and _count(prompt) and _count(completion)):
        return None
    return Completion(text, prompt, completion, finish)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RedisRate:
    """One GCRA schedule (a limit per minute) shared by every process using the same name."""

    def __init__(self, store: RedisStore, name: str, per_minute: float):
        self.store, self.name = store, store.key("rate", name)
        self.seconds_per_unit = 60.0 / per_minute

    def units(self, units: float) -> list:
        return [repr(float(units)), repr(self.seconds_per_unit)]


class RedisRateLimits(EndpointLimits):
    """synthkit.calls.stores.limits.RateLimits on the store: a request's rpm and tpm slots are one script."""

    def __init__(self, store: RedisStore, endpoint: str, rpm: float | None, tpm: float | None):
        name = rate_name(endpoint)
        self.store = store
        super().__init__(
            RedisRate(store, f"{name}:rpm", rpm) if rpm else None,
            RedisRate(store, f"{name}:tpm", tpm) if tpm else None,
        )

    async def acquire(self, estimated_tokens: int) -> None:
        keys, units = self.slots(estimated_tokens)
        if keys:
            delay = float(await self.store.script("rate", keys, [1, RATE_TTL_S, *units]))
            if delay > 0:
                await asyncio.sleep(delay)

    async def settle(self, estimated_tokens: int, used_tokens: int) -> None:
        if self.tokens and used_tokens != estimated_tokens:
            units = self.tokens.units(used_tokens - estimated_tokens)
            await self.store.script("rate", [self.tokens.name], [0, RATE_TTL_S, *units])

    def slots(self, estimated_tokens: int) -> tuple[list, list]:
        """The keys and arguments of `acquire`, for the admit script to take the slots with the reservation."""
        parts = [(rate, units) for rate, units in ((self.requests, 1), (self.tokens, estimated_tokens)) if rate]
        return [rate.name for rate, _ in parts], [arg for rate, units in parts for arg in rate.units(units)]

    def correction(self, estimated_tokens: int, used_tokens: int) -> tuple[list, list]:
        """The keys and arguments of `settle`, for the finish script to carry."""
        if not self.tokens or used_tokens == estimated_tokens:
            return [], []
        return [self.tokens.name], [*self.tokens.units(used_tokens - estimated_tokens), RATE_TTL_S]


class RedisBudget:
    """Money spent by every process charging the same ledger, against an optional cap. Each request
    reserves its estimated cost first (synthkit.calls.stores.base.reservation: it waits while those in flight
    leave no room, and the last goes with what is left), and settles its actual cost after: the spend passes
    the cap by one request's cost at most. Reservations of a process that died are released after `lease_s`."""

    def __init__(self, store: RedisStore, ledger: str, max_cost_usd: float | None, lease_s: float):
        self.store, self.max_cost_usd, self.lease_s = store, max_cost_usd, lease_s
        self._memory_s = int(2 * store.outage_s) + 60  # how long a settled token is remembered, for retries
        self.keys = [store.key("budget", ledger, part) for part in ("spent", "reserved", "tokens", "times")]

    async def reserve(self, estimate_usd: float) -> str:
        """A token to settle the request with; raises BudgetBusy (wait and ask again) or BudgetExhausted."""
        token = uuid.uuid4().hex
        if self.max_cost_usd is None:
            return token
        verdict = await self.store.script(
            "reserve", self.keys, [token, repr(float(estimate_usd)), repr(float(self.max_cost_usd)), self.lease_s]
        )
        self._refuse(verdict[0], verdict[1], verdict[2], estimate_usd)
        return token

    def _refuse(self, verdict, spent, reserved, estimate_usd: float) -> None:
        """Raise what the script's verdict says (0: the cap is spent, 2: wait); nothing when it granted."""
        if int(verdict) == 0:
            raise budget_reached(self.max_cost_usd, float(spent), float(reserved))
        if int(verdict) == 2:
            raise budget_busy(self.max_cost_usd, float(spent), float(reserved), estimate_usd)

    async def settle(self, token: str, cost_usd: float) -> float:
        """Charge the request's actual cost and release its reservation; returns the total spent."""
        return float(await self.store.script("settle", self.keys, [token, repr(float(cost_usd)), 0, self._memory_s]))

    async def release(self, token: str) -> None:
        """Drop a reservation whose request cost nothing (it failed before the provider charged)."""
        await self.store.script("settle", self.keys, [token, "0", 1, self._memory_s])

    async def spent(self) -> float:
        raw = await self.store.retrying(lambda: self.store.client.get(self.keys[0]))
        return float(raw or 0.0)

    async def admit(self, cache_key: str, estimate_usd: float, slots=([], [])) -> tuple:
        """One script before a request: (the cached answer, None, None) if there is one, else a reservation
        as `reserve` makes it (raising as it does), with the rate slots of `slots` (RedisRateLimits.slots) taken
        when it is granted: (None, token, how long to wait for them, or None if none were taken)."""
        token = uuid.uuid4().hex
        cap = "" if self.max_cost_usd is None else repr(float(self.max_cost_usd))
        keys, units = slots
        answer = await self.store.script(
            "admit",
            [self.store.cache.key(cache_key), *self.keys, *keys],
            [token, repr(float(estimate_usd)), cap, self.lease_s, RATE_TTL_S, *units],
        )
        if answer[0] == "hit":
            cached = decode(answer[1])
            if cached is not None:
                return cached, None, None
            return None, await self.reserve(estimate_usd), None  # not an answer: the request goes to the model
        if int(answer[1]) != 1:
            self._refuse(answer[1], answer[3], answer[4], estimate_usd)
        return None, token, float(answer[2]) if keys else None

    async def finish(
        self, token: "str | None", cost_usd: float, cache_key: "str | None", answer: "Completion", rate=([], [])
    ) -> None:
        """One script after an answer: settle `token` (if any) with its cost, cache the answer (if a
        key), and correct the tpm schedule (RedisRateLimits.correction)."""
        keys = [self.store.cache.key(cache_key) if cache_key else self.store.key("cache", "-"), *self.keys, *rate[0]]
        raw = encode(answer) if cache_key else ""
        await self.store.script("finish", keys, [token or "", repr(float(cost_usd)), self._memory_s, raw, *rate[1]])
