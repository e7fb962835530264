"""Prices per token and the run's spending. Prices come from litellm's own price map, read as
the JSON file litellm ships (what it loads with LITELLM_LOCAL_MODEL_COST_MAP), so that pricing
never costs the seconds of importing litellm."""

import fcntl
import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from synthkit.config import LLMConfig

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class Price:
    input: float  # USD per prompt token
    output: float  # USD per completion token

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input + completion_tokens * self.output

    def per_mtok(self) -> str:
        return f"${self.input * 1e6:g} in / ${self.output * 1e6:g} out per 1M tokens"


def price_of(llm: LLMConfig) -> Optional[Price]:
    """The model's price, or None when neither the config nor litellm's map knows it."""
    if llm.input_cost_per_mtok is not None or llm.output_cost_per_mtok is not None:
        return Price((llm.input_cost_per_mtok or 0) / 1e6, (llm.output_cost_per_mtok or 0) / 1e6)
    entry = model_info(llm.model)
    if "input_cost_per_token" in entry:
        return Price(entry["input_cost_per_token"], entry.get("output_cost_per_token", 0.0))
    return None


def model_info(model: str) -> dict:
    """What litellm's map knows of a model (prices, context, supports_response_schema...)."""
    prices = _litellm_prices()
    for name in (model, model.split("/", 1)[-1]):
        if name in prices:
            return prices[name]
    return {}


@functools.cache
def _litellm_prices() -> dict:
    spec = importlib.util.find_spec("litellm")  # locates the package without importing it
    if spec is None or spec.origin is None:
        return {}
    try:
        return json.loads((Path(spec.origin).parent / PRICE_MAP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


BUDGET_LEDGER = "spent_usd"  # in a sweep dir: what all its jobs have spent together


class Budget:
    """Money spent, against an optional cap. The cap is checked before each request: requests
    already in flight when it is reached still finish, so a run may end slightly above it. With a
    ledger file, every process charging the same file shares one budget (the jobs of a sweep)."""

    def __init__(self, price: Optional[Price], max_cost_usd: Optional[float], ledger: Optional[Path] = None):
        self.price = price
        self.max_cost_usd = max_cost_usd
        self.ledger = ledger
        self._spent = 0.0

    def charge(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        if self.price is None:
            return None
        cost = self.price.cost(prompt_tokens, completion_tokens)
        self._spent += cost
        if self.ledger is not None:
            self._update_ledger(cost)
        return cost

    @property
    def spent(self) -> float:
        return self._update_ledger(0.0) if self.ledger is not None else self._spent

    @property
    def exhausted(self) -> bool:
        return self.max_cost_usd is not None and self.spent >= self.max_cost_usd

    def _update_ledger(self, cost: float) -> float:
        fd = os.open(self.ledger, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).strip()
            total = (float(raw) if raw else 0.0) + cost
            if cost:
                os.pwrite(fd, f"{total:.12f}".encode().ljust(64), 0)
            return total
        finally:
            os.close(fd)
