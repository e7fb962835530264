"""synthkit push: a run uploaded to a loopback Hub (tests/hub_server.py) through huggingface_hub's own client."""

import os
import re
import subprocess
import sys

import pytest
from helpers import assert_one_line_error, run_synthkit
from hub_server import HubServer

TOKEN = "hf_test_SecretTokenThatMustNotLand"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("push")
    result = run_synthkit("llm=mock", "num_rows=5", f"output_dir={cwd / 'run'}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    exported = run_synthkit("export", str(cwd / "run"), "--to", "e5", "--allow-placeholder", cwd=cwd)
    assert exported.returncode == 0, exported.stderr
    return cwd / "run"


@pytest.fixture
def hub():
    server = HubServer(TOKEN)
    yield server
    server.stop()


def push(*args, cwd, endpoint, token=TOKEN):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    # HF_HOME: no token saved by `hf auth login` on this machine may stand in for HF_TOKEN.
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(cwd / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run(  # noqa: PLW1510 (the return code is asserted)
        [sys.executable, "-m", "synthkit", "push", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_push_uploads_the_run_as_a_dataset_repo(run_dir, hub, tmp_path):
    result = push(run_dir, "--repo", "someone/synth-rows", "--private", cwd=tmp_path, endpoint=hub.url)
    assert result.returncode == 0, result.stderr
    assert "someone/synth-rows" in result.stdout
    assert hub.repos["someone/synth-rows"] == {
        "name": "synth-rows",
        "organization": "someone",
        "type": "dataset",
        "visibility": "private",
    }
    uploaded = hub.files["someone/synth-rows"]
    assert {
        "data.jsonl",
        "README.md",
        ".hydra/config.yaml",
        "exports/e5/e5.jsonl",
        "plots/attributes.png",
        "plots/text_lengths.png",
    } <= set(uploaded)
    # The resume fingerprint, status and Hydra's overrides stay local.
    assert not {"synthkit-run.json", "synthkit-status.json", ".hydra/overrides.yaml"} & set(uploaded)
    for path, content in uploaded.items():
        assert content == (run_dir / path).read_bytes(), path
    assert b'path: "exports/e5/e5.jsonl"' in uploaded["README.md"]  # the card was rewritten to list the export
    assert all(call["authorization"] == f"Bearer {TOKEN}" for call in hub.calls)
    assert [c["path"] for c in hub.calls if c["method"] == "POST"][-1] == "/api/datasets/someone/synth-rows/commit/main"
    for path in run_dir.rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_push_mistakes_are_one_line(run_dir, hub, tmp_path):
    assert_one_line_error(
        push(run_dir, "--repo", "a/b", cwd=tmp_path, endpoint=hub.url, token=None), "HF_TOKEN is not set"
    )
    assert_one_line_error(
        push(run_dir, "--repo", "a/b", cwd=tmp_path, endpoint=hub.url, token="hf_wrong"), "refused HF_TOKEN (401)"
    )
    assert not hub.files


@pytest.mark.parametrize(
    "args, token, needle",
    [
        (["--repo", "a/b", "--token", TOKEN], TOKEN, "no --token"),
        (["--repo", "not a repo"], TOKEN, "not a repo id"),
        ([], TOKEN, "--repo"),
        (["--repo", "a/b"], "", "HF_TOKEN is not set"),
    ],
)
def test_push_refuses_before_uploading(run_dir, hub, monkeypatch, args, token, needle):
    """In-process, for speed: the two CLI cases above show these messages reach stderr as one line."""
    import huggingface_hub.constants

    from synthkit.errors import UserError
    from synthkit.interface.commands.push import main

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(UserError, match=re.escape(needle)):
        main([str(run_dir), *args])
    with pytest.raises(UserError, match="holds no data.jsonl"):
        main([str(run_dir / "nope"), "--repo", "a/b"])
    assert not hub.files
