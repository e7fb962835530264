"""The Redis store at scale, on loopback. First, whole runs: N processes (each a synthkit run of
its own, store=redis://, an rpm limit far above the load, a $ cap far above the spend, a cold cache)
against the loopback model server, total rows/s against one process alone. Then the store's
overhead per request, with N processes using one server at once: synthkit's own caller with an
instant model, on the store (cache, rpm + tpm limits, a $ cap) against the same caller with none of
them; and each store operation alone. Prints markdown tables.

    python bench/store_bench.py                 # starts redis-server and the loopback server on free ports
    python bench/store_bench.py --url redis://127.0.0.1:6379/0 --processes 8 --ops 2000 --rows 300
"""

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = """
import asyncio, json, sys, time
from synthkit.calls.caller import ModelCaller
from synthkit.calls.cost import Price
from synthkit.calls.stores.limits import EndpointLimits
from synthkit.calls.providers.base import Completion
from synthkit.calls.stores.redis_store import RedisStore
from synthkit.calls.stores.shared import RedisStores, SharedBudget
from synthkit.core.config import LLMConfig
from synthkit.core.ledger import Ledger
url, ops, index = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = RedisStore(url)
print("ready", flush=True)
sys.stdin.readline()
ANSWER = Completion('{"query": "' + "x" * 400 + '"}', 300, 120)
MESSAGES = [{"role": "user", "content": "y" * 1200}]


class Instant:
    model_name, placeholder = "bench", False

    async def complete(self, messages, schema, schema_name, max_tokens=None):
        return ANSWER


async def requests_per_second(caller, tag):
    started = time.perf_counter()
    for i in range(ops):
        await caller.call(MESSAGES, {}, "bench", f"{tag}-{index}-{i}")
    return (time.perf_counter() - started) / ops


def ledger():
    ledger = Ledger()
    ledger.stage_started("bench", ops, 0)
    return ledger


async def main():
    llm = LLMConfig(provider="bench", model="bench", max_retries=0)  # plain, as the engine hands it over
    price = Price(1e-6, 2e-6)
    bare = ModelCaller(Instant(), llm, RedisStores(None, EndpointLimits(None, None), SharedBudget(None, None, None)), ledger())
    # Everything on: the cache, an rpm and a tpm limit far above the load, a $ cap far above the spend.
    limits = store.rate_limits("bench-endpoint", rpm=10**12, tpm=10**15)
    budget = SharedBudget(price, 10.0**9, store.budget("bench-ledger", 10.0**9))
    stored = ModelCaller(Instant(), llm, RedisStores(store.cache, limits, budget, store), ledger())
    await store.cache.get("warm-up")
    await stored.call(MESSAGES, {}, "bench", f"warm-up-{index}")
    per_call = {"bare": await requests_per_second(bare, "bare"), "stored": await requests_per_second(stored, "miss")}
    per_call["replayed"] = await requests_per_second(stored, "miss")  # the same rows again: cache hits
    # Each operation alone, as a request pays it (the call above sends some of them at once).
    budget_alone = store.budget("bench-ledger", 10.0**9)
    times = {"rate slots (rpm + tpm)": [], "reserve": [], "settle": [], "cache get": [], "cache put": []}
    clock = time.perf_counter
    for i in range(ops):
        key = f"bench-{index}-{i}"
        t0 = clock(); await limits.acquire(100)
        t1 = clock(); token = await budget_alone.reserve(0.001)
        t2 = clock(); await budget_alone.settle(token, 0.001)
        t3 = clock(); await store.cache.get(key)
        t4 = clock(); await store.cache.put(key, ANSWER)
        t5 = clock()
        for name, a, b in (("rate slots (rpm + tpm)", t0, t1), ("reserve", t1, t2), ("settle", t2, t3),
                           ("cache get", t3, t4), ("cache put", t4, t5)):
            times[name].append(b - a)
    await store.aclose()
    return {"per_call": per_call, "times": times}

print(json.dumps(asyncio.run(main())))
"""


RUN_WORKER = """
import os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import synthkit
from synthkit.engine import run  # noqa: F401 - imported before the clock starts
url, base, rows, index, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print("ready", flush=True)
sys.stdin.readline()
started = time.perf_counter()
synthkit.generate(
    "llm=vllm", f"llm.api_base={base}", "llm.model=openai/test-model", f"store={url}", f"num_rows={rows}",
    f"seed={index}", f"output_dir={out}", "progress_every_s=0", "llm.rpm=1000000", "max_cost_usd=1000",
    "llm.input_cost_per_mtok=1", "llm.output_cost_per_mtok=1", card=False,
)
print(time.perf_counter() - started, flush=True)
"""


def run_together(commands: list) -> tuple[list, float]:
    """Start one process per command, wait until each has imported and connected ("ready"), then let them
    all go at once; returns each one's stdout and the wall time from the go."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", *command], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate()[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    return outputs, time.perf_counter() - started


def run_rows(url: str, base: str, processes: int, rows: int, directory: str, tag: str) -> float:
    """Total rows/s of `processes` runs of `rows` rows at once, each with fresh seeds (no cache hits)."""
    commands = [
        [RUN_WORKER, url, base, str(rows), str(1000 * processes + i), f"{directory}/{tag}-{processes}-{i}"]
        for i in range(processes)
    ]
    return processes * rows / run_together(commands)[1]


def start_model_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "openai_server.py")], stdout=subprocess.PIPE, text=True
    )
    ready = proc.stdout.readline().split()
    assert ready[:1] == ["READY"], ready
    return proc, f"http://127.0.0.1:{ready[1]}/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(directory: str) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise SystemExit("no redis-server: apt-get install -y redis-server, or pass --url")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.01)
    raise SystemExit("redis-server did not start")


def server_time_per_call(url: str) -> dict:
    """What the server itself spends per command: the rest of a latency is the client and the network."""
    import os

    import redis

    client = redis.Redis.from_url(url, password=os.environ.get("SYNTHKIT_REDIS_PASSWORD"))
    stats = client.info("commandstats")
    client.close()
    names = {"cmdstat_evalsha": "scripts", "cmdstat_get": "get", "cmdstat_set": "set"}
    return {label: stats[name]["usec_per_call"] for name, label in names.items() if name in stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing server (default: start redis-server on a free port)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--ops", type=int, default=2000, help="operations of each kind per process")
    parser.add_argument("--rows", type=int, default=300, help="rows per run process (0: skip the runs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server, url = (None, args.url) if args.url else start_server(directory)
        try:
            if args.rows:
                model, base = start_model_server()
                try:
                    alone = run_rows(url, base, 1, args.rows, directory, "runs")
                    together = run_rows(url, base, args.processes, args.rows, directory, "runs")
                finally:
                    model.terminate()
                    model.wait()
                print(f"runs on one store ({url}, loopback model server, {args.rows} rows each, concurrency 16):\n")
                print("| processes | rows/s in all | vs one |")
                print("|---:|---:|---:|")
                print(f"| 1 | {alone:.0f} | 1.0x |")
                print(f"| {args.processes} | {together:.0f} | {together / alone:.1f}x |\n")
            outputs, wall = run_together([[WORKER, url, str(args.ops), str(i)] for i in range(args.processes)])
            results = [json.loads(out) for out in outputs]
            server_side = server_time_per_call(url)
        finally:
            if server is not None:
                server.terminate()
                server.wait()
    print(f"{args.processes} processes x {args.ops} requests and operations against {url}, {wall:.2f} s in all\n")
    per_call = {name: statistics.fmean(r["per_call"][name] for r in results) * 1e3 for name in results[0]["per_call"]}
    print("| a request through synthkit's caller (instant model) | ms per request |")
    print("|---|---:|")
    print(f"| no store (no cache, limits or cap) | {per_call['bare']:.3f} |")
    print(f"| on the store: cache miss, rpm + tpm slots, reserve, settle + cache put | {per_call['stored']:.3f} |")
    print(f"| on the store: replayed from its cache | {per_call['replayed']:.3f} |")
    print(f"\n**store overhead per request: {per_call['stored'] - per_call['bare']:.3f} ms** (a new answer)\n")
    print("| operation alone | mean ms | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name in results[0]["times"]:
        times = sorted(t * 1e3 for r in results for t in r["times"][name])
        p99 = times[int(len(times) * 0.99)]
        print(
            f"| {name} | {statistics.fmean(times):.3f} | {statistics.median(times):.3f} | {p99:.3f} | {times[-1]:.3f} |"
        )
    print(
        "\nserver CPU per call (INFO commandstats): "
        + ", ".join(f"{name} {usec:.1f} us" for name, usec in server_side.items())
    )


if __name__ == "__main__":
    main()
