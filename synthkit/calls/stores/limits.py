"""Requests-per-minute and tokens-per-minute limits, shared through a small state file by every
process that calls the same endpoint: parallel sweep jobs at rpm=R stay under R together.

Each limit is a GCRA schedule: the file holds the time at which the next unit may start, and each
request reserves its units by pushing that time forward. Units are spaced evenly, so no window
of a minute ever holds more than the limit."""

import asyncio
import fcntl
import hashlib
import os
import time
from pathlib import Path


class SharedRate:
    def __init__(self, state_file: Path, per_minute: float):
        state_file.parent.mkdir(parents=True, exist_ok=True)
        self.path = state_file
        self.seconds_per_unit = 60.0 / per_minute

    def _shift(self, units: float, reserve: bool) -> float:
        """Move the schedule by `units` under the file lock; return when the reservation starts."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0)
            now = time.time()
            next_free = float(raw) if raw.strip() else 0.0
            start = max(next_free, now) if reserve else next_free
            updated = f"{start + units * self.seconds_per_unit:.6f}".encode()
            os.pwrite(fd, updated.ljust(64), 0)
            return start
        finally:
            os.close(fd)  # releases the lock

    async def take(self, units: float = 1.0) -> float:
        """Wait for the next free slot of the schedule; returns when it starts (time.time())."""
        start = self._shift(units, reserve=True)
        delay = start - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return start

    def correct(self, units: float) -> None:
        """Account for units used beyond (or, negative, below) what was reserved."""
        if units:
            self._shift(units, reserve=False)


class EndpointLimits:
    """The rpm and tpm limits of one endpoint, either may be absent, over rates kept in files of this
    machine (RateLimits) or on a shared store (synthkit.calls.stores.redis_store.RedisRateLimits)."""

    def __init__(self, requests, tokens):
        self.requests, self.tokens = requests, tokens

    @property
    def active(self) -> bool:
        return self.requests is not None or self.tokens is not None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests:
            await self.requests.take()
        if self.tokens:
            await self.tokens.take(estimated_tokens)

    async def settle(self, estimated_tokens: int, used_tokens: int) -> None:
        if self.tokens:
            self.tokens.correct(used_tokens - estimated_tokens)


def rate_name(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:16]


class RateLimits(EndpointLimits):
    def __init__(self, state_dir: Path, endpoint: str, rpm: int | None, tpm: int | None):
        name = rate_name(endpoint)
        super().__init__(
            SharedRate(state_dir / f"{name}.rpm", rpm) if rpm else None,
            SharedRate(state_dir / f"{name}.tpm", tpm) if tpm else None,
        )
