"""The OpenAI-compatible Files + Batches API, as synthkit uses it to ask at half the price: one
aiohttp session that uploads a JSONL of chat requests (each line's body is exactly what the
online client posts, so both ask identical requests), creates, retrieves, lists and cancels
batches and downloads their output and error files; and the planner that splits requests into
batches within the provider's limits. Errors follow the online client: RequestFailed for what a
retry may fix, ProviderRefused for what it cannot."""

import asyncio
import json
import re
from collections.abc import AsyncIterator

import aiohttp

from synthkit.calls.providers.base import ProviderRefused, RequestFailed, cannot_connect, retry_after
from synthkit.calls.providers.openai_http import REFUSALS, error_body, error_message
from synthkit.core.errors import UserError
from synthkit.core.text import printable

ENDPOINT = "/v1/chat/completions"
# OpenAI's limits per batch (https://platform.openai.com/docs/guides/batch).
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
LOCAL_ID_KEY = "synthkit_local_id"
_ID = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._:~+=@-]{0,199}"
)  # OpenAI's ids: batch_..., file-...  # batch metadata naming the journal entry it was created for
# 405 and 501: a server that does not serve this method or path at all; retrying for half an hour is no use.
BATCH_REFUSALS = (*REFUSALS, 405, 501)


class Unreachable(RequestFailed):
    """No connection could be made to an endpoint that never answered (a wrong llm.api_base, a server that is not
    running): retrying for half an hour would not help."""


def request_line(custom_id: str, body: dict) -> bytes:
    """One line of a batch input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def plan_batches(lines: list[bytes], max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES) -> list[range]:
    """Split input lines, in order, into as few batches as the limits allow: each a range of indices."""
    batches, start, size = [], 0, 0
    for i, line in enumerate(lines):
        if len(line) > max_bytes:
            raise UserError(
                f"one batch request is {len(line)} bytes, more than a batch file may hold ({max_bytes}):"
                " shorten the prompt or ask it online"
            )
        if i > start and (i - start >= max_requests or size + len(line) > max_bytes):
            batches.append(range(start, i))
            start, size = i, 0
        size += len(line)
    if start < len(lines):
        batches.append(range(start, len(lines)))
    return batches


def read_jsonl(data: bytes) -> list[dict]:
    """The JSON objects of a provider's output file. A line that is not one (damaged, cut, not UTF-8) is
    skipped: its request then has no result and goes to the next round, like one the batch failed."""
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class BatchClient:
    """api_base as for the online client (…/v1); the key is sent as a Bearer token, like there."""

    def __init__(self, api_base: str, api_key: str | None, timeout_s: float = 300.0, name: str = "the provider"):
        self._base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout_s
        self.name = name
        self._session: aiohttp.ClientSession | None = None
        self._answered = False  # any answer at all: a refused connection is then transient

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made inside the running loop
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout), headers=self._headers
            )
        return self._session

    async def _call(self, method: str, path: str, raw: bool = False, **kwargs):
        try:
            async with self._client().request(method, self._base + path, **kwargs) as response:
                self._answered = True
                if response.status == 200:
                    return await response.read() if raw else _object(await response.read(), self.name, method, path)
                detail = error_message(await error_body(response))
                if response.status in BATCH_REFUSALS:  # the batch endpoints' refusals concern the whole batch job
                    refused = ProviderRefused(f"{self.name} refused {method} {path}: HTTP {response.status}: {detail}")
                    refused.status = response.status
                    raise refused
                raise RequestFailed(f"HTTP {response.status}: {detail}", response.status, retry_after(response.headers))
        except asyncio.TimeoutError:
            raise RequestFailed(f"no answer to {method} {path} within {self._timeout:g} s") from None
        except aiohttp.ClientError as e:
            if cannot_connect(e) and not self._answered:
                raise Unreachable(
                    printable(
                        f"cannot connect to llm.api_base={self._base} ({type(e).__name__}: {e}): is the server "
                        "running there, and are the host and port right?"
                    ),
                    cannot_connect=True,
                ) from None
            raise RequestFailed(printable(f"{type(e).__name__}: {e}")) from None

    async def upload(self, data: bytes, filename: str) -> str:
        """Upload a batch input file; its file id."""
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", data, filename=filename, content_type="application/jsonl")
        return _id(await self._call("POST", "/files", data=form), self.name, "POST /files")

    async def create(self, input_file_id: str, metadata: dict) -> dict:
        body = {"input_file_id": input_file_id, "endpoint": ENDPOINT, "completion_window": "24h", "metadata": metadata}
        batch = await self._call("POST", "/batches", json=body)
        _id(batch, self.name, "POST /batches")
        return batch

    async def retrieve(self, batch_id: str) -> dict:
        return await self._call("GET", f"/batches/{batch_id}")

    async def cancel(self, batch_id: str) -> dict:
        return await self._call("POST", f"/batches/{batch_id}/cancel")

    async def content(self, file_id: str) -> bytes | None:
        """A file's content; None when the provider no longer has it (its requests are asked again)."""
        checked_id(file_id, self.name, "a batch's output file")
        try:
            return await self._call("GET", f"/files/{file_id}/content", raw=True)
        except ProviderRefused as e:
            if getattr(e, "status", None) != 404:
                raise
            return None

    async def batches(self, created_after: float = 0.0) -> AsyncIterator[dict]:
        """The account's batches, newest first, down to those created at `created_after`."""
        after = None
        while True:
            params = {"limit": "100", **({"after": after} if after else {})}
            page = await self._call("GET", "/batches", params=params)
            data = (
                [b for b in page.get("data") or [] if isinstance(b, dict)] if isinstance(page.get("data"), list) else []
            )
            for batch in data:
                created = batch.get("created_at")
                if isinstance(created, (int, float)) and created < created_after:
                    return
                yield batch
            if not page.get("has_more") or not data:
                return
            after = checked_id(data[-1].get("id"), self.name, "GET /batches")

    async def find(self, local_id: str, created_after: float = 0.0) -> dict | None:
        """The batch created for journal entry `local_id`, if the provider has one."""
        async for batch in self.batches(created_after):
            metadata = batch.get("metadata")
            if isinstance(metadata, dict) and metadata.get(LOCAL_ID_KEY) == local_id:
                _id(batch, self.name, "GET /batches")
                return batch
        return None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _object(data: bytes, name: str, method: str, path: str) -> dict:
    """A 200 answer's JSON object; a page of something else (a proxy, a web server) is no batch API."""
    try:
        answer = json.loads(data)
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict):
        raise ProviderRefused(
            f"{name} answered {method} {path} with something other than a JSON object: "
            "is llm.api_base an OpenAI-compatible endpoint (…/v1) that serves the Files and Batches API?"
        )
    return answer


def _id(answer: dict, name: str, what: str) -> str:
    if not isinstance(answer.get("id"), str) or not answer["id"]:
        raise ProviderRefused(f"{name} answered {what} without an id: it does not serve the OpenAI Batches API")
    return checked_id(answer["id"], name, what)


def checked_id(value, name: str, what: str) -> str:
    """An id the provider gave (a file's, a batch's): it is journaled and goes into URL paths, so it must look
    like one (a short token), not a flood or a path."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ProviderRefused(
            f"{name} answered {what} with an id that is not one ({printable(repr(value), 80)}): "
            "it does not serve the OpenAI Batches API"
        )
    return value
