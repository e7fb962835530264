"""Judge a run's rows with a reference embedder: per row cos(query, positive), cos(query, negative)
and their margin, and four flags, written as scores.jsonl beside data.jsonl with a summary per task type.

Rows stream through in batches (only their embeddings are kept, one query and one positive vector per
row); the checks that need the whole run of a task type (the positive's rank among all positives, the
nearest earlier query) run afterwards as blocked matrix products, never per pair in Python."""

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from synthkit.core.config import ScoreConfig, ScoreFlag
from synthkit.spec.fields import lookup

_BLOCK_FLOATS = 1 << 24  # a similarity block holds at most this many floats (64 MB)
_TIE = 1e-5  # float32 rounding: two texts with the same tokens in another order embed alike, not bitwise


# What scores_summary.json records of the settings a run was scored with.
THRESHOLDS = ("false_negative_ratio", "top_k", "near_duplicate", "batch_size", "easy_margin")


@dataclass
class Scores:
    """Per scored row, in data order: its identity and numbers (arrays for the card's histograms)."""

    ids: list = field(default_factory=list)  # dicts: row, cell (when present), task_type
    task_type: list = field(default_factory=list)
    language: list = field(default_factory=list)
    pos_sim: np.ndarray = None
    neg_sim: np.ndarray = None  # NaN where the row has no negative
    margin: np.ndarray = None
    pos_rank: np.ndarray = None  # positives of the task type scoring strictly above the row's own
    baseline: np.ndarray = None  # mean cos(query, the other positives): a random in-batch negative
    dup_sim: np.ndarray = None  # max cos to an earlier query of the task type (NaN for the first)
    dup_of: np.ndarray = None  # index into ids of that query (-1 for none)
    flags: dict = field(default_factory=dict)  # flag -> bool array
    diversity: dict = field(default_factory=dict)  # task type -> language -> figures
    skipped: int = 0  # rows of tasks without an export block, or without a query or positive text


def export_specs(tasks: dict) -> dict:
    """Task type -> its export block, from task configs by name (as RunDir.task_configs gives)."""
    return {name: task["export"] for name, task in tasks.items() if task.get("export")}


def score_rows(rows: Iterable[dict], exports: dict, embedder, thresholds: ScoreConfig | None = None) -> Scores:
    """`thresholds`: the scoring settings (ScoreConfig) whose thresholds make the flags."""
    thresholds = thresholds or ScoreConfig()
    scores = Scores()
    pos, neg = [], []
    queries: dict = {}  # task type -> list of query blocks; positives alike
    positives: dict = {}
    members: dict = {}  # task type -> row indices, in data order
    for batch in _batches(rows, exports, thresholds.batch_size, scores):
        q = embedder.encode_queries([b[1] for b in batch])
        p = embedder.encode_documents([b[2] for b in batch])
        with_neg = [i for i, b in enumerate(batch) if b[3]]
        n = embedder.encode_documents([batch[i][3] for i in with_neg])
        pos.append(np.einsum("ij,ij->i", q, p))
        batch_neg = np.full(len(batch), np.nan, dtype=np.float32)
        batch_neg[with_neg] = np.einsum("ij,ij->i", q[with_neg], n)
        neg.append(batch_neg)
        start = len(scores.ids)
        for i, (row_id, _, _, _, language) in enumerate(batch):
            scores.ids.append(row_id)
            scores.task_type.append(row_id["task_type"])
            scores.language.append(language)
            members.setdefault(row_id["task_type"], []).append(start + i)
        for task_type in {b[0]["task_type"] for b in batch}:
            local = [i for i, b in enumerate(batch) if b[0]["task_type"] == task_type]
            queries.setdefault(task_type, []).append(q[local])
            positives.setdefault(task_type, []).append(p[local])
    total = len(scores.ids)
    scores.pos_sim = np.concatenate(pos) if pos else np.zeros(0, np.float32)
    scores.neg_sim = np.concatenate(neg) if neg else np.zeros(0, np.float32)
    scores.margin = scores.pos_sim - scores.neg_sim
    scores.pos_rank = np.zeros(total, dtype=np.int64)
    scores.baseline = np.full(total, np.nan, dtype=np.float32)
    scores.dup_sim = np.full(total, np.nan, dtype=np.float32)
    scores.dup_of = np.full(total, -1, dtype=np.int64)
    for task_type, index in members.items():
        index = np.asarray(index)
        q, p = np.concatenate(queries.pop(task_type)), np.concatenate(positives.pop(task_type))
        scores.pos_rank[index], scores.baseline[index] = _ranks(q, p)
        dup_sim, dup_local = _nearest_earlier(q)
        scores.dup_sim[index] = dup_sim
        scores.dup_of[index] = np.where(dup_local >= 0, index[np.maximum(dup_local, 0)], -1)
        scores.diversity[task_type] = _diversity(q, [scores.language[i] for i in index])
    has_neg = ~np.isnan(scores.neg_sim)
    with np.errstate(invalid="ignore"):
        scores.flags = {
            ScoreFlag.false_negative.value: has_neg
            & (scores.neg_sim >= thresholds.false_negative_ratio * scores.pos_sim),
            # It teaches nothing that the in-batch negatives do not already teach.
            ScoreFlag.easy_negative.value: has_neg
            & (
                scores.neg_sim <= scores.baseline
                if thresholds.easy_margin is None
                else scores.pos_sim - scores.neg_sim >= thresholds.easy_margin
            ),
            ScoreFlag.inconsistent.value: scores.pos_rank >= thresholds.top_k,
            ScoreFlag.near_duplicate.value: scores.dup_sim >= thresholds.near_duplicate,
        }
    return scores


def _batches(rows: Iterable[dict], exports: dict, size: int, scores: Scores) -> Iterator[list]:
    batch = []
    for row in rows:
        spec = exports.get(row.get("task_type"))
        query = lookup(row, spec["query"]) if spec else None
        positive = lookup(row, spec["positive"]) if spec else None
        if not (isinstance(query, str) and query and isinstance(positive, str) and positive):
            scores.skipped += 1
            continue
        negative = lookup(row, spec["negative"]) if spec.get("negative") else None
        negative = negative if isinstance(negative, str) and negative else None
        batch.append((row_identity(row), query, positive, negative, language_of(row)))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def row_identity(row: dict) -> dict:
    ident = {"row": row.get("row")}
    if row.get("job") is not None:  # a merged sweep: row and cell repeat from job to job
        ident["job"] = row["job"]
    if row.get("cell") is not None:
        ident["cell"] = row["cell"]
    ident["task_type"] = row.get("task_type")
    return ident


def language_of(row: dict) -> str:
    attributes = row.get("attributes") or {}
    return str(attributes.get("language") or attributes.get("source_language") or "-")


def block_rows(columns: int) -> int:
    """Rows of a similarity block against `columns` columns that keep it under _BLOCK_FLOATS floats."""
    return int(min(1024, max(16, _BLOCK_FLOATS // max(columns, 1))))


def _ranks(q: np.ndarray, p: np.ndarray) -> tuple:
    """Per query: how many of the task type's positives score above its own (ties do not count, so a
    positive repeated in another row costs nothing), and its mean score over the other positives."""
    n = len(q)
    ranks = np.zeros(n, dtype=np.int64)
    baseline = np.full(n, np.nan, dtype=np.float32)
    step = block_rows(n)
    for s in range(0, n, step):
        e = min(n, s + step)
        sims = q[s:e] @ p.T
        own = sims[np.arange(e - s), np.arange(s, e)]
        ranks[s:e] = (sims > own[:, None] + _TIE).sum(axis=1)
        if n > 1:
            baseline[s:e] = (sims.sum(axis=1) - own) / (n - 1)
    return ranks, baseline


def _nearest_earlier(q: np.ndarray) -> tuple:
    """Per query: the highest cosine to any earlier query, and that query's position (-1: none)."""
    n = len(q)
    best = np.full(n, np.nan, dtype=np.float32)
    where = np.full(n, -1, dtype=np.int64)
    step = block_rows(n)
    for s in range(0, n, step):
        e = min(n, s + step)
        if e <= 1:
            continue
        sims = q[s:e] @ q[:e].T
        later = np.arange(e)[None, :] >= np.arange(s, e)[:, None]
        sims[later] = -np.inf
        arg = sims.argmax(axis=1)
        top = sims[np.arange(e - s), arg]
        found = np.isfinite(top)
        best[s:e][found] = top[found]
        where[s:e][found] = arg[found]
    return best, where


def _diversity(q: np.ndarray, languages: list) -> dict:
    """Per language: the mean pairwise cosine of the queries (lower is more diverse) and their Vendi
    score (the effective number of distinct queries, Friedman & Dieng 2023). Both come from sums
    and the d x d Gram matrix, so every query counts and no n x n matrix is made."""
    out = {}
    languages = np.asarray(languages)
    for language in sorted(set(languages.tolist())):
        x = q[languages == language].astype(np.float64)
        n = len(x)
        if n < 2:
            out[language] = {"queries": n, "mean_cosine": None, "vendi": None}
            continue
        total = x.sum(axis=0)
        mean_cos = (total @ total - (x * x).sum()) / (n * (n - 1))
        eig = np.clip(np.linalg.eigvalsh(x.T @ x / n), 0, None)
        eig = eig[eig > 1e-12] / eig.sum() if eig.sum() > 0 else eig[:0]
        vendi = float(np.exp(-(eig * np.log(eig)).sum())) if len(eig) else None
        out[language] = {
            "queries": n,
            "mean_cosine": round(float(mean_cos), 4),
            "vendi": round(vendi, 2) if vendi is not None else None,
        }
    return out


def records(scores: Scores) -> Iterator[dict]:
    """One scores.jsonl line per scored row."""
    for i, ident in enumerate(scores.ids):
        record = dict(ident)
        record["pos_sim"] = _num(scores.pos_sim[i])
        record["neg_sim"] = _num(scores.neg_sim[i])
        record["margin"] = _num(scores.margin[i])
        record["pos_rank"] = int(scores.pos_rank[i])
        record["dup_sim"] = _num(scores.dup_sim[i])
        if scores.flags["near_duplicate"][i]:
            record["dup_of"] = scores.ids[scores.dup_of[i]]
        record["flags"] = [flag.value for flag in ScoreFlag if scores.flags[flag.value][i]]
        yield record


def _num(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def summary(scores: Scores, thresholds: ScoreConfig | None = None) -> dict:
    """Counts and shares of each flag per task type (shares of the rows a flag applies to: the
    negative flags of rows with a negative), quantiles of the similarities, and query diversity."""
    thresholds = thresholds or ScoreConfig()
    types = np.asarray(scores.task_type)
    has_neg = ~np.isnan(scores.neg_sim)
    out = {
        "rows": len(scores.ids),
        "skipped": scores.skipped,
        "thresholds": {k: getattr(thresholds, k) for k in THRESHOLDS},
        "task_types": {},
    }
    for task_type in sorted(set(scores.task_type)):
        mine = types == task_type
        with_neg = mine & has_neg
        flags = {}
        for flag in ScoreFlag:
            base = with_neg if flag.negative else mine
            count = int((scores.flags[flag.value] & base).sum())
            flags[flag.value] = {"count": count, "share": round(count / int(base.sum()), 4) if base.any() else None}
        out["task_types"][task_type] = {
            "rows": int(mine.sum()),
            "with_negative": int(with_neg.sum()),
            "flags": flags,
            "pos_sim": _quantiles(scores.pos_sim[mine]),
            "neg_sim": _quantiles(scores.neg_sim[with_neg]),
            "margin": _quantiles(scores.margin[with_neg]),
            "diversity": scores.diversity.get(task_type, {}),
        }
    return out


def _quantiles(values: np.ndarray) -> dict | None:
    if not len(values):
        return None
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {
        "mean": round(float(values.mean()), 4),
        "p10": round(float(p10), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
    }
