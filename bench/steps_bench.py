"""What a step costs: N rows of a task of two steps against 2N rows of a one-step task with the same prompts, through
the loopback server at a fixed latency, at one concurrency. A row's steps are asked one after the other, the rows at
once, so a two-step row should cost two one-step rows of wall time and no more (the ratio is at most 1.0).

    python bench/steps_bench.py [--rows 200] [--latency-ms 500] [--concurrency 50]
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import ENV, ROOT, Server  # bench/bench.py, beside this script

ONE_STEP = """\
name: one_step
topic: null
domains: {topic: [history, physics, cooking, law, music]}
output: {question: string}
prompt: 'Write a question about {{ topic }}. Answer with JSON: {"question": "..."}'
"""
TWO_STEPS = """\
name: two_steps
topic: null
domains: {topic: [history, physics, cooking, law, music]}
steps:
  - name: ask
    prompt: 'Write a question about {{ topic }}. Answer with JSON: {"question": "..."}'
    output: {question: string}
  - name: answer
    prompt: 'Answer "{{ ask.question }}" about {{ topic }}. Answer with JSON: {"answer": "..."}'
    output: {answer: string}
"""


def generation_seconds(args: list) -> float:
    """The run's own generation time, as its summary reports it (interpreter start and imports excluded)."""
    out = subprocess.run(
        [sys.executable, "-m", "synthkit", *args], cwd=ROOT, env=ENV, check=True, capture_output=True, text=True
    ).stdout
    return float(re.search(r"time: ([0-9.]+) s", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    server = Server(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            conf = Path(tmp) / "conf" / "task"
            conf.mkdir(parents=True)
            (conf / "one_step.yaml").write_text(ONE_STEP, encoding="utf-8")
            (conf / "two_steps.yaml").write_text(TWO_STEPS, encoding="utf-8")
            common = [
                "--config-dir", str(conf.parent), "llm=vllm", f"llm.api_base={server.base_url}", "llm.model=openai/bench",
                "cache=off", "checks=false", "dedup=false", "card=false", f"concurrency={args.concurrency}",
                "progress_every_s=0",
            ]  # fmt: skip
            one = generation_seconds([*common, "task=one_step", f"num_rows={2 * args.rows}", f"output_dir={tmp}/one"])
            two = generation_seconds([*common, "task=two_steps", f"num_rows={args.rows}", f"output_dir={tmp}/two"])
    finally:
        server.stop()
    ideal = 2 * args.rows * args.latency_ms / 1000 / args.concurrency
    print(f"latency {args.latency_ms:g} ms, concurrency {args.concurrency}, ideal {ideal:.2f} s for either")
    print(f"{2 * args.rows} rows of one step: {one:.2f} s ({one / ideal:.3f} x ideal)")
    print(f"{args.rows} rows of two steps: {two:.2f} s ({two / ideal:.3f} x ideal)")
    print(f"two-step rows / twice as many one-step rows: {two / one:.3f} (at most 1.0: a step costs a row's request)")


if __name__ == "__main__":
    main()
