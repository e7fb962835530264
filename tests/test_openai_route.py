"""llm=openai goes through the lean HTTP client (OpenAI's own chat API), as OpenAI-compatible servers do; litellm
keeps the providers whose APIs it translates, and llm.client still chooses."""

import pytest
from helpers import read_jsonl

from synthkit.calls.batch.price import check_batch
from synthkit.calls.providers import client, make_provider
from synthkit.calls.providers.openai_http import OpenAIHTTPProvider, chat_body
from synthkit.core.config import Client, LLMConfig
from synthkit.core.errors import UserError


def _llm(model="gpt-4o-mini", provider="openai", **settings) -> LLMConfig:
    return LLMConfig(provider=provider, model=model, **{"api_key_env": "OPENAI_API_KEY", **settings})


@pytest.mark.parametrize("model", ["gpt-4o-mini", "openai/gpt-4o", "o3-mini", "ft:gpt-4o-mini:acme::abc123", "gpt-9"])
def test_openai_models_take_the_lean_client_at_openais_url(model, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORGANIZATION"):
        monkeypatch.delenv(name, raising=False)
    provider = make_provider(_llm(model))
    assert isinstance(provider, OpenAIHTTPProvider)
    assert provider._url == "https://api.openai.com/v1/chat/completions"
    assert provider._headers == {"Authorization": "Bearer sk-test"}


@pytest.mark.parametrize(
    "model, provider",
    [
        ("groq/llama-3.1-8b-instant", "openai"),  # another provider's prefix: litellm routes it
        ("gpt-3.5-turbo-instruct", "openai"),  # a completions model
        ("anthropic/claude-haiku-4-5", "anthropic"),
        ("gemini/gemini-2.5-flash", "gemini"),
        ("gpt-4o-mini", "azure"),  # the same name at another provider
    ],
)
def test_other_providers_stay_with_litellm(model, provider):
    assert client(_llm(model, provider)) == Client.litellm


def test_llm_client_still_chooses():
    assert client(_llm(client=Client.litellm)) == Client.litellm
    assert client(_llm(client=Client.http)) == Client.http  # OpenAI's URL needs no api_base
    with pytest.raises(UserError, match="llm.client=http needs llm.api_base"):
        client(_llm("anthropic/claude-haiku-4-5", "anthropic", client=Client.http))


def test_the_url_litellm_would_use(monkeypatch):
    """llm.api_base, else $OPENAI_BASE_URL, else $OPENAI_API_BASE (litellm's and the openai SDK's order)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_API_BASE", "https://legacy.example/v1")
    assert make_provider(_llm())._url == "https://legacy.example/v1/chat/completions"
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.example/v1/")
    assert make_provider(_llm())._url == "https://proxy.example/v1/chat/completions"
    assert check_batch(_llm()) == "https://proxy.example/v1/"  # the Batch API goes where the online requests go
    llm = _llm(api_base="https://gateway.example/openai/v1")
    assert make_provider(llm)._url == "https://gateway.example/openai/v1/chat/completions"
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_BASE")
    assert check_batch(_llm()) == "https://api.openai.com/v1"


def test_the_organization_goes_with_openais_requests_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-acme")
    assert make_provider(_llm())._headers["OpenAI-Organization"] == "org-acme"
    server = _llm("openai/served", "vllm", api_base="http://127.0.0.1:9/v1", api_key_env=None)
    assert "OpenAI-Organization" not in make_provider(server)._headers


def test_openais_reasoning_models_are_capped_by_max_completion_tokens():
    """o1, o3, gpt-5... refuse max_tokens; litellm renamed it for them, and so does the lean client."""
    keys = {model: set(chat_body(_llm(model), [], {}, "t", False)) for model in ("o3-mini", "gpt-5", "gpt-4o-mini")}
    assert "max_completion_tokens" in keys["o3-mini"] and "max_completion_tokens" in keys["gpt-5"]
    assert "max_tokens" in keys["gpt-4o-mini"] and not keys["o3-mini"] & {"max_tokens"}
    server = _llm("openai/o3-mini", "vllm", api_base="http://127.0.0.1:9/v1")
    assert "max_tokens" in chat_body(server, [], {}, "t", False)  # a server of its own takes what it always took
    assert chat_body(_llm("o3-mini"), [], {}, "t", False, max_tokens=99)["max_completion_tokens"] == 99


def test_llm_openai_against_a_server_standing_in_for_openai(openai_server, make, monkeypatch):
    """The default config, pointed at the loopback server: structured output, the key as a Bearer token, usage."""
    server = openai_server()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-key")
    run = make("llm=openai", f"llm.api_base={server.base_url}", "num_rows=6")
    rows = read_jsonl(run.data_path)
    assert len(rows) == 6 and all(r["model_name"] == "gpt-4o-mini" and r["usage"]["prompt_tokens"] > 0 for r in rows)
    requests = server.requests()
    assert {r["auth"] for r in requests} == {"Bearer sk-loopback-key"}
    body = requests[0]["body"]
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 2048
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"]


@pytest.mark.parametrize(
    "plan, needle",
    [
        (
            {"default": ["refuse:401:Incorrect API key provided: sk-lo****key"]},
            r"refused the API key \(OPENAI_API_KEY\)",
        ),
        ({"default": ["refuse:404:The model `gpt-4o-mini` does not exist"]}, "check llm.model"),
    ],
)
def test_llm_openai_refusals_are_one_line(openai_server, make, monkeypatch, plan, needle):
    server = openai_server(plan=plan)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-key")
    with pytest.raises(UserError, match=needle) as refused:
        make("llm=openai", f"llm.api_base={server.base_url}", "num_rows=4")
    assert "\n" not in str(refused.value) and "sk-loopback-key" not in str(refused.value)


def test_openais_requests_go_through_the_users_proxy(monkeypatch):
    """As litellm's httpx went: HTTPS_PROXY unless NO_PROXY names the host; a server of one's own goes direct."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "ALL_PROXY", "all_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "gateway.internal")
    assert make_provider(_llm())._proxy == "http://proxy.corp:3128"
    assert make_provider(_llm(api_base="https://gateway.internal/v1"))._proxy is None
    assert make_provider(_llm("openai/served", "vllm", api_base="https://gpu.example/v1"))._proxy is None
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.corp:1080")  # not one aiohttp speaks: direct
    assert make_provider(_llm())._proxy is None
