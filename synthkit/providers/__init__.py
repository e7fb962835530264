"""Providers are leaves: the engine asks `make_provider` for one and calls `complete`."""

import os

from synthkit.config import LLMConfig
from synthkit.errors import UserError
from synthkit.providers.base import Completion, Provider, ProviderRefused, RequestFailed

__all__ = ["Completion", "Provider", "ProviderRefused", "RequestFailed", "make_provider"]


def make_provider(llm: LLMConfig) -> Provider:
    if llm.provider == "mock":
        from synthkit.providers.mock import MockProvider

        return MockProvider()
    api_key = None
    if llm.api_key_env:
        api_key = os.environ.get(llm.api_key_env)
        if not api_key:
            raise UserError(
                f"{llm.api_key_env} is not set: export it to use llm={llm.provider}, or run offline with llm=mock"
            )
    from synthkit.providers.litellm_provider import LiteLLMProvider

    return LiteLLMProvider(llm, api_key)
