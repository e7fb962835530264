"""Every packaged task against a model you serve (README: Local models), the README's route verbatim: how many rows
each writes and rejects, why, and every written row to read (whether a row is a usable training example is a
person's call; the summary counts only what the checks decided).

    llama-server -m SmolLM2-135M-Instruct-Q4_1.gguf --alias smollm2 --host 127.0.0.1 --port 8080 \\
        --jinja -np 2 -t 2 -c 8192
    python bench/local_model_pass.py --api-base http://127.0.0.1:8080/v1 --model openai/smollm2 \\
        --corpus docs/ --rows 8 --per-task-s 300 --out /tmp/local-pass

Writes OUT/<task>/ (the runs), OUT/rows.md (the written rows) and prints the table."""

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

TASKS = [
    "bitext_retrieval",
    "monolingual_triplet",
    "short_text_matching",
    "long_text_matching",
    "text_classification",
    "text_retrieval",
    "instructed_retrieval",
    "reasoning_retrieval",
    "persona_retrieval",
    "grounded_retrieval",
]
ON_A_CORPUS = {"reasoning_retrieval", "persona_retrieval", "grounded_retrieval"}
LONG = {"long_text_matching", "text_retrieval"}  # documents of 300-500 words: the README's max_tokens for them
META = {"row", "cell", "seed", "task_type", "model_name", "attributes", "attempts", "usage", "steps", "refills"}


def run_task(task: str, args) -> dict:
    out = args.out / task
    command = [
        sys.executable,
        "-m",
        "synthkit",
        "llm=vllm",
        f"llm.api_base={args.api_base}",
        f"llm.model={args.model}",
        f"concurrency={args.concurrency}",
        f"llm.max_tokens={1500 if task in LONG else 512}",
        "llm.timeout_s=300",
        f"task={task}",
        f"num_rows={args.rows}",
        f"output_dir={out}",
        *([f"corpus={args.corpus}"] if task in ON_A_CORPUS else []),
    ]
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=args.per_task_s)
        ended, last = process.returncode, (stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:  # stopped as a user stops it: SIGTERM, the run keeps what it wrote
        process.terminate()
        process.communicate(timeout=60)
        ended, last = "time", f"stopped after {args.per_task_s} s"
    rows = _read(out / "data.jsonl")
    rejects = _read(out / "rejects.jsonl")
    return {
        "task": task,
        "written": [r for r in rows if r.get("task_type") == task],
        "rejects": rejects,
        "seconds": time.monotonic() - start,
        "exit": ended,
        "last": last,
    }


def _read(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--model", required=True, help="as synthkit takes it: openai/<name>")
    parser.add_argument("--corpus", type=Path, help="a folder of documents, for the tasks drawn from one")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--per-task-s", type=int, default=300)
    parser.add_argument("--tasks", nargs="*", default=TASKS)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for task in args.tasks:
        if task in ON_A_CORPUS and args.corpus is None:
            print(f"{task}: skipped (it draws from a corpus: give --corpus)", file=sys.stderr)
            continue
        results.append(run_task(task, args))
        print(f"{task}: done in {results[-1]['seconds']:.0f} s", file=sys.stderr)
    lines = []
    for result in results:
        lines.append(f"## {result['task']}: {len(result['written'])} written, {len(result['rejects'])} rejected\n")
        lines += [
            "- " + json.dumps({k: v for k, v in r.items() if k not in META}, ensure_ascii=False)
            for r in result["written"]
        ]
        lines.append("")
    (args.out / "rows.md").write_text("\n".join(lines), encoding="utf-8")
    print("| task | written | rejected | rejected by | wall s | ended |")
    print("|---|---|---|---|---|---|")
    for result in results:
        checks = collections.Counter(r.get("check") or "error" for r in result["rejects"])
        top = ", ".join(f"{name} {n}" for name, n in checks.most_common(4))
        ended = "done" if result["exit"] == 0 else result["last"][:70]
        written, rejected = len(result["written"]), len(result["rejects"])
        print(f"| {result['task']} | {written} | {rejected} | {top} | {result['seconds']:.0f} | {ended} |")
    print(f"\nthe written rows, to read: {args.out / 'rows.md'}")


if __name__ == "__main__":
    main()
