"""Training rows that copy an evaluation query are left out before any training (E5-mistral's appendix; GPT-3's
13-gram rule): without this a gain may be memorised labels. A row goes when

- its query shares a word n-gram (13) with an evaluation query, or holds a shorter evaluation query whole (from
  `min_words` words up: shorter ones are too generic to count as copies);
- its query's word set has a Jaccard of at least `jaccard` with an evaluation query's (reordered, reworded copies);
- its positive or negative holds an evaluation query of at least `copy_words` words (or one of its n-grams).

Documents of an evaluation corpus may serve as positives: no label leaks through them (the in-domain setting of
InPars and GPL). They are counted, so the report can say which setting a set is in."""

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Contaminated:
    example: object  # the training example left out
    set_name: str  # the evaluation set of the query it copies
    query_id: str
    rule: str  # "13-gram", "whole query", "jaccard 0.86", "copied in positive/negative"


def words(text: str) -> list:
    return re.findall(r"\w+", text.lower())


def _grams(tokens: list, k: int) -> set:
    return {tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def decontaminate(examples: list, eval_queries: dict, settings) -> tuple:
    """(kept, removed: [Contaminated]) of `examples` against `eval_queries` ({(set name, query id): text}, every
    set's queries together). `settings`: evaluate.decontamination (ngram, min_words, jaccard, copy_words)."""
    n = settings.ngram
    query_grams: dict = {}  # n-gram (or a whole short query) -> (set, query id)
    copy_grams: dict = {}  # the same, of queries long enough to count when copied into a document
    word_sets, ids = [], []
    for key, text in eval_queries.items():
        tokens = words(text)
        k = min(n, len(tokens))
        if k >= settings.min_words:
            for gram in _grams(tokens, k):
                query_grams.setdefault(gram, key)
            if len(tokens) >= settings.copy_words:
                for gram in _grams(tokens, k):
                    copy_grams.setdefault(gram, key)
        word_sets.append(set(tokens))
        ids.append(key)
    sizes = sorted({len(g) for g in query_grams})
    similar = jaccard_matches([set(words(e.query)) for e in examples], word_sets, settings.jaccard)
    kept, removed = [], []
    for i, e in enumerate(examples):
        hit = _first_gram(words(e.query), query_grams, sizes)
        if hit:
            (set_name, qid), k = hit
            removed.append(Contaminated(e, set_name, qid, f"{n}-gram" if k == n else "whole query"))
        elif i in similar:
            j, score = similar[i]
            removed.append(Contaminated(e, *ids[j], f"jaccard {score:.2f}"))
        elif copied := _copied(e, copy_grams, sizes):
            removed.append(Contaminated(e, *copied, "copied in positive/negative"))
        else:
            kept.append(e)
    return kept, removed


def _copied(example, copy_grams: dict, sizes: list) -> Optional[tuple]:
    for text in (example.positive, example.negative):
        hit = _first_gram(words(text or ""), copy_grams, sizes)
        if hit:
            return hit[0]
    return None


def _first_gram(tokens: list, index: dict, sizes: list) -> Optional[tuple]:
    for k in sizes:
        for i in range(len(tokens) - k + 1):
            key = index.get(tuple(tokens[i : i + k]))
            if key is not None:
                return key, k
    return None


def jaccard_matches(train_sets: list, eval_sets: list, threshold: float) -> dict:
    """{train index: (eval index, Jaccard)} of the best evaluation match at or above `threshold`. Intersections
    come from one sparse product, and only pairs sharing a word are looked at: no dense train x eval matrix."""
    from scipy.sparse import csr_matrix

    vocabulary: dict = {}

    def matrix(sets: list):
        rows, cols = [], []
        for r, tokens in enumerate(sets):
            for w in tokens:
                rows.append(r)
                cols.append(vocabulary.setdefault(w, len(vocabulary)))
        return rows, cols

    t_rows, t_cols = matrix(train_sets)
    e_rows, e_cols = matrix(eval_sets)
    if not t_rows or not e_rows:
        return {}
    width = len(vocabulary)
    train = csr_matrix((np.ones(len(t_rows), np.float32), (t_rows, t_cols)), shape=(len(train_sets), width))
    evals = csr_matrix((np.ones(len(e_rows), np.float32), (e_rows, e_cols)), shape=(len(eval_sets), width))
    t_size = np.asarray(train.sum(1), dtype=np.float64).ravel()
    e_size = np.asarray(evals.sum(1), dtype=np.float64).ravel()
    best: dict = {}
    for start in range(0, len(train_sets), 4096):
        shared = (train[start : start + 4096] @ evals.T).tocoo()
        inter = shared.data.astype(np.float64)
        score = inter / (t_size[start + shared.row] + e_size[shared.col] - inter)
        hit = score >= threshold - 1e-9  # 4 of 5 words is 0.8, whatever the rounding
        for r, c, s in zip(shared.row[hit], shared.col[hit], score[hit]):
            i = start + int(r)
            if i not in best or s > best[i][1]:
                best[i] = (int(c), float(s))
    return best


def corpus_documents_in_training(examples: list, corpus: dict) -> int:
    """Training rows whose positive or negative is a document of the evaluation corpus (whitespace aside)."""
    documents = {" ".join(text.split()) for text in corpus.values()}
    return sum(any(text and " ".join(text.split()) in documents for text in (e.positive, e.negative)) for e in examples)
