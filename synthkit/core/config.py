"""Typed schema of the run config, registered with Hydra so that a mistyped key or an
ill-typed value fails at composition time instead of somewhere inside a long run."""

import os
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
    """The reference embedder that judges rows: its values are the conf/embedder/*.yaml files'."""

    backend: str = MISSING  # model2vec | sentence-transformers (checked where the embedder is loaded)
    model: str = MISSING  # a hub id (cached) or a local directory
    device: Optional[str] = MISSING
    batch_size: int = MISSING
    query_prompt: Optional[str] = MISSING  # sentence-transformers: a prompt name of the model, or the text
    document_prompt: Optional[str] = MISSING


class ScoreFlag(str, Enum):
    """The flags synthkit score puts on rows (synthkit/quality/score.py), in the order reports list them."""

    false_negative = "false_negative"
    easy_negative = "easy_negative"
    inconsistent = "inconsistent"
    near_duplicate = "near_duplicate"

    @property
    def negative(self) -> bool:
        """A flag of the row's negative: its share is of the rows that have one."""
        return self in (ScoreFlag.false_negative, ScoreFlag.easy_negative)

    @property
    def heading(self) -> str:
        """As a table's column names the rows it flags."""
        return self.value.replace("_", " ") + ("s" if self.negative or self is ScoreFlag.near_duplicate else "")


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
    unreadable: JudgeUnreadable = JudgeUnreadable.reject  # after one re-ask of the judge (a cut-off rating alike)
    # The cap on each rating's answer (and relabelling's), whichever model rates: a rating is a score and one
    # sentence, and a model that loops would otherwise spend the row's llm.max_tokens on it.
    max_tokens: int = 256


class Ablate(str, Enum):
    task_type = "task_type"  # leave one task type out at a time: what each type adds


class TrainSampler(str, Enum):
    # One batch of each task type in turn (the recipe's multi-dataset training); an epoch ends when the smallest
    # type runs out, so the larger ones are seen in part (the report says how much: use max_steps for more).
    round_robin = "round_robin"
    proportional = "proportional"  # batches drawn from each type in proportion to its rows


@dataclass
class DecontaminationConfig:
    """What makes a training row a copy of an evaluation query (E5-mistral's appendix; GPT-3's 13-gram rule)."""

    ngram: int = 13  # shares a word n-gram with an evaluation query (a shorter query: holds it whole)
    min_words: int = 3  # evaluation queries shorter than this are too generic to count as copied
    jaccard: float = 0.8  # or its query's word set overlaps an evaluation query's this much (reworded copies)
    copy_words: int = 8  # or its positive or negative holds an evaluation query of at least this many words


@dataclass
class EvaluateConfig:
    """Does the data make a better embedder (synthkit evaluate RUN; evaluate=true at the end of a run): a base model
    fine-tuned on the rows export would give, with sentence-transformers' own trainer, and base and tuned compared on
    evaluation sets with a paired bootstrap over queries (synthkit/results/evaluation/, README "Does the data help?")."""

    enabled: bool = False  # evaluate=true
    # Any sentence-transformers model id or local path, a model2vec folder too. Multilingual and small, as the recipe's
    # data is; minishlab/potion-multilingual-128M (static) trains in minutes on a CPU.
    base: str = "intfloat/multilingual-e5-small"
    # BEIR folders (corpus.jsonl, queries.jsonl, qrels/test.tsv: what `synthkit export --to beir` writes), Hugging Face
    # dataset ids (MTEB's layout, online), or `heldout`: the run's own queries held out (self-labelled, in-domain).
    sets: list[str] = field(default_factory=list)
    heldout_share: float = 0.1  # `heldout`: the share of the run's queries held out of training
    split: str = "test"  # the qrels split of BEIR folders and Hub sets
    # Queries of a set that carries no instruction of its own get this one (E5-mistral's for MS MARCO passages).
    instruction: str = "Given a web search query, retrieve relevant passages that answer the query"
    metric: str = "ndcg@10"  # the headline: ndcg@10, recall@100 or mrr@10 (all three are reported)
    hard_negatives: Optional[int] = None  # K: mine K more negatives per row, as export --hard-negatives K
    epochs: float = 1.0
    max_steps: Optional[int] = None  # training steps; overrides epochs
    batch_size: int = 32  # rows per batch: each row's in-batch negatives are the other rows' documents
    learning_rate: Optional[float] = None  # null: 2e-5 for a transformer, 0.05 for a static model (no layers to keep)
    warmup: float = 0.1  # share of the steps
    sampler: TrainSampler = TrainSampler.round_robin
    scale: float = 20.0  # 1 / temperature of the in-batch (MNRL) and STS (CoSENT) losses
    triplet_margin: float = 0.1  # classification: the label must beat the misleading one by this cosine
    max_rows: Optional[int] = None  # train on a seeded sample of this many rows (the same for every seed)
    device: Optional[str] = None  # null: sentence-transformers' choice (cuda, mps, cpu)
    seeds: list[int] = field(default_factory=lambda: [0])  # one fine-tune per seed: their spread is reported
    threads: Optional[int] = None  # torch threads; 1 is fastest on a small machine shared with other work
    encode_batch_size: int = 64
    bootstrap: int = 2000  # resamples of the paired bootstrap over queries
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    ablate: Optional[Ablate] = None  # task_type: also train leaving one task type out at a time
    save_models: bool = False  # keep the tuned models in the run dir (models/seed-N); otherwise none is written


@dataclass
class RunConfig:
    """The types of the run's own keys. Their values, and what each means, are in conf/config.yaml: the one place
    for each default. The groups (task, llm, embedder) bring their values from their YAML files; scoring, judge and
    evaluate take theirs from ScoreConfig, JudgeConfig and EvaluateConfig above."""

    task: Any = MISSING
    brainstorm: Any = MISSING
    recipe: Any = None  # the recipe group's, when one is chosen (recipe=e5); no recipe otherwise
    llm: LLMConfig = MISSING
    num_rows: int = MISSING
    seed: int = MISSING
    concurrency: int = MISSING
    max_attempts: int = MISSING
    preset: Preset = MISSING
    grid: Optional[list[str]] = MISSING
    brainstorm_rows: Optional[int] = MISSING
    output_dir: str = MISSING
    cache: bool = MISSING
    cache_dir: Optional[str] = MISSING
    store: Optional[str] = MISSING
    store_password_env: str = MISSING
    store_outage_s: float = MISSING
    max_cost_usd: Optional[float] = MISSING
    checks: bool = MISSING
    dedup: bool = MISSING
    dedup_threshold: float = MISSING
    card: bool = MISSING
    dry_run: bool = MISSING
    preview: Optional[int] = MISSING
    progress_every_s: float = MISSING
    max_reject_rate: float = MISSING
    reject_window: int = MISSING
    reject_min_rows: int = MISSING
    languages: dict[str, Any] = MISSING
    embedder: EmbedderConfig = MISSING
    score: bool = MISSING
    scoring: ScoreConfig = field(default_factory=ScoreConfig)
    corpus: Optional[str] = MISSING
    relabel: bool = MISSING
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)


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
    "judge.max_tokens": (1, None, False),
    "judge.llm.max_tokens": (1, None, False),
    "judge.llm.timeout_s": (0, None, True),
    "judge.llm.temperature": (0, None, False),
    "judge.llm.max_retries": (0, None, False),
    "judge.llm.rpm": (1, None, False),
    "judge.llm.tpm": (1, None, False),
    "evaluate.heldout_share": (0, 1, True),
    "evaluate.hard_negatives": (1, None, False),
    "evaluate.epochs": (0, None, True),
    "evaluate.max_steps": (1, None, False),
    "evaluate.batch_size": (2, None, False),  # one row has no in-batch negative
    "evaluate.learning_rate": (0, None, True),
    "evaluate.warmup": (0, 1, False),
    "evaluate.scale": (0, None, True),
    "evaluate.triplet_margin": (0, None, False),
    "evaluate.max_rows": (1, None, False),
    "evaluate.threads": (1, None, False),
    "evaluate.encode_batch_size": (1, None, False),
    "evaluate.bootstrap": (100, None, False),
    "evaluate.decontamination.ngram": (1, None, False),
    "evaluate.decontamination.min_words": (1, None, False),
    "evaluate.decontamination.jaccard": (0, 1, True),
    "evaluate.decontamination.copy_words": (1, None, False),
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


def listed(name: str) -> list:
    """`${synthkit.list:NAME}`: the values of a packaged list (synthkit/conf/lists/NAME.txt, e.g. personas), or of
    the user's own file when NAME is a path; one value per line, blank lines and `#` comments aside."""
    from importlib import resources
    from pathlib import Path

    packaged = resources.files("synthkit.conf").joinpath("lists", f"{name}.txt")
    path = Path(name).expanduser() if ("/" in name or name.endswith(".txt")) else packaged
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        lists = sorted(
            p.name.removesuffix(".txt") for p in resources.files("synthkit.conf").joinpath("lists").iterdir()
        )
        raise ValueError(
            f"${{synthkit.list:{name}}}: no such list ({getattr(e, 'strerror', e)}); packaged lists: "
            f"{', '.join(lists)}, or give the path of a text file with one value per line"
        ) from None
    values = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not values:
        raise ValueError(f"${{synthkit.list:{name}}}: {path} holds no values")
    return values


def register() -> None:
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    if not OmegaConf.has_resolver("synthkit.run_id"):
        OmegaConf.register_new_resolver("synthkit.run_id", _run_id)
    if not OmegaConf.has_resolver("synthkit.list"):
        OmegaConf.register_new_resolver("synthkit.list", listed)
