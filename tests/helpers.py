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
    subcommand = args[:1] in (("export",), ("push",), ("batches",), ("fetch-models",))
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
    from synthkit.interface import cli

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


def tiny_static_model(path: Path, topics: list, extra_vectors: dict | None = None) -> Path:
    """A model2vec model made on the spot and saved to `path`: a word-level vocabulary over `topics`
    (strings of words), one axis per topic and one per word, plus a small shared component (as real
    embeddings have, it keeps unrelated words at a cosine just above 0). `extra_vectors`: more words,
    each with its own vector."""
    import numpy as np
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = [w for topic in topics for w in topic.split()]
    extra = extra_vectors or {}
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words + list(extra))}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.zeros((len(vocab), 1 + len(topics) + len(vocab)), dtype=np.float32)
    for t, topic in enumerate(topics):
        for w in topic.split():
            vectors[vocab[w], [0, 1 + t, len(topics) + vocab[w]]] = [0.2, 1.0, 1.0]
    for word, vector in extra.items():
        vectors[vocab[word], : len(vector)] = vector
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(path)
    return path


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_code(heading: str, language: str = "python") -> list:
    """The code blocks of one language in the README's section under `heading` (its `## ` line, without the
    hashes), dedented as a user copies them."""
    import re
    import textwrap

    section = README.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    pattern = rf"^([ \t]*)```{language}\n(.*?)^\1```"
    return [textwrap.dedent(m.group(2)) for m in re.finditer(pattern, section, re.S | re.M)]
