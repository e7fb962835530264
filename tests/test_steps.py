"""Tasks of several steps (synthkit/spec/steps.py): a step's prompt sees the attributes and every earlier step's
fields; every step goes through the one engine (cache, re-asks with the reason, checks, batch rounds, resume); a row
is written only when every step passed. The three packaged tasks of several steps run end to end with their exports,
and each one's own check catches its own planted failure. Bad step YAML is one line before any request."""

import json
from pathlib import Path

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

from synthkit.errors import UserError

THREE_STEPS = """\
# A task of three steps: a topic, a question about it, an answer to the question.
name: exam
language: English
difficulty: null
domains:
  language: ${languages.xlmr}
  difficulty: [high school, college]
export: {query: question, positive: answer, instruction: "Given an exam question, retrieve its answer."}
steps:
  - name: topic
    prompt: 'Name a topic for a {{ difficulty }} exam in {{ language }}. Answer with JSON: {"topic": "..."}'
    output: {topic: string}
  - name: question
    prompt: 'Write a question about {{ topic.topic }} in {{ language }}. Answer with JSON: {"question": "..."}'
    output: {question: string}
  - name: answer
    prompt: 'Answer "{{ question.question }}" (about {{ topic.topic }}). Answer with JSON: {"answer": "..."}'
    output: {answer: string}
    checks:
      - {check: distinct, fields: [question, answer], contained: true}
"""


@pytest.fixture
def config_dir(tmp_path) -> Path:
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "exam.yaml").write_text(THREE_STEPS, encoding="utf-8")
    return tmp_path / "conf"


def _prompts(server) -> list:
    return [r["body"]["messages"][0]["content"] for r in server.requests()]


def test_each_step_sees_the_earlier_steps_fields_and_asks_in_order(openai_server, make, config_dir, tmp_path):
    server = openai_server()
    run = synthkit_run(make, server, config_dir, "num_rows=4")
    rows = read_jsonl(tmp_path / "run" / "data.jsonl")
    assert len(rows) == 4 and run.result.ledger.totals().requests == 12
    prompts = _prompts(server)
    for row in rows:
        question = next(p for p in prompts if p.startswith("Write a question about") and row["topic"] in p)
        answer = next(p for p in prompts if p.startswith("Answer") and row["question"] in p)
        assert row["topic"] in answer  # the third step sees the first step's field too
        assert prompts.index(question) < prompts.index(answer)
        assert set(row["steps"]) == {"topic", "question", "answer"}
        assert row["attempts"] == sum(s["attempts"] for s in row["steps"].values()) == 3
        assert row["usage"]["prompt_tokens"] == sum(s["usage"]["prompt_tokens"] for s in row["steps"].values())


def synthkit_run(make, server, config_dir, *overrides, name="run"):
    """As the `make` fixture runs the Python API, with the test's task from its own config dir."""
    import synthkit

    out = config_dir.parent / name
    return synthkit.generate(
        "task=exam", *server_llm(server), f"output_dir={out}", f"cache_dir={config_dir.parent / 'cache'}",
        "progress_every_s=0", *overrides, config_dir=str(config_dir), card=False,
    )  # fmt: skip


def test_a_failing_second_step_is_asked_again_with_its_reason(openai_server, make, config_dir, tmp_path):
    server = openai_server({"rules": [{"match": "Write a question about", "sequence": ["malformed", "valid"]}]})
    synthkit_run(make, server, config_dir, "num_rows=2")
    rows = read_jsonl(tmp_path / "run" / "data.jsonl")
    assert len(rows) == 2 and all(r["steps"]["question"]["attempts"] == 2 for r in rows)
    assert all(r["steps"]["topic"]["attempts"] == 1 for r in rows)  # the first step is not asked again
    reasks = [r["body"]["messages"] for r in server.requests() if len(r["body"]["messages"]) > 1]
    assert len(reasks) == 2 and all("Your answer was not valid" in m[-1]["content"] for m in reasks)
    assert all(m[0]["content"].startswith("Write a question about") for m in reasks)


def test_a_step_that_fails_every_attempt_rejects_the_row_naming_the_step(openai_server, make, config_dir, tmp_path):
    server = openai_server({"rules": [{"match": 'Answer "', "sequence": ["malformed"]}]})
    with pytest.raises(UserError):  # every row rejected: the run stops early
        synthkit_run(make, server, config_dir, "num_rows=2", "max_attempts=2", "reject_min_rows=4")
    rejects = read_jsonl(tmp_path / "run" / "rejects.jsonl")
    assert rejects and all(r["reason"].startswith("step answer: ") and r["check"] == "parse" for r in rejects)
    assert not read_jsonl(tmp_path / "run" / "data.jsonl")


def test_a_resumed_run_asks_only_the_steps_not_yet_answered(openai_server, make, config_dir, tmp_path):
    # The first run's last step fails for every row (the endpoint errs): its first two steps are answered.
    server = openai_server({"rules": [{"match": 'Answer "', "sequence": ["status:500"]}]})
    with pytest.raises(UserError):
        synthkit_run(make, server, config_dir, "num_rows=3", "llm.max_retries=0", "llm.circuit_breaker=10")
    assert not read_jsonl(tmp_path / "run" / "data.jsonl")
    asked = {p for p in _prompts(server)}
    server.reset(None, 0)
    synthkit_run(make, server, config_dir, "num_rows=3")
    assert len(read_jsonl(tmp_path / "run" / "data.jsonl")) == 3
    again = _prompts(server)
    assert len(again) == 3 and all(p.startswith("Answer") for p in again)  # the topics and questions were kept
    assert not set(again) - {p for p in asked if p.startswith("Answer")}  # the same last steps, now answered


def test_batch_mode_sends_each_step_as_a_round(batch_server, make, config_dir, tmp_path):
    server = batch_server(polls=1)
    synthkit_run(make, server, config_dir, "num_rows=5", "llm.batch=true", "llm.batch_poll_s=0.01")
    rows = read_jsonl(tmp_path / "run" / "data.jsonl")
    assert len(rows) == 5 and all(set(r["steps"]) == {"topic", "question", "answer"} for r in rows)
    assert server.stats()["batches_created"] == 3  # a round per step: each waits for the one before


def test_a_user_task_of_three_steps_runs_from_a_user_config_dir_on_the_command_line(
    openai_server, config_dir, tmp_path
):
    server = openai_server()
    out = tmp_path / "cli"
    result = run_synthkit(
        "--config-dir", str(config_dir), "task=exam", *server_llm(server), "num_rows=3", f"output_dir={out}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "data.jsonl")) == 3
    exported = run_synthkit("export", str(out), "--to", "e5", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    example = read_jsonl(out / "exports" / "e5" / "e5.jsonl")[0]
    assert example["instruction"] == "Given an exam question, retrieve its answer."
    assert example["query"].startswith("question") and example["positive"].startswith("answer")


@pytest.mark.parametrize(
    "change, needles",
    [
        (
            ("{{ topic.topic }} in {{ language }}", "{{ topic.subject }} in {{ language }}"),
            ["step question", "subject"],
        ),
        (
            ("Name a topic for a", "After {{ answer.answer }}, name a topic for a"),
            ["step topic", "step answer", "later"],
        ),
        (("output: {question: string}", "output: {}"), ["step question", "output names no fields"]),
        (("  - name: answer\n", "  - name: topic\n"), ["two steps are named topic"]),
        (("output: {question: string}", "output: {topic: string}"), ["steps topic and question both write topic"]),
        (("  - name: question\n", "  - name: language\n"), ["step language", "taken by an attribute"]),
        (("steps:\n", "prompt: hello\nsteps:\n"), ["has steps", "prompt"]),
        (("fields: [question, answer]", "fields: [question, answr]"), ["step answer", "answr"]),
    ],
)
def test_step_mistakes_are_one_line_before_any_request(openai_server, tmp_path, change, needles):
    server = openai_server()
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "exam.yaml").write_text(THREE_STEPS.replace(*change), encoding="utf-8")
    result = run_synthkit(
        "--config-dir", str(tmp_path / "conf"), "task=exam", *server_llm(server), "num_rows=2",
        f"output_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, *needles)
    assert server.stats()["requests"] == 0 and not (tmp_path / "run").exists()


def test_dry_run_shows_and_prices_every_step(config_dir, tmp_path):
    result = run_synthkit(
        "--config-dir", str(config_dir), "task=exam", "llm=openai", "num_rows=10", "dry_run=true",
        env={"OPENAI_API_KEY": "sk-test"}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for step in ("topic", "question", "answer"):
        assert f"prompt of row 0, step {step}:" in result.stdout
    assert 'Answer "<question.question>" (about <topic.topic>)' in result.stdout
    assert "estimate (30 requests, one per row and step" in result.stdout


# The packaged tasks of several steps, end to end.

CORPUS = [
    "Photosynthesis converts light energy into chemical energy stored in glucose. Chlorophyll absorbs red and blue "
    "light most strongly, and the Calvin cycle fixes carbon dioxide into sugars with ATP and NADPH.",
    "Roman aqueducts carried water over long distances by gravity alone: engineers kept a steady gentle gradient, "
    "tunnelling through hills or building arcades across valleys.",
    "A heat pump moves heat rather than making it: a refrigerant cycle draws warmth from outside air or the ground "
    "and releases it indoors, several units of heat per unit of electricity.",
]


def _corpus(tmp_path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(CORPUS)))
    return path


@pytest.mark.parametrize(
    "task, steps, negative",
    [
        ("instructed_retrieval", {"query", "instruction"}, "instruction_negative"),
        ("reasoning_retrieval", {"query", "negative"}, "hard_negative"),
        ("persona_retrieval", {"persona", "query"}, None),
    ],
)
def test_the_packaged_tasks_of_several_steps_end_to_end(openai_server, tmp_path, task, steps, negative):
    server = openai_server()
    out = tmp_path / "run"
    corpus = [] if task == "instructed_retrieval" else [f"corpus={_corpus(tmp_path)}"]
    result = run_synthkit(f"task={task}", *corpus, *server_llm(server), "num_rows=3", f"output_dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 3 and all(set(r["steps"]) == steps for r in rows)
    for fmt in ("e5", "flagembedding", "sentence-transformers"):
        exported = run_synthkit("export", str(out), "--to", fmt, cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
    examples = read_jsonl(out / "exports" / "e5" / "e5.jsonl")
    assert len(examples) == 3
    for row, example in zip(rows, examples):
        if task == "instructed_retrieval":  # the instruction follows the query; the definition is the prefix
            assert example["query"] == f"{row['user_query']} {row['instruction']}"
            assert example["instruction"] == row["attributes"]["task"]
        else:
            assert example["positive"] == row["attributes"]["passage"]
        assert example["negative"] == (row[negative] if negative else None)


@pytest.mark.parametrize(
    "task, plant, check",
    [
        # An instruction-negative that is the positive again.
        (
            "instructed_retrieval",
            {"match": "This passage answers the search", "copy": ["positive_document", "instruction_negative"]},
            "negative_is_positive",
        ),
        # A reasoning query that copies a sentence of its passage.
        (
            "reasoning_retrieval",
            {"match": "useful, but only through reasoning", "passage_as": "query"},
            "query_copies_passage",
        ),
        # The persona's need pasted as the query.
        ("persona_retrieval", {"match": "You are ", "need_as": "query"}, "query_is_need"),
    ],
)
def test_each_packaged_task_catches_its_own_failure(openai_server, tmp_path, task, plant, check):
    server = openai_server()
    out = tmp_path / "run"
    corpus = [] if task == "instructed_retrieval" else [f"corpus={_corpus(tmp_path)}"]
    base = [f"task={task}", *corpus, *server_llm(server), "num_rows=1", "cache=false", "max_attempts=1"]
    # A first run makes the good fields; the planted answer is built from them, then served for the step.
    first = run_synthkit(*base, f"output_dir={tmp_path / 'good'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    good = read_jsonl(tmp_path / "good" / "data.jsonl")[0]
    if "copy" in plant:
        source, target = plant["copy"]
        answer = {"instruction": good["instruction"], target: good[source]}
    elif "passage_as" in plant:
        words = good["attributes"]["passage"].split()[4:11]  # seven words in a row of the passage, in a question
        answer = {"query": f"Why would anyone say that {' '.join(words)}?", "reasoning": good["reasoning"]}
    else:
        answer = {"query": good["need"]}
    server.reset({"rules": [{"match": plant["match"], "sequence": [f"text:{json.dumps(answer)}"]}]}, 0)
    result = run_synthkit(*base, "reject_min_rows=3", f"output_dir={out}", cwd=tmp_path)
    rejects = read_jsonl(out / "rejects.jsonl")
    # The answer planted for the first row is served to the others too: there it is also a query about another
    # passage (persona: the first row's need), which `about` rejects.
    found = {r["check"] for r in rejects}
    assert check in found and found <= {check, "about"}, (result.stderr, rejects[:1])


def test_a_step_with_a_rubric_is_judged_and_the_others_are_not(openai_server, tmp_path):
    """judge=true judges the steps that declare a rubric, each against the prompt that step answered."""
    rubric = '    judge: {rubric: "answer answers the question, in the asked language"}\n'
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "exam.yaml").write_text(THREE_STEPS + rubric, encoding="utf-8")
    rating = json.dumps({"score": 5, "reason": "it answers the question"})
    server = openai_server({"rules": [{"match": "You review synthetic training data", "sequence": [f"text:{rating}"]}]})
    out = tmp_path / "run"
    result = run_synthkit(
        "--config-dir", str(tmp_path / "conf"), "task=exam", *server_llm(server), "num_rows=3", "judge=true",
        f"output_dir={out}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 3 and all(r["judge_score"] == 5 for r in rows)
    judged = [p for p in _prompts(server) if "You review synthetic training data" in p]
    assert len(judged) == 3  # the answer step only: the topic and question steps have no rubric
    assert all("Answer " in p and "answer answers the question" in p for p in judged)
