"""The batch journal: one JSONL file in the output dir recording, each line fsynced before the
step it announces goes on, what synthkit intends and has done at the provider's batch API: a batch
planned (its local id and custom_ids) before anything is uploaded, then its input file id, the
attempt to create it, its batch id, its status changes, and its results collected. Replaying the
file after a kill -9 at any moment tells which batches exist (or may exist: created but not yet
journaled, to be looked up by their metadata) at the provider, which are still to poll, and which
results were already handed over, so nothing is submitted twice. What the provider says (a status, its
counts, its reasons) is journaled printable and bounded: a hostile provider's flood or escape codes stay out."""

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.text import printable

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# Every status of the Batch API: a batch in any other (or in none) is polled only for so long.
STATUSES = TERMINAL | {"validating", "in_progress", "finalizing", "cancelling"}
COUNTS = ("total", "completed", "failed")  # the request_counts kept


@dataclass
class BatchEntry:
    local_id: str
    custom_ids: list[str]
    planned_at: float
    file_id: str | None = None
    creating: bool = False  # create was called: the batch may exist even without a batch_id here
    batch_id: str | None = None
    status: str | None = None  # the provider's last known status
    counts: dict = field(default_factory=dict)  # the provider's request_counts
    errors: str | None = None  # why the provider failed the whole batch
    cancel_requested: bool = False
    collected: bool = False  # its results were handed to the caller
    failed: list[str] = field(default_factory=list)  # custom_ids without an answer, once collected
    dropped: bool = False  # cancelled before it was ever created

    @property
    def done(self) -> bool:
        return self.collected or self.dropped


class BatchJournal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.entries: dict[str, BatchEntry] = {}
        self._replay()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- appended to until close()

    def _replay(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        for number, line in enumerate(whole.splitlines(), 1):
            if line.strip():
                try:
                    self._apply(json.loads(line))
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise UserError(
                        f"the batch journal {self.path} is damaged at line {number}: restore it, or move it away "
                        "(then batches it names are not collected; cancel them at the provider)"
                    ) from None
        if len(whole) < len(data):
            # A kill -9 mid-write leaves half a line; its step never went on, so it is dropped.
            with open(self.path, "r+b") as f:
                f.truncate(len(whole))

    def _apply(self, record: dict) -> None:
        event = record["event"]
        if event == "planned":
            self.entries[record["local_id"]] = BatchEntry(record["local_id"], record["custom_ids"], record["t"])
            return
        entry = self.entries[record["local_id"]]
        if event == "uploaded":
            entry.file_id = record["file_id"]
        elif event == "creating":
            entry.creating = True
        elif event == "created":
            entry.batch_id = record["batch_id"]
        elif event == "status":
            entry.status, entry.counts, entry.errors = record["status"], _counts(record, "counts"), record.get("errors")
        elif event == "cancel_requested":
            entry.cancel_requested = True
        elif event == "collected":
            entry.collected, entry.failed = True, record["failed"]
        elif event == "dropped":
            entry.dropped = True

    def _write(self, record: dict) -> None:
        record = {"t": time.time(), **record}
        self._apply(record)
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def plan(self, custom_ids: list[str]) -> BatchEntry:
        """Record a batch about to be submitted. Local ids are unique across runs and machines,
        as the provider's batch listing is shared by the whole account."""
        local_id = f"{secrets.token_hex(6)}-{len(self.entries):05d}"
        self._write({"event": "planned", "local_id": local_id, "custom_ids": custom_ids})
        return self.entries[local_id]

    def uploaded(self, entry: BatchEntry, file_id: str) -> None:
        self._write({"event": "uploaded", "local_id": entry.local_id, "file_id": file_id})

    def creating(self, entry: BatchEntry) -> None:
        if not entry.creating:
            self._write({"event": "creating", "local_id": entry.local_id})

    def created(self, entry: BatchEntry, batch_id: str) -> None:
        self._write({"event": "created", "local_id": entry.local_id, "batch_id": batch_id})

    def status(self, entry: BatchEntry, batch: dict) -> None:
        """The provider's view of the batch, journaled when it changed."""
        self._status(entry, _status(batch), _counts(batch), _errors_line(batch))

    def failed(self, entry: BatchEntry, reason: str) -> None:
        """synthkit counts the batch as failed (its status is none the Batch API has): its requests go again."""
        self._status(entry, "failed", entry.counts, printable(reason))

    def _status(self, entry: BatchEntry, status, counts: dict, errors) -> None:
        if (status, counts, errors) != (entry.status, entry.counts, entry.errors):
            self._write(
                {"event": "status", "local_id": entry.local_id, "status": status, "counts": counts, "errors": errors}
            )

    def cancel_requested(self, entry: BatchEntry) -> None:
        self._write({"event": "cancel_requested", "local_id": entry.local_id})

    def collected(self, entry: BatchEntry, failed: list[str]) -> None:
        self._write({"event": "collected", "local_id": entry.local_id, "failed": failed})

    def dropped(self, entry: BatchEntry) -> None:
        self._write({"event": "dropped", "local_id": entry.local_id})

    def settled(self) -> set[str]:
        """custom_ids that need no new submission: answered, or in a batch not yet collected."""
        ids: set[str] = set()
        for entry in self.entries.values():
            if entry.dropped:
                continue
            failed = set(entry.failed) if entry.collected else set()
            ids.update(c for c in entry.custom_ids if c not in failed)
        return ids

    def answered(self) -> set[str]:
        """custom_ids whose answer was handed over by a collected batch."""
        ids: set[str] = set()
        for entry in self.entries.values():
            if entry.collected:
                failed = set(entry.failed)
                ids.update(c for c in entry.custom_ids if c not in failed)
        return ids

    def close(self) -> None:
        self._file.close()


def _status(batch: dict):
    """The batch's status as the provider gave it, if it is a short text (None when it gave none)."""
    status = batch.get("status")
    return printable(status, 40) if isinstance(status, str) and status else None


def _counts(batch: dict, key: str = "request_counts") -> dict:
    counts = batch.get(key)
    if not isinstance(counts, dict):
        return {}
    return {k: counts[k] for k in COUNTS if isinstance(counts.get(k), int) and not isinstance(counts[k], bool)}


def _errors_line(batch: dict) -> str | None:
    """The provider's reasons for failing a whole batch, as one printable line."""
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    reasons = []
    for error in data[:20] if isinstance(data, list) else []:
        if isinstance(error, dict):
            where = f" (input line {error['line']})" if error.get("line") else ""
            reasons.append(f"{error.get('code') or 'error'}: {error.get('message') or ''}{where}".strip())
    return printable("; ".join(reasons)) or None
