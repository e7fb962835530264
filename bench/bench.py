"""synthkit against the raw openai SDK on the same work, in one run, on a loopback
OpenAI-compatible server with a fixed latency. Prints a markdown table.

    python bench/bench.py                      # the README's table
    python bench/bench.py --rows 300 --latency-ms 0 --skip-rss   # quicker

Measured: rows/s and wall of the generation itself (synthkit reports it in its summary, excluding
interpreter start and imports but including its client's first-request setup; the reference times
its own loop after one warm-up request), x ideal (ideal = rows x latency /
concurrency), peak RSS of each process (wait4), startup times of the CLI, and the time from
process start to the first request at the server.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "openai_server.py"
REFERENCE = Path(__file__).with_name("openai_reference.py")
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


class Server:
    def __init__(self, latency_ms: float, log: Path | None = None):
        args = [sys.executable, str(SERVER), "--latency-ms", str(latency_ms)] + (["--log", str(log)] if log else [])
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.base_url = f"http://127.0.0.1:{self.process.stdout.readline().split()[1]}/v1"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def run(args: list, env: dict | None = None) -> tuple[str, float, float]:
    """stdout, wall seconds and peak RSS (MB) of a child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, text=True, env=env or ENV, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        stdout = out.read()
    if status != 0:
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{proc.stderr.read()}")
    return stdout, wall, usage.ru_maxrss / 1024


def synthkit(server: Server, rows: int, concurrency: int, workdir: Path, *extra: str) -> dict:
    out = workdir / f"run-{time.monotonic_ns()}"
    stdout, wall, rss = run(
        [
            sys.executable,
            "-m",
            "synthkit",
            "llm=vllm",
            f"llm.api_base={server.base_url}",
            "llm.model=openai/bench-model",
            f"num_rows={rows}",
            f"concurrency={concurrency}",
            "cache=off",
            "progress_every_s=0",
            f"output_dir={out}",
            *extra,
        ]
    )
    seconds = float(re.search(r"time: ([\d.]+) s", stdout).group(1))
    written = int(re.search(r"(\d+) rows written", stdout).group(1))
    assert written == rows, stdout
    return {"wall": seconds, "rows_s": rows / seconds, "rss": rss, "process": wall}


def reference(server: Server, rows: int, concurrency: int) -> dict:
    stdout, wall, rss = run([sys.executable, str(REFERENCE), server.base_url, str(rows), str(concurrency)])
    seconds = json.loads(stdout)["seconds"]
    return {"wall": seconds, "rows_s": rows / seconds, "rss": rss, "process": wall}


def startup(workdir: Path) -> dict:
    def best(*args: str) -> float:
        return min(run([sys.executable, "-m", "synthkit", *args])[1] for _ in range(3))

    import_litellm = min(run([sys.executable, "-c", "import litellm"])[1] for _ in range(2))
    log = workdir / "first.jsonl"
    server = Server(0, log)

    def first_request(name: str, *extra: str) -> float:
        """Seconds from process start to the server receiving the first request."""
        before = len(log.read_text().splitlines()) if log.exists() else 0
        started = time.time()
        run(
            [
                sys.executable,
                "-m",
                "synthkit",
                "llm=vllm",
                f"llm.api_base={server.base_url}",
                "llm.model=openai/m",
                "num_rows=1",
                "cache=off",
                f"output_dir={workdir / name}",
                *extra,
            ]
        )
        return json.loads(log.read_text().splitlines()[before])["t"] - started

    try:
        first_litellm = first_request("first", "llm.client=litellm")
        first_http = first_request("first2")
    finally:
        server.stop()
    return {
        "--cfg job": best("llm=mock", "--cfg", "job"),
        "dry_run": best("llm=openai", "dry_run=true"),
        "import litellm": import_litellm,
        "first request (litellm client)": first_litellm,
        "first request (http client)": first_http,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[500, 0])
    parser.add_argument("--rss-rows", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    n, c = args.rows, args.concurrency
    print(f"{n} rows, concurrency {c}, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("| latency | client | rows/s | wall (s) | x ideal | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for latency in args.latency_ms:
            server = Server(latency)
            try:
                results = {
                    "openai SDK (reference)": reference(server, n, c),
                    "synthkit, http client": synthkit(server, n, c, workdir),
                    "synthkit, litellm client": synthkit(server, n, c, workdir, "llm.client=litellm"),
                }
            finally:
                server.stop()
            ideal = n * latency / 1000 / c
            for name, r in results.items():
                ratio = f"{r['wall'] / ideal:.3f}" if ideal else "-"
                print(f"| {latency:g} ms | {name} | {r['rows_s']:.0f} | {r['wall']:.2f} | {ratio} | {r['rss']:.0f} |")
            if not latency:
                sdk = results["openai SDK (reference)"]["rows_s"]
                print(
                    f"|  | synthkit http / openai SDK | {results['synthkit, http client']['rows_s'] / sdk:.2f}x | | | |"
                )
        if not args.skip_rss:
            print("\n| llm=mock rows | rows/s | peak RSS (MB) |\n|---|---|---|")
            for rows in args.rss_rows:
                stdout, _, rss = run(
                    [
                        sys.executable,
                        "-m",
                        "synthkit",
                        "llm=mock",
                        f"num_rows={rows}",
                        "concurrency=50",
                        "progress_every_s=0",
                        f"output_dir={workdir / f'mock{rows}'}",
                    ]
                )
                seconds = float(re.search(r"time: ([\d.]+) s", stdout).group(1))
                print(f"| {rows} | {rows / seconds:.0f} | {rss:.0f} |")
        print("\n| startup | seconds |\n|---|---|")
        for name, seconds in startup(workdir).items():
            print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
