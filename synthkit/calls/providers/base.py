"""What the engine sees of a model: messages and a JSON schema in, text and token counts out."""

import errno
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Optional, Protocol

from synthkit.calls.cost import model_info
from synthkit.core.errors import UserError


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "length": cut off by max_tokens


class RequestFailed(Exception):
    """This request failed (network, server, rate limit); the row may be retried or rejected."""

    def __init__(
        self,
        message: str,
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
        cannot_connect: bool = False,
    ):
        super().__init__(message)
        self.status = status  # HTTP status, None for a connection failure or timeout
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After)
        self.cannot_connect = cannot_connect  # no connection could be made at all (see cannot_connect())


def cannot_connect(error: BaseException) -> bool:
    """Whether `error`, or one it wraps, says no connection could be made at all: refused, no such host, no route,
    a TLS handshake refused. Not a timeout or a dropped connection, which a retry may cure. From an endpoint that
    never answered, it ends a run at once (the run's llm.api_base is wrong, or its server is not running)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)) or type(error).__name__ in _CONNECT_ERRORS:
            return True
        if isinstance(error, OSError) and error.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
            return True
        error = error.__cause__ or error.__context__
    return False


# The HTTP clients' names for it: aiohttp's (the lean client, the batch client), httpx's (litellm, openai's SDK).
_CONNECT_ERRORS = {"ClientConnectorError", "ClientConnectorDNSError", "ClientConnectorCertificateError", "ConnectError"}


class ProviderRefused(UserError):
    """The provider refuses every request alike (bad key, unknown model, wrong endpoint): stop the run."""


class RowRefused(Exception):
    """The provider refuses this one request (too long for the context, a content filter, a request it
    finds invalid for this prompt): reject the row with the provider's reason; other rows go on."""


class Provider(Protocol):
    model_name: str
    placeholder: bool  # True when rows are not model output

    async def complete(
        self, messages: list, schema: dict, schema_name: str, max_tokens: Optional[int] = None
    ) -> Completion:
        """One attempt; `max_tokens` caps this answer instead of llm.max_tokens."""

    async def aclose(self) -> None: ...


# A refusal that names the model or the endpoint concerns every request; others concern this prompt.
_WHOLE_RUN = (
    "model not found",
    "does not exist",
    "unknown model",
    "no such model",
    "invalid model",
    "llm provider not provided",
    "model_not_found",
    "not a chat model",
    "unsupported model",
)


def refusal(status: Optional[int], message: str, key_env: Optional[str], provider: str, model: str) -> Exception:
    """The exception for a provider's refusal: ProviderRefused (end the run) when every request would be
    refused alike (a refused key, an unknown model or endpoint); RowRefused for this request only (its
    context is too long, a content filter, an invalid request for this prompt)."""
    lowered = message.lower()
    if status in (401, 403):
        key = f" ({key_env})" if key_env else ""
        return ProviderRefused(f"{provider} refused the API key{key} for {model}: {message}")
    if status == 404 or any(s in lowered for s in _WHOLE_RUN):
        return ProviderRefused(
            f"{provider} refused the request for {model}: {message}; "
            "check llm.model (the name the server serves) and llm.api_base"
        )
    return RowRefused(f"the provider refused this request: {message}")


def retry_after(headers) -> Optional[float]:
    """Seconds the server asked us to wait: Retry-After (seconds or an HTTP date) or retry-after-ms."""
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            return max((parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds(), 0.0)
    except (AttributeError, TypeError, ValueError):
        return None


OPENAI_COMPATIBLE = ("vllm",)  # llm= configs for servers that speak OpenAI's API: the model is the served name
OPENAI_BASE = "https://api.openai.com/v1"
# Where litellm and the openai SDK send OpenAI's requests when no api_base is given, in their order.
OPENAI_BASE_ENV = ("OPENAI_BASE_URL", "OPENAI_API_BASE")


def openai_compatible(llm) -> bool:
    """An OpenAI-compatible server at api_base: llm=vllm, or litellm's spelling `openai/<name>`."""
    return bool(llm.api_base) and (llm.model.startswith("openai/") or llm.provider in OPENAI_COMPATIBLE)


def openai_api(llm) -> bool:
    """OpenAI's own chat API (api.openai.com, or an api_base serving the same API): llm=openai with an OpenAI
    chat model, i.e. a name without another provider's prefix that litellm's map gives to no other provider
    (gpt-3.5-turbo-instruct is a completions model: litellm's)."""
    prefix = llm.model.split("/", 1)[0] if "/" in llm.model else "openai"
    return (
        llm.provider == "openai"
        and prefix == "openai"
        and model_info(llm.model).get("litellm_provider")
        in (
            None,
            "openai",
        )
    )


def base_url(llm) -> str:
    """Where OpenAI-style requests go: llm.api_base, else (OpenAI's API) where litellm and the openai SDK would
    send them: $OPENAI_BASE_URL, $OPENAI_API_BASE, or api.openai.com."""
    if llm.api_base:
        return llm.api_base
    return next((os.environ[name] for name in OPENAI_BASE_ENV if os.environ.get(name)), OPENAI_BASE)


def reasoning_model(model: str) -> bool:
    """An OpenAI reasoning model (o1, o3, o4-mini, gpt-5...): it takes max_completion_tokens, not max_tokens."""
    return bool(model_info(model).get("supports_reasoning"))
