"""Where synthkit keeps what outlives a run on this machine: the cache dir (response cache, rate schedules, corpus
indexes, the language model unpacked), chosen by `cache_dir`, else $SYNTHKIT_CACHE_DIR, else the XDG cache home. And how a file the user names
is read: only a regular file (a FIFO or a device would block a run for ever), and in a folder only what lies in it."""

import os
import stat
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError

CACHE_DIR_ENV = "SYNTHKIT_CACHE_DIR"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synthkit"


def configured_cache_dir(cache_dir: Optional[str]) -> Path:
    """The cache dir a `cache_dir` setting names (null: the default one); not made."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def corpus_root(cache_dir: Optional[str]) -> Path:
    """Where corpus domains keep their chunk indexes: under the cache dir."""
    return configured_cache_dir(cache_dir) / "corpus"


def special_file(path) -> Optional[str]:
    """What `path` is when it is not a regular file that reading ends (a FIFO, which blocks until a writer comes;
    a device or a socket, which may never end), or None for a regular file or a directory. Links are followed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # a missing file: its reader says so
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device file"


def open_regular(path, what: str):
    """`open(path, "rb")` of a regular file; anything else is refused before a read could block on it (a FIFO
    opened plainly waits for a writer for ever). `what` names the file in the one-line error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise UserError(f"{what} {path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{what} {path} is {special_file(path) or 'not a regular file'}: give a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def inside(path, root: Path) -> bool:
    """Whether `path`, its links followed, lies inside the folder `root` (resolved)."""
    try:
        target = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):  # a link to nothing, or a loop of links
        return False
    return target == root or root in target.parents


def not_read(path: Path, root: Path) -> str:
    """Why a file (or linked folder) found under the folder `root` (resolved) is not read ("" when it is): a link
    out of the folder would hand over a file the user never named (~/.netrc), a FIFO or a device would block."""
    if path.is_symlink() and not path.exists():
        return "a link to nothing"
    if not inside(path, root):
        return f"a link out of {root} (to {os.path.realpath(path)})"
    kind = special_file(path)
    return f"{kind}, not a file" if kind else ""


def files_inside(folder: Path, root: Path, wanted=lambda path: True) -> tuple:
    """(the regular files under `folder` that `wanted` takes, sorted; (path, why) of those not read) where only
    what lies inside `root` (resolved) is read. Linked folders are never entered: one out of `root` is reported,
    one inside it holds files that are found at their own place."""
    files, skipped = [], []
    for parent, folders, names in os.walk(folder):  # followlinks=False
        for name in folders + names:
            path = Path(parent) / name
            linked_folder = name in folders
            if (linked_folder and not path.is_symlink()) or (not linked_folder and not wanted(path)):
                continue
            why = not_read(path, root)
            if why:
                skipped.append((path, why))
            elif not linked_folder:
                files.append(path)
    return sorted(files), sorted(skipped)
