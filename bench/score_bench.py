"""Benchmark of synthkit.quality: scoring N synthetic rows and mining K hard negatives, judged by a
static model2vec model built on the spot (a word-level vocabulary of some thousand words, dim 256),
loaded by path through load_embedder. Prints rows/s, wall time and peak RSS.

    python bench/score_bench.py [--rows 100000] [--types 6] [--k 7]

--types spreads the rows over that many task types (the quadratic checks run per type); --types 1
is the worst case, every row in one type. Each stage runs in a fresh process so its peak RSS is its own."""

import argparse
import json
import multiprocessing as mp
import queue
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOCAB, DIM = 5000, 256


def build_model(path: Path) -> None:
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, **{f"w{i}": i + 1 for i in range(VOCAB)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.random.default_rng(0).standard_normal((len(vocab), DIM)).astype(np.float32)
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(path)


def write_rows(path: Path, n: int, types: int) -> None:
    rng = np.random.default_rng(1)
    # Zipf-like word draws: documents of one "topic" share words, as generated rows do.
    words = np.minimum(rng.zipf(1.3, size=(n, 60)), VOCAB) - 1
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            w = [f"w{(x + 37 * (i % 50)) % VOCAB}" for x in words[i]]
            row = {"row": i // types, "cell": f"t{i % types}/English", "task_type": f"t{i % types}",
                   "user_query": " ".join(w[:8]), "positive_document": " ".join(w[4:40]),
                   "hard_negative_document": " ".join(w[20:60]), "attributes": {"language": "English"}}  # fmt: skip
            f.write(json.dumps(row) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def score_stage(model: str, data: str, types: int, out) -> None:
    """What `synthkit score` does once its config is read (synthkit.results.scoring.score): the rows scored, the
    summary made, scores.jsonl and scores_summary.json written."""
    from synthkit.core.config import ScoreConfig
    from synthkit.quality.embedder import load_embedder
    from synthkit.quality.score import records, score_rows, summary
    from synthkit.results.rundir import RunDir

    exports = {f"t{t}": {"query": "user_query", "positive": "positive_document", "negative": "hard_negative_document"}
               for t in range(types)}  # fmt: skip
    embedder = load_embedder("model2vec", model)
    run, settings = RunDir(Path(data).parent), ScoreConfig()
    start, cpu = time.perf_counter(), time.process_time()
    scores = score_rows(run.raw_rows(), exports, embedder, settings)
    result = summary(scores, settings)
    run.write_scores(records(scores), result)
    out.put({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "rss": peak_rss_mb(),
             "rows": result["rows"]})  # fmt: skip


def mine_stage(model: str, data: str, k: int, out) -> None:
    from synthkit.quality.embedder import load_embedder
    from synthkit.quality.mining import mine_hard_negatives
    from synthkit.results.export import Example

    with open(data, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    examples = [Example(r["task_type"], "", r["user_query"], r["positive_document"], r["hard_negative_document"], "")
                for r in rows]  # fmt: skip
    del rows
    embedder = load_embedder("model2vec", model)
    start, cpu = time.perf_counter(), time.process_time()
    mined = mine_hard_negatives(embedder, examples, k=k)
    out.put({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "rss": peak_rss_mb(),
             "rows": len(mined),
             "short": sum(len(m.negatives) < k for m in mined)})  # fmt: skip


def run(stage, *args) -> dict:
    out = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=stage, args=(*args, out))
    process.start()
    while True:  # a stage that fails puts nothing: its traceback is above, not a wait for ever
        try:
            result = out.get(timeout=1)
            break
        except queue.Empty:
            if not process.is_alive():
                raise SystemExit(f"{stage.__name__} failed (exit code {process.exitcode})") from None
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--types", type=int, default=6)
    parser.add_argument("--k", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, data = Path(tmp) / "model", Path(tmp) / "data.jsonl"
        build_model(model)
        write_rows(data, args.rows, args.types)
        scored = run(score_stage, str(model), str(data), args.types)
        mined = run(mine_stage, str(model), str(data), args.k)
    print(f"{args.rows} rows over {args.types} task types, static model vocab {VOCAB} dim {DIM}")
    # CPU seconds (all threads) beside wall time: on a shared machine wall time measures the neighbours too.
    print(f"{'stage':<24}{'wall s':>8}{'CPU s':>8}{'rows/s':>9}{'peak RSS MB':>13}")
    for name, r in (("score (scores.jsonl)", scored), (f"mine K={args.k}", mined)):
        print(f"{name:<24}{r['seconds']:>8.1f}{r['cpu']:>8.1f}{r['rows'] / r['seconds']:>9.0f}{r['rss']:>13.0f}")
    if mined["short"]:
        print(f"  {mined['short']} queries got fewer than {args.k} negatives")


if __name__ == "__main__":
    sys.exit(main())
