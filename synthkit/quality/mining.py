"""Mine hard negatives for each query from the run's own documents (the positives and negatives of
rows of the same task type), positive-aware as NV-Retriever's TopK-PercPos: a candidate scoring at
least `ratio` x the query's score for its own positive, or whose text is the positive's, is never
taken; nor is the example's own negative, which comes back apart with its score. Queries go in blocks against the whole document matrix (argpartition per block), so the cost
is matrix products, not Python loops over pairs; the scores returned are the ones FlagEmbedding's
pos_scores / neg_scores expect."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from synthkit.quality.score import _block_rows

ENCODE_BATCH = 1024


@dataclass
class Mined:
    pos_score: float
    negatives: list = field(default_factory=list)  # texts, hardest first
    scores: list = field(default_factory=list)  # their cosines to the query
    neg_score: float | None = None  # the cosine of the example's own negative, when it has one


def mine_hard_negatives(embedder, examples: Sequence, k: int = 7, ratio: float = 0.95) -> list:
    """One Mined per example, in order. An example is anything with task_type, query, positive and
    negative (None or a text) attributes, as synthkit.results.export.Example. Fewer than k negatives come
    back where the task type has fewer eligible documents."""
    out = [None] * len(examples)
    by_type: dict = {}
    for i, e in enumerate(examples):
        by_type.setdefault(e.task_type, []).append(i)
    for index in by_type.values():
        group = [examples[i] for i in index]
        for i, mined in zip(index, _mine_group(embedder, group, k, ratio)):
            out[i] = mined
    return out


def _mine_group(embedder, group: list, k: int, ratio: float) -> list:
    documents, positions = [], {}  # one entry per distinct text (after trimming)
    for e in group:
        for text in (e.positive, e.negative):
            if text and text.strip() not in positions:
                positions[text.strip()] = len(documents)
                documents.append(text)
    docs = _encode(embedder.encode_documents, documents)
    queries = _encode(embedder.encode_queries, [e.query for e in group])
    own = np.array([positions[e.positive.strip()] for e in group])
    own_neg = np.array([positions[e.negative.strip()] if e.negative else -1 for e in group])
    pos_scores = np.einsum("ij,ij->i", queries, docs[own])
    neg_scores = np.einsum("ij,ij->i", queries, docs[np.maximum(own_neg, 0)])
    take = min(k, len(documents))
    results = []
    step = _block_rows(len(documents))
    for s in range(0, len(group), step):
        e = min(len(group), s + step)
        sims = queries[s:e] @ docs.T
        rows = np.arange(e - s)
        sims[sims >= ratio * pos_scores[s:e, None]] = -np.inf
        sims[rows, own[s:e]] = -np.inf  # the positive itself, whatever its score
        has_neg = own_neg[s:e] >= 0
        sims[rows[has_neg], own_neg[s:e][has_neg]] = -np.inf  # already the example's: not twice
        if take < len(documents):
            top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        else:
            top = np.broadcast_to(np.arange(len(documents)), (e - s, len(documents)))
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        top, top_sims = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)
        for r in rows:
            keep = np.isfinite(top_sims[r])
            results.append(
                Mined(
                    round(float(pos_scores[s + r]), 4),
                    [documents[j] for j in top[r][keep]],
                    [round(float(x), 4) for x in top_sims[r][keep]],
                    round(float(neg_scores[s + r]), 4) if own_neg[s + r] >= 0 else None,
                )
            )
    return results


def _encode(encode, texts: list) -> np.ndarray:
    blocks = [encode(texts[s : s + ENCODE_BATCH]) for s in range(0, len(texts), ENCODE_BATCH)]
    return np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)
