import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

# The CLI subprocesses inherit this: litellm must not fetch its price map from the internet.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

SERVER_SCRIPT = Path(__file__).with_name("openai_server.py")


class LoopbackServer:
    """tests/openai_server.py in a subprocess on 127.0.0.1; every request it got is in its log."""

    def __init__(self, log: Path, plan: dict | None, latency_ms: float):
        self.log = log
        args = [sys.executable, str(SERVER_SCRIPT), "--log", str(log), "--latency-ms", str(latency_ms)]
        if plan is not None:
            args += ["--plan", json.dumps(plan)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline().split()
        assert ready[:1] == ["READY"], f"test server did not start: {ready}"
        self.port = int(ready[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"

    def set_plan(self, plan: dict) -> None:
        request = urllib.request.Request(
            self.url + "/_plan",
            data=json.dumps(plan).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def reset(self, plan: dict | None, latency_ms: float) -> None:
        request = urllib.request.Request(
            self.url + "/_reset",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"plan": plan, "latency_ms": latency_ms}).encode(),
        )
        urllib.request.urlopen(request, timeout=10).read()

    def stats(self) -> dict:
        return json.loads(urllib.request.urlopen(self.url + "/_stats", timeout=10).read())

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def _server_pool(tmp_path_factory):
    """Loopback servers kept for the whole session (starting one costs a Python process): each test gets
    them reset (plan, latency, counters, log), as good as new."""
    pool: list = []
    yield pool
    for server in pool:
        server.stop()


@pytest.fixture
def openai_server(_server_pool, tmp_path_factory):
    """Loopback servers for this test: `openai_server(plan=..., latency_ms=...)`, each call a server of its own."""
    taken = []

    def start(plan: dict | None = None, latency_ms: float = 0) -> LoopbackServer:
        for server in _server_pool:
            if server not in taken and server.process.poll() is None:
                server.reset(plan, latency_ms)
                break
        else:
            server = LoopbackServer(tmp_path_factory.mktemp("server") / "requests.jsonl", plan, latency_ms)
            _server_pool.append(server)
        taken.append(server)
        return server

    yield start
    _server_pool[:] = [s for s in _server_pool if s.process.poll() is None]  # a test may have stopped one


def pytest_xdist_make_scheduler(config, log):
    """`load` scheduling, except that the tests through litellm (`[litellm]` in their id) all run on one worker:
    importing litellm takes seconds, and each worker that runs one of them pays for it. (xdist_group marks
    would say this, but --dist loadgroup does not group under pytest 9.2: pytest-xdist issue 1386.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LitellmTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "litellm" if re.search(r"[\[-]litellm[-\]]", nodeid) else nodeid

    return LitellmTogether(config, log)


@pytest.fixture(params=["litellm", "http"])
def client(request) -> str:
    """Both provider paths: tests that take this run once through litellm, once through the lean client."""
    return request.param


@pytest.fixture
def make(tmp_path, monkeypatch):
    """In-process runs, as the Python API makes them: `make(*overrides, server=None, client="auto", name="run")`
    returns the synthkit.interface.api.Run (or raises UserError). Each test gets its own cache dir and no keys."""
    from helpers import server_llm

    import synthkit

    for name in [k for k in os.environ if k.endswith("_API_KEY")]:
        monkeypatch.delenv(name)

    def run(*overrides: str, server=None, client: str = "auto", name: str = "run", card: bool = False):
        llm = server_llm(server, client=client) if server is not None else []
        return synthkit.generate(
            *llm,
            f"output_dir={tmp_path / name}",
            f"cache_dir={tmp_path / 'cache'}",
            "progress_every_s=0",
            *overrides,
            card=card,
        )

    return run


@pytest.fixture
def batch_server():
    """`batch_server(**config)` starts a loopback Files + Batches server (tests/batch_server.py), stopped after
    the test."""
    from batch_server import BatchServer

    started = []

    def start(**config) -> "BatchServer":
        started.append(BatchServer(config))
        return started[-1]

    yield start
    for server in started:
        server.stop()
