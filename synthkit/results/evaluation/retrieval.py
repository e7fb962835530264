"""Per-query nDCG@10, Recall@100 and MRR@10 of a model on an evaluation set, through sentence-transformers' own
InformationRetrievalEvaluator (its ranking, its tie order), and the cache of the base model's corpus embeddings:
computed once per (model, set) and reused by every later evaluation on this machine, a sweep's jobs included.

The evaluator reports only averages; a bootstrap over queries needs each query's value. A subclass takes them from
the very result lists the evaluator ranks with, and the averages it reports are checked against their means."""

import functools
import os
from pathlib import Path
from typing import Optional

import numpy as np

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def per_query_scores(model, eval_set, instruction: Optional[str], batch_size: int, cache: Optional[Path]) -> dict:
    """{metric: array over the set's queries} for METRICS. `instruction`: for queries that carry none of their own.
    `cache`: the file of this model's corpus embeddings for this set (read when there, written when not); None
    encodes the corpus."""
    import torch

    evaluator = _per_query_evaluator()(
        queries=eval_set.query_texts(instruction),
        corpus=eval_set.corpus,
        relevant_docs=eval_set.qrels,
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[100],
        map_at_k=[100],
        batch_size=batch_size,
        name="",
        write_csv=False,
        show_progress_bar=False,
        # Not the model's own saved prompts: the instruction is in the query text already, and documents are bare,
        # as in training.
        query_prompt="",
        corpus_prompt="",
    )
    corpus_embeddings = None
    if cache is not None:
        if cache.is_file():
            corpus_embeddings = torch.from_numpy(np.load(cache)).to(model.device)
        else:
            corpus_embeddings = evaluator.embed_inputs(model, evaluator.corpus, encode_fn_name="document", prompt="")
            _save_atomically(cache, corpus_embeddings.float().cpu().numpy())
    averages = evaluator(model, corpus_embeddings=corpus_embeddings)
    prefix = f"{model.similarity_fn_name}_"
    for metric, values in evaluator.per_query.items():
        reported = averages[prefix + metric]
        if not np.isclose(values.mean(), reported, atol=1e-6):
            raise AssertionError(f"{metric}: per-query mean {values.mean()} differs from the evaluator's {reported}")
    return dict(evaluator.per_query)


def _save_atomically(path: Path, array) -> None:
    """Jobs of a sweep may encode the same corpus at once: each writes a file of its own, then renames it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.npy")
    np.save(partial, array)
    os.replace(partial, path)


def corpus_cache_file(cache_dir: Path, model_key: str, set_digest: str) -> Path:
    return cache_dir / "evaluate" / f"corpus-{model_key}-{set_digest}.npy"


@functools.cache
def _per_query_evaluator():
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    class PerQueryEvaluator(InformationRetrievalEvaluator):
        """The evaluator, keeping the per-query values behind its averages (6.2 reports only the averages)."""

        def compute_metrics(self, queries_result_list):
            per_query = {metric: [] for metric in METRICS}
            for qid, hits in zip(self.queries_ids, queries_result_list):
                relevant = self.relevant_docs[qid]
                ranked = [h["corpus_id"] in relevant for h in sorted(hits, key=lambda h: (-h["score"], h["corpus_id"]))]
                ideal = sum(1 / np.log2(i + 2) for i in range(min(len(relevant), 10)))
                per_query["ndcg@10"].append(sum(r / np.log2(i + 2) for i, r in enumerate(ranked[:10])) / ideal)
                per_query["recall@100"].append(sum(ranked[:100]) / len(relevant))
                per_query["mrr@10"].append(next((1 / (i + 1) for i, r in enumerate(ranked[:10]) if r), 0.0))
            self.per_query = {metric: np.array(values, dtype=float) for metric, values in per_query.items()}
            return super().compute_metrics(queries_result_list)

    return PerQueryEvaluator
