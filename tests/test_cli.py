"""The command line's contract: exit codes, one-line errors, files never lost or overwritten, signals,
and the Python API. Subprocesses only where the process itself is under test."""

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm


def _start(*args: str, cwd, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "SYNTHKIT_CACHE_DIR": str(cwd / "cache")}
    return subprocess.Popen(
        [sys.executable, "-m", "synthkit", *args, "card=false"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _wait_for_rows(path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(read_jsonl(path)) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_the_readme_quick_start_from_another_directory(tmp_path):
    result = run_synthkit("llm=mock", "num_rows=20", cwd=tmp_path, subprocess_=True)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "outputs").iterdir())
    assert len(runs) == 1 and len(read_jsonl(runs[0] / "data.jsonl")) == 20
    assert "PLACEHOLDER" in result.stdout and result.stderr == ""


def test_help_is_a_page_listing_every_subcommand_and_where_the_full_config_is(tmp_path):
    from synthkit.interface.cli import SUBCOMMANDS
    from synthkit.results.export import FORMATS
    from synthkit.results.rundir import packaged_tasks

    for args in (["--help"], ["-h"], ["task=text_retrieval", "--help"]):
        result = run_synthkit(*args, cwd=tmp_path)
        assert result.returncode == 0 and result.stderr == ""
        page = result.stdout
        assert len(page.splitlines()) < 60 and "max_attempts: 3" not in page  # not the config dumped
        assert "synthkit <your overrides> --cfg job" in page
        for name in SUBCOMMANDS:
            assert f"\n  {name} " in page
            assert run_synthkit(name, "--help", cwd=tmp_path).returncode == 0
        export_line = next(line for line in page.splitlines() if line.startswith("  export "))
        assert all(fmt in export_line for fmt in FORMATS)  # beir too
        assert all(task in page for task in packaged_tasks())
    assert not list(tmp_path.glob("outputs*"))  # nothing ran


def test_one_output_dir_is_owned_by_one_run_at_a_time(openai_server, tmp_path):
    server = openai_server(latency_ms=100)
    out = tmp_path / "run"
    # Long enough (20 s) to be still running however slowly the second run starts on a loaded machine.
    first = _start(*server_llm(server), "num_rows=400", "concurrency=2", "cache=off", f"output_dir={out}", cwd=tmp_path)
    _wait_for_rows(out / "data.jsonl", 1)
    second = run_synthkit(
        *server_llm(server), "num_rows=40", "concurrency=2", "cache=off", f"output_dir={out}", cwd=tmp_path
    )
    assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
    assert_one_line_error(second, "is in use by a running synthkit", f"pid {first.pid}")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 130
    rows = sorted(r["row"] for r in read_jsonl(out / "data.jsonl"))
    assert rows and rows == sorted(set(rows))  # no row twice


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_like_ctrl_c(openai_server, tmp_path, signum):
    server = openai_server(latency_ms=100)
    out = tmp_path / "run"
    proc = _start(*server_llm(server), "num_rows=60", "concurrency=2", f"output_dir={out}", cwd=tmp_path)
    _wait_for_rows(out / "data.jsonl", 3)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and f"stopped by {signum.name}" in errors[0] and "Traceback" not in stderr
    status = json.loads((out / "synthkit-status.json").read_text())
    assert signum.name in status["error"]
    written = read_jsonl(out / "data.jsonl")
    assert 3 <= len(written) < 60
    # The summary of what was made, as a run that ends prints it.
    assert f"{len(written)} rows written" in stdout and "requests:" in stdout and "cost:" in stdout
    server.reset(None, 0)
    resumed = run_synthkit(*server_llm(server), "num_rows=60", "concurrency=8", f"output_dir={out}", cwd=tmp_path)
    assert resumed.returncode == 0 and f"{len(written)} already there" in resumed.stdout


def test_a_full_disk_is_one_line_and_keeps_the_rows(tmp_path):
    out = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=3", f"output_dir={out}", cwd=tmp_path).returncode == 0
    size = max(p.stat().st_size for p in out.rglob("*") if p.is_file()) + 2000

    def small_files() -> None:  # files may not grow past this: writes fail as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    proc = _start("llm=mock", "num_rows=500", f"output_dir={out}", cwd=tmp_path, preexec_fn=small_files)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot write" in lines[0] and "data.jsonl" in lines[0], stderr
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]  # every line whole
    assert len(rows) >= 3


def test_export_force_replaces_only_an_export_synthkit_wrote(tmp_path):
    run = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=4", f"output_dir={run}", cwd=tmp_path).returncode == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    args = ["export", str(run), "--to", "e5", "--allow-placeholder", "--force"]
    assert_one_line_error(run_synthkit(*args, "--out", str(mine), cwd=tmp_path), "not an export synthkit wrote")
    assert_one_line_error(run_synthkit(*args, "--out", str(run), cwd=tmp_path), "not an export synthkit wrote")
    assert (mine / "notes.txt").read_text() == "keep me" and len(read_jsonl(run / "data.jsonl")) == 4
    out = tmp_path / "exported"
    assert run_synthkit(*args, "--out", str(out), cwd=tmp_path).returncode == 0
    assert run_synthkit(*args, "--out", str(out), cwd=tmp_path).returncode == 0  # its own export: replaced
    assert len(read_jsonl(out / "e5.jsonl")) == 4


def test_output_dirs_synthkit_did_not_make_are_refused(openai_server, tmp_path):
    (tmp_path / "README.md").write_text("my project")
    assert_one_line_error(run_synthkit("llm=mock", "output_dir=.", cwd=tmp_path), "did not write", "README.md")
    assert_one_line_error(run_synthkit("llm=mock", "output_dir=", cwd=tmp_path), "output_dir")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "data.jsonl").write_text('{"id": 1}\n')
    assert_one_line_error(run_synthkit("llm=mock", "output_dir=theirs", cwd=tmp_path), "did not write")
    (tmp_path / "a_file").write_text("x")
    assert_one_line_error(run_synthkit("llm=mock", "output_dir=a_file", cwd=tmp_path), "is a file")
    assert_one_line_error(
        run_synthkit(*server_llm(openai_server()), f"cache_dir={tmp_path / 'a_file'}", "output_dir=new", cwd=tmp_path),
        "cache_dir",
        "is a file",
    )
    assert (tmp_path / "README.md").read_text() == "my project"
    assert (tmp_path / "theirs" / "data.jsonl").read_text() == '{"id": 1}\n'
    assert not (tmp_path / "new").exists() and not (tmp_path / "outputs").exists()  # a refused run leaves nothing


def test_damaged_run_files_are_one_line(tmp_path):
    out = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=3", f"output_dir={out}", cwd=tmp_path).returncode == 0
    lines = (out / "data.jsonl").read_text().splitlines()
    (out / "data.jsonl").write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    assert_one_line_error(
        run_synthkit("llm=mock", "num_rows=5", f"output_dir={out}", cwd=tmp_path),
        "data.jsonl line 2 is not a synthkit row",
    )
    (out / "data.jsonl").write_text("\n".join(lines) + "\n")
    (out / "synthkit-run.json").write_text("")
    assert_one_line_error(run_synthkit("llm=mock", "num_rows=5", f"output_dir={out}", cwd=tmp_path), "is damaged")
    assert len(read_jsonl(out / "data.jsonl")) == 3


@pytest.mark.parametrize(
    "args,needles",
    [
        (["dedup_threshold=-1"], ["dedup_threshold=-1.0 must be"]),
        (["num_rows=0"], ["num_rows=0 must be at least 1"]),
        (["llm.max_tokens=-1"], ["llm.max_tokens=-1 must be at least 1"]),
        (["max_cost_usd=-1"], ["max_cost_usd=-1.0 must be more than 0"]),
        (["brainstorm_rows=-5"], ["brainstorm_rows=-5 must be at least 1"]),
        (["task=text_classification", "task.task=file:/bin/sh"], ["binary"]),
        (["task=text_classification", "task.task=Given a city, retrieve its mayor"], ["must be quoted"]),
    ],
)
def test_more_mistakes_are_one_line(tmp_path, args, needles):
    result = run_synthkit("llm=mock", *args, f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "prompt,needle",
    [
        ("{{ 1/0 }}", "failed to render"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox"),
        ("{{ missing }}", "unknown variable"),
    ],
)
def test_prompt_template_failures_are_one_line(tmp_path, prompt, needle):
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "t.yaml").write_text(
        f'name: t\nlanguage: English\ndomains: {{language: [English]}}\noutput: {{text: string}}\nprompt: "{prompt}"\n'
    )
    result = run_synthkit("--config-dir", str(tmp_path / "conf"), "task=t", "llm=mock", cwd=tmp_path)
    assert_one_line_error(result, needle)


def test_the_python_api_works_inside_a_running_event_loop(tmp_path):
    import synthkit
    from synthkit.errors import UserError

    async def notebook_cell():
        return synthkit.generate(
            "llm=mock", "num_rows=5", f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}", card=False
        )

    run = asyncio.run(notebook_cell())
    dataset = run.dataset()
    assert dataset.num_rows == 5 and set(dataset["row"]) == set(range(5))
    with pytest.raises(UserError, match="num_rows=0 must be at least 1"):
        synthkit.generate("llm=mock", "num_rows=0")


def test_a_sweep_without_its_key_fails_once_before_any_job(tmp_path):
    result = run_synthkit(
        "-m", "llm=openai", "task.unit=phrase,sentence,passage", f"output_dir={tmp_path / 's'}", cwd=tmp_path
    )
    assert_one_line_error(result, "OPENAI_API_KEY is not set")
    assert not (tmp_path / "s").exists()


def test_a_launcher_whose_extra_is_missing_names_the_install_line(tmp_path):
    result = run_synthkit("-m", "+launcher=ray", "llm=mock", "num_rows=1", cwd=tmp_path)
    assert_one_line_error(result, "ray launcher is not installed", "pip install", "[ray]")


def test_preview_shows_rows_and_projects_the_cost(openai_server, tmp_path):
    server = openai_server()
    result = run_synthkit(
        *server_llm(server),
        "task=short_text_matching",
        "task.task=Match a question to its answer",
        "preview=3",
        "num_rows=20000",
        "llm.input_cost_per_mtok=1",
        "llm.output_cost_per_mtok=1",
        f"output_dir={tmp_path / 'p'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(tmp_path / "p" / "data.jsonl")
    assert len(rows) == 3 == server.stats()["requests"]
    per_row = sum(r["usage"]["cost_usd"] for r in rows) / 3
    assert "--- short_text_matching, row 0" in result.stdout and "positive_document:" in result.stdout
    assert f"${per_row:.6f} per row -> ~${per_row * 20000:,.2f} for num_rows=20,000" in result.stdout


def test_config_files_that_break_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "broken.yaml").write_text("name: x\n  bad: [\n")
    result = run_synthkit("--config-dir", str(tmp_path / "conf"), "task=broken", "llm=mock", cwd=tmp_path)
    assert_one_line_error(result, "broken.yaml line 2 is not valid YAML")
    # A task config that reads a key from the environment is refused before anything is written.
    monkeypatch.setenv("MY_API_KEY", "sk-test-abcdefghijklmnopqrstuvwxyz")
    (tmp_path / "conf" / "task" / "leaky.yaml").write_text(
        "name: leaky\nlanguage: English\ndomains: {language: [English]}\noutput: {text: string}\n"
        'prompt: "Write in {{ language }} with ${oc.env:MY_API_KEY}"\n'
    )
    result = run_synthkit(
        "--config-dir",
        str(tmp_path / "conf"),
        "task=leaky",
        "llm=mock",
        f"output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env={"MY_API_KEY": "sk-test-abcdefghijklmnopqrstuvwxyz"},
    )
    line = assert_one_line_error(result, "oc.env:MY_API_KEY", "a key")
    assert "sk-abcdef" not in line and not (tmp_path / "run").exists()
