"""What a model costs when asked through its provider's batch API. litellm's price map carries
batch prices (input_cost_per_token_batches, output_cost_per_token_batches) for some models;
for the others, half the online price where the provider documents a flat 50% batch discount
(OpenAI Batch API, Azure OpenAI global batch, Anthropic Message Batches, Gemini API batch mode,
Vertex AI batch prediction); else unknown."""

from synthkit.calls.cost import Price, model_info, price_of
from synthkit.config import LLMConfig

# litellm_provider values (or their prefix before "-") whose batch API is documented at half price.
HALF_PRICE_PROVIDERS = frozenset({"openai", "text-completion-openai", "azure", "anthropic", "gemini", "vertex_ai"})


def batch_price_of(llm: LLMConfig) -> tuple[Price | None, str]:
    """The batch price and where it comes from ("price map", "50% of the online price", or why
    it is unknown). Prices set in the config are taken as online prices."""
    entry = model_info(llm.model)
    configured = llm.input_cost_per_mtok is not None or llm.output_cost_per_mtok is not None
    if not configured and "input_cost_per_token_batches" in entry:
        return Price(
            entry["input_cost_per_token_batches"], entry.get("output_cost_per_token_batches", 0.0)
        ), "litellm's price map"
    online = price_of(llm)
    if online is None:
        return None, f"no price known for {llm.model}: set llm.input_cost_per_mtok and llm.output_cost_per_mtok"
    provider = entry.get("litellm_provider") or (llm.model.split("/", 1)[0] if "/" in llm.model else "")
    if provider in HALF_PRICE_PROVIDERS or provider.split("-", 1)[0] in HALF_PRICE_PROVIDERS:
        return Price(online.input / 2, online.output / 2), f"50% of the online price ({provider} batch discount)"
    return None, f"no documented batch discount for provider {provider or llm.model!r}"
