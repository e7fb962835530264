"""A lean client for OpenAI-compatible endpoints (vLLM, SGLang, llama.cpp, Ollama's /v1, ...):
one aiohttp session posting /chat/completions. Same contract as the litellm provider (single
attempts; RequestFailed for what a retry may fix, ProviderRefused for what it cannot), without
litellm's seconds of import and milliseconds of bookkeeping per call."""

import asyncio
import json
import os
import ssl
from typing import Optional
from urllib.parse import urlsplit

import aiohttp

from synthkit.calls.providers.base import (
    Completion,
    RequestFailed,
    base_url,
    cannot_connect,
    openai_api,
    reasoning_model,
    refusal,
    retry_after,
)
from synthkit.core.config import LLMConfig
from synthkit.core.text import printable

REFUSALS = (400, 401, 403, 404, 413, 422)  # a retry gets the same answer
ERROR_BODY_BYTES = 1 << 16  # read of an error answer: its message is at the start


class OpenAIHTTPProvider:
    placeholder = False

    def __init__(self, llm: LLMConfig, api_key: Optional[str], structured: bool):
        self.model_name = llm.model
        self._llm = llm
        self._url = base_url(llm).rstrip("/") + "/chat/completions"
        self._headers = request_headers(llm, api_key)
        # a hosted API through the user's HTTPS_PROXY, as litellm went (read once: aiohttp's trust_env reads the
        # environment and ~/.netrc again for every request, a fifth of a millisecond)
        self._proxy = env_proxy(self._url) if openai_api(llm) else None
        self._structured = structured
        self._session: Optional[aiohttp.ClientSession] = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made inside the running loop
            self._session = aiohttp.ClientSession(
                # the engine bounds concurrency
                connector=aiohttp.TCPConnector(
                    limit=0, ttl_dns_cache=300, ssl=tls_context() if self._url.startswith("https:") else True
                ),
                timeout=aiohttp.ClientTimeout(total=self._llm.timeout_s),
                headers=self._headers,
                json_serialize=json.dumps,
            )
        return self._session

    async def complete(self, messages: list, schema: dict, schema_name: str, max_tokens=None) -> Completion:
        body = chat_body(self._llm, messages, schema, schema_name, self._structured, max_tokens)
        try:
            async with self._client().post(self._url, json=body, proxy=self._proxy) as response:
                if response.status != 200:
                    self._fail(response.status, await error_body(response), response.headers)
                raw = await response.read()
        except asyncio.TimeoutError:
            raise RequestFailed(f"no answer within llm.timeout_s={self._llm.timeout_s}") from None
        except aiohttp.ClientError as e:
            raise RequestFailed(printable(f"{type(e).__name__}: {e}"), cannot_connect=cannot_connect(e)) from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # a proxy's HTML error page, a body cut short: like a 5xx
            raise RequestFailed(f"the server answered 200 with a body that is not JSON: {_snippet(raw)}") from None
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RequestFailed(f"the server answered without choices: {printable(str(data)[:1000], 200)}") from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(
            str(text),
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
            str(choice.get("finish_reason") or "stop"),
        )

    def _fail(self, status: int, text: str, headers) -> None:
        detail = f"HTTP {status}: {error_message(text)}"
        if status in REFUSALS:
            raise refusal(status, detail, self._llm.api_key_env, self._llm.provider, self.model_name)
        raise RequestFailed(detail, status, retry_after(headers))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def request_headers(llm: LLMConfig, api_key: Optional[str]) -> dict:
    """The key as a Bearer token; for OpenAI's API, the organization litellm sent ($OPENAI_ORGANIZATION)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if openai_api(llm) and os.environ.get("OPENAI_ORGANIZATION"):
        headers["OpenAI-Organization"] = os.environ["OPENAI_ORGANIZATION"]
    return headers


def env_proxy(url: str) -> Optional[str]:
    """The HTTP(S) proxy the environment names for `url` (HTTPS_PROXY, ALL_PROXY, unless NO_PROXY covers its host),
    or None."""
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urlsplit(proxy).scheme not in ("http", "https") or proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def tls_context() -> ssl.SSLContext:
    """Certificates as litellm's httpx checks them (certifi's bundle, which it ships with), so that a hosted API
    answers where the system's store is empty (macOS's python.org builds)."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def served_name(model: str) -> str:
    """The model name the server knows: litellm's `openai/<name>` means <name> on an OpenAI-compatible
    server; any other name (`Qwen/Qwen2.5-7B-Instruct`, as vLLM prints it) is sent as it is."""
    return model.split("/", 1)[1] if model.startswith("openai/") else model


def _count(value) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _snippet(raw: bytes) -> str:
    return printable(raw[:1000].decode("utf-8", "replace"), 200) or "(empty)"


def chat_body(
    llm: LLMConfig, messages: list, schema: dict, schema_name: str, structured: bool, max_tokens: Optional[int] = None
) -> dict:
    """The /chat/completions request body (`max_tokens`: the call's own cap, else llm.max_tokens); the batch client
    sends the very same one."""
    # OpenAI's reasoning models refuse max_tokens (litellm renamed it for them too)
    cap = "max_completion_tokens" if openai_api(llm) and reasoning_model(llm.model) else "max_tokens"
    body = {
        "model": served_name(llm.model),
        "temperature": llm.temperature,
        "top_p": llm.top_p,
        cap: llm.max_tokens if max_tokens is None else max_tokens,
        "messages": messages,
    }
    if structured:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": schema, "strict": True},
        }
    return body


async def error_body(response) -> str:
    """The start of an error answer's body: enough for its message, never a whole flood."""
    return (await response.content.read(ERROR_BODY_BYTES)).decode("utf-8", "replace")


def error_message(text: str) -> str:
    """The provider's reason in an error body (OpenAI's {"error": {"message"}} or the text), printable."""
    try:
        error = json.loads(text).get("error")
        text = error.get("message", text) if isinstance(error, dict) else str(error or text)
    except (ValueError, AttributeError, RecursionError):
        pass
    return printable(text)
