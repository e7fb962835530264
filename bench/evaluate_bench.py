"""Speed of `synthkit evaluate` on this machine: training and evaluation timed apart, at 1,000 and 10,000 rows, for a
static base (model2vec-style: a 20,000-word vocabulary, 256 dimensions) and a small transformer (BERT, hidden 64,
2 layers, 128 tokens, a WordPiece tokenizer trained here), both built on the spot. Rows have synthkit-like lengths:
a 12-word query, a 100-word positive and a 100-word negative, made of pseudo-words.

    python bench/evaluate_bench.py [--sizes 1000 10000] [--models static transformer] [--threads 1] [--out FILE]

- training: the run's rows as export gives them, decontaminated, one dataset per task type, then 1 epoch of
  SentenceTransformerTrainer (batch 32, MNRL with the hard negative, no duplicates in a batch);
- evaluation: a BEIR set of N queries and N documents (one relevant each) through the IR evaluator, model loading
  included: cold (the corpus encoded and cached) and warm (the base's corpus embeddings read back from the cache,
  as every later job of a sweep reads them);
- decontamination of N rows against N evaluation queries.

Times are the best of --repeats (training at 10,000 rows: one run); the first run in a process also pays one-time
imports (transformers' Trainer, accelerate). On a small machine shared with other work keep --threads 1: two torch
threads on two busy cores wait on each other."""

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tiny transformer of the tests

import numpy as np  # noqa: E402
from synthkit.results.evaluation.training_sets import build_training_sets  # noqa: E402

from synthkit.core.compose import compose  # noqa: E402
from synthkit.core.record import Row  # noqa: E402
from synthkit.results.evaluation.decontamination import decontaminate  # noqa: E402
from synthkit.results.evaluation.examples import run_examples  # noqa: E402
from synthkit.results.evaluation.finetune import fine_tune, learning_rate_for  # noqa: E402
from synthkit.results.evaluation.models import load_model  # noqa: E402
from synthkit.results.evaluation.retrieval import corpus_cache_file, per_query_scores  # noqa: E402
from synthkit.results.evaluation.sets import load_beir  # noqa: E402
from synthkit.results.rundir import RunDir  # noqa: E402

INSTRUCTION = "Given a question, retrieve passages that answer it"


def pseudo_words(count: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def write_run(folder: Path, n: int, vocab: list, seed: int = 0) -> RunDir:
    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choices(vocab, k=k))  # noqa: E731
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            outputs = {"user_query": text(12), "positive_document": text(100), "hard_negative_document": text(100)}
            f.write(
                Row(i, "text_retrieval", outputs=outputs, attributes={"task": INSTRUCTION}, model_name="m").to_line()
            )
    return RunDir(folder)


def write_beir(folder: Path, n: int, vocab: list, seed: int = 1) -> Path:
    rng = random.Random(seed)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(rng.choices(vocab, k=100))}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for i in range(n):
            query = {"_id": f"q{i}", "text": " ".join(rng.choices(vocab, k=12)), "metadata": {"instruction": "Find it"}}
            f.write(json.dumps(query) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(n))
    )
    return folder


def static_model(path: Path, vocab: list, dim: int = 256) -> str:
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokens = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(vocab)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=tokens, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.random.default_rng(0).normal(size=(len(tokens), dim)).astype(np.float32)
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(str(path))
    return str(path)


def best(fn, repeats: int) -> tuple:
    """(the result of the last call, the best wall time of `repeats` calls)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def measure(kind: str, base: str, n: int, vocab: list, work: Path, settings, repeats: int) -> dict:
    run = write_run(work / f"run-{n}", n, vocab)
    eval_set = load_beir(str(write_beir(work / f"beir-{n}", n, vocab)))
    examples = run_examples(run).examples
    queries = {("beir", q): t for q, t in eval_set.queries.items()}
    (kept, _), decontaminate_s = best(lambda: decontaminate(examples, queries, settings.decontamination), 1)
    sets = build_training_sets(kept, settings)

    def train():
        model = load_model(base, "cpu")
        return fine_tune(model, sets, settings, 0, learning_rate_for(model, settings))

    _, train_s = best(train, repeats if n <= 1000 else 1)
    cache = corpus_cache_file(work / "cache", f"{kind}-{n}", eval_set.digest)

    def cold():
        cache.unlink(missing_ok=True)
        return per_query_scores(load_model(base, "cpu"), eval_set, None, 64, cache)

    _, cold_s = best(cold, repeats)
    _, warm_s = best(lambda: per_query_scores(load_model(base, "cpu"), eval_set, None, 64, cache), repeats)
    texts = len(eval_set.queries) + len(eval_set.corpus)
    return {
        "model": kind, "rows": n, "decontaminate_s": round(decontaminate_s, 2),
        "train_s": round(train_s, 1), "train_rows_per_s": round(n / train_s),
        "eval_texts": texts, "eval_cold_s": round(cold_s, 1), "eval_cold_texts_per_s": round(texts / cold_s),
        "eval_warm_s": round(warm_s, 1), "load_avg_1m": round(os.getloadavg()[0], 1),
    }  # fmt: skip


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--models", nargs="+", default=["static", "transformer"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default, the cores)")
    parser.add_argument("--repeats", type=int, default=2, help="of evaluations, and of training up to 1,000 rows")
    parser.add_argument("--work", default="/tmp/synthkit-evaluate-bench")
    parser.add_argument("--out", help="write the results as JSON here too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    vocab = pseudo_words(20000)
    settings = compose("evaluate.batch_size=32", "evaluate.epochs=1").evaluate
    bases = {
        "static": lambda: static_model(work / "static", vocab),
        "transformer": lambda: __import__("evaluation_worlds").tiny_transformer_model(
            work / "tiny-bert", [" ".join(random.Random(i).choices(vocab, k=100)) for i in range(3000)]
        ),
    }
    print(f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}", flush=True)
    results = []
    for kind in args.models:
        base = bases[kind]()
        for n in args.sizes:
            row = measure(kind, base, n, vocab, work, settings, args.repeats)
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
