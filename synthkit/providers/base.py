"""What the engine sees of a model: messages and a JSON schema in, text and token counts out."""

from dataclasses import dataclass
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
