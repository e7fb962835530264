"""Driving requests through a provider's batch API, durably: submit what the journal does not
already hold, poll, hand each result to a callback as its batch ends, and return the requests
left without an answer for the caller's next round. Every step at the provider is journaled
before it is taken, so a rerun after a kill -9 picks up the same batches and creates none twice.
Results are delivered at least once: a kill after a batch's results were handed over but before
that was journaled hands them over again, so the callback must be idempotent per custom_id."""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Optional, TypeVar

from synthkit.calls.batch.client import (
    LOCAL_ID_KEY,
    MAX_BYTES,
    MAX_REQUESTS,
    BatchClient,
    Unreachable,
    plan_batches,
    read_jsonl,
    request_line,
)
from synthkit.calls.batch.journal import STATUSES, TERMINAL, BatchEntry, BatchJournal
from synthkit.calls.providers.base import ProviderRefused, RequestFailed
from synthkit.core.errors import UserError
from synthkit.core.text import printable

LIST_SLACK_S = 3600.0  # provider clocks drift: look this far before a batch's planning for it
# Checks in a row a batch may report a status the Batch API does not have (or none) before it counts as failed.
STRANGE_STATUS_CHECKS = 30
NOT_SERVED = (404, 405, 501)  # a server that does not serve GET /batches at all
T = TypeVar("T")


@dataclass(frozen=True)
class BatchResult:
    custom_id: str
    status_code: int | None  # the request's HTTP status; None when it never ran (expired, cancelled)
    body: dict | None  # the chat completion, for status 200; else the error body, if any
    error: str | None  # "code: message" when there is no answer

    @property
    def ok(self) -> bool:
        return self.status_code == 200 and self.body is not None


async def run_batches(
    requests: list[tuple[str, dict]],
    client: BatchClient,
    journal: BatchJournal,
    poll_every_s: float,
    on_result: Callable[[BatchResult], Optional[Awaitable[None]]],
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    attempts: int = 6,
    again: frozenset = frozenset(),
) -> list[str]:
    """Ask `requests` ((custom_id, chat body) pairs) through batches until every batch in the
    journal has ended; the custom_ids still without an answer, to resubmit in a next round.
    Requests already answered or in flight according to the journal are not asked again, but for
    those in `again` (answered, but the answer is lost to the caller)."""
    bodies = dict(requests)  # a resumed entry uploads the caller's requests, the very same lines
    for entry in list(journal.entries.values()):
        # Planned in a run that was killed before it uploaded: nothing of it exists at the provider,
        # and this round may not ask all of it (a killed round's re-asks come later): plan anew.
        if not entry.done and entry.file_id is None and not entry.creating:
            if any(c not in bodies for c in entry.custom_ids):
                journal.dropped(entry)
    settled = journal.settled() - set(again)
    todo = [(custom_id, body) for custom_id, body in requests if custom_id not in settled]
    lines = [request_line(custom_id, body) for custom_id, body in todo]
    for part in plan_batches(lines, max_requests, max_bytes):
        journal.plan([todo[i][0] for i in part])
    unanswered: list[str] = []
    for entry in list(journal.entries.values()):
        if not entry.done and entry.batch_id is None:
            await _retrying(lambda e=entry: _submit(e, client, journal, bodies), attempts, poll_every_s)
    strange: dict[str, int] = {}  # local id -> checks in a row with a status the Batch API does not have
    while True:
        pending = [e for e in journal.entries.values() if not e.done]
        for entry in pending:
            batch = await _retrying(lambda e=entry: client.retrieve(e.batch_id), attempts, poll_every_s)
            journal.status(entry, batch)
            strange[entry.local_id] = strange.get(entry.local_id, 0) + 1 if entry.status not in STATUSES else 0
            if strange[entry.local_id] >= STRANGE_STATUS_CHECKS:
                await _give_up(entry, client, journal, strange[entry.local_id])
            if entry.status in TERMINAL:
                unanswered += await _retrying(
                    lambda e=entry, b=batch: _collect(e, b, client, journal, on_result), attempts, poll_every_s
                )
        failed = [e for e in pending if e.status == "failed"]
        if failed:
            given_up = strange.get(failed[0].local_id, 0) >= STRANGE_STATUS_CHECKS
            raise UserError(
                f"batch {failed[0].batch_id} {failed[0].errors}; its requests are asked again when you rerun"
                if given_up
                else f"{client.name} rejected batch {failed[0].batch_id}: {failed[0].errors}"
            )
        if not any(not e.done for e in journal.entries.values()):
            return unanswered
        await asyncio.sleep(poll_every_s)


async def _give_up(entry: BatchEntry, client: BatchClient, journal: BatchJournal, checks: int) -> None:
    """A batch whose status is none the Batch API has counts as failed; it is cancelled (if the provider still
    runs it, its requests would be paid twice once asked again)."""
    status = f"status {entry.status!r}" if entry.status else "no status"
    journal.failed(
        entry,
        f"at {client.name} reported {status} in {checks} checks in a row, which the Batch API does not have: "
        "synthkit counts it as failed and asked the provider to cancel it",
    )
    try:
        await client.cancel(entry.batch_id)
    except (RequestFailed, ProviderRefused):
        pass  # the provider may not know how either; the batch is failed here all the same


async def _find(entry: BatchEntry, client: BatchClient, journal: BatchJournal) -> Optional[dict]:
    """The provider's batch of an entry whose create was sent but whose answer was lost (a kill -9 between),
    looked up by its metadata. A server that lists no batches cannot say: one line says what to do."""
    try:
        return await client.find(entry.local_id, entry.planned_at - LIST_SLACK_S)
    except ProviderRefused as e:
        if getattr(e, "status", None) not in NOT_SERVED:
            raise
        status = e.status
    raise UserError(
        f"batch {entry.local_id} was being created when a run stopped, and {client.name} does not list batches "
        f"(GET /batches: HTTP {status}), so synthkit cannot tell whether it exists: if {client.name} has a batch "
        f"with metadata {LOCAL_ID_KEY}={entry.local_id} (input file {entry.file_id}), cancel it there; then "
        f"`synthkit batches {journal.path.parent} --cancel` forgets it, and a rerun asks its requests anew"
    )


async def _submit(entry: BatchEntry, client: BatchClient, journal: BatchJournal, bodies: dict) -> None:
    """Upload and create the batch of a planned entry, each step once whatever crashes between."""
    if entry.creating:
        # A create was sent: if the provider has the batch, this run only lost the answer.
        found = await _find(entry, client, journal)
        if found is not None:
            journal.created(entry, found["id"])
            return
    if entry.file_id is None:
        missing = [c for c in entry.custom_ids if c not in bodies]
        if missing:
            raise UserError(
                f"the batch journal {journal.path} holds requests this run does not ask "
                f"(e.g. {missing[0]}): rerun with the same config, or cancel with `synthkit batches`"
            )
        data = b"".join(request_line(c, bodies[c]) for c in entry.custom_ids)
        journal.uploaded(entry, await client.upload(data, f"synthkit-{entry.local_id}.jsonl"))
    journal.creating(entry)
    batch = await client.create(entry.file_id, {LOCAL_ID_KEY: entry.local_id})
    journal.created(entry, batch["id"])
    journal.status(entry, batch)


async def _collect(
    entry: BatchEntry,
    batch: dict,
    client: BatchClient,
    journal: BatchJournal,
    on_result: Callable[[BatchResult], Optional[Awaitable[None]]],
) -> list[str]:
    """Hand over every result of an ended batch; the custom_ids left without an answer."""
    results: dict[str, BatchResult] = {}
    asked, gone = set(entry.custom_ids), []
    for key in ("output_file_id", "error_file_id"):
        if batch.get(key):
            data = await client.content(batch[key])
            if data is None:
                gone.append(batch[key])
                continue
            for line in read_jsonl(data):
                result = _result(line)
                if result is None or result.custom_id not in asked:  # another batch's line: not ours to answer
                    continue
                if result.custom_id in results and results[result.custom_id].ok:
                    continue
                results[result.custom_id] = result
    reason = {
        "expired": "batch_expired: not run within the completion window",
        "cancelled": "batch_cancelled: the batch was cancelled before this request ran",
        "failed": f"batch_failed: {entry.errors}",
    }.get(
        entry.status,
        f"missing: {client.name} no longer has file {gone[0]}" if gone else "missing: the batch returned no result",
    )
    for custom_id in entry.custom_ids:
        results.setdefault(custom_id, BatchResult(custom_id, None, None, reason))
    for custom_id in entry.custom_ids:
        handled = on_result(results[custom_id])
        if inspect.isawaitable(handled):
            await handled
    failed = [c for c in entry.custom_ids if not results[c].ok]
    journal.collected(entry, failed)
    return failed


def _result(line: dict) -> Optional[BatchResult]:
    """A result line read as the Batch API documents it; None for a line without a custom_id. Any other
    part of the wrong shape makes it a failed request (asked again), never a crash."""
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str):
        return None
    response = line.get("response") if isinstance(line.get("response"), dict) else {}
    error = line.get("error")
    status, body = response.get("status_code"), response.get("body")
    if not isinstance(body, dict):
        body = None
    if error:
        text = (
            f"{error.get('code') or 'error'}: {error.get('message') or ''}"
            if isinstance(error, dict)
            else f"error: {str(error)[:1000]}"
        )
    elif status != 200 or body is None:
        detail = body.get("error") if body is not None else None
        message = detail.get("message") if isinstance(detail, dict) else str(response.get("body"))[:1000]
        text = f"http_{printable(status, 20)}: {message}"
    else:
        text = None
    # The reason goes into rejects.jsonl and error lines: printable and bounded, whatever the provider wrote.
    return BatchResult(
        custom_id, status if isinstance(status, int) else None, body, printable(text) if text is not None else None
    )


async def _retrying(step: Callable[[], Awaitable[T]], attempts: int, pause_s: float) -> T:
    """A step at the provider, tried again through transient failures (ProviderRefused is not)."""
    for attempt in range(attempts):
        try:
            return await step()
        except Unreachable as e:
            raise UserError(str(e)) from None
        except RequestFailed as e:
            if attempt == attempts - 1:
                raise UserError(
                    f"{e} (after {attempts} attempts): the batches are kept in the journal; rerun to resume"
                ) from None
            await asyncio.sleep(e.retry_after or pause_s * 2**attempt)
    raise AssertionError("unreachable")


async def cancel_all(journal: BatchJournal, client: BatchClient) -> list[str]:
    """Cancel every batch of the journal still running at the provider, and drop those never
    created; the batch ids cancelled (and the local ids of those forgotten unconfirmed). Results they had already produced are collected by the
    next run_batches (or lost, if the run is not resumed)."""
    cancelled = []
    for entry in journal.entries.values():
        if entry.done:
            continue
        if entry.batch_id is None and entry.creating:
            try:
                found = await _find(entry, client, journal)
            except UserError:  # a server that lists no batches: forgotten here, to be cancelled there if it exists
                found = None
                cancelled.append(
                    f"{entry.local_id} (its creation was never confirmed and {client.name} lists no batches: "
                    f"if it has one with metadata {LOCAL_ID_KEY}={entry.local_id}, cancel it there)"
                )
            if found is not None:
                journal.created(entry, found["id"])
        if entry.batch_id is None:
            journal.dropped(entry)
            continue
        if entry.status not in TERMINAL and entry.status != "cancelling":
            try:
                batch = await client.cancel(entry.batch_id)
            except RequestFailed as e:
                if e.status != 409:  # 409: it ended meanwhile
                    raise
                batch = await client.retrieve(entry.batch_id)
            journal.cancel_requested(entry)
            journal.status(entry, batch)
            cancelled.append(entry.batch_id)
    return cancelled


async def batch_status(journal: BatchJournal, client: BatchClient | None = None) -> list[dict]:
    """Each batch of the journal: its state and request counts, refreshed from the provider when
    a client is given (those not yet collected)."""
    rows = []
    for entry in journal.entries.values():
        if client is not None and entry.batch_id and not entry.done:
            journal.status(entry, await client.retrieve(entry.batch_id))
        state = (
            "dropped"
            if entry.dropped
            else "collected"
            if entry.collected
            else entry.status or ("creating" if entry.creating else "uploaded" if entry.file_id else "planned")
        )
        rows.append(
            {
                "local_id": entry.local_id,
                "batch_id": entry.batch_id,
                "state": state,
                "requests": len(entry.custom_ids),
                "completed": entry.counts.get("completed", 0),
                "failed": entry.counts.get("failed", 0),
                "unanswered": len(entry.failed),
                "errors": entry.errors,
            }
        )
    return rows


def format_status(rows: list[dict]) -> str:
    """The status rows as a table for `synthkit batches RUN`; every cell printable (a journal written by an
    earlier version, or edited, may hold a provider's raw text)."""
    header = f"{'local id':<19} {'batch id':<32} {'state':<11} {'requests':>8} {'done':>8} {'failed':>7}"
    lines = [header]
    for row in rows:
        cell = {k: v if v is None or isinstance(v, int) else printable(v, 40) for k, v in row.items()}
        lines.append(
            f"{cell['local_id']:<19} {cell['batch_id'] or '-':<32} {cell['state']:<11} {cell['requests']:>8}"
            f" {cell['completed']:>8} {cell['failed']:>7}" + (f"  {printable(row['errors'])}" if row["errors"] else "")
        )
    return "\n".join(lines)
