"""Keys never reach disk. Everything synthkit writes (rows, rejects, configs, status, coverage) passes
through `redact`, which blanks the values of the environment variables that hold keys (every
`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD` variable, and any named by an `api_key_env`) and
anything shaped like a provider key."""

import os
import re
from functools import lru_cache

REDACTED = "[REDACTED]"
_KEY_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$|^(HF_TOKEN|REDISCLI_AUTH)$", re.I)
# Provider key shapes: OpenAI/Anthropic (sk-...), Hugging Face (hf_...), Google (AIza...), AWS access keys,
# GitHub tokens, and bearer headers.
_KEY_SHAPE = re.compile(
    r"\b(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{30,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,})"
    r"|(?<=Bearer )[A-Za-z0-9._\-]{16,}"
)
# Names of further variables to redact (each run's llm.api_key_env), kept in the environment itself so that
# launcher processes of a sweep inherit them.
EXTRA_ENV = "SYNTHKIT_SECRET_VARS"


def url_password_refusal(url: str, password_env: str | None) -> str | None:
    """Why a store URL must be refused (it holds a password, which would be saved with the run's config), or None."""
    from urllib.parse import parse_qs, urlparse

    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:
        return None  # not a URL: the store says why
    if password is None and "password" not in parse_qs(parsed.query):
        return None
    return "store URL must not contain a password (it would be saved with the run's config): " + (
        f"remove it and set the {password_env} environment variable"
        if password_env
        else "remove it and put the password in the environment variable that store_password_env names"
    )


def key_like_name(name: str) -> bool:
    return bool(_KEY_NAME.search(name))


def protect(name: str) -> None:
    """Also redact the value of this environment variable (an `api_key_env`)."""
    names = _extra_names()
    if name and name not in names:
        os.environ[EXTRA_ENV] = ",".join([*names, name])


def _secret_values() -> tuple:
    # The environment is read at every call (a key set later, in a notebook between two runs, is found);
    # which names are key-like is remembered, so a call costs a few dict lookups.
    extra = {n.encode() for n in _extra_names()}
    # The raw bytes mapping: os.environ decodes every name and value on each pass, which is most of the cost.
    raw = getattr(os.environ, "_data", None)
    if raw is None:
        items = ((k.encode(), v.encode()) for k, v in os.environ.items())
    else:
        items = raw.items()
    values = {v.decode(errors="replace") for k, v in items if (k in extra or _is_key_name(k)) and len(v) >= 8}
    return tuple(sorted(values, key=len, reverse=True))


def _extra_names() -> list:
    return [n for n in os.environ.get(EXTRA_ENV, "").split(",") if n]


@lru_cache(maxsize=4096)
def _is_key_name(name: bytes) -> bool:
    return key_like_name(name.decode(errors="replace"))


def redact(text: str) -> str:
    for value in _secret_values():
        if value in text:
            text = text.replace(value, REDACTED)
    return _KEY_SHAPE.sub(REDACTED, text)
