"""A lean client for OpenAI-compatible endpoints (vLLM, SGLang, llama.cpp, Ollama's /v1, ...):
one aiohttp session posting /chat/completions. Same contract as the litellm provider (single
attempts; RequestFailed for what a retry may fix, ProviderRefused for what it cannot), without
litellm's seconds of import and milliseconds of bookkeeping per call."""

import asyncio
import json
from typing import Optional

import aiohttp

from synthkit.config import LLMConfig
from synthkit.calls.providers.base import Completion, ProviderRefused, RequestFailed, retry_after

REFUSED = {401: "refused the API key", 403: "refused the API key", 400: "refused the request",
           404: "refused the request", 422: "refused the request"}


class OpenAIHTTPProvider:
    placeholder = False

    def __init__(self, llm: LLMConfig, api_key: Optional[str], structured: bool):
        self.model_name = llm.model
        self._llm = llm
        self._url = llm.api_base.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._structured = structured
        self._session: Optional[aiohttp.ClientSession] = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made inside the running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),  # the engine bounds concurrency
                timeout=aiohttp.ClientTimeout(total=self._llm.timeout_s),
                headers=self._headers,
                json_serialize=json.dumps,
            )
        return self._session

    async def complete(self, messages: list, schema: dict, schema_name: str) -> Completion:
        body = chat_body(self._llm, messages, schema, schema_name, self._structured)
        try:
            async with self._client().post(self._url, json=body) as response:
                if response.status == 200:
                    data = await response.json(content_type=None)
                else:
                    self._fail(response.status, await response.text(), response.headers)
        except asyncio.TimeoutError:
            raise RequestFailed(f"no answer within llm.timeout_s={self._llm.timeout_s}") from None
        except aiohttp.ClientError as e:
            raise RequestFailed(f"{type(e).__name__}: {e}") from None
        try:
            text = data["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RequestFailed(f"the server answered without choices: {str(data)[:200]}") from None
        usage = data.get("usage") or {}
        return Completion(text, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)

    def _fail(self, status: int, text: str, headers) -> None:
        detail = _error_message(text)
        if status in REFUSED:
            key = f" ({self._llm.api_key_env})" if status in (401, 403) and self._llm.api_key_env else ""
            raise ProviderRefused(f"{self._llm.provider} {REFUSED[status]}{key} for {self.model_name}: HTTP {status}: {detail}")
        raise RequestFailed(f"HTTP {status}: {detail}", status, retry_after(headers))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def chat_body(llm: LLMConfig, messages: list, schema: dict, schema_name: str, structured: bool) -> dict:
    """The /chat/completions request body; the batch client sends the very same one."""
    body = {
        # litellm's "openai/<name>" means: <name> on an OpenAI-compatible server.
        "model": llm.model.split("/", 1)[1] if llm.model.startswith("openai/") else llm.model,
        "temperature": llm.temperature,
        "top_p": llm.top_p,
        "max_tokens": llm.max_tokens,
        "messages": messages,
    }
    if structured:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": schema_name, "schema": schema, "strict": True}}
    return body


def _error_message(text: str) -> str:
    try:
        error = json.loads(text).get("error")
        text = error.get("message", text) if isinstance(error, dict) else str(error or text)
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:300]
