"""The same attribute grid made three ways, against a loopback server with a fixed latency:
an in-process grid (one run, one worker pool), a Hydra multirun (one job per cell, in turn), and a
multirun on the joblib launcher. Prints the wall time of each whole command.

    python bench/grid_vs_multirun.py [--rows-per-cell 20] [--latency-ms 200] [--concurrency 16]
"""

import argparse
import subprocess
import sys
import tempfile
import time

from bench import ENV, ROOT, Server  # bench/bench.py, beside this script

UNITS, DIFFICULTIES = "sentence,phrase,passage", "elementary school,high school,college"


def timed(args: list) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "synthkit", *args],
        cwd=ROOT,
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-cell", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    server = Server(args.latency_ms)
    common = [
        "llm=vllm",
        f"llm.api_base={server.base_url}",
        "llm.model=openai/bench",
        "cache=off",
        f"num_rows={args.rows_per_cell}",
        f"concurrency={args.concurrency}",
        "progress_every_s=0",
    ]
    sweep = [f"task.unit={UNITS}", f"task.difficulty={DIFFICULTIES}"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {
                "in-process grid (1 run)": timed([*common, "grid=[unit,difficulty]", f"output_dir={tmp}/grid"]),
                "multirun, basic launcher (9 jobs in turn)": timed(["-m", *common, *sweep, f"output_dir={tmp}/m"]),
                "multirun, joblib n_jobs=2": timed(
                    ["-m", "+launcher=joblib", "hydra.launcher.n_jobs=2", *common, *sweep, f"output_dir={tmp}/j"]
                ),
            }
    finally:
        server.stop()
    rows = 9 * args.rows_per_cell
    print(f"9 cells x {args.rows_per_cell} rows, latency {args.latency_ms:g} ms, concurrency {args.concurrency}\n")
    print("| way | wall (s) | rows/s | vs grid |\n|---|---|---|---|")
    grid = results["in-process grid (1 run)"]
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {rows / seconds:.0f} | {seconds / grid:.1f}x |")


if __name__ == "__main__":
    main()
