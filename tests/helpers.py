"""Run the installed `synthkit` CLI as a user would: a subprocess, from a directory of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_synthkit(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120,
                 card: bool = False) -> subprocess.CompletedProcess:
    """`card=False` skips the dataset card (about a second of plotting per run) in tests not about it."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    # Each test gets a response cache of its own, unless it shares one on purpose.
    full_env["SYNTHKIT_CACHE_DIR"] = str(cwd / "synthkit-cache")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "synthkit", *args, *([] if card or "--cfg" in args else ["card=false"])],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def server_llm(server, model: str = "openai/test-model", client: str = "auto") -> list[str]:
    """Overrides that point synthkit at the loopback OpenAI-compatible test server (through the
    lean http client unless `client` says litellm)."""
    return ["llm=vllm", f"llm.api_base={server.base_url}", f"llm.model={model}", f"llm.client={client}"]


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("synthkit: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
