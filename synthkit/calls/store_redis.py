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
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qs, urlparse

from synthkit.calls.limits import EndpointLimits, rate_name
from synthkit.errors import UserError

if TYPE_CHECKING:
    from synthkit.calls.providers.base import Completion

PASSWORD_ENV = "SYNTHKIT_REDIS_PASSWORD"
SCHEMES = ("redis", "rediss", "unix")
OUTAGE_S = 300.0  # how long operations wait for a server that went away before the run stops
BACKOFF_MAX_S = 5.0
REWARN_AFTER_S = 60.0  # reconnections right after an outage are the same outage: no second warning
RATE_TTL_S = 3600  # a schedule nobody has used for an hour is gone; its next user starts afresh

T = TypeVar("T")

# GCRA: reserve `units` from max(next free time, now) (or, to correct, from the next free time) and
# return how long the caller waits, measured on the server's clock.
RATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local units, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local start = stored
if ARGV[3] == '1' then start = math.max(stored, now) end
local nxt = start + units * interval
redis.call('SET', KEYS[1], string.format('%.6f', nxt), 'EX', math.max(0, math.ceil(nxt - now)) + tonumber(ARGV[4]))
return string.format('%.6f', start - now)
"""

# KEYS: spent, reserved (sum of open reservations), reservations (token -> estimate), times (token -> when).
# Reservations older than the lease (their process died) are released first. A token seen already
# is granted again without reserving twice: a retry after a lost reply must not double-count.
RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[4]))
for _, token in ipairs(stale) do
  local amount = tonumber(redis.call('HGET', KEYS[3], token) or '0')
  redis.call('INCRBYFLOAT', KEYS[2], string.format('%.17g', -amount))
  redis.call('HDEL', KEYS[3], token)
  redis.call('ZREM', KEYS[4], token)
end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local reserved = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {1, tostring(spent)} end
local estimate, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
-- As the local ledger: with nothing spent or reserved, one request goes even if its estimate passes the cap.
if spent + reserved + estimate > cap and (spent + reserved > 0 or spent >= cap) then return {0, tostring(spent)} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('INCRBYFLOAT', KEYS[2], ARGV[2])
return {1, tostring(spent)}
"""

# Settling is idempotent: a token settled already (a retry after a lost reply) is not charged
# again. A token with no reservation (no cap) is charged as is; ARGV[3] = '1' only releases.
SETTLE_SCRIPT = """
local done = KEYS[1] .. ':settled:' .. ARGV[1]
if redis.call('EXISTS', done) == 1 then return redis.call('GET', KEYS[1]) or '0' end
redis.call('SET', done, '1', 'EX', tonumber(ARGV[4]))
local amount = redis.call('HGET', KEYS[3], ARGV[1])
if amount then
  redis.call('INCRBYFLOAT', KEYS[2], string.format('%.17g', -tonumber(amount)))
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
if ARGV[3] == '1' then return redis.call('GET', KEYS[1]) or '0' end
return redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
"""


class StoreUnavailable(Exception):
    """The store stayed unreachable for longer than the run waits: the run must stop."""


def check_url(url: str, password_env: str = PASSWORD_ENV) -> None:
    """Refuse, as one line, a store URL that is malformed or carries a password."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as e:
        raise UserError(f"store={url!r} is not a valid URL ({e}): write store=redis://host:port/db") from None
    if parsed.scheme not in SCHEMES:
        raise UserError(f"store={url!r}: only redis://host:port/db (or rediss:// for TLS) is supported")
    refuse_password(url, password_env)
    if parsed.scheme != "unix" and not parsed.hostname:
        raise UserError(f"store={url!r} names no host: write store=redis://host:port/db")
    db = parsed.path.strip("/")
    if parsed.scheme != "unix" and db and not db.isdigit():
        raise UserError(f"store={url!r}: the database after the port must be a number, as in redis://host:6379/0")


def refuse_password(url: str, password_env: str = PASSWORD_ENV) -> None:
    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:
        return  # not a URL: check_url says why
    if password is not None or "password" in parse_qs(parsed.query):
        raise UserError(
            f"store URL must not contain a password (it would be saved with the run's config): "
            f"remove it and set the {password_env} environment variable"
        )


class RedisStore:
    """One server's shared state for this process. Construct it outside the event loop (it checks
    the server at once, synchronously); use it from one event loop; `await aclose()` at the end."""

    def __init__(
        self, url: str, namespace: str = "synthkit", outage_s: float = OUTAGE_S, password_env: str = PASSWORD_ENV
    ):
        check_url(url, password_env)
        self.url, self.namespace, self.outage_s, self.password_env = url, namespace, outage_s, password_env
        self._password = os.environ.get(password_env) or None
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
        except (TypeError, ValueError) as e:  # an option in the query string that redis does not know
            raise UserError(f"store={self.url!r} is not a valid URL ({e}): write store=redis://host:port/db") from None
        except redis.AuthenticationError as e:
            hint = f"set {self.password_env}" if self._password is None else f"check {self.password_env}"
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

    @property
    def client(self):
        if self._client is None:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self.url, **self._options())
            for name, text in (("rate", RATE_SCRIPT), ("reserve", RESERVE_SCRIPT), ("settle", SETTLE_SCRIPT)):
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
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as e:
                # ReadOnlyError and BusyLoadingError (a ConnectionError): a replica, or a server
                # still reading its data back after a restart; both pass.
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


def _reason(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class RedisCache:
    """The response cache (keys from synthkit.calls.cache.request_key), each answer a JSON string."""

    def __init__(self, store: RedisStore):
        self.store = store

    async def get(self, key: str) -> "Completion | None":
        # Imported here: synthkit.calls.providers pulls in the config module, and Hydra with it.
        from synthkit.calls.providers.base import Completion

        raw = await self.store.retrying(lambda: self.store.client.get(self.store.key("cache", key)))
        if raw is None:
            return None
        value = json.loads(raw)
        return Completion(
            value["text"], value["prompt_tokens"], value["completion_tokens"], value.get("finish_reason", "stop")
        )

    async def put(self, key: str, completion: "Completion") -> None:
        raw = json.dumps(
            {
                "text": completion.text,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "finish_reason": completion.finish_reason,
            },
            ensure_ascii=False,
        )
        await self.store.retrying(lambda: self.store.client.set(self.store.key("cache", key), raw))


class RedisRate:
    """One GCRA schedule (a limit per minute) shared by every process using the same name."""

    def __init__(self, store: RedisStore, name: str, per_minute: float):
        self.store, self.name = store, store.key("rate", name)
        self.seconds_per_unit = 60.0 / per_minute

    async def _shift(self, units: float, reserve: bool) -> float:
        delay = await self.store.script(
            "rate", [self.name], [repr(float(units)), repr(self.seconds_per_unit), int(reserve), RATE_TTL_S]
        )
        return float(delay)

    async def take(self, units: float = 1.0) -> None:
        """Wait for the slot of `units` (one request, or its estimated tokens)."""
        delay = await self._shift(units, reserve=True)
        if delay > 0:
            await asyncio.sleep(delay)

    async def correct(self, units: float) -> None:
        """Account for units used beyond (or, negative, below) what was reserved."""
        if units:
            await self._shift(units, reserve=False)


class RedisRateLimits(EndpointLimits):
    """synthkit.calls.limits.RateLimits on the store."""

    def __init__(self, store: RedisStore, endpoint: str, rpm: float | None, tpm: float | None):
        name = rate_name(endpoint)
        super().__init__(
            RedisRate(store, f"{name}:rpm", rpm) if rpm else None,
            RedisRate(store, f"{name}:tpm", tpm) if tpm else None,
        )


class RedisBudget:
    """Money spent by every process charging the same ledger, against an optional cap. Each request
    reserves its estimated cost first, refused when spent + reserved + estimate > cap, and settles
    its actual cost after: the spend passes the cap only by what answers cost beyond their
    estimates (nothing, when the estimate prices max_tokens). Reservations of a process that died
    are released after `lease_s`."""

    def __init__(self, store: RedisStore, ledger: str, max_cost_usd: float | None, lease_s: float):
        self.store, self.max_cost_usd, self.lease_s = store, max_cost_usd, lease_s
        self._memory_s = int(2 * store.outage_s) + 60  # how long a settled token is remembered, for retries
        self.keys = [store.key("budget", ledger, part) for part in ("spent", "reserved", "tokens", "times")]

    async def reserve(self, estimate_usd: float) -> str | None:
        """A token to settle the request with, or None when it would pass the cap."""
        token = uuid.uuid4().hex
        if self.max_cost_usd is None:
            return token
        granted, _ = await self.store.script(
            "reserve", self.keys, [token, repr(float(estimate_usd)), repr(float(self.max_cost_usd)), self.lease_s]
        )
        return token if int(granted) else None

    async def settle(self, token: str, cost_usd: float) -> float:
        """Charge the request's actual cost and release its reservation; returns the total spent."""
        return float(await self.store.script("settle", self.keys, [token, repr(float(cost_usd)), 0, self._memory_s]))

    async def release(self, token: str) -> None:
        """Drop a reservation whose request cost nothing (it failed before the provider charged)."""
        await self.store.script("settle", self.keys, [token, "0", 1, self._memory_s])

    async def spent(self) -> float:
        raw = await self.store.retrying(lambda: self.store.client.get(self.keys[0]))
        return float(raw or 0.0)
