"""The OpenAI Files + Batches API on 127.0.0.1, for tests of synthkit's batch client.

    python tests/batch_server.py [--port 0] [--config JSON]

prints `READY <port>` once it listens. It keeps files and batches in memory and answers as the
real API does: POST /v1/files (multipart, purpose=batch), GET /v1/files/{id}[/content],
POST /v1/batches, GET /v1/batches[/{id}], POST /v1/batches/{id}/cancel. A batch advances one status
per retrieve (validating -> in_progress -> ... -> finalizing -> completed), and its answers are
built from each request's response_format like tests/openai_server.py's. The config scripts it:

    {"polls": 3,            # retrieves a batch spends in_progress before it finalizes
     "fail_rate": 0.0,      # fraction of requests answered HTTP 500 (into the error file)
     "expire_rate": 0.0,    # fraction never run: the batch ends `expired`, they get code batch_expired
     "reject": null,        # a message: every batch fails validation with it
     "malformed_rate": 0.0, # fraction of answers cut short (JSON that does not parse): the engine re-asks
     "max_requests": 50000, "max_bytes": 209715200,   # the provider's limits
     "output_extra": [],    # raw lines appended to every output file (a provider's garbage)
     "output_lost": false,  # the output file is named but gone (GET .../content answers 404)
     "status": null,        # a status every batch reports once validated, for ever ("paused"; "" drops the key)
     "list": true,          # false: GET /v1/batches answers 404, as servers that list no batches do
     "create_delay_s": 0,   # POST /v1/batches makes the batch, then waits this long before it answers
     "seed": 0}

In `reject`, `{key}` stands for the key the batch was created with (a provider that echoes it in its error).

Failures are drawn per (custom_id, how often it was submitted), so a resubmitted request gets a
fresh draw. POST /_config replaces the config; GET /_stats counts uploads, creations (also per
metadata synthkit_local_id), retrieves, lists and cancels.
"""

import argparse
import asyncio
import hashlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

from aiohttp import web
from openai_server import build

DEFAULTS = {
    "polls": 3,
    "fail_rate": 0.0,
    "expire_rate": 0.0,
    "reject": None,
    "malformed_rate": 0.0,
    "max_requests": 50_000,
    "max_bytes": 200 * 1024 * 1024,
    "seed": 0,
    "output_extra": [],
    "output_lost": False,
    "status": None,
    "list": True,
    "create_delay_s": 0,
}
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}}, status=status
    )


def _draw(seed: int, custom_id: str, attempt: int, what: str) -> float:
    digest = hashlib.sha256(f"{seed}:{what}:{custom_id}:{attempt}".encode()).hexdigest()
    return int(digest[:12], 16) / float(16**12)


def completion(body: dict, asked_before: int = 0, malformed: bool = False) -> dict:
    """The answer tests/openai_server.py gives to the same request (`asked_before`: how often its
    first message was asked before), so a run gets the same rows online and in batch."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    messages = body.get("messages") or [{}]
    tag = hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:10] + f"{asked_before:02d}"
    words = max([8] + [int(n) for n in re.findall(r"at least (\d+) words", str(messages[0].get("content", "")))])
    valid = build({"type": "object", **schema}, tag, words=words) if schema else {"answer": f"text {tag}"}
    content = json.dumps(valid, ensure_ascii=False)
    if malformed:
        content = content[:-12]
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages)
    return {
        "id": "chatcmpl-" + tag,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(content.split()),
            "total_tokens": prompt_words + len(content.split()),
        },
    }


class Server:
    def __init__(self, config: dict | None):
        self.config = {**DEFAULTS, **(config or {})}
        self.files: dict[str, dict] = {}
        self.content: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.hidden: dict[str, dict] = {}  # per batch: its requests, retrieves so far
        self.seen: dict[str, int] = {}  # custom_id -> times submitted
        self.asks: dict[str, int] = {}  # first message -> times answered, as tests/openai_server.py counts
        self.stats = {
            "files_uploaded": 0,
            "batches_created": 0,
            "created_by_local_id": {},
            "retrieves": 0,
            "lists": 0,
            "cancels": 0,
            "auth": [],
        }

    def _note_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if auth not in self.stats["auth"]:
            self.stats["auth"].append(auth)

    def _file(self, data: bytes, filename: str, purpose: str) -> dict:
        file_id = "file-" + uuid.uuid4().hex[:24]
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.content[file_id] = data
        return self.files[file_id]

    async def upload(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or not hasattr(upload, "file"):
            return _error(400, "expected multipart fields purpose=batch and file")
        data = upload.file.read()
        if len(data) > self.config["max_bytes"]:
            return _error(400, f"File is too large: {len(data)} bytes, the limit is {self.config['max_bytes']}")
        self.stats["files_uploaded"] += 1
        return web.json_response(self._file(data, upload.filename, "batch"))

    async def file_info(self, request: web.Request) -> web.Response:
        file = self.files.get(request.match_info["file_id"])
        return web.json_response(file) if file else _error(404, "No such File object")

    async def file_content(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        data = self.content.get(request.match_info["file_id"])
        if data is None:
            return _error(404, "No such File object")
        return web.Response(body=data, content_type="application/octet-stream")

    async def create(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.content:
            return _error(400, f"Invalid input_file_id {file_id!r}: no such file")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "endpoint must be /v1/chat/completions and completion_window 24h")
        now = int(time.time())
        batch_id = "batch_" + uuid.uuid4().hex[:24]
        metadata = body.get("metadata") or None
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        self.batches[batch_id] = batch
        problem = self._validate(file_id)
        if problem:
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            problem["message"] = problem["message"].replace("{key}", key)
        self.hidden[batch_id] = {"retrieves": 0, "requests": None, "problem": problem}
        self.stats["batches_created"] += 1
        local_id = (metadata or {}).get("synthkit_local_id")
        if local_id:
            counts = self.stats["created_by_local_id"]
            counts[local_id] = counts.get(local_id, 0) + 1
        await asyncio.sleep(self.config["create_delay_s"])
        return web.json_response(batch)

    def _validate(self, file_id: str) -> dict | None:
        """Why the batch fails validation ({code, message, line}), or None; parses its requests."""
        if self.config["reject"]:
            return {"code": "invalid_request", "message": self.config["reject"], "line": None}
        lines = [line for line in self.content[file_id].decode("utf-8").splitlines() if line.strip()]
        if len(lines) > self.config["max_requests"]:
            return {
                "code": "too_many_requests",
                "message": f"The batch has {len(lines)} requests, the limit is {self.config['max_requests']}.",
                "line": None,
            }
        seen = set()
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
            except ValueError:
                return {"code": "invalid_json_line", "message": "This line is not parseable JSON.", "line": number}
            if item.get("method") != "POST" or item.get("url") != "/v1/chat/completions" or "body" not in item:
                return {"code": "invalid_request", "message": "method, url or body is wrong.", "line": number}
            if item.get("custom_id") in seen or not item.get("custom_id"):
                return {"code": "duplicate_custom_id", "message": "custom_id must be unique.", "line": number}
            seen.add(item["custom_id"])
        return None

    def _advance(self, batch: dict) -> None:
        hidden = self.hidden[batch["id"]]
        now = int(time.time())
        status = batch["status"]
        if status == "validating":
            if hidden["problem"]:
                problem = hidden["problem"]
                batch.update(
                    status="failed",
                    failed_at=now,
                    errors={
                        "object": "list",
                        "data": [
                            {
                                "code": problem["code"],
                                "message": problem["message"],
                                "param": None,
                                "line": problem["line"],
                            }
                        ],
                    },
                )
                return
            requests = [
                json.loads(line)
                for line in self.content[batch["input_file_id"]].decode("utf-8").splitlines()
                if line.strip()
            ]
            hidden["requests"] = requests
            batch.update(status="in_progress", in_progress_at=now)
            batch["request_counts"]["total"] = len(requests)
        elif status == "in_progress":
            hidden["retrieves"] += 1
            if hidden["retrieves"] >= self.config["polls"]:
                batch.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            self._finish(batch, cancelled=False)
        elif status == "cancelling":
            self._finish(batch, cancelled=True)

    def _finish(self, batch: dict, cancelled: bool) -> None:
        config, now = self.config, int(time.time())
        outputs, errors = [], []
        expired = False
        for n, item in enumerate(self.hidden[batch["id"]]["requests"] or []):
            custom_id = item["custom_id"]
            attempt = self.seen.get(custom_id, 0)
            self.seen[custom_id] = attempt + 1
            line_id = f"batch_req_{uuid.uuid4().hex[:16]}"
            if cancelled and n % 2:  # a cancelled batch keeps what it had already done
                continue
            if _draw(config["seed"], custom_id, attempt, "expire") < config["expire_rate"]:
                expired = True
                errors.append(
                    {
                        "id": line_id,
                        "custom_id": custom_id,
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the completion window expired.",
                        },
                    }
                )
            elif _draw(config["seed"], custom_id, attempt, "fail") < config["fail_rate"]:
                errors.append(
                    {
                        "id": line_id,
                        "custom_id": custom_id,
                        "error": None,
                        "response": {
                            "status_code": 500,
                            "request_id": uuid.uuid4().hex,
                            "body": {
                                "error": {
                                    "message": "The server had an error processing your request.",
                                    "type": "server_error",
                                    "code": None,
                                }
                            },
                        },
                    }
                )
            else:
                outputs.append(
                    {
                        "id": line_id,
                        "custom_id": custom_id,
                        "error": None,
                        "response": {
                            "status_code": 200,
                            "request_id": uuid.uuid4().hex,
                            "body": completion(
                                item["body"],
                                self._asked(item["body"]),
                                _draw(config["seed"], custom_id, attempt, "malformed") < config["malformed_rate"],
                            ),
                        },
                    }
                )
        name = batch["id"]
        if outputs or config["output_extra"]:
            data = _jsonl(outputs) + "".join(line + "\n" for line in config["output_extra"]).encode("utf-8")
            batch["output_file_id"] = self._file(data, f"{name}_output.jsonl", "batch_output")["id"]
            if config["output_lost"]:
                del self.content[batch["output_file_id"]]
        if errors:
            batch["error_file_id"] = self._file(_jsonl(errors), f"{name}_error.jsonl", "batch_output")["id"]
        batch["request_counts"].update(completed=len(outputs), failed=len(errors))
        if cancelled:
            batch.update(status="cancelled", cancelled_at=now)
        elif expired:
            batch.update(status="expired", expired_at=now)
        else:
            batch.update(status="completed", completed_at=now)

    def _asked(self, body: dict) -> int:
        prompt = str(((body.get("messages") or [{}])[0]).get("content") or "")
        n = self.asks.get(prompt, 0)
        self.asks[prompt] = n + 1
        return n

    async def retrieve(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "No such batch")
        self.stats["retrieves"] += 1
        stuck = self.config["status"] is not None and batch["status"] == "in_progress"
        if batch["status"] not in TERMINAL and not stuck:
            self._advance(batch)
        if self.config["status"] is not None and batch["status"] == "in_progress":
            shown = {k: v for k, v in batch.items() if k != "status"}
            return web.json_response({**shown, "status": self.config["status"]} if self.config["status"] else shown)
        return web.json_response(batch)

    async def cancel(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "No such batch")
        if batch["status"] in TERMINAL:
            return _error(409, f"Cannot cancel a batch with status {batch['status']}.")
        self.stats["cancels"] += 1
        if batch["status"] == "validating":
            self._advance(batch)
        if batch["status"] not in TERMINAL:
            batch.update(status="cancelling", cancelling_at=int(time.time()))
        return web.json_response(batch)

    async def list(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        self.stats["lists"] += 1
        if not self.config["list"]:
            return _error(404, "Not Found")
        limit = min(int(request.query.get("limit", 20)), 100)
        newest_first = list(reversed(self.batches.values()))
        after = request.query.get("after")
        if after:
            ids = [b["id"] for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit,
            }
        )

    async def set_config(self, request: web.Request) -> web.Response:
        self.config = {**DEFAULTS, **(await request.json())}
        return web.json_response(self.config)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)


def _jsonl(items: list[dict]) -> bytes:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode("utf-8")


async def serve(port: int, config: dict | None) -> None:
    server = Server(config)
    app = web.Application(client_max_size=1024 * 1024 * 1024)
    app.router.add_post("/v1/files", server.upload)
    app.router.add_get("/v1/files/{file_id}", server.file_info)
    app.router.add_get("/v1/files/{file_id}/content", server.file_content)
    app.router.add_post("/v1/batches", server.create)
    app.router.add_get("/v1/batches", server.list)
    app.router.add_get("/v1/batches/{batch_id}", server.retrieve)
    app.router.add_post("/v1/batches/{batch_id}/cancel", server.cancel)
    app.router.add_post("/_config", server.set_config)
    app.router.add_get("/_stats", server.get_stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"READY {site._server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


class BatchServer:
    """This server in a process of its own, for a test: started, asked for its counts, stopped."""

    def __init__(self, config: dict):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--config", json.dumps(config)], stdout=subprocess.PIPE, text=True
        )
        ready = self.process.stdout.readline().split()
        assert ready[:1] == ["READY"], f"batch server did not start: {ready}"
        self.url = f"http://127.0.0.1:{ready[1]}"
        self.base_url = self.url + "/v1"

    def stats(self) -> dict:
        return json.loads(urllib.request.urlopen(self.url + "/_stats", timeout=10).read())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default=None, help="a JSON config (see the module docstring)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, json.loads(args.config) if args.config else None))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
