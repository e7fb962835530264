"""Batch mode against a provider that misbehaves (tests/batch_server.py scripted): garbage in its output
files, an output file it no longer has, every request failing or expiring, a server that serves no batch
API, a damaged journal and an unreachable provider for `synthkit batches`. Each ends in rows or in one
line and a non-zero exit, never a traceback or a run that resubmits for ever."""

import json

from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

from synthkit.calls.batch.client import read_jsonl as read_output
from synthkit.calls.batch.rounds import _result

BATCH = ["llm.batch=true", "llm.batch_poll_s=0.01"]
GARBAGE = [
    "not json at all",
    "[1, 2]",
    '{"custom_id": 5, "response": "x"}',
    '{"custom_id": "someone-else", "error": "boom"}',
    '{"custom_id": "someone-else", "response": {"status_code": 200, "body": [1]}}',
    '{"custom_id": "cut", "response": {"status_',
]


def run(server, tmp_path, *args, name="run"):
    out = tmp_path / name
    result = run_synthkit(*server_llm(server), *BATCH, "num_rows=3", f"output_dir={out}", *args, cwd=tmp_path)
    return result, out


def test_output_lines_of_any_shape_are_read_or_skipped():
    data = "\n".join(GARBAGE).encode() + b"\n\xff\xfe{\n" + b'{"custom_id": "a", "response": {"status_code": 200}}\n'
    lines = read_output(data)
    assert [line.get("custom_id") for line in lines] == [5, "someone-else", "someone-else", "a"]
    results = [_result(line) for line in lines]
    assert results[0] is None  # no custom_id: no request to answer
    assert [r.ok for r in results[1:]] == [False, False, False]  # a 200 without a body is no answer
    assert results[1].error == "error: boom"


def test_garbage_in_the_output_file_neither_crashes_nor_loses_rows(batch_server, tmp_path):
    result, out = run(batch_server(polls=1, output_extra=GARBAGE), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and len(read_jsonl(out / "data.jsonl")) == 3


def test_every_request_failing_ends_the_run_instead_of_resubmitting_for_ever(batch_server, tmp_path):
    for config, needle in (({"fail_rate": 1.0}, "http_500"), ({"expire_rate": 1.0}, "batch_expired")):
        server = batch_server(polls=1, **config)
        result, out = run(server, tmp_path, "max_attempts=2", name=needle)
        assert_one_line_error(result, "the batches kept failing", needle)
        assert result.returncode == 1 and server.stats()["batches_created"] <= 6


def test_an_output_file_the_provider_lost_is_asked_again(batch_server, tmp_path):
    server = batch_server(polls=1, output_lost=True)
    result, out = run(server, tmp_path, "max_attempts=2")
    assert_one_line_error(result, "no longer has file")
    assert read_jsonl(out / "data.jsonl") == []


def test_a_server_without_the_batch_api_is_one_line(openai_server, tmp_path):
    result, _ = run(openai_server(), tmp_path)
    assert_one_line_error(result, "refused POST /files", "HTTP 404")


def test_synthkit_batches_with_the_provider_gone_or_a_damaged_journal_is_one_line(batch_server, tmp_path):
    server = batch_server(polls=1)
    result, out = run(server, tmp_path)
    assert result.returncode == 0, result.stderr
    with open(out / "batches.jsonl", "a") as journal:  # a batch still open at the provider
        for event in (
            {"event": "planned", "local_id": "open-00001", "custom_ids": ["x"], "t": 0},
            {"event": "created", "local_id": "open-00001", "batch_id": "batch_open"},
            {"event": "status", "local_id": "open-00001", "status": "in_progress", "counts": {}},
        ):
            journal.write(json.dumps(event) + "\n")
    server.stop()
    gone = run_synthkit("batches", str(out), cwd=tmp_path)
    assert_one_line_error(gone, "did not answer about the run's batches", "--offline")
    assert run_synthkit("batches", str(out), "--offline", cwd=tmp_path).returncode == 0
    journal = out / "batches.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], "{garbage", *lines[1:]]) + "\n")
    before = journal.read_bytes()
    damaged = run_synthkit("batches", str(out), "--offline", cwd=tmp_path)
    assert_one_line_error(damaged, "batches.jsonl is damaged at line 2")
    assert journal.read_bytes() == before


def test_a_journal_of_foreign_lines_is_refused_before_it_is_touched(tmp_path):
    from synthkit.calls.batch.journal import BatchJournal
    from synthkit.errors import UserError

    journal = tmp_path / "batches.jsonl"
    journal.write_bytes(b'{"event": "hello"}\n[1]\ntorn')
    try:
        BatchJournal(tmp_path / "batches.jsonl")
    except UserError as e:
        assert "damaged at line 1" in str(e)
    else:
        raise AssertionError("a foreign journal was read")
    assert journal.read_bytes() == b'{"event": "hello"}\n[1]\ntorn'  # not truncated
