"""The files of one run's output dir. data.jsonl (valid rows) and rejects.jsonl (rows that failed) are
appended a line at a time as rows finish, so a crash loses at most the line being written. The dir is
owned by one run at a time (a lock the OS releases when the process dies, so a kill -9 still resumes),
and synthkit only writes into a dir it made: a folder holding someone else's files is refused."""

import errno
import fcntl
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.core.record import Row, read_rows
from synthkit.core.secrets import redact

DATA_FILE = "data.jsonl"
REJECTS_FILE = "rejects.jsonl"
RUN_FILE = "synthkit-run.json"  # what the rows of an output dir were made with, to resume safely
STATUS_FILE = "synthkit-status.json"  # how the run ended: rows, rejects, and why it stopped early
LOCK_FILE = ".synthkit.lock"
# What may already be in a dir synthkit has not claimed: Hydra's config of this very run.
FOREIGN_OK = {".hydra", LOCK_FILE}


def storage_error(path: Path, error: OSError) -> UserError:
    """A one-line error for a write that failed, naming the fix."""
    if error.errno == errno.ENOSPC:
        fix = "free some space or choose another output_dir; rows written so far are kept"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "it is not writable: choose another output_dir"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = "a file stands where a directory is needed: choose another output_dir"
    else:
        fix = "choose another output_dir"
    return UserError(f"cannot write {path}: {error.strerror}; {fix}")


class OutputDir:
    """An output dir claimed by this process for the length of a run."""

    def __init__(self, path: Path):
        self.path = path
        self._lock_fd: Optional[int] = None

    def claim(self) -> None:
        """Make (or reopen) the dir and lock it; refuse a dir synthkit did not make, or one in use."""
        path = self.path
        if str(path).strip() in ("", "."):
            raise UserError("output_dir is empty or '.': give a new directory, e.g. output_dir=outputs/my-run")
        if path.exists() and not path.is_dir():
            raise UserError(f"output_dir={path} is a file: choose a directory")
        if path.is_dir() and not (path / RUN_FILE).exists():
            foreign = sorted(p.name for p in path.iterdir() if p.name not in FOREIGN_OK)
            if foreign:
                raise UserError(
                    f"output_dir={path} already holds files synthkit did not write ({', '.join(foreign[:3])}"
                    f"{', ...' if len(foreign) > 3 else ''}): choose a new directory"
                )
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise storage_error(path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(
                f"output_dir={path} is in use by a running synthkit ({holder}); wait for it to end, "
                "or choose another output_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def write_text(self, name: str, text: str) -> Path:
        """A whole file of the run (config, status...), keys redacted."""
        target = self.path / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(redact(text), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as e:
            raise storage_error(target, e) from None
        return target


class RunFiles:
    """The rows of one stage of a run (its data and rejects files), read for resume, then appended to."""

    def __init__(self, out_dir: Path):
        self.data_path = out_dir / DATA_FILE
        self.rejects_path = out_dir / REJECTS_FILE
        self.done: dict = {}  # cell key -> row indices already written or rejected
        self.written: Counter = Counter()  # cell key -> rows already written
        self.earlier: list = []  # rows of an earlier run (their texts dropped), for the ledger's value counts
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for path in (self.data_path, self.rejects_path):
                _drop_torn_line(path)
                for row in read_rows(path):
                    self.done.setdefault(row.cell, set()).add(row.row)
                    self.written[row.cell] += not row.rejected
                    row.outputs, row.raw = {}, None  # a resume of a large run holds only what it counts
                    self.earlier.append(row)
            # Unbuffered: each row is one write, and a write that fails half-way is cut back off.
            self._data = open(self.data_path, "ab", buffering=0)
            self._rejects = open(self.rejects_path, "ab", buffering=0)
        except OSError as e:
            raise storage_error(out_dir, e) from None

    @property
    def resumed(self) -> int:
        return sum(self.written.values())

    def existing_rows(self):
        """The rows already in data.jsonl (from an earlier run into this dir)."""
        return read_rows(self.data_path)

    def write(self, row: Row) -> None:
        handle = self._rejects if row.rejected else self._data
        data = redact(row.to_line()).encode("utf-8")
        start = handle.seek(0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):
                written += handle.write(data[written:])
        except OSError as e:
            try:
                os.ftruncate(handle.fileno(), start)  # no torn line left behind
            except OSError:
                pass  # resume drops a torn last line anyway
            raise storage_error(Path(handle.name), e) from None

    def close(self) -> None:
        for handle in (self._data, self._rejects):
            try:
                handle.close()
            except OSError:
                pass  # a full disk: the lines that fit were flushed one by one


def _drop_torn_line(path: Path) -> None:
    """A last line cut short by a crash is dropped from the file, and its row is made again."""
    if not path.exists():
        return
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return
        # Find the last newline, reading backwards in blocks: files can be large.
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return
            end = start
        handle.truncate(0)


def write_json(out: OutputDir, name: str, data: dict) -> Path:
    return out.write_text(name, json.dumps(data, indent=1, ensure_ascii=False))
