"""`synthkit export RUN --to beir`: the run as a BEIR dataset to evaluate a model on the user's own domain:
corpus.jsonl ({_id, title, text}: every chunk of the run's corpus when it can still be read unchanged, else
the chunks and documents the rows name), queries.jsonl ({_id, text}) and qrels/<split>.tsv (query-id, corpus-id,
score; header first), as BEIR's GenericDataLoader reads them. `--split test=0.1` holds out a share of the
queries, chosen by a hash of (seed, query id): the same run and seed always give the same split."""

import hashlib
import json
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.results.rundir import RunDir


def parse_splits(specs: list) -> dict:
    """{'test': 0.1, ...} from ['test=0.1', ...]; the rest of the queries go to `train` (all to `test` if none)."""
    splits: dict = {}
    for spec in specs or []:
        name, _, share = spec.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = -1
        if not name or not name.isidentifier() or not 0 < value < 1 or name == "train":
            raise UserError(f"--split {spec}: give NAME=SHARE with a share in (0, 1), e.g. --split test=0.1")
        splits[name] = value
    if sum(splits.values()) >= 1:
        raise UserError("--split shares add up to 1 or more: leave some queries for train")
    return splits


def text_id(text: str) -> str:
    return "t" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def assign(query_ids: list, splits: dict, seed: int) -> dict:
    """query id -> split name, by a seeded hash order: deterministic, independent of row order."""
    if not splits:
        return {q: "test" for q in query_ids}
    order = sorted(query_ids, key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    assigned, start = {}, 0
    for name, share in splits.items():
        count = round(len(order) * share)
        assigned.update({q: name for q in order[start : start + count]})
        start += count
    assigned.update({q: "train" for q in order[start:]})
    return assigned


def write_beir(examples: list, out: Path, seed: int, splits: dict, run: Optional[RunDir] = None) -> list:
    documents: dict = {}  # _id -> text, for chunks the rows name
    queries, qrels = [], []
    for e in examples:
        positive_id = e.positive_id or text_id(e.positive)
        documents[positive_id] = e.positive
        if e.negative:
            documents[e.negative_id or text_id(e.negative)] = e.negative
        queries.append({"_id": e.query_id, "text": e.query, "metadata": {"instruction": e.instruction}})
        qrels.append((e.query_id, positive_id))
    split_of = assign([q["_id"] for q in queries], splits, seed)
    index = corpus_index(run) if run is not None else None
    corpus_path = out / "corpus.jsonl"
    with open(corpus_path, "w", encoding="utf-8") as f:
        named = dict(documents)
        if index is not None:
            for chunk in index.chunks():
                if named.get(chunk.id, chunk.text) != chunk.text:
                    # The corpus changed since the run: its chunk is not what the query was written about,
                    # and qrels would pair them. The rows' own chunks make the corpus instead.
                    f.seek(0)
                    f.truncate()
                    documents = named
                    break
                documents.pop(chunk.id, None)
                f.write(json.dumps({"_id": chunk.id, "title": "", "text": chunk.text}, ensure_ascii=False) + "\n")
        for ident, text in documents.items():
            f.write(json.dumps({"_id": ident, "title": "", "text": text}, ensure_ascii=False) + "\n")
    queries_path = out / "queries.jsonl"
    with open(queries_path, "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    (out / "qrels").mkdir()
    written = [corpus_path, queries_path]
    for name in sorted(set(split_of.values())):
        path = out / "qrels" / f"{name}.tsv"
        with open(path, "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for query_id, corpus_id in qrels:
                if split_of[query_id] == name:
                    f.write(f"{query_id}\t{corpus_id}\t1\n")
        written.append(path)
    return written


def corpus_index(run: RunDir):
    """The chunk index of the corpus the run drew from, if its saved config names one that can still be read."""
    from synthkit.core.paths import corpus_root
    from synthkit.corpus.domain import index_of, is_corpus_domain

    task = run.saved("task") or {}
    for name, spec in (task.get("domains") or {}).items():
        if is_corpus_domain(spec) and spec.get("corpus"):
            try:
                return index_of(name, spec, corpus_root(run.saved("cache_dir")))
            except UserError:
                return None  # moved or changed since the run: the rows' chunks only
    return None
