"""Faults a hostile run found, in process against the loopback server: nothing lost, nothing leaked,
one line instead of a traceback, and runs that stop when they should (and only then)."""

import json

import pytest
from helpers import read_jsonl

from synthkit.errors import UserError

FAST_RETRIES = ["llm.backoff_s=0.02", "llm.backoff_max_s=0.2"]


def _rows(run) -> list:
    return read_jsonl(run.out_dir / "data.jsonl")


def test_workers_refused_at_once_leave_no_unread_exception(openai_server, make, caplog):
    """Every worker whose request a refusal ends is read when the pool stops: an exception no one reads is printed
    with its traceback ("Task exception was never retrieved") when its task is collected, under the one line."""
    import gc

    server = openai_server(plan={"default": ["status:401"]})
    for attempt in range(12):  # the workers' answers must come in together: not every run sees it
        with pytest.raises(UserError, match="refused the API key"):
            make("num_rows=200", "concurrency=50", "checks=false", "dedup=false", server=server, name=f"r{attempt}")
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_a_refusal_of_one_prompt_rejects_that_row_only(openai_server, client, make, tmp_path):
    # A 400 that concerns one prompt (context too long, a content filter) must not end the run.
    server = openai_server(
        plan={
            "default": ["valid"],
            "rules": [
                {"match": "phrase", "sequence": ["refuse:400:This model's maximum context length is 4096 tokens"]}
            ],
        }
    )
    # A third of the rows draw unit=phrase, and each is asked again twice: room enough for the rejects that
    # makes, whatever the seed's draws (the starvation limit is not what this test is about).
    room = "reject_min_rows=100"
    with pytest.raises(UserError) as stopped:
        make("num_rows=12", "max_attempts=3", room, server=server, client=client)
    # The other rows are all written; the value the provider always refuses is named, not silently lost.
    assert "no rows for unit=phrase" in str(stopped.value) and "refused" in str(stopped.value)
    run = stopped.value.run
    rows, rejects = _rows(run), read_jsonl(run.out_dir / "rejects.jsonl")
    assert len(rows) == 12 and all(r["attributes"]["unit"] != "phrase" for r in rows)
    assert rejects and all(r["check"] == "refused" and "maximum context length" in r["reason"] for r in rejects)
    assert all(r["attempts"] == 1 for r in rejects)  # a refusal is not re-asked
    # Each refused row's attributes were asked again in new rows (twice), before fresh ones were drawn.
    refills = [r for r in rejects if "refills" in r]
    assert refills and all(r["attributes"]["unit"] == "phrase" for r in refills)
    # Resuming the dir finds the rows complete: nothing stuck, nothing asked again.
    before = server.stats()["requests"]
    with pytest.raises(UserError, match="no rows for unit=phrase"):
        make("num_rows=12", "max_attempts=3", room, server=server, client=client)
    assert server.stats()["requests"] == before


@pytest.mark.parametrize(
    "plan,needle",
    [
        ({"default": ["status:401"]}, "refused the API key"),
        ({"default": ["refuse:404:The model `nope` does not exist"]}, "check llm.model"),
    ],
)
def test_refusals_of_every_request_end_the_run_at_once(openai_server, make, plan, needle):
    server = openai_server(plan=plan)
    with pytest.raises(UserError, match=needle):
        make("num_rows=40", "concurrency=8", server=server)
    assert server.stats()["requests"] <= 8


def test_truncated_answers_name_max_tokens_and_are_not_reasked(openai_server, make):
    server = openai_server(plan={"default": ["truncated"]})
    with pytest.raises(UserError) as stopped:
        make("num_rows=30", "max_attempts=3", "concurrency=4", server=server, card=True)
    rejects = read_jsonl(stopped.value.run.out_dir / "rejects.jsonl")
    card = (stopped.value.run.out_dir / "README.md").read_text()
    assert card.index("stopped before it was complete") < card.index("## Models")  # said at the top
    assert rejects and all(r["check"] == "truncated" and "llm.max_tokens" in r["reason"] for r in rejects)
    assert all(r["attempts"] == 1 for r in rejects)
    # No re-asks, and the reject-rate stop ends it after a small sample, not num_rows x max_attempts.
    assert server.stats()["requests"] == len(rejects) <= 20 + 4
    assert "truncated" in str(stopped.value)
    assert stopped.value.run.result.ledger.totals().truncated == len(rejects)


def test_a_model_that_fails_every_row_stops_on_its_reject_rate(openai_server, make):
    server = openai_server(plan={"default": ["wrong_type"]})
    with pytest.raises(UserError) as stopped:
        make("num_rows=1000", "max_attempts=2", "concurrency=4", server=server, client="http")
    message = str(stopped.value)
    assert "of the last" in message and "schema" in message  # the top reject reason is named
    assert server.stats()["requests"] <= (20 + 4) * 2  # not 1000 x 2


def test_a_cell_that_cannot_succeed_is_starved_and_the_others_finish(openai_server, make):
    server = openai_server(plan={"default": ["valid"], "rules": [{"match": "phrase", "sequence": ["wrong_type"]}]})
    with pytest.raises(UserError) as stopped:
        make("grid=[unit]", "num_rows=25", "max_attempts=1", "concurrency=4", server=server)
    message = str(stopped.value)
    assert "unit=phrase" in message and "starved" in message and "schema" in message
    counts = {}
    for r in _rows(stopped.value.run):
        counts[r["cell"]] = counts.get(r["cell"], 0) + 1
    assert counts == {"unit=sentence": 25, "unit=passage": 25}
    phrase_rejects = [r for r in read_jsonl(stopped.value.run.out_dir / "rejects.jsonl") if r["cell"] == "unit=phrase"]
    assert 20 <= len(phrase_rejects) <= 50 + 4


def test_a_200_that_is_not_json_is_retried(openai_server, make):
    server = openai_server(plan={"default": ["html", "valid"]})
    run = make("num_rows=4", *FAST_RETRIES, server=server, client="http")
    assert len(_rows(run)) == 4 and server.stats()["by_step"]["html"] == 4


@pytest.mark.parametrize("step", ["nested:3000", "big:2000000"])
def test_a_pathological_answer_is_a_reject_and_resumes_do_not_crash(openai_server, make, step):
    server = openai_server(plan={"first": [step] * 4})
    for _ in range(2):  # the second run replays the cached answers: it must not crash either
        run = make("num_rows=8", "max_attempts=1", server=server)
        assert len(_rows(run)) == 8
    rejects = read_jsonl(run.out_dir / "rejects.jsonl")
    assert rejects and all(r["check"] in ("parse", "oversize") for r in rejects)
    assert all(len(r["raw"]) <= 256_000 for r in rejects)
    assert (run.out_dir / "rejects.jsonl").stat().st_size < 8 * 300_000


def test_max_cost_usd_is_a_cap_and_holds_across_resumes(openai_server, make, tmp_path):
    server = openai_server(latency_ms=30)
    # $200 per million tokens: about $0.04 per row here, with 32 requests in flight at once.
    args = [
        "llm.input_cost_per_mtok=200",
        "llm.output_cost_per_mtok=200",
        "llm.max_tokens=64",
        "max_cost_usd=1",
        "num_rows=200",
        "concurrency=32",
    ]
    with pytest.raises(UserError, match="max_cost_usd=1 reached"):
        make(*args, server=server)
    out = tmp_path / "run"
    costs = [r["usage"]["cost_usd"] for r in read_jsonl(out / "data.jsonl") + read_jsonl(out / "rejects.jsonl")]
    assert len(costs) == server.stats()["requests"] >= 10
    assert sum(costs) <= 1 + max(costs), (sum(costs), max(costs))
    for _ in range(3):  # the same cap and dir again: the cap holds for the dir, not per run
        with pytest.raises(UserError, match="max_cost_usd=1 reached"):
            make(*args, server=server)
    costs = [r["usage"]["cost_usd"] for r in read_jsonl(out / "data.jsonl") + read_jsonl(out / "rejects.jsonl")]
    assert len(costs) == server.stats()["requests"]
    assert 0.8 <= sum(costs) <= 1 + max(costs), (sum(costs), max(costs))  # stops once a request could cross
    assert abs(json.loads((out / "synthkit-spent.json").read_text())["spent"] - sum(costs)) < 1e-9


def test_keys_never_reach_disk(openai_server, make, tmp_path, monkeypatch):
    secret = "sk-live-0123456789abcdefghijKLMNOP"
    monkeypatch.setenv("TEST_KEY", secret)
    (tmp_path / "token.txt").write_text(f"Classify {secret} by topic\n")
    server = openai_server(
        plan={
            "default": ["valid"],
            "rules": [{"match": "Detect spam", "sequence": [f"refuse:400:Incorrect API key provided: {secret}"]}],
        }
    )
    make(
        "task=text_classification",
        "llm.api_key_env=TEST_KEY",
        f"task.task=file:{tmp_path / 'token.txt'}",
        "num_rows=2",
        server=server,
        name="a",
        card=True,
    )
    make(
        "task=text_classification",
        "llm.api_key_env=TEST_KEY",
        "task.task=[Detect spam emails,Classify news]",
        "num_rows=3",
        "max_attempts=1",
        server=server,
        name="b",
        card=True,
    )
    leaked = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix != ".sqlite" and p.name != "token.txt" and secret in p.read_text(errors="ignore")
    ]
    assert leaked == []
    assert read_jsonl(tmp_path / "b" / "rejects.jsonl")  # the echoing refusal was recorded, redacted
    # A key typed into api_key_env, and a key read into a task config, are refused before anything is written.
    with pytest.raises(UserError, match="must name an environment variable"):
        make(f"llm.api_key_env={secret}", server=server, name="c")
    with pytest.raises(UserError, match="keys are not taken"):
        make(f"+hydra.job.env_set.OPENAI_API_KEY={secret}", server=server, name="d")
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_the_server_gets_the_served_model_name(openai_server, make, client):
    server = openai_server()
    # llm=vllm with the name as vLLM prints it (no openai/ prefix, a slash inside).
    run = make(
        "llm=vllm",
        f"llm.api_base={server.base_url}",
        "llm.model=Qwen/Qwen2.5-7B-Instruct",
        f"llm.client={client}",
        "num_rows=2",
    )
    assert len(_rows(run)) == 2
    assert [r["body"]["model"] for r in server.requests()] == ["Qwen/Qwen2.5-7B-Instruct"] * 2


def test_brainstorm_tokens_and_cost_are_in_the_totals(openai_server, make):
    server = openai_server()
    run = make(
        "task=text_retrieval", "num_rows=4", "llm.input_cost_per_mtok=1", "llm.output_cost_per_mtok=2", server=server
    )
    ledger = run.result.ledger
    assert [s.name for s in ledger.stages] == ["brainstorm", "generate"]
    rows = read_jsonl(run.out_dir / "brainstorm" / "data.jsonl") + read_jsonl(run.out_dir / "data.jsonl")
    totals = ledger.totals()
    assert totals.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in rows) > 0
    assert totals.completion_tokens == sum(r["usage"]["completion_tokens"] for r in rows)
    assert abs(totals.cost_usd - sum(r["usage"]["cost_usd"] for r in rows)) < 1e-12
    assert totals.requests == server.stats()["requests"] == len(rows)
