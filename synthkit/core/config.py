"""Typed schema of the run config, registered with Hydra so that a mistyped key or an
ill-typed value fails at composition time instead of somewhere inside a long run."""

import difflib
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


class Client(str, Enum):
    auto = "auto"  # the lean HTTP client for OpenAI-compatible servers, litellm for everything else
    litellm = "litellm"
    http = "http"


class Preset(str, Enum):
    seed = "seed"  # the seed documents' attribute domains
    paper = "paper"  # the paper's, where they differ


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
    client: Client = Client.auto
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
    # Provider batch API (OpenAI Files + Batches): half the price, answers within hours (README "Batch mode").
    batch: bool = False
    batch_poll_s: float = 60.0  # seconds between status checks of open batches
    batch_max_requests: int = 50_000  # per batch (OpenAI's limit); also the rows in flight at once
    batch_max_bytes: int = 200 * 1024 * 1024  # per batch input file (OpenAI's limit)


@dataclass
class EmbedderConfig:
    """The reference embedder that judges rows (conf/embedder/*.yaml)."""

    backend: str = "model2vec"  # model2vec | sentence-transformers (checked where the embedder is loaded)
    model: str = "minishlab/potion-multilingual-128M"  # a hub id (cached) or a local directory
    device: Optional[str] = None
    batch_size: int = 256
    query_prompt: Optional[str] = None  # sentence-transformers: a prompt name of the model, or the text
    document_prompt: Optional[str] = None


class ScoreFlag(str, Enum):  # the flags of synthkit.quality.score
    false_negative = "false_negative"
    easy_negative = "easy_negative"
    inconsistent = "inconsistent"
    near_duplicate = "near_duplicate"


class ScorePolicy(str, Enum):
    flag = "flag"  # scores.jsonl says which rows are suspect; exports keep them
    drop = "drop"  # exports leave the rows with a flag in `scoring.drop` out


@dataclass
class ScoreConfig:
    """What counts as a suspect row when a run is judged, and what exports do with it."""

    false_negative_ratio: float = 0.95  # negative scoring at least this share of the positive (NV-Retriever)
    top_k: int = 5  # the positive must rank among the query's top k positives of its type (round trip)
    near_duplicate: float = 0.95  # cosine to an earlier query of its type at least this
    easy_margin: Optional[float] = None  # margin at least this: easy; None: no harder than an in-batch negative
    policy: ScorePolicy = ScorePolicy.flag
    drop: list[ScoreFlag] = field(
        default_factory=lambda: [ScoreFlag.false_negative, ScoreFlag.inconsistent, ScoreFlag.near_duplicate]
    )
    batch_size: int = 1024  # rows per encoding batch


class JudgeUnreadable(str, Enum):
    reject = "reject"  # a row the judge could not rate (twice) is not vouched for: rejected, check `judge`
    keep = "keep"  # written, without a judge_score


@dataclass
class JudgeConfig:
    """The LLM judge of rows (synthkit/quality/llm_judge.py): each row that passed the checks is rated 1-5
    against its task's `judge.rubric`; below min_score it is asked again with the judge's reason, then rejected."""

    enabled: bool = False  # judge=true
    # null: the run's llm (same call stack). Another: judge.llm=openai judge.llm.model=gpt-4o-mini
    # (judge.llm=NAME is spelt llm@judge.llm=NAME for Hydra; synthkit accepts both).
    llm: Optional[LLMConfig] = None
    min_score: int = 3
    reask: bool = True  # false: a row under min_score is rejected at once
    unreadable: JudgeUnreadable = JudgeUnreadable.reject  # after one re-ask of the judge


JUDGE_ALIASES = {"judge": "judge.enabled", "judge.llm": "llm@judge.llm"}


def expand_aliases(overrides) -> list:
    """`judge=true` and `judge.llm=NAME` as Hydra spells them (`judge` is a node, judge.llm an optional group)."""
    expanded = []
    for override in overrides:
        key, sep, value = str(override).partition("=")
        expanded.append(f"{JUDGE_ALIASES[key]}={value}" if sep and key in JUDGE_ALIASES else override)
    return expanded


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
    preset: Preset = Preset.seed
    grid: Optional[list[str]] = None  # attributes whose every combination gets num_rows rows, in one run
    brainstorm_rows: Optional[int] = None
    output_dir: str = MISSING
    cache: bool = True  # replay answers to identical requests from the response cache
    cache_dir: Optional[str] = None  # null: $SYNTHKIT_CACHE_DIR, else ~/.cache/synthkit
    # redis://host:port/db: the cache, rpm/tpm limits and budget live on that server, shared across machines.
    # null: files of this machine (cache_dir, refused on a network filesystem). Password: store_password_env.
    store: Optional[str] = None
    store_password_env: str = "SYNTHKIT_REDIS_PASSWORD"  # the environment variable holding the store's password
    store_outage_s: float = 300.0  # how long requests wait for a store that went away before the run stops
    max_cost_usd: Optional[float] = None  # no new requests once this much is spent
    checks: bool = True  # the tasks' quality checks (never on llm=mock placeholder rows)
    dedup: bool = True  # reject rows that repeat an earlier row of the run, exactly or nearly
    dedup_threshold: float = 0.9  # near duplicate: estimated Jaccard similarity of word 3-grams at least this
    card: bool = True  # write README.md, a dataset card with plots, into the output dir
    dry_run: bool = False  # show attributes, a prompt, the schema and the estimated cost; call no model
    preview: Optional[int] = None  # make this many real rows, show them, and project the cost of num_rows
    progress_every_s: float = 10.0  # plain progress lines when stderr is not a terminal
    # A cell (or the run) stops when this share of its last reject_window rows were rejected, once
    # reject_min_rows rows are seen: a model unfit for a task does not burn the budget.
    max_reject_rate: float = 0.9
    reject_window: int = 50
    reject_min_rows: int = 20
    languages: dict[str, Any] = field(default_factory=dict)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    score: bool = False  # judge the rows with the embedder once the run ends (scores.jsonl)
    scoring: ScoreConfig = field(default_factory=ScoreConfig)
    corpus: Optional[str] = None  # the user's documents, for the grounded tasks (synthkit/corpus/)
    relabel: bool = False  # Gecko: the embedder retrieves, the LLM judges, the best chunk becomes the positive
    judge: JudgeConfig = field(default_factory=JudgeConfig)


# Bounds of numeric settings: (least, most, whether the least is excluded). Checked once, before anything runs.
BOUNDS = {
    "num_rows": (1, None, False),
    "concurrency": (1, None, False),
    "max_attempts": (1, None, False),
    "brainstorm_rows": (1, None, False),
    "max_cost_usd": (0, None, True),
    "store_outage_s": (0, None, True),
    "dedup_threshold": (0, 1, True),
    "progress_every_s": (0, None, False),
    "max_reject_rate": (0, 1, True),
    "reject_window": (1, None, False),
    "reject_min_rows": (1, None, False),
    "preview": (1, None, False),
    "llm.max_tokens": (1, None, False),
    "llm.timeout_s": (0, None, True),
    "llm.temperature": (0, None, False),
    "llm.top_p": (0, 1, True),
    "llm.max_retries": (0, None, False),
    "llm.backoff_s": (0, None, False),
    "llm.backoff_max_s": (0, None, False),
    "llm.circuit_breaker": (1, None, False),
    "llm.rpm": (1, None, False),
    "llm.tpm": (1, None, False),
    "llm.input_cost_per_mtok": (0, None, False),
    "llm.output_cost_per_mtok": (0, None, False),
    "llm.batch_poll_s": (0, None, False),
    "llm.batch_max_requests": (1, None, False),
    "llm.batch_max_bytes": (1, None, False),
    "embedder.batch_size": (1, None, False),
    "scoring.false_negative_ratio": (0, None, True),
    "scoring.top_k": (1, None, False),
    "scoring.batch_size": (1, None, False),
    "judge.min_score": (1, 5, False),
    "judge.llm.max_tokens": (1, None, False),
    "judge.llm.timeout_s": (0, None, True),
    "judge.llm.temperature": (0, None, False),
    "judge.llm.max_retries": (0, None, False),
    "judge.llm.rpm": (1, None, False),
    "judge.llm.tpm": (1, None, False),
}


def check_bounds(cfg) -> None:
    """One line for the first numeric setting out of its bounds (types are checked by the schema)."""
    from synthkit.core.errors import UserError

    for key, (least, most, strict) in BOUNDS.items():
        value = OmegaConf.select(cfg, key)
        if value is None:
            continue
        if value < least or (strict and value == least) or (most is not None and value > most):
            if most is None:
                need = f"more than {least}" if strict else f"at least {least}"
            else:
                need = f"in ({least}, {most}]" if strict else f"in [{least}, {most}]"
            raise UserError(f"{key}={value} must be {need}")


RUN_ID_ENV = "SYNTHKIT_RUN_ID"


def _run_id() -> str:
    # Time for humans to sort by; pid and random bits so runs started in the same second differ.
    # Fixed once per process (and inherited by launcher subprocesses) so every use agrees.
    if RUN_ID_ENV not in os.environ:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        os.environ[RUN_ID_ENV] = f"{stamp}_{os.getpid()}{secrets.token_hex(2)}"
    return os.environ[RUN_ID_ENV]


def register() -> None:
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    if not OmegaConf.has_resolver("synthkit.run_id"):
        OmegaConf.register_new_resolver("synthkit.run_id", _run_id)


def _composition_errors() -> tuple:
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return HydraException, OmegaConfBaseException, yaml.YAMLError


COMPOSITION_ERRORS = _composition_errors()


# Hydra launcher plugins by the extra that installs them (+launcher=... presets in conf/launcher/).
LAUNCHER_EXTRAS = {"joblib": "joblib", "submitit_slurm": "slurm", "submitit_local": "slurm", "ray": "ray"}


def composition_error(error: Exception) -> str:
    """One line for a config that does not compose: a missing option, a bad override or value, a YAML file
    that does not parse."""
    import yaml
    from hydra.errors import MissingConfigException

    if isinstance(error, yaml.YAMLError):
        mark = getattr(error, "problem_mark", None)
        where = f"{mark.name} line {mark.line + 1}" if mark else "a config file"
        return f"{where} is not valid YAML: {getattr(error, 'problem', None) or error}"
    if isinstance(error, MissingConfigException):
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        if group == "hydra/launcher" and name in LAUNCHER_EXTRAS:
            from synthkit.core.extras import pip_install

            return f"the {name} launcher is not installed: {pip_install(LAUNCHER_EXTRAS[name])}"
        if group and error.options:
            return (
                f"no {group} named '{name}'{_did_you_mean(name, error.options)}; available: {', '.join(error.options)}"
            )
    return _one_line(error)


def _did_you_mean(name: str, candidates, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _one_line(error: Exception) -> str:
    unknown = re.match(r"Could not override '([^']+)'", str(error))
    if unknown and "not in" in str(error.__cause__):
        # The node the key was looked up in holds the keys it could have meant (num_row -> num_rows).
        key = unknown.group(1)
        parent = getattr(error.__cause__, "parent_node", None)
        keys = [k for k in parent.keys() if k != "hydra"] if hasattr(parent, "keys") else []
        path, _, leaf = key.rpartition(".")
        hint = _did_you_mean(leaf, keys, f"{path}." if path else "")
        return f"unknown key '{key}'{hint}; list the valid keys with: synthkit <your overrides> --cfg job"
    text = str(error)
    if error.__cause__ is not None and str(error.__cause__) not in text:
        text += ": " + str(error.__cause__)
    lines = [line.strip() for line in text.splitlines()]
    # OmegaConf appends location details (full_key, object_type) that repeat what the message says.
    lines = [line for line in lines if line and not line.startswith(("full_key:", "object_type=", "reference_type="))]
    text = " ".join(lines)
    if any(
        s in text
        for s in (
            "Ambiguous value",
            "Unknown function",
            "mismatched input",
            "no viable alternative",
            "extraneous input",
            "token recognition error",
        )
    ):
        text += (
            " -- free text with commas, brackets, parentheses or quotes must be quoted: "
            "'task.task=\"Given a city, retrieve...\"'"
        )
    return text
