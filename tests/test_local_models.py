"""The README's "Local models" commands, run as written against the loopback OpenAI-compatible server in the place of
llama-server and Ollama's /v1: the overrides compose, and the requests carry what the section says they do (the
served name, the small max_tokens, the schema as structured output, the judge's own cap)."""

import re
import shlex
from pathlib import Path

import pytest
from helpers import read_jsonl, run_synthkit

README = Path(__file__).resolve().parents[1] / "README.md"


def local_commands() -> list:
    """The section's `synthkit llm=vllm ...` commands (continuation lines joined), as argument lists."""
    section = README.read_text(encoding="utf-8").split("## Local models", 1)[1].split("\n## ", 1)[0]
    text = section.replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in text.splitlines() if line.startswith("synthkit llm=vllm")]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_readme_local_model_commands_run_and_send_what_it_says(openai_server, tmp_path, index):
    args = local_commands()[index]
    base = next(a for a in args if a.startswith("llm.api_base="))
    assert re.fullmatch(r"llm\.api_base=http://127\.0\.0\.1:\d+/v1", base)
    server = openai_server()
    args = [f"llm.api_base={server.base_url}" if a == base else a for a in args]
    args = [a for a in args if not a.startswith("num_rows=")] + ["num_rows=3", "judge=true", "judge.min_score=1"]
    result = run_synthkit(*args, f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(tmp_path / "run" / "data.jsonl")) == 3
    model = next(a for a in args if a.startswith("llm.model=")).split("=", 1)[1]
    bodies = [r["body"] for r in server.requests()]
    assert {b["model"] for b in bodies} == {model.removeprefix("openai/")}  # the served name
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)
    rows = [b for b in bodies if "You review synthetic training data" not in str(b["messages"])]
    judged = [b for b in bodies if b not in rows]
    cap = next((int(a.split("=")[1]) for a in args if a.startswith("llm.max_tokens=")), 2048)
    assert {b["max_tokens"] for b in rows} == {cap} and {b["max_tokens"] for b in judged} == {256}
