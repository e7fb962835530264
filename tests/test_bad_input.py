"""Every user mistake: one line on stderr naming the fix, a non-zero exit, no traceback."""

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

CASES = [
    (["task=nope", "llm=mock"], ["no task named 'nope'", "bitext_retrieval", "text_classification"]),
    (["llm=nope"], ["no llm named 'nope'", "openai", "mock", "vllm"]),
    (["llm=mock", "task.unti=x"], ["unknown key 'task.unti'", "--cfg job"]),
    (["llm=mock", "num_rows=many"], ["num_rows=many", "Integer"]),
    (["llm=mock", "llm.temperature=hot"], ["llm.temperature=hot", "Float"]),
    (["llm=mock", "task.unit=word"], ["task.unit='word' is not allowed", "sentence, phrase, passage"]),
    (["llm=mock", "task.target_language=Klingon"], ["Klingon' is not one of this task's languages", "ISO code"]),
    (["llm=mock", "task.target_language=English"], ["must differ from task.source_language"]),
    (["llm=mock", "task=text_classification", "task.brainstorm=null"], ["task.task is not set"]),
    (["llm=mock", "preset=mine"], ["preset=mine", "Invalid value 'mine'", "seed, paper"]),
    (["llm=mock", "llm.client=fast"], ["llm.client=fast", "auto, litellm, http"]),
    (["llm=mock", "recipe=e6"], ["no recipe named 'e6'", "e5"]),
    (["llm=mock", "task=text_classification", "task.task=file:missing.txt"], ["cannot read missing.txt"]),
    (["llm=mock", "concurrency=0"], ["concurrency=0 must be at least 1"]),
    (["llm=openai"], ["OPENAI_API_KEY is not set", "llm=mock"]),
    (["llm=anthropic"], ["ANTHROPIC_API_KEY is not set", "llm=mock"]),
]


@pytest.mark.parametrize("args,needles", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line(args, needles, tmp_path):
    result = run_synthkit(*args, f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert read_jsonl(tmp_path / "run" / "data.jsonl") == []


def test_api_key_on_the_command_line_is_refused_and_never_written(tmp_path):
    secret = "sk-test-0123456789abcdefghijklmnop"
    result = run_synthkit("llm=openai", f"llm.api_key={secret}", f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, "environment")
    assert secret not in result.stderr + result.stdout
    written = [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_text(errors="ignore")]
    assert written == []


def test_rejected_key_fails_fast_and_keeps_rows(openai_server, client, tmp_path):
    server = openai_server(plan={"default": ["status:401"]})
    result = run_synthkit(
        *server_llm(server, client=client),
        "llm.api_key_env=TEST_KEY",
        "num_rows=50",
        f"output_dir={tmp_path / 'run'}",
        env={"TEST_KEY": "sk-wrong-key-123456"},
        cwd=tmp_path,
    )
    line = assert_one_line_error(result, "refused the API key", "TEST_KEY")
    assert "sk-wrong-key-123456" not in line
    # Fail fast: the first refusals stop the run instead of one per row.
    assert len(server.requests()) <= 16
    written = [
        p for p in (tmp_path / "run").rglob("*") if p.is_file() and "sk-wrong-key" in p.read_text(errors="ignore")
    ]
    assert written == []
