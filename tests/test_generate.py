"""End to end: the CLI as a subprocess, litellm against the loopback OpenAI-compatible server."""

import json

from helpers import read_jsonl, run_synthkit, server_llm


def test_bitext_rows_through_both_clients(openai_server, client, tmp_path):
    server = openai_server()
    out = tmp_path / "run"
    result = run_synthkit(
        "task=bitext_retrieval", *server_llm(server, client=client), "num_rows=6", f"output_dir={out}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert sorted(r["row"] for r in rows) == list(range(6))
    for r in rows:
        assert all(isinstance(r[k], str) and r[k] for k in ("S1", "S2", "S3"))
        assert r["model_name"] == "openai/test-model" and r["seed"] == 0 and r["task_type"] == "bitext_retrieval"
        a = r["attributes"]
        assert set(a) == {"source_language", "target_language", "unit", "difficulty", "high_score", "low_score"}
        assert a["source_language"] == "English" and a["target_language"] != "English"
        assert a["unit"] in ("sentence", "phrase", "passage") and a["low_score"] in (2.5, 3, 3.5)
    requests = server.requests()
    assert len(requests) == 6
    body = requests[0]["body"]
    # The schema goes out as structured output, and the prompt carries the row's attributes.
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["S1", "S2", "S3"] and schema["additionalProperties"] is False
    prompts = {r["body"]["messages"][0]["content"] for r in requests}
    for r in rows:
        a = r["attributes"]
        assert any(a["target_language"] in p and f"scores {a['high_score']}" in p for p in prompts)
    assert "6 rows written, 0 rejected" in result.stdout and str(out / "data.jsonl") in result.stdout
    assert "LiteLLM" not in result.stdout + result.stderr  # litellm's per-request INFO lines stay quiet


def test_text_classification_cycles_definitions(openai_server, tmp_path):
    server = openai_server()
    out = tmp_path / "run"
    definitions = ["Classify a movie review by sentiment", "Detect the topic of a news headline"]
    result = run_synthkit(
        "task=text_classification",
        *server_llm(server),
        "num_rows=4",
        f"output_dir={out}",
        f"task.task=[{definitions[0]},{definitions[1]}]",
        "task.clarity=clear",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = sorted(read_jsonl(out / "data.jsonl"), key=lambda r: r["row"])
    assert [r["attributes"]["task"] for r in rows] == definitions * 2
    assert all(r["attributes"]["clarity"] == "clear" for r in rows)
    assert all(r["input_text"] and r["label"] and r["misleading_label"] for r in rows)
    prompts = [q["body"]["messages"][0]["content"] for q in server.requests()]
    assert all(any(d in p for d in definitions) and "is clear" in p for p in prompts)


def test_definitions_from_a_file(openai_server, tmp_path):
    server = openai_server()
    (tmp_path / "defs.txt").write_text("Classify emails as spam or not\n\nIdentify the language of a tweet\n")
    out = tmp_path / "run"
    result = run_synthkit(
        "task=text_classification",
        *server_llm(server),
        "num_rows=3",
        f"output_dir={out}",
        "task.task=file:defs.txt",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = sorted(read_jsonl(out / "data.jsonl"), key=lambda r: r["row"])
    assert [r["attributes"]["task"] for r in rows] == [
        "Classify emails as spam or not",
        "Identify the language of a tweet",
        "Classify emails as spam or not",
    ]


def test_malformed_and_fenced_answers_are_reasked_or_parsed(openai_server, tmp_path):
    server = openai_server(
        plan={"default": ["malformed", "valid"], "rules": [{"match": "phrase", "sequence": ["fenced"]}]}
    )
    out = tmp_path / "run"
    result = run_synthkit(*server_llm(server, client="http"), "num_rows=8", f"output_dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 8 and read_jsonl(out / "rejects.jsonl") == []
    for r in rows:  # a fenced answer is taken at once; a malformed one costs one re-ask
        assert r["attempts"] == (1 if r["attributes"]["unit"] == "phrase" else 2)
    reasks = [q["body"]["messages"] for q in server.requests() if len(q["body"]["messages"]) > 1]
    assert len(reasks) == sum(r["attempts"] == 2 for r in rows) > 0
    # The re-ask shows the model its own answer and what was wrong with it.
    assert reasks[0][1]["role"] == "assistant" and "not valid" in reasks[0][2]["content"]


def test_schema_violations_go_to_rejects_and_are_replaced(openai_server, tmp_path):
    server = openai_server(plan={"default": ["valid"], "rules": [{"match": "BROKEN", "sequence": ["missing_key"]}]})
    out = tmp_path / "run"
    result = run_synthkit(
        "task=text_classification",
        *server_llm(server, client="http"),
        "num_rows=4",
        "max_attempts=2",
        f"output_dir={out}",
        "task.task=[Classify reviews by sentiment,BROKEN definition]",
        "task.clarity=clear",
        "task.difficulty=PhD",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows, rejects = read_jsonl(out / "data.jsonl"), read_jsonl(out / "rejects.jsonl")
    # Odd rows use the broken definition: each is rejected, and new row indices take its attributes again
    # (twice) before fresh ones are drawn, so a refill does not drift toward what the model finds easy.
    assert len(rows) == 4 and all(r["attributes"]["task"] == "Classify reviews by sentiment" for r in rows)
    assert rejects and all(r["attributes"]["task"] == "BROKEN definition" for r in rejects)
    refilled = [r["refills"] for r in rejects if "refills" in r]
    assert refilled and all(source % 2 == 1 for source in refilled)
    assert max(refilled.count(source) for source in refilled) == 2
    for r in rejects:
        assert "'input_text' is a required property" in r["reason"]
        assert r["attempts"] == 2 and json.loads(r["raw"])  # the raw answer is kept
    assert all(r.get("input_text") is not None for r in rows)
    assert f"4 rows written, {len(rejects)} rejected" in result.stdout


def test_same_seed_same_prompts_and_rows(openai_server, tmp_path):
    server = openai_server()

    def run(name: str, *extra: str) -> list[dict]:
        result = run_synthkit("llm=mock", "num_rows=12", f"output_dir={tmp_path / name}", *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return sorted(read_jsonl(tmp_path / name / "data.jsonl"), key=lambda r: r["row"])

    first, again, other_seed = run("a"), run("b"), run("c", "seed=1")
    assert first == again
    assert [r["attributes"] for r in first] != [r["attributes"] for r in other_seed]
    assert len({json.dumps(r["attributes"], sort_keys=True) for r in first}) > 6  # rows differ from each other
    # Fixing the unit leaves every other attribute's draw as it was.
    fixed = run("d", "task.unit=phrase")
    for a, b in zip(first, fixed):
        assert b["attributes"]["unit"] == "phrase"
        assert {k: v for k, v in a["attributes"].items() if k != "unit"} == {
            k: v for k, v in b["attributes"].items() if k != "unit"
        }

    # Prompts sent to a real endpoint are byte-identical across runs with the same seed.
    def prompts(name: str) -> list[str]:
        before = len(server.requests())
        # cache=off: otherwise the second run is answered from the response cache.
        result = run_synthkit(
            *server_llm(server),
            "num_rows=5",
            "concurrency=1",
            "cache=off",
            f"output_dir={tmp_path / name}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        return [q["body"]["messages"][0]["content"] for q in server.requests()[before:]]

    assert prompts("e") == prompts("f")


def test_a_new_task_type_is_one_yaml_file(tmp_path):
    (tmp_path / "mine" / "task").mkdir(parents=True)
    (tmp_path / "mine" / "task" / "faq.yaml").write_text(
        "name: faq\n"
        "language: English\n"
        "tone: null\n"
        "domains:\n"
        "  language: ${languages.xlmr}\n"
        "  tone: [formal, casual]\n"
        "output:\n"
        "  question: string\n"
        "  answer: string\n"
        "prompt: |\n"
        "  Write a {{ tone }} FAQ entry in {{ language }} as JSON with keys question and answer.\n"
    )
    out = tmp_path / "run"
    result = run_synthkit(
        "--config-dir", "mine", "task=faq", "llm=mock", "num_rows=4", f"output_dir={out}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 4 and all(r["question"] and r["answer"] and r["task_type"] == "faq" for r in rows)
    assert {r["attributes"]["tone"] for r in rows} <= {"formal", "casual"}


def test_default_output_dirs_are_unique(tmp_path):
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "synthkit", "llm=mock", "num_rows=2", "card=false"],  # the card is not the point
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)  # started together: the same second
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    runs = list((tmp_path / "outputs").iterdir())
    assert len(runs) == 2 and all(len(read_jsonl(r / "data.jsonl")) == 2 for r in runs)


def test_mock_rows_are_called_placeholders(tmp_path):
    result = run_synthkit("llm=mock", "num_rows=1", f"output_dir={tmp_path / 'r'}", cwd=tmp_path)
    assert result.returncode == 0 and "PLACEHOLDER" in result.stdout
    assert read_jsonl(tmp_path / "r" / "data.jsonl")[0]["model_name"] == "mock"


def test_the_status_counts_the_rows_and_the_brainstorm_apart(tmp_path):
    """A brainstorm answer is not a row: the status, the summary and the API count the generation stage's rows."""
    out = tmp_path / "run"
    result = run_synthkit("task=text_retrieval", "llm=mock", "num_rows=3", f"output_dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    status = json.loads((out / "synthkit-status.json").read_text(encoding="utf-8"))
    assert (status["written"], status["rejected"]) == (3, 0)
    assert status["brainstorm"] == {"written": 1, "rejected": 0}
    assert "3 rows written" in result.stdout.splitlines()[0]
