"""A loopback stand-in for the Hugging Face Hub's HTTP API, on 127.0.0.1, for tests of `synthkit push`.

It serves what huggingface_hub's create_repo and create_commit call: POST /api/repos/create,
POST /api/validate-yaml (the card's front matter must parse as YAML), POST /api/{type}s/{repo}/preupload/{rev}
(every file is answered "regular", so contents arrive base64 in the commit: no LFS or Xet), and
POST /api/{type}s/{repo}/commit/{rev} (ndjson). Any other request is recorded and answered 404. Every request
is recorded in `calls`; committed files are kept in `files` by repo and path. A request without
`Authorization: Bearer <token>` is answered 401, as the Hub answers a wrong token.

It also serves public models for download (`models`: repo id -> folder), as huggingface_hub's snapshot_download
and hf_hub_download ask for them: GET /api/models/{repo}/revision/{rev} (the commit), GET
/api/models/{repo}/tree/{commit} (the files), HEAD and GET /{repo}/resolve/{commit}/{path} (plain HTTP, no Xet)."""

import asyncio
import base64
import hashlib
import json
import threading
from pathlib import Path

import yaml
from aiohttp import web


class HubServer:
    COMMIT = "5ca1ab1e" * 5  # the one revision of every served model

    def __init__(self, token: str, models: dict | None = None):
        self.token = token
        self.models = {
            repo: {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
            for repo, folder in (models or {}).items()
        }
        self.calls: list = []
        self.files: dict = {}  # repo id -> {path: bytes}
        self.repos: dict = {}  # repo id -> create payload
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._started.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        call = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "authorization": request.headers.get("Authorization"),
            "body": body,
        }
        self.calls.append(call)
        parts = request.path.strip("/").split("/")
        if request.method in ("GET", "HEAD") and (parts[:2] == ["api", "models"] or "resolve" in parts):
            return self._model(request.method, parts)
        if call["authorization"] != f"Bearer {self.token}":
            return web.json_response({"error": "Invalid credentials in Authorization header"}, status=401)
        if request.method == "POST" and parts == ["api", "repos", "create"]:
            payload = json.loads(body)
            repo = f"{payload.get('organization')}/{payload['name']}"
            self.repos[repo] = payload
            return web.json_response({"url": f"{self.url}/{payload.get('type', 'model')}s/{repo}", "name": repo})
        if request.method == "POST" and parts == ["api", "validate-yaml"]:
            return self._validate_yaml(json.loads(body)["content"])
        if request.method == "POST" and len(parts) == 6 and parts[0] == "api" and parts[4] in ("preupload", "commit"):
            repo = f"{parts[2]}/{parts[3]}"
            if repo not in self.repos:
                return web.json_response({"error": "Repository not found"}, status=404)
            if parts[4] == "preupload":
                files = json.loads(body)["files"]
                return web.json_response(
                    {
                        "files": [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                            for f in files
                        ]
                    }
                )
            return self._commit(repo, body)
        return web.json_response({"error": f"not served by the test hub: {request.method} {request.path}"}, status=404)

    def _validate_yaml(self, content: str) -> web.Response:
        front = content.split("---\n")[1] if content.startswith("---\n") else ""
        try:
            yaml.safe_load(front)
        except yaml.YAMLError as e:
            return web.json_response({"errors": [{"message": str(e)}], "warnings": []}, status=400)
        return web.json_response({"errors": [], "warnings": []})

    def _commit(self, repo: str, body: bytes) -> web.Response:
        stored = self.files.setdefault(repo, {})
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                stored[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] != "header":
                return web.json_response({"error": f"unexpected commit item {item['key']}"}, status=400)
        oid = f"{len(self.calls):040x}"
        return web.json_response(
            {"commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}
        )

    def _model(self, method: str, parts: list) -> web.Response:
        if parts[0] == "api":
            repo, rest = "/".join(parts[2:4]), parts[4:]
        else:
            at = parts.index("resolve")
            repo, rest = "/".join(parts[:at]), parts[at:]
        files = self.models.get(repo)
        if files is None:
            return web.json_response(
                {"error": "Repository not found"}, status=404, headers={"X-Error-Code": "RepoNotFound"}
            )
        if parts[0] == "api" and rest[:1] == ["tree"]:
            entries = [
                {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for p, b in files.items()
            ]
            return web.json_response(entries)
        if parts[0] == "api":
            return web.json_response({"id": repo, "sha": self.COMMIT, "siblings": [{"rfilename": p} for p in files]})
        path = "/".join(rest[2:])
        if path not in files:
            return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.COMMIT})
        body = files[path]
        headers = {"X-Repo-Commit": self.COMMIT, "ETag": f'"{hashlib.sha1(body).hexdigest()}"'}
        if method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        return web.Response(body=body, headers=headers)
