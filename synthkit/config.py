"""Typed schema of the run config, registered with Hydra so that a mistyped key or an
ill-typed value fails at composition time instead of somewhere inside a long run."""

import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class LLMConfig:
    provider: str = MISSING  # a name for summaries; `mock` selects the offline placeholder provider
    model: str = MISSING  # a litellm model string, e.g. gpt-4o-mini or openai/<name> with api_base
    api_base: Optional[str] = None
    api_key_env: Optional[str] = None  # environment variable holding the key; keys never go in configs
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 2048
    timeout_s: float = 120.0
    # auto: the lean HTTP client for OpenAI-compatible servers (an api_base and an openai/<name> model),
    # litellm for everything else. litellm or http forces one.
    client: str = "auto"
    # Send the JSON schema as structured output: null asks litellm whether the model supports it.
    structured_output: Optional[bool] = None
    # Limits of the account, shared by every synthkit process on this machine using the same endpoint.
    rpm: Optional[int] = None  # requests per minute
    tpm: Optional[int] = None  # tokens (prompt + completion) per minute
    # Failed requests (429, 5xx, timeouts, dropped connections) are retried after Retry-After, or
    # after an exponential backoff with full jitter: random up to backoff_s * 2^n, capped.
    max_retries: int = 6
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    circuit_breaker: int = 5  # rows in a row whose requests all failed end the run
    # USD per million tokens; null takes litellm's price map.
    input_cost_per_mtok: Optional[float] = None
    output_cost_per_mtok: Optional[float] = None


@dataclass
class RunConfig:
    task: Any = MISSING
    brainstorm: Any = MISSING  # the brainstorm task, for tasks whose definitions are brainstormed
    recipe: Any = None  # a mixture of tasks (recipe=e5) instead of one task
    llm: LLMConfig = MISSING
    num_rows: int = 10
    seed: int = 0
    concurrency: int = 16
    max_attempts: int = 3  # answers per row (first ask + re-asks) before the row is rejected
    preset: str = "seed"
    grid: Optional[List[str]] = None  # attributes whose every combination gets num_rows rows, in one run
    brainstorm_rows: Optional[int] = None
    output_dir: str = MISSING
    cache: bool = True  # replay answers to identical requests from the response cache
    cache_dir: Optional[str] = None  # null: $SYNTHKIT_CACHE_DIR, else ~/.cache/synthkit
    max_cost_usd: Optional[float] = None  # no new requests once this much is spent
    checks: bool = True  # the tasks' quality checks (never on llm=mock placeholder rows)
    dedup: bool = True  # reject rows that repeat an earlier row of the run, exactly or nearly
    dedup_threshold: float = 0.9  # near duplicate: estimated Jaccard similarity of word 3-grams at least this
    card: bool = True  # write README.md, a dataset card with plots, into the output dir
    dry_run: bool = False  # show attributes, a prompt, the schema and the estimated cost; call no model
    progress_every_s: float = 10.0  # plain progress lines when stderr is not a terminal
    languages: Dict[str, Any] = field(default_factory=dict)


def _run_id() -> str:
    # Time for humans to sort by; pid and random bits so runs started in the same second differ.
    # Fixed once per process (and inherited by launcher subprocesses) so every use agrees.
    if "SYNTHKIT_RUN_ID" not in os.environ:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        os.environ["SYNTHKIT_RUN_ID"] = f"{stamp}_{os.getpid()}{secrets.token_hex(2)}"
    return os.environ["SYNTHKIT_RUN_ID"]


def register() -> None:
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    if not OmegaConf.has_resolver("synthkit.run_id"):
        OmegaConf.register_new_resolver("synthkit.run_id", _run_id)
        OmegaConf.register_new_resolver("synthkit.hydra_subdir", lambda dry_run: None if dry_run else ".hydra")
