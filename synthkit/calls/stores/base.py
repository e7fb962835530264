"""What the caller sees of the state a run shares with other processes: the response cache, the rpm/tpm
schedules and the budget ledger, behind one async interface with two implementations (files of this machine,
synthkit.calls.stores.local; a Redis server shared by machines, synthkit.calls.stores.shared)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


class BudgetExhausted(Exception):
    """max_cost_usd is spent: no further request."""


class BudgetBusy(Exception):
    """A request's estimate does not fit beside what is spent and what requests in flight reserved: it waits for
    them to settle (they mostly cost far less than they reserve) and asks again."""

    def __init__(self, message: str, cap: float, spent: float, reserved: float, estimate: float):
        super().__init__(message)
        self.cap, self.spent, self.reserved, self.estimate = cap, spent, reserved, estimate


def reservation(cap: float, spent: float, reserved: float, estimate: float) -> float:
    """What a request reserves under max_cost_usd=`cap` (the Redis ledger's script does the same on its server):
    its estimate (the most it may cost) where that fits beside `spent` and the `reserved` of requests in flight;
    where it does not, it waits for them (BudgetBusy), and once none is in flight it goes with what is left, so a
    run never stops while the cap is far from spent and passes it by one request's cost at most. BudgetExhausted
    once `spent` reaches the cap."""
    if spent >= cap:
        raise budget_reached(cap, spent, reserved)
    if spent + reserved + estimate <= cap:
        return estimate
    if reserved > RESERVED_EPSILON:
        raise budget_busy(cap, spent, reserved, estimate)
    return cap - spent


RESERVED_EPSILON = 1e-12  # what floating-point sums of settled reservations leave behind


def budget_reached(cap: float, spent: float, reserved: float) -> BudgetExhausted:
    return BudgetExhausted(
        f"max_cost_usd={cap:g} reached (${spent:.4f} spent, ${reserved:.4f} reserved by requests in flight): raise "
        "max_cost_usd and run again with the same output_dir to go on (rows made are kept)"
    )


def budget_busy(cap: float, spent: float, reserved: float, estimate: float) -> BudgetBusy:
    return BudgetBusy(
        f"max_cost_usd={cap:g}: ${spent:.4f} spent and ${reserved:.4f} reserved by requests in flight leave no room "
        f"for a request that may cost ${estimate:.4f} (its prompt and llm.max_tokens of answer)",
        cap,
        spent,
        reserved,
        estimate,
    )


class StoreUnavailable(Exception):
    """The store stayed unreachable for longer than the run waits: the run must stop."""


@dataclass(frozen=True)
class StoreSettings:
    """The run settings that choose and bound the stores (the config's store, cache and budget keys)."""

    url: Optional[str]  # store=redis://...; None: files of this machine
    password_env: str
    outage_s: float
    cache_dir: Optional[str]
    max_cost_usd: Optional[float]
    budget_file: Optional[Path] = None  # what the output dir (or sweep dir) has spent; keys the shared ledger too

    @classmethod
    def of(cls, cfg, budget_file: Optional[Path] = None) -> "StoreSettings":
        return cls(cfg.store, cfg.store_password_env, cfg.store_outage_s, cfg.cache_dir, cfg.max_cost_usd, budget_file)


@dataclass
class Stores(ABC):
    """Before each request `admit` (a cached answer, or a budget reservation), before each attempt
    `limits.acquire` (the rpm and tpm slots), after the answer `finish` (settle, cache, correct the tpm schedule)."""

    cache: Optional[Any]  # None: every request goes to the model
    limits: Any
    budget: Any

    @abstractmethod
    async def admit(
        self, key: Optional[str], prompt_tokens: int, completion_tokens: int, slot_tokens: Optional[int] = None
    ) -> tuple:
        """Before a request: (the cached answer, None, None), or (None, its budget reservation, wait). With
        `slot_tokens` (the request may take its rpm/tpm slots now) a store that can takes them with the
        reservation, and `wait` is how long to wait for them; else `wait` is None and the request takes its
        slots when it is sent. Raises BudgetBusy while requests in flight leave no room under the cap (wait for
        them), BudgetExhausted once it is spent. `key` None: no cache lookup."""

    @abstractmethod
    async def finish(self, key: Optional[str], reservation, completion, estimated_tokens: int) -> Optional[float]:
        """After an answer: settle its reservation with what it cost (returned), cache it under `key`,
        and correct the tpm schedule by the tokens it used beyond (or below) `estimated_tokens`."""

    @abstractmethod
    def for_model(self, llm, price) -> "Stores":
        """The stores of another model of the run (the LLM judge's): the run's cache, its endpoint's own rate
        schedule, and the run's budget ledger priced for it, so max_cost_usd counts both models."""

    def close(self) -> None:  # noqa: B027 - a shared store closes in the event loop only
        """Close what can be closed outside the event loop (the run never started)."""

    async def aclose(self) -> None:
        self.close()


def endpoint(llm) -> str:
    """What the rate schedules of a model are keyed by: one account's limits per model and endpoint."""
    return f"{llm.model}|{llm.api_base}"
