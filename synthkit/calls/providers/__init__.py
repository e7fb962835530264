"""Providers are leaves: single attempts at one model call, behind one interface. The callers around them
(synthkit/calls/online.py, synthkit/calls/batch/) cache, limit, retry and price; `make_provider` picks the client
for a config and decides, in one place, whether the schema goes out as structured output."""

import os
import re
from typing import Optional

from synthkit.calls.cost import model_info
from synthkit.calls.providers.base import (
    Completion,
    Provider,
    ProviderRefused,
    RequestFailed,
    RowRefused,
    openai_api,
    openai_compatible,
)
from synthkit.core.config import Client, LLMConfig
from synthkit.core.errors import UserError
from synthkit.core.secrets import protect

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

__all__ = ["Completion", "Provider", "ProviderRefused", "RequestFailed", "RowRefused", "make_provider"]


def make_provider(llm: LLMConfig) -> Provider:
    if llm.provider == "mock":
        from synthkit.calls.providers.mock import MockProvider

        return MockProvider()
    api_key = check_key(llm)
    if client(llm) == Client.http:
        from synthkit.calls.providers.openai_http import OpenAIHTTPProvider

        return OpenAIHTTPProvider(llm, api_key, structured_output(llm))
    from synthkit.calls.providers.litellm_provider import LiteLLMProvider

    return LiteLLMProvider(llm, api_key, structured_output(llm))


def check_key(llm: LLMConfig) -> Optional[str]:
    """The key the config names, from the environment; one line when it is missing or misplaced."""
    if llm.provider == "mock" or not llm.api_key_env:
        return None
    if not _ENV_NAME.match(llm.api_key_env):
        # A key typed here by mistake: never echo it, never write it (the run refuses before writing).
        raise UserError("llm.api_key_env must name an environment variable (e.g. OPENAI_API_KEY), not hold a key")
    protect(llm.api_key_env)  # whatever its name, a variable a key is read from is redacted wherever it is echoed
    api_key = os.environ.get(llm.api_key_env)
    if not api_key:
        raise UserError(
            f"{llm.api_key_env} is not set: export it to use llm={llm.provider}, or run offline with llm=mock"
        )
    return api_key


def structured_output(llm: LLMConfig) -> bool:
    """Whether requests carry the JSON schema as structured output: the config says, else litellm's
    model map (the same table litellm.supports_response_schema reads, without importing litellm)."""
    if llm.structured_output is not None:
        return llm.structured_output
    return bool(model_info(llm.model).get("supports_response_schema"))


def client(llm: LLMConfig) -> Client:
    """The lean client wherever the server speaks OpenAI's chat API (OpenAI's own, an OpenAI-compatible server at
    llm.api_base); litellm for the providers it translates for. llm.client chooses."""
    if llm.client == Client.auto:
        return Client.http if openai_compatible(llm) or openai_api(llm) else Client.litellm
    if llm.client == Client.http and not llm.api_base and not openai_api(llm):
        raise UserError("llm.client=http needs llm.api_base, the URL of an OpenAI-compatible server")
    return Client(llm.client)
