"""Issue 23, a hostile run's findings: nothing leaves the machine that the user did not name (links out of a run
dir or a corpus folder, FIFOs that would block), batch mode under a provider that echoes keys, floods and invents
states, a cost cap that says what stopped it, no tracebacks, the Python API's preview, and the smaller ones
(an evicting Redis, a foreign output_dir, an endpoint that cannot be reached)."""

import json
import os

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

SECRET = "machine api.example.com login me password TOPSECRET-hunter2-do-not-send"


def secret_file(tmp_path):
    """A file outside everything the user names (their ~/.netrc)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".netrc").write_text(SECRET + "\n", encoding="utf-8")
    (home / "private").mkdir(exist_ok=True)
    (home / "private" / "notes.txt").write_text(SECRET + "\n", encoding="utf-8")
    (home / "private" / "rows.jsonl").write_text(json.dumps({"secret": SECRET}) + "\n", encoding="utf-8")
    return home


# 1. Files outside what the user named never leave the machine.


def test_files_inside_reads_only_regular_files_inside_the_folder(tmp_path):
    from synthkit.core.paths import files_inside

    home = secret_file(tmp_path)
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    (folder / "to-netrc.txt").symlink_to(home / ".netrc")
    (folder / "linked").symlink_to(home / "private", target_is_directory=True)
    (folder / "to-a.txt").symlink_to(folder / "a.txt")  # a link inside the folder is read
    (folder / "dangling.txt").symlink_to(tmp_path / "nothing")
    os.mkfifo(folder / "pipe.txt")
    files, skipped = files_inside(folder, folder.resolve())
    assert [p.relative_to(folder).as_posix() for p in files] == ["a.txt", "sub/b.txt", "to-a.txt"]
    why = {p.name: reason for p, reason in skipped}
    assert set(why) == {"to-netrc.txt", "linked", "dangling.txt", "pipe.txt"}
    assert "a link out of" in why["to-netrc.txt"] and "a link out of" in why["linked"]
    assert why["dangling.txt"] == "a link to nothing" and "FIFO" in why["pipe.txt"]


@pytest.fixture
def hub():
    from hub_server import HubServer

    server = HubServer("hf_test_SecretTokenThatMustNotLand")
    yield server
    server.stop()


def test_push_uploads_no_file_that_a_link_leads_to_outside_the_run_dir(tmp_path, hub, monkeypatch):
    import huggingface_hub.constants

    home = secret_file(tmp_path)
    run = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=3", f"output_dir={run}", cwd=tmp_path).returncode == 0
    exported = run_synthkit("export", str(run), "--to", "e5", "--allow-placeholder", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    (run / "exports" / "e5" / "e5.jsonl").unlink()
    (run / "exports" / "e5" / "e5.jsonl").symlink_to(home / ".netrc")
    (run / "exports" / "linked").symlink_to(home / "private", target_is_directory=True)
    (run / "exports" / "dangling.jsonl").symlink_to(tmp_path / "nothing")
    (run / "exports" / "copy.jsonl").symlink_to(run / "data.jsonl")  # inside the run dir: uploaded
    os.mkfifo(run / "exports" / "pipe.jsonl")
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    env = {"HF_TOKEN": hub.token}
    result = run_synthkit("push", str(run), "--repo", "me/rows", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    uploaded = hub.files["me/rows"]
    assert "data.jsonl" in uploaded and uploaded["exports/copy.jsonl"] == (run / "data.jsonl").read_bytes()
    assert not any(SECRET.encode() in content for content in uploaded.values())
    assert not {"exports/e5/e5.jsonl", "exports/pipe.jsonl"} & set(uploaded)
    assert not [p for p in uploaded if p.startswith("exports/linked")]
    warned = [line for line in result.stderr.splitlines() if line.startswith("synthkit: warning: not uploaded:")]
    for name in ("exports/e5/e5.jsonl", "exports/linked", "exports/dangling.jsonl", "exports/pipe.jsonl"):
        assert any(f" {name}: " in line for line in warned), (name, result.stderr)
    assert b"exports/e5/e5.jsonl" not in uploaded["README.md"]  # the card lists no config of a file left out
    # A file of the run itself that leads out (its text would go into the card, or it would be uploaded whole):
    # the push is refused before anything is sent.
    for name, target in ((".hydra/config.yaml", home / ".netrc"), ("plots", home / "private")):
        hub.files.clear()
        saved = run / (name + ".saved")
        (run / name).rename(saved)
        (run / name).symlink_to(target, target_is_directory=target.is_dir())
        refused = run_synthkit("push", str(run), "--repo", "me/rows", cwd=tmp_path, env=env)
        assert_one_line_error(refused, f"{run / name} is a link out of")
        assert not hub.files
        (run / name).unlink()
        saved.rename(run / name)


def test_a_run_dir_whose_files_lead_out_of_it_is_neither_resumed_nor_exported(tmp_path):
    """A planted data.jsonl -> ~/.netrc: a resume would append rows to it, an export would read it."""
    home = secret_file(tmp_path)
    run = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=2", f"output_dir={run}", cwd=tmp_path).returncode == 0
    (run / "data.jsonl").unlink()
    (run / "data.jsonl").symlink_to(home / ".netrc")
    resumed = run_synthkit("llm=mock", "num_rows=4", f"output_dir={run}", cwd=tmp_path)
    assert_one_line_error(resumed, "data.jsonl is a link out of")
    exported = run_synthkit("export", str(run), "--to", "e5", "--allow-placeholder", cwd=tmp_path)
    assert_one_line_error(exported, "data.jsonl is a link out of")
    assert (home / ".netrc").read_text() == SECRET + "\n" and not (run / "exports").exists()


def test_a_corpus_folder_sends_no_linked_file_from_outside_it_and_skips_a_fifo(openai_server, tmp_path):
    home = secret_file(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"doc{i}.txt").write_text(f"Bread number {i} is baked from flour, water and salt in an oven.")
    (docs / "secret.txt").symlink_to(home / ".netrc")
    (docs / "private").symlink_to(home / "private", target_is_directory=True)
    os.mkfifo(docs / "pipe.jsonl")  # read plainly, it blocks until a writer comes: for ever
    server = openai_server()
    out = tmp_path / "run"
    result = run_synthkit(
        *server_llm(server), "task=grounded_retrieval", f"corpus={docs}", "num_rows=6", "checks=false",
        f"output_dir={out}", cwd=tmp_path, subprocess_=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("secret.txt", "private", "pipe.jsonl"):
        assert f"{name} skipped" in result.stderr, result.stderr
    sent = json.dumps(server.requests())
    assert "TOPSECRET" not in sent and "Bread number" in sent
    assert "TOPSECRET" not in (out / "data.jsonl").read_text()
    assert {r["corpus"]["document"] for r in read_jsonl(out / "data.jsonl")} <= {f"doc{i}.txt" for i in range(3)}


def test_a_fifo_named_as_a_corpus_or_a_values_file_is_one_line_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.jsonl")
    os.mkfifo(tmp_path / "definitions.txt")
    for args, needle in (
        (["task=grounded_retrieval", f"corpus={tmp_path / 'pipe.jsonl'}"], "is a FIFO"),
        (["task=text_classification", f"task.task=file:{tmp_path / 'definitions.txt'}"], "is a FIFO"),
        (["task=text_classification", f"task.task=file:{tmp_path / 'pipe.jsonl'}"], "is a FIFO"),
    ):
        result = run_synthkit("llm=mock", "num_rows=2", *args, cwd=tmp_path, subprocess_=True, timeout=60)
        assert_one_line_error(result, needle)


# 3. Batch mode under a hostile provider: its text is printable and bounded everywhere, its statuses bounded.

KEY = "plainvalue-KeyThatMustNeverLand-0123456789"  # shaped like no provider's key: only its variable says so
BATCH = ["llm.batch=true", "llm.batch_poll_s=0.01", "llm.api_key_env=MY_BATCH_KEY"]


def test_printable_redacts_escapes_and_bounds_text(monkeypatch):
    from synthkit.core.text import printable

    monkeypatch.setenv("SOME_API_KEY", KEY)
    text = printable(f"\x1b[31mbad key {KEY}\x1b[0m\r\n\u202eevil\x07" + "A" * 5_000_000, 300)
    assert KEY not in text and "[REDACTED]" in text
    assert "\x1b" not in text and "\\x1b[31m" in text and "\\u202e" in text and "\\x07" in text
    assert "\n" not in text and "\r" not in text and len(text) < 400 and "5,000,0" in text
    assert printable("in_progress", 40) == "in_progress"  # what needs no change is not changed


def set_config(server, **config) -> None:
    import urllib.request

    request = urllib.request.Request(server.url + "/_config", data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(request, timeout=30).read()


def test_a_provider_echoing_the_key_in_a_5mb_error_with_escapes_reaches_no_file_or_screen(batch_server, tmp_path):
    server = batch_server()
    set_config(server, reject="\x1b[2J\x1b[31mInvalid key {key}\x1b[0m " + "A" * 5_000_000)
    out = tmp_path / "run"
    env = {"MY_BATCH_KEY": KEY}
    result = run_synthkit(*server_llm(server), *BATCH, "num_rows=3", f"output_dir={out}", cwd=tmp_path, env=env)
    line = assert_one_line_error(result, "rejected batch", "Invalid key [REDACTED]")
    assert len(result.stderr) < 3000 and "\x1b" not in result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY.encode() not in data and len(data) < 20_000, path
            assert b"\x1b" not in data and b"\\u001b" not in data, path
    shown = run_synthkit("batches", str(out), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert KEY not in shown.stdout and "\x1b" not in shown.stdout and len(shown.stdout) < 3000
    assert "[REDACTED]" in line


def test_synthkit_batches_prints_a_journal_of_raw_provider_text_printable(tmp_path):
    """A journal written before this release, or by hand, may hold raw provider text: the printer cleans it."""
    run = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=1", f"output_dir={run}", cwd=tmp_path).returncode == 0
    flood = f"\x1b]0;pwned\x07{KEY} " + "B" * 1_000_000
    events = [
        {"event": "planned", "local_id": "a-00000", "custom_ids": ["x"], "t": 0},
        {"event": "created", "local_id": "a-00000", "batch_id": "batch_\x1b[31mred"},
        {"event": "status", "local_id": "a-00000", "status": flood, "counts": {"completed": flood}, "errors": flood},
    ]
    (run / "batches.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    shown = run_synthkit("batches", str(run), "--offline", cwd=tmp_path, env={"OLD_API_KEY": KEY})
    assert shown.returncode == 0, shown.stderr
    assert KEY not in shown.stdout and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert len(shown.stdout) < 3000 and "\\x1b" in shown.stdout


@pytest.mark.parametrize("status, needle", [("paused", "status 'paused'"), ("", "no status")])
def test_a_batch_in_a_status_the_api_does_not_have_fails_after_a_bound(batch_server, tmp_path, status, needle):
    from synthkit.calls.batch.rounds import STRANGE_STATUS_CHECKS

    server = batch_server(polls=1, status=status)
    out = tmp_path / "run"
    result = run_synthkit(*server_llm(server), *BATCH[:2], "num_rows=3", f"output_dir={out}", cwd=tmp_path)
    assert_one_line_error(result, needle, f"{STRANGE_STATUS_CHECKS} checks in a row", "counts it as failed")
    stats = server.stats()
    assert stats["retrieves"] <= STRANGE_STATUS_CHECKS + 2 and stats["cancels"] == 1
    events = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "collected" and len(events[-1]["failed"]) == 3  # asked again on a rerun


def test_kill_9_during_a_create_on_a_server_that_lists_no_batches_says_what_to_do(batch_server, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    server = batch_server(polls=1, list=False, create_delay_s=60)
    out = tmp_path / "run"
    args = [*server_llm(server), *BATCH[:2], "num_rows=4", f"output_dir={out}", "card=false"]
    env = {k: v for k, v in os.environ.items() if k != "SYNTHKIT_RUN_ID"}
    env["SYNTHKIT_CACHE_DIR"] = str(tmp_path / "synthkit-cache")
    process = subprocess.Popen([sys.executable, "-m", "synthkit", *args], cwd=tmp_path, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"creating"' not in _read(out / "batches.jsonl"):
        time.sleep(0.05)
    time.sleep(0.3)  # the create is at the server, its answer 60 s away
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert server.stats()["batches_created"] == 1
    resumed = run_synthkit(*args, cwd=tmp_path)
    assert_one_line_error(resumed, "does not list batches", "cancel it there", f"synthkit batches {out} --cancel")
    forgotten = run_synthkit("batches", str(out), "--cancel", cwd=tmp_path)
    assert forgotten.returncode == 0, forgotten.stderr
    assert "creation was never confirmed" in forgotten.stdout
    set_config(server, polls=1, list=False)
    again = run_synthkit(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(out / "data.jsonl")) == 4


def _read(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# 4. The cost cap says what stopped it, and reservations shrink to what fits.


def test_a_cap_filled_by_reservations_waits_instead_of_stopping_with_nothing_spent(
    openai_server, make, tmp_path, capfd
):
    """$10 per million tokens: a request reserves ~$0.023 (its prompt and llm.max_tokens=2048 of answer), so two
    reservations fill max_cost_usd=0.05, while an answer costs ~$0.002. The run must spend the cap, not stop at
    two requests with "$0.0000 spent"."""
    from synthkit.errors import UserError

    server = openai_server()
    args = ["llm.input_cost_per_mtok=10", "llm.output_cost_per_mtok=10", "max_cost_usd=0.05", "concurrency=32"]
    with pytest.raises(UserError) as stopped:
        make(*args, "num_rows=200", "checks=false", "dedup=false", server=server)
    message = str(stopped.value)
    assert "max_cost_usd=0.05 reached" in message and "spent" in message and "reserved by requests" in message
    assert "raise max_cost_usd" in message
    out = tmp_path / "run"
    costs = [r["usage"]["cost_usd"] for r in read_jsonl(out / "data.jsonl") + read_jsonl(out / "rejects.jsonl")]
    assert len(costs) == server.stats()["requests"] >= 10
    assert 0.05 <= sum(costs) <= 0.05 + max(costs) + 1e-9  # the cap spent, passed by one request at most
    assert json.loads((out / "synthkit-spent.json").read_text())["spent"] == pytest.approx(sum(costs))
    notes = [line for line in capfd.readouterr().err.splitlines() if "max_cost_usd=0.05 holds about" in line]
    assert len(notes) == 1 and "lower llm.max_tokens" in notes[0]


# 5. Never a traceback.


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nothing listens there


def test_push_to_a_hub_that_cannot_be_reached_is_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    run = tmp_path / "run"
    assert run_synthkit("llm=mock", "num_rows=2", f"output_dir={run}", cwd=tmp_path).returncode == 0
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    result = run_synthkit("push", str(run), "--repo", "me/rows", cwd=tmp_path, env={"HF_TOKEN": "hf_" + "x" * 30})
    assert_one_line_error(result, "cannot reach the Hub at " + endpoint, "HF_ENDPOINT")


@pytest.mark.parametrize(
    "overrides, kwargs, needle",
    [
        ((123,), {}, "overrides are strings"),
        ((None,), {}, "overrides are strings"),
        ((["llm=mock", "num_rows=2"],), {}, "unpack it"),
        (("llm=mock",), {"config_dir": "/nonexistent/configs"}, "config_dir /nonexistent/configs is not a directory"),
        (("llm=mock",), {"config_dir": 5}, "is not a path"),
    ],
)
def test_the_python_api_refuses_what_it_cannot_take_in_one_line(tmp_path, overrides, kwargs, needle):
    import synthkit
    from synthkit.errors import UserError

    with pytest.raises(UserError, match=needle):
        synthkit.generate(*overrides, f"output_dir={tmp_path / 'run'}", **kwargs)
    with pytest.raises(UserError, match=needle):
        synthkit.compose(*overrides, **kwargs)
    assert not (tmp_path / "run").exists()


def test_a_launcher_that_fails_before_its_jobs_is_one_line(tmp_path):
    result = run_synthkit(
        "-m", "+launcher=joblib", "hydra.launcher.n_jobs=0", "llm=mock", "num_rows=2",
        f"output_dir={tmp_path / 'sweep'}", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "launcher (joblib) failed", "n_jobs == 0", "hydra.launcher")


def test_the_slurm_launcher_without_srun_is_one_line(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_synthkit(
        "-m", "+launcher=slurm", "llm=mock", "num_rows=2", f"output_dir={tmp_path / 'sweep'}", cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert_one_line_error(result, "launcher (submitit) failed", "srun", "+launcher=submitit_local")


# 6. The Python API does what it says: preview=N makes N rows and projects the cost, from the cache too.


def test_the_python_api_previews_and_a_cached_preview_projects_a_real_cost(openai_server, make, tmp_path):
    server = openai_server()
    price = ["llm.input_cost_per_mtok=1", "llm.output_cost_per_mtok=2", "num_rows=1000", "preview=4"]
    first = make(*price, server=server)
    rows = read_jsonl(tmp_path / "run" / "data.jsonl")
    assert len(rows) == 4 == server.stats()["requests"]  # not a paid run of 1000 rows
    paid = sum(r["usage"]["cost_usd"] for r in rows)
    assert first.preview.rows == 4 and first.preview.full_rows == 1000 and paid > 0
    assert first.preview.cost_per_row_usd == pytest.approx(paid / 4)
    assert first.preview.projected_cost_usd == pytest.approx(paid / 4 * 1000)
    assert "for num_rows=1,000" in first.preview.text and "preview" in repr(first)
    again = make(*price, server=server, name="again")  # the same rows: every answer from the cache
    assert server.stats()["requests"] == 4 and again.result.ledger.totals().cached == 4
    assert again.preview.projected_cost_usd == pytest.approx(first.preview.projected_cost_usd)
    assert f"~${paid / 4 * 1000:,.2f} for num_rows=1,000" in again.preview.text
    whole = make("llm.input_cost_per_mtok=1", "llm.output_cost_per_mtok=2", "num_rows=6", server=server, name="all")
    assert whole.preview is None and len(read_jsonl(tmp_path / "all" / "data.jsonl")) == 6


# 8. The smaller ones.


def test_a_redis_that_evicts_keys_is_refused_and_one_without_a_limit_warned(tmp_path, capsys):
    import redis
    from redis_server import RedisServer

    from synthkit.calls.stores.redis_store import RedisStore
    from synthkit.errors import UserError

    server = RedisServer(tmp_path / "redis")
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.config_set("maxmemory", "100mb")
        result = run_synthkit("llm=mock", f"store={server.url}", f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
        assert_one_line_error(result, "maxmemory-policy allkeys-lru", "maxmemory-policy noeviction")
        assert not (tmp_path / "run").exists()
        client.config_set("maxmemory", "0")
        client.config_set("maxmemory-policy", "volatile-ttl")
        RedisStore(server.url)  # no limit: it evicts nothing yet, so a warning
        assert "maxmemory-policy volatile-ttl" in capsys.readouterr().err
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "100mb")
        RedisStore(server.url)
        assert capsys.readouterr().err == ""
        client.close()
    finally:
        server.stop()
    with pytest.raises(UserError):  # the server is gone: still one line
        RedisStore(server.url)


def test_an_output_dir_with_another_programs_hydra_folder_is_refused(tmp_path):
    out = tmp_path / "theirs"
    (out / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (out / ".hydra" / name).write_text("their: own\n")
    result = run_synthkit("llm=mock", "num_rows=2", f"output_dir={out}", cwd=tmp_path)
    assert_one_line_error(result, "already holds files synthkit did not write (.hydra)")
    assert sorted(p.name for p in out.rglob("*")) == [".hydra", "config.yaml", "hydra.yaml", "overrides.yaml"]
    assert (out / ".hydra" / "config.yaml").read_text() == "their: own\n"


def test_a_sweep_job_refused_before_it_ran_is_run_again_into_its_dir(tmp_path):
    from synthkit.results.rundir import RunDir

    job = RunDir(tmp_path / "sweep" / "0")
    job.path.mkdir(parents=True)
    job.record_refusal("task.unit='word' is not allowed", ["task.unit=word"])
    result = run_synthkit("llm=mock", "num_rows=2", f"output_dir={job.path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(job.data)) == 2


def test_a_refused_run_leaves_no_empty_outputs_folder(tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for args in (["task.unit=word"], ["llm=openai"], ["llm=mock", "-m", "+launcher=joblib", "hydra.launcher.n_jobs=0"]):
        result = run_synthkit("llm=mock", "num_rows=2", *args, cwd=fresh, env={"OPENAI_API_KEY": ""})
        assert result.returncode != 0
        assert [p.name for p in fresh.iterdir() if p.name != "synthkit-cache"] == [], args
    (fresh / "outputs").mkdir()  # the user's own folder, empty: it stays
    assert run_synthkit("llm=mock", "task.unit=word", cwd=fresh).returncode != 0
    assert (fresh / "outputs").is_dir() and not any((fresh / "outputs").iterdir())


@pytest.mark.parametrize("client", ["http", "litellm", "batch"])
def test_an_endpoint_that_refuses_connections_ends_the_run_at_once_naming_llm_api_base(tmp_path, client):
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    llm = ["llm=vllm", f"llm.api_base={base}", "llm.model=openai/test-model"]
    llm += ["llm.batch=true", "llm.batch_poll_s=5"] if client == "batch" else [f"llm.client={client}"]
    # Five rows a circuit breaker would end after 5 x 6 retries; backoff_s makes each retry wait long.
    result = run_synthkit(*llm, "num_rows=5", "llm.backoff_s=30", f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, f"cannot connect to llm.api_base={base}", "is the server running")


def test_a_host_that_does_not_resolve_ends_the_run_at_once(tmp_path):
    base = "http://no-such-host.invalid:8000/v1"
    llm = ["llm=vllm", f"llm.api_base={base}", "llm.model=openai/test-model", "llm.backoff_s=30"]
    result = run_synthkit(*llm, "num_rows=5", f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, f"cannot connect to llm.api_base={base}")


def test_options_may_come_after_the_overrides(tmp_path):
    configs = tmp_path / "my_configs" / "task"
    configs.mkdir(parents=True)
    (configs / "faq.yaml").write_text(
        "name: faq\nlanguage: English\ndomains: {language: [English]}\noutput: {question: string, answer: string}\n"
        'prompt: "Write a FAQ question and its answer in {{ language }}."\n'
    )
    out = tmp_path / "run"
    result = run_synthkit(
        "task=faq", "--config-dir", str(tmp_path / "my_configs"), "llm=mock", "num_rows=2", f"output_dir={out}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["task_type"] for r in read_jsonl(out / "data.jsonl")] == ["faq", "faq"]
    shown = run_synthkit("llm=mock", "--cfg", "job", "num_rows=7", cwd=tmp_path)
    assert shown.returncode == 0 and "num_rows: 7" in shown.stdout, shown.stderr
    assert_one_line_error(run_synthkit("llm=mock", "--config-dir", cwd=tmp_path), "--config-dir needs a value")
    assert_one_line_error(run_synthkit("--cfg", "jobs", "llm=mock", cwd=tmp_path), "choose one of job, hydra, all")
    info = run_synthkit("--info", "llm=mock", "num_rows=7", cwd=tmp_path)  # a bare --info takes no override
    assert info.returncode == 0 and "num_rows: 7" in info.stdout, info.stderr


def test_an_endpoint_that_answered_and_then_refuses_connections_is_retried_not_given_up_at_once(
    openai_server, tmp_path
):
    """A server restarting mid-run refuses connections for a while: that is transient, so the retries and the
    circuit breaker decide, as before."""
    import subprocess
    import sys
    import time

    server = openai_server(latency_ms=100)
    out = tmp_path / "run"
    args = [*server_llm(server, client="http"), "llm.backoff_s=0.02", "llm.backoff_max_s=0.2", "llm.max_retries=2"]
    args += ["llm.circuit_breaker=3", "num_rows=400", "concurrency=2", f"output_dir={out}", "card=false"]
    env = {k: v for k, v in os.environ.items() if k != "SYNTHKIT_RUN_ID"}
    env["SYNTHKIT_CACHE_DIR"] = str(tmp_path / "synthkit-cache")
    process = subprocess.Popen(
        [sys.executable, "-m", "synthkit", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(read_jsonl(out / "data.jsonl")) < 2:
        time.sleep(0.05)
    server.stop()
    _, stderr = process.communicate(timeout=120)
    errors = [line for line in stderr.decode().splitlines() if line.startswith("synthkit: error:")]
    assert process.returncode == 1 and len(errors) == 1, stderr.decode()
    assert "the endpoint kept failing" in errors[0] and "cannot connect to llm.api_base" not in errors[0]


def test_a_preview_prints_a_models_escape_codes_escaped(openai_server, tmp_path):
    answer = {"S1": "\x1b[2J\x1b]0;owned\x07Hello there", "S2": "Hallo dort " * 100, "S3": "Hallo"}
    server = openai_server(plan={"default": [f"text:{json.dumps(answer)}"]})
    result = run_synthkit(
        *server_llm(server), "preview=1", "checks=false", f"output_dir={tmp_path / 'p'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\\x1b[2J" in result.stdout
