"""Calls that survive real providers: limits, retries, the circuit breaker, the response cache,
resume after kill -9, cost caps, dry runs and progress, against the loopback server."""

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import defaultdict

from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

FAST_RETRIES = ["llm.backoff_s=0.02", "llm.backoff_max_s=0.2"]


def _prompt(request: dict) -> str:
    return request["body"]["messages"][0]["content"]


def test_rpm_spaces_requests(openai_server, tmp_path):
    server = openai_server()
    result = run_synthkit(
        *server_llm(server),
        "llm.rpm=600",
        "num_rows=8",
        "concurrency=8",
        f"output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    times = sorted(r["t"] for r in server.requests())
    assert len(times) == 8
    # 600 per minute: one request every 0.1 s, even with 8 rows ready at once.
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.1 - 0.02, gaps


def test_tpm_limits_tokens_per_minute(openai_server, tmp_path):
    server = openai_server()
    tpm = 24_000  # 400 tokens a second; each request here uses 100-200
    result = run_synthkit(
        *server_llm(server),
        f"llm.tpm={tpm}",
        "llm.max_tokens=64",
        "num_rows=6",
        "concurrency=6",
        f"output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    requests = sorted(server.requests(), key=lambda r: r["t"])
    rows = read_jsonl(tmp_path / "run" / "data.jsonl")
    used = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in rows)
    span = requests[-1]["t"] - requests[0]["t"]
    # All but the last request's tokens were spent before the last one started.
    assert span >= (used * 5 / 6) / (tpm / 60) * 0.9, (span, used)


def test_transient_faults_are_retried_until_every_row_is_valid(openai_server, client, tmp_path):
    # 20% rate limits, server errors, dropped connections and timeouts; 20% malformed answers.
    faults = ["status:429:0.05", "status:500", "drop", "sleep:3"] + ["malformed"] * 4
    server = openai_server(plan={"faults": {"rate": 0.4, "steps": faults, "seed": 3}})
    out = tmp_path / "run"
    result = run_synthkit(
        *server_llm(server, client=client),
        *FAST_RETRIES,
        "llm.max_retries=10",
        "llm.timeout_s=0.5",
        "max_attempts=6",
        "num_rows=40",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert sorted(r["row"] for r in rows) == list(range(40)) and read_jsonl(out / "rejects.jsonl") == []
    steps = server.stats()["by_step"]
    assert steps["status"] >= 3 and steps["drop"] >= 1 and steps["sleep"] >= 1 and steps["malformed"] >= 5, steps
    assert f"requests: {server.stats()['requests']}" in result.stdout  # litellm adds no retries of its own


def test_retry_after_is_honoured(openai_server, tmp_path):
    server = openai_server(plan={"default": ["status:429:1", "valid"]})
    result = run_synthkit(
        *server_llm(server, client="http"), *FAST_RETRIES, "num_rows=3", f"output_dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    asks = defaultdict(list)
    for r in server.requests():
        asks[_prompt(r)].append(r["t"])
    assert len(asks) == 3
    for times in asks.values():
        assert len(times) == 2 and times[1] - times[0] >= 0.95  # not the 0.02 s backoff


def test_circuit_breaker_ends_the_run_when_the_endpoint_is_down(openai_server, tmp_path):
    server = openai_server()
    out = tmp_path / "run"
    first = run_synthkit(*server_llm(server, client="http"), "num_rows=5", f"output_dir={out}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    server.stop()
    started = time.monotonic()
    result = run_synthkit(
        *server_llm(server, client="http"),
        *FAST_RETRIES,
        "llm.max_retries=2",
        "llm.circuit_breaker=3",
        "num_rows=50",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert time.monotonic() - started < 60
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("synthkit: error:")]
    # Down from this run's first request: it ends at once (issue 23.8); an endpoint that answered and then fails
    # trips the breaker (test_server_errors_without_end_trip_the_breaker).
    assert len(errors) == 1 and f"cannot connect to llm.api_base={server.base_url}" in errors[0], result.stderr
    assert len(read_jsonl(out / "data.jsonl")) == 5  # rows so far are kept
    assert "5 already there" in result.stdout


def test_server_errors_without_end_trip_the_breaker(openai_server, tmp_path):
    server = openai_server(plan={"default": ["status:500"]})
    result = run_synthkit(
        *server_llm(server, client="http"),
        *FAST_RETRIES,
        "llm.max_retries=1",
        "llm.circuit_breaker=2",
        "concurrency=1",
        "num_rows=20",
        f"output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "the endpoint kept failing" in result.stderr
    assert server.stats()["requests"] == 4  # 2 rows x (1 try + 1 retry), then the breaker opens


def test_cache_replays_identical_runs_and_extends(openai_server, tmp_path):
    server = openai_server()

    def run(name: str, rows: int) -> list[dict]:
        result = run_synthkit(*server_llm(server), f"num_rows={rows}", f"output_dir={tmp_path / name}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return sorted(read_jsonl(tmp_path / name / "data.jsonl"), key=lambda r: r["row"])

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "usage"} for r in rows]

    first = run("a", 10)
    assert server.stats()["requests"] == 10
    again = run("b", 10)
    assert server.stats()["requests"] == 10  # every answer replayed
    assert strip(again) == strip(first) and all(r["usage"]["cached"] == 1 for r in again)
    more = run("c", 15)
    assert server.stats()["requests"] == 15  # only the 5 new rows asked
    assert strip(more[:10]) == strip(first)
    run_synthkit(*server_llm(server), "num_rows=10", "cache=off", f"output_dir={tmp_path / 'd'}", cwd=tmp_path)
    assert server.stats()["requests"] == 25


def test_a_cache_shared_by_parallel_processes(openai_server, tmp_path):
    server = openai_server(latency_ms=50)
    args = [*server_llm(server), "num_rows=30", "card=false"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "synthkit", *args, f"output_dir={tmp_path / str(i)}"],
            cwd=tmp_path,
            env={**os.environ, "SYNTHKIT_CACHE_DIR": str(tmp_path / "cache")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)  # two opening a new cache at once is the race; a third adds start-up, not a case
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    rows = [sorted(read_jsonl(tmp_path / str(i) / "data.jsonl"), key=lambda r: r["row"]) for i in range(2)]
    assert all(len(r) == 30 for r in rows)
    again = run_synthkit(
        *server_llm(server),
        "num_rows=30",
        f"output_dir={tmp_path / 'again'}",
        cwd=tmp_path,
        env={"SYNTHKIT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert again.returncode == 0 and "30 answers replayed from the cache" in again.stdout


def test_resume_after_kill_9(openai_server, tmp_path):
    server = openai_server(latency_ms=80)
    out = tmp_path / "run"
    args = [*server_llm(server), "num_rows=40", "concurrency=4", "cache=off", f"output_dir={out}"]
    for wait_for in (3, 15):  # kill it twice, at different points
        proc = subprocess.Popen(
            [sys.executable, "-m", "synthkit", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while len(read_jsonl(out / "data.jsonl")) < wait_for and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = read_jsonl(out / "data.jsonl")
    assert 15 <= len(before) < 40
    with open(out / "data.jsonl", "a") as f:
        f.write('{"row": 39, "seed": 0, "task_type": "bitext_retr')  # a line torn by a crash mid-write
    asked = server.stats()["requests"]
    result = run_synthkit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (out / "data.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]  # every line is whole JSON
    assert sorted(r["row"] for r in rows) == list(range(40))
    assert server.stats()["requests"] - asked == 40 - len(before)  # only the missing rows
    assert f"{len(before)} already there" in result.stdout


def test_resuming_with_another_config_is_refused(tmp_path):
    out = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=2", f"output_dir={out}", cwd=tmp_path).returncode == 0
    result = run_synthkit("llm=mock", "num_rows=2", "task.unit=phrase", f"output_dir={out}", cwd=tmp_path)
    assert_one_line_error(result, "task.unit changed", "new output_dir")
    assert len(read_jsonl(out / "data.jsonl")) == 2


def test_cost_per_row_from_the_price_map_and_unpriced_models(openai_server, tmp_path):
    server = openai_server()
    result = run_synthkit(
        *server_llm(server, model="openai/gpt-4o-mini"), "num_rows=2", f"output_dir={tmp_path / 'a'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    for r in read_jsonl(tmp_path / "a" / "data.jsonl"):
        u = r["usage"]  # gpt-4o-mini in litellm's map: $0.15 / $0.60 per million tokens
        assert abs(u["cost_usd"] - (u["prompt_tokens"] * 0.15 + u["completion_tokens"] * 0.6) / 1e6) < 1e-12
    unpriced = run_synthkit(*server_llm(server), "num_rows=1", f"output_dir={tmp_path / 'b'}", cwd=tmp_path)
    assert unpriced.returncode == 0 and "cost: unknown (litellm has no price for openai/test-model)" in unpriced.stdout
    capped = run_synthkit(*server_llm(server), "max_cost_usd=1", f"output_dir={tmp_path / 'c'}", cwd=tmp_path)
    assert_one_line_error(capped, "max_cost_usd needs a price", "llm.input_cost_per_mtok")


def test_dry_run_calls_no_model_and_imports_no_litellm(tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "synthkit", "llm=openai", "dry_run=true", "num_rows=500"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "500 rows of bitext_retrieval with gpt-4o-mini" in out and "no model is called" in out
    assert "unit             " in out and "prompt of row 0:" in out and '"required"' in out
    assert "prompt tokens      ~ " in out and "$0.15 in / $0.6 out per 1M tokens" in out
    assert "litellm" not in result.stderr  # -X importtime lists every module imported


def test_progress_lines_when_not_a_terminal(openai_server, tmp_path):
    server = openai_server(latency_ms=100)
    result = run_synthkit(
        *server_llm(server),
        "num_rows=6",
        "concurrency=1",
        "progress_every_s=0.2",
        f"output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " rows, " in line]
    assert len(lines) >= 2 and "/6 rows" in lines[0] and "rows/s, 0 rejected" in lines[0] and "tokens" in lines[0]


def test_progress_bar_on_a_terminal(tmp_path):
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthkit", "llm=mock", "num_rows=30", "card=false", f"output_dir={tmp_path / 'r'}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "30/30" in screen and "row/s" in screen and "0 rejected" in screen
