"""Runs sharing one Redis store (store=redis://...) against a real redis-server and the loopback
model server: plain concurrent runs and joblib jobs under one rpm, one budget and one cache, each
process with a local cache dir of its own (so whatever they share, they share through the store);
the store restarted mid-run; and the refusals at start (a store that cannot be reached or refuses
the login, a password in the URL, a network cache_dir without a store)."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm
from redis_server import RedisServer, free_port

PRICED = ["llm.input_cost_per_mtok=1000", "llm.output_cost_per_mtok=1000", "llm.max_tokens=64"]  # ~$0.1 a row


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


def start_run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """`synthkit ...` as a process of its own, with a local cache dir of its own."""
    cwd.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SYNTHKIT_RUN_ID"}
    full_env |= {"SYNTHKIT_CACHE_DIR": str(cwd / "synthkit-cache"), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "synthkit", *args, "card=false", "progress_every_s=0"],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out, err


def spent_on_store(url: str, ledger_dir: Path) -> float:
    from synthkit.calls.stores.redis_store import RedisStore

    async def read() -> float:
        store = RedisStore(url)
        try:
            return await store.budget(str(ledger_dir.resolve()), None).spent()
        finally:
            await store.aclose()

    return asyncio.run(read())


def assert_spaced(times: list, interval: float) -> None:
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= interval - 0.03, gaps


def test_concurrent_runs_share_one_rpm_and_one_cache(openai_server, redis_url, tmp_path):
    """Two runs at once, on one store at rpm=240: one request every 0.25 s together. A third, later,
    with yet another local cache dir, repeats the first's config: every answer comes from the store."""
    server = openai_server()
    # checks=false: the first answer would load the language-ID model, stalling its process past its slots.
    common = [*server_llm(server), f"store={redis_url}", "llm.rpm=240", "num_rows=5", "checks=false"]
    runs = [
        start_run(*common, f"task.unit={unit}", f"output_dir={tmp_path / unit}", cwd=tmp_path / f"machine-{unit}")
        for unit in ("sentence", "phrase")
    ]
    for run in runs:
        finish(run)
    times = sorted(r["t"] for r in server.requests())
    assert len(times) == 10
    assert_spaced(times, 0.25)
    assert not (tmp_path / "machine-sentence" / "synthkit-cache").exists()  # nothing kept on the machine

    replay = run_synthkit(*common, "task.unit=sentence", f"output_dir={tmp_path / 'again'}", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert server.stats()["requests"] == 10  # zero new requests
    again, first = read_jsonl(tmp_path / "again" / "data.jsonl"), read_jsonl(tmp_path / "sentence" / "data.jsonl")
    assert len(again) == 5 and all(r.pop("usage")["cached"] for r in again)
    assert sorted(again, key=lambda r: r["row"]) == sorted(
        [{k: v for k, v in r.items() if k != "usage"} for r in first], key=lambda r: r["row"]
    )


def test_joblib_jobs_share_one_budget_and_one_rpm(openai_server, redis_url, tmp_path):
    server = openai_server(latency_ms=20)
    sweep = tmp_path / "capped"
    result = run_synthkit(
        "-m",
        "+launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *server_llm(server),
        *PRICED,
        f"store={redis_url}",
        "llm.rpm=600",
        "task.unit=sentence,phrase",
        "max_cost_usd=0.6",
        "num_rows=40",
        "concurrency=1",
        f"output_dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "max_cost_usd=0.6 reached" in result.stdout, result.stderr
    rows = read_jsonl(sweep / "data.jsonl")
    costs = [r["usage"]["cost_usd"] for r in rows]
    # One cap for both jobs: spend <= cap + one request per job, and every payment is on the store's ledger.
    assert 0.6 - 2 * max(costs) <= sum(costs) <= 0.6 + 2 * max(costs), costs
    # Both jobs stopped at the cap (a job that starts late may find it already spent); with a ledger each,
    # they would have spent 0.6 each.
    assert "2 sweep jobs did not finish cleanly" in result.stderr
    assert spent_on_store(redis_url, sweep) == pytest.approx(sum(costs))
    assert not (sweep / "synthkit-spent.json").exists()
    assert server.stats()["requests"] == len(rows)
    assert_spaced(sorted(r["t"] for r in server.requests()), 0.1)


def test_store_restarted_mid_run_loses_and_repeats_nothing(openai_server, tmp_path):
    """The store stops after a few requests and comes back a second later: the run waits (one warning),
    then finishes with every row once, each request paid once on the store's ledger."""
    redis = RedisServer(tmp_path / "redis-data")
    server = openai_server()
    try:
        out = tmp_path / "run"
        run = start_run(
            *server_llm(server),
            *PRICED,
            f"store={redis.url}",
            "llm.rpm=1200",
            "num_rows=24",
            "concurrency=4",
            f"output_dir={out}",
            cwd=tmp_path / "machine",
        )
        deadline = time.monotonic() + 30
        while server.stats()["requests"] < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        redis.stop()
        time.sleep(1.0)
        during = server.stats()["requests"]
        redis.start()
        _, err = finish(run)
        rows = read_jsonl(out / "data.jsonl")
        assert during < 24  # the outage was mid-run
        assert sorted(r["row"] for r in rows) == list(range(24))
        assert server.stats()["requests"] == 24
        warnings = [line for line in err.splitlines() if "store" in line]
        assert len(warnings) == 1 and warnings[0].startswith("synthkit: warning: the store at redis://"), err
        assert spent_on_store(redis.url, out) == pytest.approx(sum(r["usage"]["cost_usd"] for r in rows))
    finally:
        redis.stop()


def test_unreachable_store_is_one_line_before_any_request(openai_server, tmp_path):
    server = openai_server()
    out = tmp_path / "run"
    result = run_synthkit(
        *server_llm(server), f"store=redis://127.0.0.1:{free_port()}/0", f"output_dir={out}", cwd=tmp_path
    )
    assert_one_line_error(result, "cannot reach the store at redis://127.0.0.1:")
    assert server.stats()["requests"] == 0 and not out.exists()
    # A sweep refuses it once, before it launches a job (not once per job).
    swept = run_synthkit(
        "-m", *server_llm(server), f"store=redis://127.0.0.1:{free_port()}/0", "task.unit=sentence,phrase",
        f"output_dir={out}", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(swept, "cannot reach the store at redis://127.0.0.1:")
    assert server.stats()["requests"] == 0 and not out.exists()


def test_refused_login_and_password_in_url_are_one_line(openai_server, tmp_path, monkeypatch):
    redis = RedisServer(tmp_path / "redis-data", password="s3cret-store-pw")
    server = openai_server()
    try:
        out = tmp_path / "run"
        common = [*server_llm(server), "num_rows=2", f"output_dir={out}"]
        monkeypatch.delenv("SYNTHKIT_REDIS_PASSWORD", raising=False)
        refused = run_synthkit(*common, f"store={redis.url}", cwd=tmp_path)
        assert_one_line_error(refused, "refused the login", "set SYNTHKIT_REDIS_PASSWORD")
        in_url = run_synthkit(*common, f"store=redis://:s3cret-store-pw@127.0.0.1:{redis.port}/0", cwd=tmp_path)
        line = assert_one_line_error(in_url, "must not contain a password")
        assert "s3cret-store-pw" not in line
        assert server.stats()["requests"] == 0 and not out.exists()
        # From a variable the user names: it works, and it is never written with the run.
        ok = run_synthkit(
            *common,
            f"store={redis.url}",
            "store_password_env=MY_REDIS_PASSWORD",
            cwd=tmp_path,
            env={"MY_REDIS_PASSWORD": "s3cret-store-pw"},
        )
        assert ok.returncode == 0, ok.stderr
        written = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
        assert "s3cret-store-pw" not in written and len(read_jsonl(out / "data.jsonl")) == 2
    finally:
        redis.stop()


def test_network_cache_dir_is_refused_without_a_store(openai_server, redis_url, tmp_path, monkeypatch):
    """A cache_dir on NFS (a mount table saying so) is refused when the run keeps files there, and
    accepted once the store holds that state instead."""
    from synthkit.calls.stores import fs_check

    shared = tmp_path / "nfs"
    table = tmp_path / "mountinfo"
    table.write_text(f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 0:40 / {shared} rw - nfs4 fs1:/export rw\n")
    monkeypatch.setattr(fs_check, "MOUNTINFO", str(table))
    server = openai_server()
    common = [*server_llm(server), "num_rows=2", f"cache_dir={shared / 'cache'}"]
    refused = run_synthkit(*common, f"output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert_one_line_error(refused, "is on a network filesystem (nfs4)", "store=redis://host:port/db")
    assert not (shared / "cache").exists() and not (tmp_path / "a").exists()
    limits_only = run_synthkit(*common, "cache=false", "llm.rpm=6000", f"output_dir={tmp_path / 'b'}", cwd=tmp_path)
    assert_one_line_error(limits_only, "network filesystem")
    uncached = run_synthkit(*common, "cache=false", f"output_dir={tmp_path / 'c'}", cwd=tmp_path)
    assert uncached.returncode == 0, uncached.stderr  # nothing kept in cache_dir: nothing to refuse
    shared_store = run_synthkit(*common, f"store={redis_url}", f"output_dir={tmp_path / 'd'}", cwd=tmp_path)
    assert shared_store.returncode == 0, shared_store.stderr


def test_store_gone_for_good_stops_the_run_keeping_its_rows(openai_server, tmp_path):
    """A store that stays away longer than the run waits (store_outage_s=1) ends the run as one line,
    exit 1, with every answer already paid for written as a row."""
    import threading

    redis = RedisServer(tmp_path / "redis-data")
    server = openai_server()
    out = tmp_path / "run"

    def stop_after_some_requests():
        deadline = time.monotonic() + 30
        while server.stats()["requests"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        redis.stop()

    threading.Thread(target=stop_after_some_requests, daemon=True).start()
    try:
        result = run_synthkit(
            *server_llm(server),
            f"store={redis.url}",
            "store_outage_s=1",
            "llm.rpm=600",
            "num_rows=40",
            f"output_dir={out}",
            cwd=tmp_path,
        )
    finally:
        redis.stop()
    assert result.returncode == 1 and "has been unreachable for 1 s" in result.stderr.splitlines()[-1], result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert 3 <= len(rows) < 40 and len(rows) == server.stats()["requests"]


def test_a_store_out_of_memory_stops_the_run_as_one_line_keeping_paid_answers(openai_server, batch_server, tmp_path):
    """A Redis at its maxmemory refuses writes (OOM): waiting would not help, so the run stops at once with a
    line naming the fix, and every answer the model gave is written as a row. Online and in batch mode."""
    import redis as redis_client

    redis = RedisServer(tmp_path / "redis-data")
    client = redis_client.Redis.from_url(redis.url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    client.close()
    server, batches = openai_server(), batch_server()
    try:
        for name, llm in (
            ("online", server_llm(server)),
            ("batch", [*server_llm(batches), "llm.batch=true", "llm.batch_poll_s=0.01"]),
        ):
            out = tmp_path / name
            result = run_synthkit(*llm, f"store={redis.url}", "num_rows=20", f"output_dir={out}", cwd=tmp_path)
            assert result.returncode == 1, result.stderr
            last = result.stderr.strip().splitlines()[-1]
            assert "refused an operation (command not allowed when used memory" in last, result.stderr
            assert "free memory on the server or raise its maxmemory" in last
        assert len(read_jsonl(tmp_path / "online" / "data.jsonl")) == server.stats()["requests"] >= 1
    finally:
        redis.stop()
