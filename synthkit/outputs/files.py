"""The files of one run: data.jsonl (valid rows) and rejects.jsonl (rows that failed), each
appended a line at a time as rows finish, so a crash loses at most the line being written."""

import json
from pathlib import Path

DATA_FILE = "data.jsonl"
REJECTS_FILE = "rejects.jsonl"


class RunFiles:
    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.data_path = out_dir / DATA_FILE
        self.rejects_path = out_dir / REJECTS_FILE
        self.written_rows = _finished_rows(self.data_path)
        self.rejected_rows = _finished_rows(self.rejects_path)
        self._data = open(self.data_path, "a", encoding="utf-8")
        self._rejects = open(self.rejects_path, "a", encoding="utf-8")

    def existing_rows(self):
        """The rows already in data.jsonl (from an earlier run into this dir)."""
        with open(self.data_path, encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())

    def write_row(self, record: dict) -> None:
        _append(self._data, record)

    def write_reject(self, record: dict) -> None:
        _append(self._rejects, record)

    def close(self) -> None:
        self._data.close()
        self._rejects.close()


def _append(handle, record: dict) -> None:
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()


def _finished_rows(path: Path) -> set:
    """Row indices already in a file from an earlier run into the same directory. A last line
    cut short by a crash is dropped from the file, and its row is made again."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) != len(raw):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    return {row_key(json.loads(line)) for line in complete.splitlines() if line.strip()}


def row_key(record: dict) -> tuple:
    """What identifies a row within a run: its cell (empty for a single-cell run) and index."""
    return record.get("cell", ""), record["row"]
