"""Providers are leaves: the engine asks `make_provider` for one and calls `complete`."""

import os

from synthkit.config import LLMConfig
from synthkit.calls.cost import model_info
from synthkit.errors import UserError
from synthkit.calls.providers.base import Completion, Provider, ProviderRefused, RequestFailed

__all__ = ["Completion", "Provider", "ProviderRefused", "RequestFailed", "make_provider"]

CLIENTS = ("auto", "litellm", "http")


def make_provider(llm: LLMConfig) -> Provider:
    if llm.provider == "mock":
        from synthkit.calls.providers.mock import MockProvider

        return MockProvider()
    api_key = None
    if llm.api_key_env:
        api_key = os.environ.get(llm.api_key_env)
        if not api_key:
            raise UserError(
                f"{llm.api_key_env} is not set: export it to use llm={llm.provider}, or run offline with llm=mock"
            )
    if _client(llm) == "http":
        from synthkit.calls.providers.openai_http import OpenAIHTTPProvider

        structured = llm.structured_output
        if structured is None:
            structured = bool(model_info(llm.model).get("supports_response_schema"))
        return OpenAIHTTPProvider(llm, api_key, structured)
    from synthkit.calls.providers.litellm_provider import LiteLLMProvider

    return LiteLLMProvider(llm, api_key)


def _client(llm: LLMConfig) -> str:
    if llm.client not in CLIENTS:
        raise UserError(f"llm.client={llm.client!r} is not allowed; allowed values: {', '.join(CLIENTS)}")
    if llm.client == "auto":
        # litellm's spelling of "a model on an OpenAI-compatible server at api_base"
        return "http" if llm.api_base and llm.model.startswith("openai/") else "litellm"
    if llm.client == "http" and not llm.api_base:
        raise UserError("llm.client=http needs llm.api_base, the URL of an OpenAI-compatible server")
    return llm.client
