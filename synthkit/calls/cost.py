"""Prices per token. They come from litellm's own price map, read as the JSON file litellm ships (what it loads
with LITELLM_LOCAL_MODEL_COST_MAP), so that pricing never costs the seconds of importing litellm."""

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from synthkit.core.config import LLMConfig

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"
CHARS_PER_TOKEN = 4  # to estimate tokens (and reserve money and rate) before the real count is known


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
