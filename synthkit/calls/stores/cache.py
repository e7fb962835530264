"""The response cache: model answers on disk, addressed by a hash of everything that shapes the
request, shared by every run and process on the machine. SQLite in WAL mode gives concurrent
readers and writers across processes, and survives a kill -9 at any moment. A damaged cache file is
set aside (renamed, never deleted) and a new one started: a cache only saves money, it must never
stop a run."""

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Optional

from synthkit.calls.providers.base import Completion
from synthkit.core.errors import UserError
from synthkit.core.paths import configured_cache_dir

CACHE_FILE = "responses.sqlite"
_SIDE_FILES = ("-wal", "-shm")
_OPEN_LOCK = ".responses.open-lock"


def cache_dir(setting: Optional[str]) -> Path:
    """The machine's cache dir (it also holds the shared rate-limit schedules), made if needed."""
    directory = configured_cache_dir(setting)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"cache_dir={directory} is a file: choose a directory (cache_dir=...), or cache=off")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"cannot write the cache dir {directory}: {e.strerror}; choose another with cache_dir=... "
            "(or SYNTHKIT_CACHE_DIR)"
        ) from None
    return directory


def request_key(**parts) -> str:
    """The address of a request: model, endpoint, messages, sampling parameters, schema and the
    row's seed, so two rows with the same prompt still get answers of their own."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def call_key(llm, messages: list, schema: dict, row_id: str, max_tokens: Optional[int] = None) -> str:
    """The request key of a call of the run's model (online and in batches alike, so each finds the other's);
    `max_tokens` is the call's own cap, when it has one (llm.max_tokens otherwise: existing keys stay as they were)."""
    return request_key(
        model=llm.model,
        api_base=llm.api_base,
        messages=messages,
        schema=schema,
        temperature=llm.temperature,
        top_p=llm.top_p,
        max_tokens=llm.max_tokens if max_tokens is None else max_tokens,
        row=row_id,
    )


class ResponseCache:
    def __init__(self, directory: Path):
        self.path = directory / CACHE_FILE
        with _opening(directory / _OPEN_LOCK):
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                    raise UserError(
                        f"the response cache {self.path} is locked by another process for too long; "
                        "run with cache=off or another cache_dir"
                    ) from None
                self._set_aside(e)
                try:
                    self._db = self._open()
                except sqlite3.DatabaseError as again:
                    raise UserError(
                        f"cannot open the response cache {self.path} ({again}); run with cache=off or "
                        "choose another cache_dir"
                    ) from None

    def _open(self) -> sqlite3.Connection:
        # Autocommit: each answer is durable as soon as it is stored.
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
                " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
                " finish_reason TEXT NOT NULL DEFAULT 'stop')"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
            if "finish_reason" not in columns:  # a cache written before finish reasons were kept
                try:
                    db.execute("ALTER TABLE responses ADD COLUMN finish_reason TEXT NOT NULL DEFAULT 'stop'")
                except sqlite3.OperationalError as e:
                    if "duplicate column" not in str(e):  # another process added it first
                        raise
            db.execute("SELECT key, text, prompt_tokens, completion_tokens, finish_reason FROM responses LIMIT 1")
            return db
        except BaseException:
            db.close()
            raise

    def _set_aside(self, error: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = self.path.with_name(f"{CACHE_FILE}.damaged-{stamp}-{os.getpid()}")
        n = 0
        while any(Path(f"{moved}{suffix}").exists() for suffix in ("", *_SIDE_FILES)):  # never over an earlier one
            n += 1
            moved = self.path.with_name(f"{CACHE_FILE}.damaged-{stamp}-{os.getpid()}-{n}")
        for suffix in ("", *_SIDE_FILES):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                try:
                    os.replace(source, f"{moved}{suffix}")
                except OSError as e:
                    raise UserError(
                        f"the response cache {self.path} is damaged ({error}) and cannot be moved aside "
                        f"({e.strerror}); run with cache=off or choose another cache_dir"
                    ) from None
        print(
            f"synthkit: warning: the response cache {self.path} was damaged ({error}); it was moved to {moved} "
            "and a new one started",
            file=sys.stderr,
        )

    def get(self, key: str) -> Optional[Completion]:
        try:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM responses WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None  # a damaged page: ask the model again
        return Completion(*row) if row else None

    def put(self, key: str, completion: Completion) -> None:
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    completion.text,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.finish_reason,
                ),
            )
        except sqlite3.DatabaseError as e:
            raise UserError(
                f"cannot store an answer in the response cache {self.path} ({e}); free some space, "
                "run with cache=off, or choose another cache_dir"
            ) from None

    def close(self) -> None:
        self._db.close()


@contextlib.contextmanager
def _opening(lock_file: Path):
    """Processes open the cache one at a time: two switching a new file to WAL at once would each
    hold a shared lock and want an exclusive one, and SQLite fails one of them at once (no busy wait),
    and one process setting a damaged file aside must not race another opening it."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
