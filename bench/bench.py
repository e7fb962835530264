"""synthkit as a user runs it (its defaults: checks, dedup, response cache and dataset card on) beside the stripped
path (all four off), through both clients, against the raw openai SDK on the same work: one run, on a loopback
OpenAI-compatible server with a fixed latency. Prints markdown tables.

    python bench/bench.py                                   # the README's tables
    python bench/bench.py --rows 300 --latency-ms 0 --skip-rss --skip-startup   # quicker
    python bench/bench.py --repeat 3                        # each figure the best of 3 (a busy machine)

Measured: rows/s and wall of the generation itself (synthkit reports it in its summary, excluding interpreter start
and imports but including its client's first-request setup; the reference times its own loop after one warm-up
request), x ideal (ideal = rows x latency / concurrency), the process's wall (start to exit: imports, the card) and
peak RSS (wait4). Every synthkit run gets a new cache dir with no answer in it (its answers are asked), holding what
a machine's first run leaves for the next (the language model, unpacked). Then start-up: the wall of a 10-row run
with the defaults (and of the machine's first), of `--cfg job` and a dry run, and the time from process start to the
first request at the server. The machine's load average is printed before and after: the host is shared.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "openai_server.py"
REFERENCE = Path(__file__).with_name("openai_reference.py")
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-bench"}
STRIPPED = ("checks=false", "dedup=false", "cache=off", "card=false")
# name -> overrides after the server's; the first of each latency's table is the reference
CONFIGS = {
    "synthkit defaults, http client": ("llm=vllm", "llm.model=openai/bench-model"),
    "synthkit stripped, http client": ("llm=vllm", "llm.model=openai/bench-model", *STRIPPED),
    "synthkit defaults, litellm client": ("llm=vllm", "llm.model=openai/bench-model", "llm.client=litellm"),
    "synthkit stripped, litellm client": ("llm=vllm", "llm.model=openai/bench-model", "llm.client=litellm", *STRIPPED),
    "synthkit defaults, llm=openai": ("llm=openai",),  # the default config, the stub standing in for OpenAI
}


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


def warm_cache(workdir: Path) -> Path:
    """A cache dir holding what a machine's first run leaves there for the next (the language model, unpacked)."""
    warm = workdir / "warm-cache"
    code = "import sys; from pathlib import Path; from synthkit.spec.langid_model import load; load(Path(sys.argv[1]))"
    run([sys.executable, "-c", code, str(warm)])
    return warm


def fresh_cache(workdir: Path, name: str) -> Path:
    """A cache dir of its own (no answer in it), with the unpacked language model of the machine's earlier runs."""
    cache = workdir / f"{name}-cache"
    shutil.copytree(workdir / "warm-cache" / "langid", cache / "langid", copy_function=os.link)
    return cache


def synthkit(server: Server, rows: int, concurrency: int, workdir: Path, *overrides: str) -> dict:
    out = workdir / f"run-{time.monotonic_ns()}"
    stdout, wall, rss = run(
        [
            sys.executable,
            "-m",
            "synthkit",
            *overrides,
            f"llm.api_base={server.base_url}",
            f"num_rows={rows}",
            f"concurrency={concurrency}",
            f"cache_dir={fresh_cache(workdir, out.name)}",
            "progress_every_s=0",
            f"output_dir={out}",
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


def best(results: list) -> dict:
    """The run with the shortest generation: on a shared machine, the one least disturbed."""
    return min(results, key=lambda r: r["wall"])


def throughput(args, workdir: Path) -> None:
    n, c = args.rows, args.concurrency
    print("| latency | client | rows/s | wall (s) | x ideal | process (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for latency in args.latency_ms:
        server = Server(latency)
        measured: dict = {}
        try:
            for _ in range(args.repeat):  # interleaved: a busy spell weighs on every config alike
                measured.setdefault("openai SDK (reference)", []).append(reference(server, n, c))
                for name, overrides in CONFIGS.items():
                    if name in args.only or not args.only:
                        measured.setdefault(name, []).append(synthkit(server, n, c, workdir, *overrides))
        finally:
            server.stop()
        results = {name: best(runs) for name, runs in measured.items()}
        ideal = n * latency / 1000 / c
        for name, r in results.items():
            ratio = f"{r['wall'] / ideal:.3f}" if ideal else "-"
            print(
                f"| {latency:g} ms | {name} | {r['rows_s']:.0f} | {r['wall']:.2f} | {ratio} | {r['process']:.2f} "
                f"| {r['rss']:.0f} |"
            )
        if not latency:
            sdk = results["openai SDK (reference)"]["rows_s"]
            for client in ("http client", "litellm client"):
                defaults, stripped = (
                    results.get(f"synthkit defaults, {client}"),
                    results.get(f"synthkit stripped, {client}"),
                )
                if defaults and stripped:
                    ratios.append(
                        f"| 0 ms, {client} | {defaults['rows_s'] / sdk:.2f}x | {defaults['rows_s'] / stripped['rows_s']:.0%} |"
                    )
    if ratios:
        print("\n| synthkit defaults | / openai SDK (rows/s) | / stripped (rows/s) |\n|---|---|---|")
        print("\n".join(ratios))


def startup(workdir: Path, repeat: int) -> dict:
    def best_of(*args: str, env: dict | None = None) -> float:
        return min(run([sys.executable, "-m", "synthkit", *args], env=env)[1] for _ in range(max(3, repeat)))

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
                f"cache_dir={fresh_cache(workdir, name)}",  # the language model's copy, as the machine has it
                f"output_dir={workdir / name}",
                *extra,
            ]
        )
        return json.loads(log.read_text().splitlines()[before])["t"] - started

    counter = iter(range(1_000_000))

    def ten_rows(*extra: str, cold: bool = False) -> str:
        """A 10-row run with the defaults: cache (a new dir: no answer in it), checks, dedup and card; `cold`: the
        machine's first run (it unpacks the language model into the cache dir)."""
        n = next(counter)
        cache = workdir / f"cold{n}-cache" if cold else fresh_cache(workdir, f"ten{n}")
        return [f"llm.api_base={server.base_url}", "num_rows=10", f"output_dir={workdir / f'ten{n}'}",
                f"cache_dir={cache}", *extra]  # fmt: skip

    try:
        results = {
            "10 rows, defaults, http client (llm=vllm)": min(
                run([sys.executable, "-m", "synthkit", "llm=vllm", "llm.model=openai/m", *ten_rows()])[1]
                for _ in range(max(3, repeat))
            ),
            "10 rows, defaults, llm=openai": min(
                run([sys.executable, "-m", "synthkit", "llm=openai", *ten_rows()])[1] for _ in range(max(3, repeat))
            ),
            "10 rows, defaults, litellm client": min(
                run(
                    [
                        sys.executable,
                        "-m",
                        "synthkit",
                        "llm=vllm",
                        "llm.model=openai/m",
                        "llm.client=litellm",
                        *ten_rows(),
                    ]
                )[1]
                for _ in range(2)
            ),
            "10 rows, defaults, http client, the machine's first run": min(
                run([sys.executable, "-m", "synthkit", "llm=vllm", "llm.model=openai/m", *ten_rows(cold=True)])[1]
                for _ in range(2)
            ),
            "10 rows, card=false, http client": min(
                run([sys.executable, "-m", "synthkit", "llm=vllm", "llm.model=openai/m", *ten_rows("card=false")])[1]
                for _ in range(max(3, repeat))
            ),
            "first request (litellm client)": first_request("first", "llm.client=litellm"),
            "first request (http client)": first_request("first2"),
        }
    finally:
        server.stop()
    return {
        **results,
        "--cfg job": best_of("llm=mock", "--cfg", "job"),
        "dry_run": best_of("llm=openai", "dry_run=true"),
        "import litellm": import_litellm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[500, 0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each figure; the best is shown")
    parser.add_argument("--only", nargs="*", default=[], choices=list(CONFIGS), help="synthkit configs to run")
    parser.add_argument("--rss-rows", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.rows} rows, concurrency {args.concurrency}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"load average (1/5/15 min) at the start: {load}\n")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        warm_cache(workdir)
        throughput(args, workdir)
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
        if not args.skip_startup:
            print("\n| start-up (process wall, best of 3) | seconds |\n|---|---|")
            for name, seconds in startup(workdir, args.repeat).items():
                print(f"| {name} | {seconds:.2f} |")
    print(f"\nload average (1/5/15 min) at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
