"""The response cache: model answers on disk, addressed by a hash of everything that shapes the
request, shared by every run and process on the machine. SQLite in WAL mode gives concurrent
readers and writers across processes, and survives a kill -9 at any moment."""

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Optional

from synthkit.calls.providers.base import Completion

CACHE_FILE = "responses.sqlite"


def default_cache_dir() -> Path:
    if os.environ.get("SYNTHKIT_CACHE_DIR"):
        return Path(os.environ["SYNTHKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synthkit"


def request_key(**parts) -> str:
    """The address of a request: model, endpoint, messages, sampling parameters, schema and the
    row's seed, so two rows with the same prompt still get answers of their own."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        # Autocommit: each answer is durable as soon as it is stored.
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
            " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL)"
        )

    def get(self, key: str) -> Optional[Completion]:
        row = self._db.execute(
            "SELECT text, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return Completion(*row) if row else None

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
            (key, completion.text, completion.prompt_tokens, completion.completion_tokens),
        )

    def close(self) -> None:
        self._db.close()
