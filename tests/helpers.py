"""Run the `synthkit` command line as a user would, from a directory of its own: in this process (its
`main()`, with argv, cwd and environment set and stdout/stderr captured; exit codes and one-line errors
as a user sees them), or as a real subprocess where the process itself is under test."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path


def run_synthkit(
    *args: str, cwd: Path, env: dict | None = None, timeout: float = 120, card: bool = False, subprocess_: bool = False
) -> subprocess.CompletedProcess:
    """`card=False` skips the dataset card (about a second of plotting per run) in tests not about it."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SYNTHKIT_RUN_ID"}
    # Each test gets a response cache of its own, unless it shares one on purpose.
    full_env["SYNTHKIT_CACHE_DIR"] = str(cwd / "synthkit-cache")
    full_env.update(env or {})
    subcommand = args[:1] in (("export",), ("push",), ("batches",))
    argv = [*args, *([] if card or subcommand or "--cfg" in args else ["card=false"])]
    if subprocess_:
        return subprocess.run(
            [sys.executable, "-m", "synthkit", *argv],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return _in_process(argv, cwd, full_env)


def _in_process(argv: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    from synthkit import cli

    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    out, err, code = io.StringIO(), io.StringIO(), 0
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["synthkit", *argv]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["synthkit", *argv], code, out.getvalue(), err.getvalue())


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
