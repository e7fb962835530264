"""The budget ledger of a run on this machine: money spent and reserved against an optional cap, in a flock'd file
of the output dir (or of a sweep dir, shared by its jobs)."""

import atexit
import fcntl
import json
import os
import socket
import time
import weakref
from pathlib import Path
from typing import Optional

from synthkit.calls.cost import Price
from synthkit.calls.stores.base import reservation
from synthkit.core.errors import UserError


class Budget:
    """Money spent, against an optional cap, kept in a ledger file so that it holds across resumes of
    one output dir and across the jobs of a sweep. Before each request the caller reserves what it may
    cost at most (its prompt and llm.max_tokens of answer); the reservation is settled to the real
    cost after. A request whose reservation would cross the cap waits for those in flight, and goes alone
    with what is left (synthkit.calls.stores.base.reservation), so spending stays within the cap, give or
    take one request's cost. Reservations are kept per process, and those of processes that died (kill -9)
    are dropped."""

    def __init__(self, price: Optional[Price], max_cost_usd: Optional[float], ledger: Path):
        self.price = price
        self.max_cost_usd = max_cost_usd
        self.ledger = ledger
        self._me = f"{socket.gethostname()}:{os.getpid()}"
        # Without a cap nothing is reserved and what is spent only matters to a later capped run into the dir:
        # it is written at most every RECORD_EVERY_S (and at the end), not once per answer (a file update each).
        self._unrecorded, self._recorded_at = 0.0, time.monotonic()
        _BUDGETS.add(self)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        return None if self.price is None else self.price.cost(prompt_tokens, completion_tokens)

    def reserve(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Reserve the most a request may cost (or what is left of the cap, for the last one); raises BudgetBusy
        while requests in flight leave no room, BudgetExhausted once the cap is spent."""
        estimate = self.cost(prompt_tokens, completion_tokens) or 0.0
        if self.max_cost_usd is None:
            return estimate
        granted = []

        def change(state: dict) -> None:
            amount = reservation(self.max_cost_usd, state["spent"], sum(state["reserved"].values()), estimate)
            state["reserved"][self._me] = state["reserved"].get(self._me, 0.0) + amount
            granted.append(amount)

        self._update(change)
        return granted[0]

    def settle(self, reserved: float, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        """Turn a reservation into what the answer cost (None for an unpriced model)."""
        cost = self.cost(prompt_tokens, completion_tokens)
        if not cost and not reserved:  # nothing to record (an unpriced or free model, no cap)
            return cost
        if self.max_cost_usd is None:  # reserve() wrote no reservation: only the cost is recorded, in a while
            self._unrecorded += cost or 0.0
            if time.monotonic() - self._recorded_at >= RECORD_EVERY_S:
                self.record()
            return cost

        def change(state: dict) -> None:
            state["spent"] += cost or 0.0
            left = state["reserved"].get(self._me, 0.0) - reserved
            if left > 1e-12:
                state["reserved"][self._me] = left
            else:
                state["reserved"].pop(self._me, None)

        self._update(change)
        return cost

    def release(self, reserved: float) -> None:
        """A request that cost nothing after all (it failed)."""
        if reserved:
            self.settle(reserved, 0, 0)

    def record(self) -> None:
        """Write what was spent since the last write (no cap)."""
        amount, self._unrecorded, self._recorded_at = self._unrecorded, 0.0, time.monotonic()
        if amount:

            def change(state: dict) -> None:
                state["spent"] += amount

            self._update(change)

    @property
    def spent(self) -> float:
        self.record()
        return self._update(lambda state: None)["spent"]

    def _update(self, change) -> dict:
        for other in list(_BUDGETS):  # what this process spent on the ledger and has not written yet, first
            if other is not self and other._unrecorded and other.ledger == self.ledger:
                other.record()
        try:
            fd = os.open(self.ledger, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise UserError(f"cannot write the budget ledger {self.ledger}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 1 << 20, 0)
            state = _ledger_state(raw)
            _drop_dead(state["reserved"])
            change(state)
            data = json.dumps(state).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return state
        except OSError as e:
            raise UserError(f"cannot write the budget ledger {self.ledger}: {e.strerror}") from None
        finally:
            os.close(fd)  # releases the lock


RECORD_EVERY_S = 0.5  # without a cap: a kill -9 leaves at most this long's spending out of the ledger
_BUDGETS: "weakref.WeakSet[Budget]" = weakref.WeakSet()


@atexit.register
def _record_all() -> None:
    """What each budget spent since its last write, at exit (a budget's store closes it earlier, when it closes)."""
    for budget in list(_BUDGETS):
        try:
            budget.record()
        except Exception:  # the ledger cannot be written: its store said so when it closed
            pass


def _ledger_state(raw: bytes) -> dict:
    try:
        state = json.loads(raw) if raw.strip() else {}
    except ValueError:
        state = {}
    if isinstance(state, (int, float)):  # the plain number earlier versions wrote
        state = {"spent": float(state)}
    if not isinstance(state, dict):
        state = {}
    spent = state.get("spent")
    reserved = state.get("reserved")
    return {
        "spent": float(spent) if isinstance(spent, (int, float)) else 0.0,
        "reserved": {k: v for k, v in reserved.items() if isinstance(v, (int, float))}
        if isinstance(reserved, dict)
        else {},
    }


def _drop_dead(reserved: dict) -> None:
    host = socket.gethostname()
    for owner in list(reserved):
        name, _, pid = owner.rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            del reserved[owner]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
