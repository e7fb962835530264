"""Provider batch APIs: the client, planner, journal and driver against tests/batch_server.py."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from batch_server import BatchServer

from synthkit.calls.batch.client import BatchClient, plan_batches, request_line
from synthkit.calls.batch.journal import BatchJournal
from synthkit.calls.batch.price import batch_price_of
from synthkit.calls.batch.rounds import batch_status, cancel_all, format_status, run_batches
from synthkit.calls.providers.openai_http import OpenAIHTTPProvider, chat_body
from synthkit.core.config import LLMConfig
from synthkit.errors import UserError

POLL_S = 0.02
SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "positive": {"type": "string"}},
    "required": ["query", "positive"],
    "additionalProperties": False,
}
LLM = LLMConfig(provider="test", model="openai/test-model", api_base="http://unused/v1", max_tokens=256)


def requests_for(n: int, prefix: str = "row") -> list[tuple[str, dict]]:
    return [
        (
            f"{prefix}-{i:04d}",
            chat_body(LLM, [{"role": "user", "content": f"Write a pair about topic {i}."}], SCHEMA, "pair", True),
        )
        for i in range(n)
    ]


def drive(server: BatchServer, out: Path, requests, **kwargs):
    """run_batches in this process; (unanswered ids, results by custom_id)."""
    results = {}

    async def main():
        client = BatchClient(server.base_url, "sk-test", name="the test provider")
        journal = BatchJournal(out / "batches.jsonl")
        try:
            return await run_batches(
                requests, client, journal, POLL_S, lambda r: results.setdefault(r.custom_id, r), **kwargs
            )
        finally:
            journal.close()
            await client.aclose()

    return asyncio.run(main()), results


def test_whole_set_answered_through_one_batch(batch_server, tmp_path):
    server = batch_server(polls=2)
    requests = requests_for(40)
    unanswered, results = drive(server, tmp_path, requests)
    assert unanswered == []
    assert sorted(results) == [c for c, _ in requests]
    for result in results.values():
        assert result.ok and result.error is None
        jsonschema.validate(json.loads(result.body["choices"][0]["message"]["content"]), SCHEMA)
    stats = server.stats()
    assert (stats["files_uploaded"], stats["batches_created"]) == (1, 1)
    assert stats["auth"] == ["Bearer sk-test"]
    # A second call with the same requests finds them all answered in the journal: nothing is sent.
    assert drive(server, tmp_path, requests) == ([], {})
    assert server.stats()["batches_created"] == 1


def test_batch_lines_carry_the_online_request_body(openai_server, tmp_path):
    server = openai_server()
    llm = LLMConfig(provider="test", model="openai/test-model", api_base=server.base_url, temperature=0.7)
    messages = [{"role": "user", "content": "Write a pair about rivers."}]

    async def ask():
        provider = OpenAIHTTPProvider(llm, None, structured=True)
        try:
            await provider.complete(messages, SCHEMA, "pair")
        finally:
            await provider.aclose()

    asyncio.run(ask())
    online = server.requests()[0]["body"]
    line = json.loads(request_line("row-1", chat_body(llm, messages, SCHEMA, "pair", True)))
    assert line == {"custom_id": "row-1", "method": "POST", "url": "/v1/chat/completions", "body": online}


def test_plan_batches_respects_both_limits():
    lines = [b"x" * n + b"\n" for n in (9, 9, 9, 29, 9, 9, 9, 9)]
    parts = plan_batches(lines, max_requests=3, max_bytes=30)
    assert [list(p) for p in parts] == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert plan_batches([], 3, 30) == []
    with pytest.raises(UserError, match="more than a batch file may hold"):
        plan_batches([b"y" * 31], max_requests=3, max_bytes=30)


def test_requests_split_under_the_providers_limits(batch_server, tmp_path):
    requests = requests_for(23)
    size = max(len(request_line(c, b)) for c, b in requests)
    server = batch_server(polls=1, max_requests=5, max_bytes=4 * size)
    unanswered, results = drive(server, tmp_path, requests, max_requests=5, max_bytes=4 * size)
    assert unanswered == [] and len(results) == 23 and all(r.ok for r in results.values())
    assert server.stats()["batches_created"] == 6  # 23 requests, at most 4 per file by size


def test_unsplit_batch_over_the_limit_is_one_line_user_error(batch_server, tmp_path):
    server = batch_server(polls=1, max_requests=5)
    with pytest.raises(UserError) as caught:
        drive(server, tmp_path, requests_for(8))
    message = str(caught.value)
    assert "the test provider rejected batch batch_" in message and "too_many_requests" in message
    assert "\n" not in message


def test_rejected_batch_names_the_providers_reason(batch_server, tmp_path):
    server = batch_server(reject="The model test-model is not available for batch.\nUse another model.")
    with pytest.raises(UserError) as caught:
        drive(server, tmp_path, requests_for(3))
    assert str(caught.value).endswith(
        "invalid_request: The model test-model is not available for batch. Use another model."
    )


def test_failures_and_expiry_come_back_for_resubmission(batch_server, tmp_path):
    server = batch_server(polls=1, fail_rate=0.25, expire_rate=0.2, seed=3)
    requests = requests_for(60)
    unanswered, results = drive(server, tmp_path, requests)
    errors = {r.custom_id: r.error for r in results.values() if not r.ok}
    assert sorted(unanswered) == sorted(errors) and 10 < len(unanswered) < 45
    assert {e.split(":")[0] for e in errors.values()} == {"batch_expired", "http_500"}
    assert len(results) == 60  # every request was reported, answered or not
    answered = {c for c, r in results.items() if r.ok}
    for _ in range(8):  # rounds: the caller resubmits what came back, as the engine will
        if not unanswered:
            break
        unanswered, more = drive(server, tmp_path, [r for r in requests if r[0] in unanswered])
        assert not answered & set(more)  # what was answered is never asked again
        answered |= {c for c, r in more.items() if r.ok}
    assert unanswered == [] and len(answered) == 60
    rows = asyncio.run(batch_status(BatchJournal(tmp_path / "batches.jsonl")))
    assert rows[0]["state"] == "collected" and rows[0]["requests"] == 60 and rows[0]["unanswered"] > 10


def test_batch_created_but_not_journaled_is_found_not_recreated(batch_server, tmp_path):
    server = batch_server(polls=1)
    requests = requests_for(4)

    async def crash_after_create():
        # What a kill between the provider's answer to create and the journal line leaves behind.
        client, journal = BatchClient(server.base_url, None), BatchJournal(tmp_path / "batches.jsonl")
        entry = journal.plan([c for c, _ in requests])
        journal.uploaded(entry, await client.upload(b"".join(request_line(c, b) for c, b in requests), "in.jsonl"))
        journal.creating(entry)
        await client.create(entry.file_id, {"synthkit_local_id": entry.local_id})
        journal.close()
        await client.aclose()

    asyncio.run(crash_after_create())
    unanswered, results = drive(server, tmp_path, requests)
    assert unanswered == [] and len(results) == 4
    stats = server.stats()
    assert stats["batches_created"] == 1 and stats["files_uploaded"] == 1 and stats["lists"] >= 1


WORKER = """
import asyncio, json, sys
from pathlib import Path
from synthkit.calls.batch.client import BatchClient
from synthkit.calls.batch.journal import BatchJournal
from synthkit.calls.batch.rounds import run_batches
sys.path.insert(0, sys.argv[4])
from test_batch import requests_for

async def main():
    url, out, results = sys.argv[1], Path(sys.argv[2]), open(sys.argv[3], "a")
    def keep(r):
        results.write(json.dumps([r.custom_id, r.ok]) + "\\n"); results.flush()
    client, journal = BatchClient(url, "sk-test"), BatchJournal(out / "batches.jsonl")
    await run_batches(requests_for(30), client, journal, 0.02, keep, max_requests=4)
    await client.aclose()

asyncio.run(main())
"""


def test_kill_9_anywhere_creates_no_batch_twice(batch_server, tmp_path):
    server = batch_server(polls=15)
    journal_file, results_file = tmp_path / "out" / "batches.jsonl", tmp_path / "results.jsonl"
    args = [
        sys.executable,
        "-c",
        WORKER,
        server.base_url,
        str(tmp_path / "out"),
        str(results_file),
        str(Path(__file__).parent),
    ]
    # Killed after 3 .. 50 journal lines: mid-planning, mid-submission, mid-poll, mid-collection.
    for lines_before_kill in (3, 9, 17, 30, 41, 50, 62):
        worker = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and worker.poll() is None:
            if journal_file.exists() and journal_file.read_bytes().count(b"\n") >= lines_before_kill:
                break
            time.sleep(0.005)
        assert worker.poll() is None, worker.stderr.read().decode()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    final = subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, final.stderr
    stats = server.stats()
    assert stats["batches_created"] == 8  # 30 requests, 4 per batch
    assert set(stats["created_by_local_id"].values()) == {1}
    results = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert {c for c, ok in results if ok} == {c for c, _ in requests_for(30)}


def test_cancel_all_stops_batches_and_keeps_what_they_did(batch_server, tmp_path):
    server = batch_server(polls=1000)
    requests = requests_for(12)

    async def submit_then_stop():
        client, journal = BatchClient(server.base_url, None), BatchJournal(tmp_path / "batches.jsonl")
        task = asyncio.create_task(run_batches(requests, client, journal, POLL_S, lambda r: None, max_requests=5))
        while sum(e.batch_id is not None for e in journal.entries.values()) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        cancelled = await cancel_all(journal, client)
        table = format_status(await batch_status(journal, client))
        journal.close()
        await client.aclose()
        return cancelled, table

    cancelled, table = asyncio.run(submit_then_stop())
    assert len(cancelled) == 3 and server.stats()["cancels"] == 3
    assert table.count("cancelled") == 3, table
    unanswered, results = drive(server, tmp_path, requests)
    assert len(results) == 12 and 0 < len(unanswered) < 12
    assert all(results[c].error.startswith("batch_cancelled") for c in unanswered)
    assert server.stats()["batches_created"] == 3


def test_batch_price():
    mini, source = batch_price_of(LLMConfig(provider="openai", model="gpt-4o-mini"))
    assert source == "litellm's price map" and mini.input == pytest.approx(0.075e-6)
    claude, source = batch_price_of(LLMConfig(provider="anthropic", model="claude-sonnet-4-20250514"))
    assert claude.input == pytest.approx(1.5e-6) and claude.output == pytest.approx(7.5e-6)
    assert source.startswith("50% of the online price")
    configured, _ = batch_price_of(
        LLMConfig(provider="x", model="gpt-4o-mini", input_cost_per_mtok=1.0, output_cost_per_mtok=2.0)
    )
    assert (configured.input, configured.output) == (pytest.approx(0.5e-6), pytest.approx(1e-6))
    unknown, why = batch_price_of(LLMConfig(provider="test", model="openai/test-model"))
    assert unknown is None and "no price known" in why


def test_journal_replays_state_and_drops_a_torn_last_line(tmp_path):
    journal = BatchJournal(tmp_path / "batches.jsonl")
    first, second = journal.plan(["a", "b"]), journal.plan(["c"])
    journal.uploaded(first, "file-1")
    journal.creating(first)
    journal.created(first, "batch_1")
    journal.status(first, {"status": "completed", "request_counts": {"total": 2, "completed": 1, "failed": 1}})
    journal.collected(first, ["b"])
    journal.close()
    with open(tmp_path / "batches.jsonl", "a") as f:
        f.write('{"event": "uploaded", "local_id": "')  # what a kill -9 mid-write leaves
    journal = BatchJournal(tmp_path / "batches.jsonl")
    entry, pending = journal.entries[first.local_id], journal.entries[second.local_id]
    assert (entry.batch_id, entry.status, entry.collected, entry.failed) == ("batch_1", "completed", True, ["b"])
    assert pending.file_id is None and not pending.creating
    assert journal.settled() == {"a", "c"}  # b came back unanswered: to resubmit
    journal.uploaded(pending, "file-2")  # appends cleanly after the torn line was dropped
    journal.close()
    assert BatchJournal(tmp_path / "batches.jsonl").entries[second.local_id].file_id == "file-2"
