"""What the engine sees of a model: messages and a JSON schema in, text and token counts out."""

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Optional, Protocol

from synthkit.errors import UserError


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RequestFailed(Exception):
    """This request failed (network, server, rate limit); the row may be retried or rejected."""

    def __init__(self, message: str, status: Optional[int] = None, retry_after: Optional[float] = None):
        super().__init__(message)
        self.status = status  # HTTP status, None for a connection failure or timeout
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After)


class ProviderRefused(UserError):
    """The provider refuses every request alike (bad key, unknown model, bad request): stop the run."""


class Provider(Protocol):
    model_name: str
    placeholder: bool  # True when rows are not model output

    async def complete(self, messages: list, schema: dict, schema_name: str) -> Completion: ...

    async def aclose(self) -> None: ...


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
