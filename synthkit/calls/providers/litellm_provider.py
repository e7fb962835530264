"""Every real provider, through litellm. Imported only when a run calls a model: importing
litellm takes seconds."""

import logging
import os
import warnings

from synthkit.calls.providers.base import Completion, RequestFailed, cannot_connect, refusal, retry_after
from synthkit.core.config import LLMConfig
from synthkit.core.text import printable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else litellm fetches a price map at import

import litellm  # noqa: E402

litellm.suppress_debug_info = True
# litellm logs several INFO lines per request; a run prints its own summary. `hydra.verbose=LiteLLM` shows them.
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    if not logging.getLogger(_name).isEnabledFor(logging.DEBUG):
        logging.getLogger(_name).setLevel(logging.WARNING)
# A run that stops (a refused key, the circuit breaker) cancels the requests in flight; litellm then
# warns about its own inner coroutines on stderr, which would bury the one-line reason.
warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)


class LiteLLMProvider:
    placeholder = False

    def __init__(self, llm: LLMConfig, api_key: str | None, structured: bool):
        self.model_name = llm.model
        self._llm = llm
        from synthkit.calls.providers.base import openai_compatible
        from synthkit.calls.providers.openai_http import served_name

        self._kwargs = {
            # A served name (`Qwen/Qwen2.5-7B-Instruct`) would read to litellm as a provider prefix.
            "model": f"openai/{served_name(llm.model)}" if openai_compatible(llm) else llm.model,
            "api_base": llm.api_base,
            # OpenAI-compatible servers without auth still want some key from the client.
            "api_key": api_key or ("none" if llm.api_base else None),
            "temperature": llm.temperature,
            "top_p": llm.top_p,
            "max_tokens": llm.max_tokens,
            "timeout": llm.timeout_s,
            "max_retries": 0,  # synthkit retries (synthkit/calls/online.py): one policy, and Retry-After honoured
        }
        self._structured = structured

    async def complete(self, messages: list, schema: dict, schema_name: str, max_tokens=None) -> Completion:
        kwargs = dict(self._kwargs)
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if self._structured:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        try:
            response = await litellm.acompletion(messages=messages, **kwargs)
        except (
            litellm.AuthenticationError,
            litellm.PermissionDeniedError,
            litellm.NotFoundError,
            litellm.BadRequestError,
        ) as e:
            status = {
                litellm.AuthenticationError: 401,
                litellm.PermissionDeniedError: 403,
                litellm.NotFoundError: 404,
            }.get(type(e), getattr(e, "status_code", 400))
            raise refusal(status, _first_line(e), self._llm.api_key_env, self._llm.provider, self.model_name) from None
        except Exception as e:  # litellm maps every transport and server failure to its own types
            raise RequestFailed(
                _first_line(e), getattr(e, "status_code", None), _retry_after(e), cannot_connect=cannot_connect(e)
            ) from None
        usage = getattr(response, "usage", None)
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            finish_reason=getattr(choice, "finish_reason", None) or "stop",
        )

    async def aclose(self) -> None:
        pass


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    return retry_after(getattr(error, "litellm_response_headers", None) or getattr(response, "headers", None) or {})


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return printable(f"{type(error).__name__}: {text[0] if text else ''}")
