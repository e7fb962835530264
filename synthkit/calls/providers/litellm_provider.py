"""Every real provider, through litellm. Imported only when a run calls a model: importing
litellm takes seconds."""

import os
import warnings

from synthkit.config import LLMConfig
from synthkit.calls.providers.base import Completion, ProviderRefused, RequestFailed, retry_after

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else litellm fetches a price map at import

import litellm  # noqa: E402

litellm.suppress_debug_info = True
# A run that stops (a refused key, the circuit breaker) cancels the requests in flight; litellm then
# warns about its own inner coroutines on stderr, which would bury the one-line reason.
warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)


class LiteLLMProvider:
    placeholder = False

    def __init__(self, llm: LLMConfig, api_key: str | None):
        self.model_name = llm.model
        self._llm = llm
        self._kwargs = {
            "model": llm.model,
            "api_base": llm.api_base,
            # OpenAI-compatible servers without auth still want some key from the client.
            "api_key": api_key or ("none" if llm.api_base else None),
            "temperature": llm.temperature,
            "top_p": llm.top_p,
            "max_tokens": llm.max_tokens,
            "timeout": llm.timeout_s,
            "max_retries": 0,  # synthkit retries (synthkit/calls.py): one policy, and Retry-After honoured
        }
        structured = llm.structured_output
        if structured is None:
            structured = litellm.supports_response_schema(model=llm.model)
        self._structured = structured

    async def complete(self, messages: list, schema: dict, schema_name: str) -> Completion:
        kwargs = dict(self._kwargs)
        if self._structured:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        try:
            response = await litellm.acompletion(messages=messages, **kwargs)
        except (litellm.AuthenticationError, litellm.PermissionDeniedError) as e:
            key = f" ({self._llm.api_key_env})" if self._llm.api_key_env else ""
            raise ProviderRefused(f"{self._llm.provider} refused the API key{key}: {_first_line(e)}") from None
        except (litellm.NotFoundError, litellm.BadRequestError) as e:
            raise ProviderRefused(f"{self._llm.provider} refused the request for {self.model_name}: {_first_line(e)}") from None
        except Exception as e:  # litellm maps every transport and server failure to its own types
            raise RequestFailed(_first_line(e), getattr(e, "status_code", None), _retry_after(e)) from None
        usage = getattr(response, "usage", None)
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    async def aclose(self) -> None:
        pass


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    return retry_after(getattr(error, "litellm_response_headers", None) or getattr(response, "headers", None) or {})


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
