"""Whole runs with llm.batch=true against tests/batch_server.py: rows, re-asks and failed requests in
later rounds, resume after kill -9 with no batch created twice, cancel, the batch price, and the same
rows as online."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

from synthkit.errors import UserError

POLL = "llm.batch_poll_s=0.01"


def batch_llm(server) -> list:
    return [*server_llm(server), "llm.batch=true", POLL]


def rows_of(path) -> list:
    return sorted(
        (r["row"], r["attributes"], r["S1"], r["S2"], r["S3"], r["attempts"]) for r in read_jsonl(path / "data.jsonl")
    )


def journal_events(out) -> list:
    return [json.loads(line)["event"] for line in (out / "batches.jsonl").read_text().splitlines()]


def test_whole_run_goes_out_as_one_batch(batch_server, make, tmp_path):
    server = batch_server(polls=2)
    run = make(*batch_llm(server), "num_rows=30")
    out = tmp_path / "run"
    assert len(read_jsonl(out / "data.jsonl")) == 30 and run.result.ledger.totals().requests == 30
    stats = server.stats()
    assert (stats["files_uploaded"], stats["batches_created"]) == (1, 1)  # every row in flight: one round
    assert journal_events(out).count("collected") == 1
    # The same config into a new dir: every answer is in the response cache, nothing is sent.
    again = make(*batch_llm(server), "num_rows=30", name="again")
    assert rows_of(tmp_path / "again") == rows_of(out)
    assert server.stats()["batches_created"] == 1 and again.result.ledger.totals().cached == 30


def test_online_and_batch_give_the_same_rows(batch_server, openai_server, make, tmp_path):
    make(*server_llm(openai_server()), "num_rows=12", "seed=5", "cache=false", name="online")
    make(*batch_llm(batch_server(polls=1)), "num_rows=12", "seed=5", "cache=false", name="batch")
    online, batch = rows_of(tmp_path / "online"), rows_of(tmp_path / "batch")
    assert len(online) == 12 and online == batch


def test_failed_expired_and_unparsable_answers_go_to_later_rounds(batch_server, make, tmp_path):
    server = batch_server(polls=1, fail_rate=0.3, expire_rate=0.15, malformed_rate=0.3, seed=2)
    make(*batch_llm(server), "num_rows=30", "max_attempts=6", "llm.batch_max_requests=12")
    out = tmp_path / "run"
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 30 and any(r["attempts"] > 1 for r in rows)  # re-asked after unparsable answers
    entries = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    failed = {c for e in entries if e["event"] == "collected" for c in e["failed"]}
    planned = [c for e in entries if e["event"] == "planned" for c in e["custom_ids"]]
    assert failed and all(planned.count(c) >= 2 for c in failed)  # every unanswered request was asked again
    assert all(len(e["custom_ids"]) <= 12 for e in entries if e["event"] == "planned")
    assert server.stats()["batches_created"] >= 4  # 30 rows in rounds of at most 12, then the resubmissions


def test_rejected_batch_is_one_line_with_the_providers_reason(batch_server, tmp_path):
    server = batch_server(reject="The model test-model is not available for batch.")
    out = tmp_path / "run"
    result = run_synthkit(*batch_llm(server), "num_rows=5", f"output_dir={out}", cwd=tmp_path)
    assert_one_line_error(result, "rejected batch batch_", "not available for batch")
    assert "not available for batch" in json.loads((out / "synthkit-status.json").read_text())["error"]


def test_providers_without_a_batch_api_here_are_refused(tmp_path):
    result = run_synthkit("llm=anthropic", "llm.batch=true", f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, "llm.batch=true works with OpenAI", "llm=anthropic")
    assert not (tmp_path / "run").exists()


def test_dry_run_shows_online_and_batch_estimates(tmp_path):
    result = run_synthkit("dry_run=true", "num_rows=1000", "llm.model=gpt-4o-mini", cwd=tmp_path)
    online = next(line for line in result.stdout.splitlines() if line.strip().startswith("cost "))
    batch = next(line for line in result.stdout.splitlines() if line.strip().startswith("batch cost"))
    dollars = lambda line: float(line.split("$")[1].split()[0].replace(",", ""))  # noqa: E731
    assert dollars(batch) == pytest.approx(dollars(online) / 2, rel=0.01)
    assert "litellm's price map" in batch


def test_budget_holds_at_the_batch_price(batch_server, make, tmp_path):
    server = batch_server(polls=1)
    price = ["llm.input_cost_per_mtok=1000", "llm.output_cost_per_mtok=1000", "llm.max_tokens=256"]
    with pytest.raises(UserError, match="max_cost_usd=1 reached"):
        make(*batch_llm(server), *price, "num_rows=40", "max_cost_usd=1.0", "llm.batch_max_requests=4")
    out = tmp_path / "run"
    spent = json.loads((out / "synthkit-spent.json").read_text())["spent"]
    rows = read_jsonl(out / "data.jsonl")
    tokens = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in rows)
    # Spent once stopped, passed by one request at most: the last round's last request reserved what was left.
    assert 0 < len(rows) < 40 and 1.0 <= spent <= 1.0 + max(r["usage"]["cost_usd"] for r in rows)
    assert spent == pytest.approx(tokens * 500 / 1e6)  # $1000 per 1M tokens online, half in batch
    assert sum(r["usage"]["cost_usd"] for r in rows) == pytest.approx(spent)


def _args(server, out) -> list:
    """20 rows all in flight at once, 8 per batch: one round of 3 batches."""
    return [*batch_llm(server), "num_rows=20", "concurrency=20", "llm.batch_max_requests=8", f"output_dir={out}"]


def _start(server, out, cwd, *extra) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "SYNTHKIT_RUN_ID"}
    env["SYNTHKIT_CACHE_DIR"] = str(cwd / "synthkit-cache")
    args = [*_args(server, out), "card=false", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "synthkit", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _kill_when(process, out, created: int) -> None:
    """kill -9 the run once the journal says `created` batches exist (they are being polled)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        journal = out / "batches.jsonl"
        if journal.exists() and journal.read_text().count('"event": "created"') >= created:
            break
        time.sleep(0.01)
    assert process.poll() is None, process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _set_config(server, **config) -> None:
    request = urllib.request.Request(server.url + "/_config", data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def test_kill_9_mid_poll_then_rerun_creates_no_batch_twice(batch_server, tmp_path):
    server = batch_server(polls=40)
    out = tmp_path / "run"
    _kill_when(_start(server, out, tmp_path), out, created=3)  # 20 rows, 8 per batch: 3 batches, polled
    status = run_synthkit("batches", str(out), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("in_progress") + status.stdout.count("finalizing") == 3, status.stdout
    result = run_synthkit(*_args(server, out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = server.stats()
    assert stats["batches_created"] == 3 and set(stats["created_by_local_id"].values()) == {1}
    rows = read_jsonl(out / "data.jsonl")
    assert sorted(r["row"] for r in rows) == list(range(20))


def test_cancel_then_rerun_collects_what_was_done_and_asks_the_rest(batch_server, tmp_path):
    server = batch_server(polls=100_000)
    out = tmp_path / "run"
    _kill_when(_start(server, out, tmp_path), out, created=3)
    cancelled = run_synthkit("batches", str(out), "--cancel", cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled 3 batches" in cancelled.stdout and server.stats()["cancels"] == 3
    _set_config(server, polls=1)
    result = run_synthkit(*_args(server, out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "data.jsonl")) == 20
    # The cancelled batches answered every other request; only the rest were asked again.
    assert server.stats()["batches_created"] == 3 + 2  # 10 requests left, 8 per batch
    shown = run_synthkit("batches", str(out), cwd=tmp_path)
    assert shown.stdout.count("collected") == 5, shown.stdout
