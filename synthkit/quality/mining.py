"""Mine hard negatives for each query from the run's own documents (the positives and negatives of
rows of the same task type), positive-aware as NV-Retriever's TopK-PercPos: a candidate scoring at
least `ratio` x the query's score for its own positive, or whose text is the positive's, is never
taken; nor is the example's own negative, which comes back apart with its score. The scores returned
are the ones FlagEmbedding's pos_scores / neg_scores expect.

A sentence-transformers embedder mines through sentence-transformers' own `mine_hard_negatives`
(relative_margin = 1 - ratio); the static one in blocks of queries against the whole document
matrix (argpartition per block): matrix products, not Python loops over pairs."""

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from synthkit.quality.score import block_rows

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
    from synthkit.quality.embedder import SentenceTransformerEmbedder

    mine = _mine_group_st if isinstance(embedder, SentenceTransformerEmbedder) else _mine_group
    for index in by_type.values():
        group = [examples[i] for i in index]
        for i, mined in zip(index, mine(embedder, group, k, ratio)):
            out[i] = mined
    return out


def _documents(group: list) -> tuple:
    """The group's distinct documents (after trimming), and each text's position among them."""
    documents, positions = [], {}
    for e in group:
        for text in (e.positive, e.negative):
            if text and text.strip() not in positions:
                positions[text.strip()] = len(documents)
                documents.append(text)
    return documents, positions


def _mine_group_st(embedder, group: list, k: int, ratio: float) -> list:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives as st_mine

    documents, _ = _documents(group)
    pairs = Dataset.from_dict({"query": [e.query for e in group], "positive": [e.positive for e in group]})
    prompts = {
        f"{side}_{'prompt_name' if 'prompt_name' in args else 'prompt'}": next(iter(args.values()))
        for side, args in (("query", embedder.query_prompt_args), ("corpus", embedder.document_prompt_args))
        if args
    }
    # One more than asked: the example's own negative may be among them, and it is not mined twice.
    # Its progress bars (which no argument turns off) would break the CLI's quiet output.
    with contextlib.redirect_stderr(io.StringIO()):
        mined = st_mine(
            pairs,
            embedder.model,
            corpus=documents,
            relative_margin=1 - ratio,
            num_negatives=k + 1,
            sampling_strategy="top",
            output_format="labeled-list",  # keeps queries with fewer than num_negatives candidates
            output_scores=True,
            batch_size=embedder.batch_size,
            verbose=False,
            **prompts,
        )
    found = {
        (query, texts[0]): (texts[1:], scores[1:])
        for query, texts, scores in zip(mined["query"], mined["positive"], mined["scores"])
    }
    # The examples' own pairs, scored as `synthkit score` scores them.
    queries = _encode(embedder.encode_queries, [e.query for e in group])
    positives = _encode(embedder.encode_documents, [e.positive for e in group])
    negatives = _encode(embedder.encode_documents, [e.negative or "" for e in group])
    pos_scores = np.einsum("ij,ij->i", queries, positives)
    neg_scores = np.einsum("ij,ij->i", queries, negatives)
    results = []
    for e, pos, neg in zip(group, pos_scores, neg_scores):
        texts, scores = found.get((e.query, e.positive), ([], []))
        taken = {e.positive.strip(), (e.negative or "").strip()}
        kept = [(t, s) for t, s in zip(texts, scores) if t.strip() not in taken][:k]
        results.append(
            Mined(
                round(float(pos), 4),
                [t for t, _ in kept],
                [round(float(s), 4) for _, s in kept],
                round(float(neg), 4) if e.negative else None,
            )
        )
    return results


def _mine_group(embedder, group: list, k: int, ratio: float) -> list:
    documents, positions = _documents(group)
    docs = _encode(embedder.encode_documents, documents)
    queries = _encode(embedder.encode_queries, [e.query for e in group])
    own = np.array([positions[e.positive.strip()] for e in group])
    own_neg = np.array([positions[e.negative.strip()] if e.negative else -1 for e in group])
    pos_scores = np.einsum("ij,ij->i", queries, docs[own])
    neg_scores = np.einsum("ij,ij->i", queries, docs[np.maximum(own_neg, 0)])
    take = min(k, len(documents))
    results = []
    step = block_rows(len(documents))
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
