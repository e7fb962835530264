"""Whether synthkit can ask a config's model through a batch API (OpenAI's Files + Batches, at OpenAI or
an OpenAI-compatible server), and what it costs there. litellm's price map carries
batch prices (input_cost_per_token_batches, output_cost_per_token_batches) for some models;
for the others, half the online price where the provider documents a flat 50% batch discount
(OpenAI Batch API, Azure OpenAI global batch, Anthropic Message Batches, Gemini API batch mode,
Vertex AI batch prediction); else unknown."""

from synthkit.calls.cost import Price, model_info, price_of
from synthkit.calls.providers.base import base_url
from synthkit.core.config import Client, LLMConfig
from synthkit.core.errors import UserError

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


def check_batch(llm: LLMConfig) -> str:
    """The Files + Batches base URL for this config; one line when its provider has no batch API here."""
    from synthkit.calls.providers import client

    if llm.provider == "mock":
        raise UserError("llm.batch=true needs a real provider (llm=mock answers at once, offline): drop llm.batch")
    if client(llm) == Client.http:
        return base_url(llm)
    if not llm.api_base and (llm.provider == "openai" or model_info(llm.model).get("litellm_provider") == "openai"):
        return base_url(llm)
    raise UserError(
        f"llm.batch=true works with OpenAI and OpenAI-compatible servers that serve /v1/files and /v1/batches, "
        f"not with llm={llm.provider} ({llm.model}): run it online (llm.batch=false)"
    )
