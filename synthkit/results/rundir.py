"""A run's output dir: every file name in it, the lock of the run that owns it, its writers, and the readers of
a finished run (card, export, score, push, sweep and the Python API read runs only through a RunDir).

data.jsonl (valid rows) and rejects.jsonl (rows that failed) are appended a line at a time as rows finish, so a
crash loses at most the line being written. The dir is owned by one run at a time (a lock the OS releases when the
process dies, so a kill -9 still resumes), and synthkit only writes into a dir it made: a folder holding someone
else's files is refused."""

import errno
import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.core.paths import files_inside, not_read
from synthkit.core.record import Row, read_rows
from synthkit.core.secrets import redact

DATA_FILE = "data.jsonl"
REJECTS_FILE = "rejects.jsonl"
RUN_FILE = "synthkit-run.json"  # what the rows of an output dir were made with, to resume safely
STATUS_FILE = "synthkit-status.json"  # how the run ended: rows, rejects, and why it stopped early
SPENT_FILE = "synthkit-spent.json"  # what runs into this dir (or a sweep's jobs) have spent together
LOCK_FILE = ".synthkit.lock"
HYDRA_DIR = ".hydra"
CONFIG_FILE = f"{HYDRA_DIR}/config.yaml"  # the resolved config, keys redacted
OVERRIDES_FILE = f"{HYDRA_DIR}/overrides.yaml"
BRAINSTORM_DIR = "brainstorm"  # the brainstorm stage's run, inside the run's dir
TASKS_FILE = "tasks.jsonl"  # flatten_tasks: one row per distinct task definition
BATCHES_FILE = "batches.jsonl"  # the batch journal of llm.batch=true
CARD_FILE = "README.md"
PLOTS_DIR = "plots"
COVERAGE_FILE = "coverage.md"
SCORES_FILE = "scores.jsonl"
SCORES_SUMMARY_FILE = "scores_summary.json"
EXPORTS_DIR = "exports"
EVALUATION_FILE = "evaluation.json"  # synthkit evaluate: base and tuned models compared on evaluation sets
MODELS_DIR = "models"  # evaluate.save_models=true: the tuned models, one folder per seed
EXPORT_MARKER = ".synthkit-export"  # in every export dir synthkit wrote: only those are replaced by --force
# What may already be in a dir synthkit has not claimed (it holds no RUN_FILE yet): the lock of a run killed before it
# wrote anything, and what a sweep job refused before it ran leaves (RunDir.record_refusal): its status and .hydra/
# with synthkit's own files only. Another program's .hydra/ (Hydra writes hydra.yaml there) is not synthkit's.
FOREIGN_OK = {LOCK_FILE, STATUS_FILE}
OWN_HYDRA_FILES = {"config.yaml", "overrides.yaml"}
# What `synthkit push` uploads (folders whole). Anything else (the resume fingerprint, the status file, Hydra's
# overrides and logs) stays local.
PUBLISHED = (DATA_FILE, REJECTS_FILE, CARD_FILE, BRAINSTORM_DIR, PLOTS_DIR, CONFIG_FILE, EXPORTS_DIR, EVALUATION_FILE)
# Every file and folder synthkit reads or writes in a run dir: none may lead out of it (check_own_files).
OWN_FILES = (DATA_FILE, REJECTS_FILE, RUN_FILE, STATUS_FILE, SPENT_FILE, LOCK_FILE, HYDRA_DIR, CONFIG_FILE,
             OVERRIDES_FILE, BRAINSTORM_DIR, TASKS_FILE, BATCHES_FILE, CARD_FILE, PLOTS_DIR, COVERAGE_FILE, SCORES_FILE,
             SCORES_SUMMARY_FILE, EXPORTS_DIR, EVALUATION_FILE, MODELS_DIR)  # fmt: skip


# Folders Hydra is about to make for this process's run or sweep (its dir -> the first of them that did not exist):
# noted by the NewDirs callback (synthkit.results.sweep) before Hydra makes them, so that a run refused before it
# wrote anything removes them, and nothing the user had (no empty outputs/ is left behind).
_MADE: dict = {}
HYDRA_LEFTOVERS = ("multirun.yaml",)  # what Hydra writes into a sweep dir before any job runs


def note_new_dirs(path) -> None:
    path = Path(path).absolute()
    first = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        first = folder
    if first is not None:
        _MADE[path] = first


def drop_made_dirs(path=None) -> None:
    """Remove the dirs noted for `path` (None: every dir noted) as far as they are empty, up to the first that
    did not exist before the run; a dir that existed, or holds anything but Hydra's own leftovers, stays."""
    for made, first in list(_MADE.items()):
        if path is not None and made != Path(path).absolute():
            continue
        del _MADE[made]
        try:
            if made.is_dir() and {p.name for p in made.iterdir()} <= set(HYDRA_LEFTOVERS):
                for name in HYDRA_LEFTOVERS:
                    (made / name).unlink(missing_ok=True)
            folder = made
            while True:
                folder.rmdir()  # fails on a folder that is not empty: what is above it stays too
                if folder == first:
                    break
                folder = folder.parent
        except OSError:
            pass


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


class RunDir:
    """One run's dir (or a merged sweep's, or the brainstorm stage's inside a run)."""

    def __init__(self, path, data: Optional[Path] = None):
        """`data`: the rows, when they are a JSONL file of another name than data.jsonl (beside the run's files)."""
        self.path = Path(path)
        self._data = Path(data) if data is not None else None
        self._lock_fd: Optional[int] = None

    @classmethod
    def at(cls, place) -> "RunDir":
        """`place` itself when it is a RunDir, else the run dir at that path."""
        return place if isinstance(place, RunDir) else cls(place)

    @classmethod
    def of(cls, source, what: str = "a run's output dir or its data.jsonl") -> "RunDir":
        """The run a command names: its dir, or a JSONL file of its rows. One line when it holds no rows."""
        path = Path(source)
        run = cls(path) if path.is_dir() or not path.is_file() else cls(path.parent, data=path)
        if not run.data.is_file():
            raise UserError(f"{source} holds no {DATA_FILE}: give {what}")
        run.check_own_files()
        return run

    def check_own_files(self) -> None:
        """One line if a file of the run (or a folder of its files) leads out of its dir, or is a FIFO or a device:
        synthkit reads and writes a run's own files only (a planted data.jsonl -> ~/.netrc must not reach a card, an
        export or the Hub, nor rows be appended to a file elsewhere). A data file the user named is theirs."""
        if not self.path.is_dir():
            return
        root = self.path.resolve()
        for name in OWN_FILES:
            path = self.path / name
            if (path == self.data and self._data is not None) or not (path.is_symlink() or path.exists()):
                continue
            why = not_read(path, root)
            if why:
                raise UserError(
                    f"{path} is {why}: synthkit uses a run's own files only; remove it or choose another dir"
                )

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # Where each file is.
    data = property(lambda self: self._data or self.path / DATA_FILE)
    rejects = property(lambda self: self.path / REJECTS_FILE)
    run_file = property(lambda self: self.path / RUN_FILE)
    status_file = property(lambda self: self.path / STATUS_FILE)
    spent = property(lambda self: self.path / SPENT_FILE)
    config_file = property(lambda self: self.path / CONFIG_FILE)
    overrides_file = property(lambda self: self.path / OVERRIDES_FILE)
    tasks_file = property(lambda self: self.path / TASKS_FILE)
    batches = property(lambda self: self.path / BATCHES_FILE)
    card = property(lambda self: self.path / CARD_FILE)
    plots = property(lambda self: self.path / PLOTS_DIR)
    coverage = property(lambda self: self.path / COVERAGE_FILE)
    scores = property(lambda self: self.path / SCORES_FILE)
    scores_summary_file = property(lambda self: self.path / SCORES_SUMMARY_FILE)
    exports = property(lambda self: self.path / EXPORTS_DIR)
    evaluation_file = property(lambda self: self.path / EVALUATION_FILE)

    @property
    def brainstorm(self) -> "RunDir":
        return RunDir(self.path / BRAINSTORM_DIR)

    def plot(self, name: str) -> Path:
        return self.path / PLOTS_DIR / f"{name}.png"

    def export_dir(self, fmt: str) -> Path:
        return self.exports / fmt

    def model_dir(self, seed: int) -> Path:
        return self.path / MODELS_DIR / f"seed-{seed}"

    # Readers of a finished run.
    def rows(self) -> Iterator[Row]:
        return read_rows(self.data)

    def rejected_rows(self) -> Iterator[Row]:
        return read_rows(self.rejects)

    def raw_rows(self) -> Iterator[dict]:
        """The rows as the JSON objects they are written as (for the scorer, which reads any JSONL of rows)."""
        with open(self.data, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise UserError(f"{self.data} line {n} is not JSON: is it a synthkit data file?") from None

    @cached_property
    def status(self) -> Optional[dict]:
        """How the run ended (synthkit-status.json), or None when it has none readable (it did not finish)."""
        try:
            status = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return status if isinstance(status, dict) else None

    def saved_config(self, strict: bool = False):
        """The config the run was made with, as saved (a DictConfig; None when it has none). A config that does
        not load is None, or with `strict` a one-line error naming the fix."""
        if "config" not in self.__dict__:
            self.__dict__["config"] = self._load_config()
        config = self.__dict__["config"]
        if isinstance(config, Exception):
            if strict:
                raise UserError(
                    f"{self.config_file} does not load ({type(config).__name__}); repair it, or remove it to use "
                    "the packaged task configs"
                )
            return None
        return config

    def _load_config(self):
        if not self.config_file.is_file():
            return None
        from omegaconf import DictConfig, OmegaConf

        try:
            config = OmegaConf.load(self.config_file)
        except Exception as e:  # YAML or OmegaConf errors of a file someone edited or damaged
            return e
        return config if isinstance(config, DictConfig) else ValueError("not a mapping")

    def saved(self, key: str, strict: bool = False):
        """One key of the saved config as plain data, resolved where its interpolations still resolve (None when
        the run has no such key)."""
        from omegaconf import OmegaConf

        config = self.saved_config(strict)
        node = OmegaConf.select(config, key, default=None) if config is not None else None
        if not OmegaConf.is_config(node):
            return node
        try:
            return OmegaConf.to_container(node, resolve=True)
        except Exception:  # an interpolation of another process (a resolver, a variable): the text as saved
            return OmegaConf.to_container(node)

    def saved_tasks(self, strict: bool = False) -> list:
        """The task configs the run was made with: its task, or its recipe's tasks."""
        recipe = self.saved("recipe", strict) or {}
        return [t for t in [self.saved("task", strict), *(recipe.get("tasks") or {}).values()] if t]

    def task_configs(self) -> dict:
        """Task configs by name: the packaged ones, overridden by those the run was made with (when these say
        how to export, as a user's own task does)."""
        configs = dict(packaged_tasks())
        for task in self.saved_tasks(strict=True):
            if task.get("export"):
                configs[task["name"]] = task
        return configs

    def overrides_text(self) -> str:
        try:
            return self.overrides_file.read_text(encoding="utf-8")
        except OSError:
            return ""

    def overrides(self) -> list:
        from omegaconf import OmegaConf

        return [str(o) for o in OmegaConf.load(self.overrides_file)]

    def config_text(self) -> str:
        try:
            return self.config_file.read_text(encoding="utf-8")
        except OSError:
            return ""

    def scores_summary(self) -> Optional[dict]:
        try:
            return json.loads(self.scores_summary_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def evaluation(self) -> Optional[dict]:
        """What synthkit evaluate wrote (evaluation.json), or None when the run was not evaluated (or it is unreadable)."""
        try:
            evaluation = json.loads(self.evaluation_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return evaluation if isinstance(evaluation, dict) else None

    def write_evaluation(self, evaluation: dict) -> Path:
        return self.write_json(EVALUATION_FILE, evaluation)

    def score_records(self) -> Iterator[dict]:
        with open(self.scores, encoding="utf-8") as f:
            for line in filter(str.strip, f):
                yield json.loads(line)

    def jobs(self) -> list:
        """The jobs of a sweep dir (each a run in a subfolder, with the overrides it was given), in job order."""
        return sorted(
            (RunDir(d) for d in self.path.iterdir() if (d / OVERRIDES_FILE).exists()),
            key=lambda job: (len(job.path.name), job.path.name),
        )

    def published_files(self) -> tuple:
        """What `synthkit push` uploads, as paths relative to the dir; and (path, why) of what it leaves out. A link
        is followed only where it stays inside the dir: a link out of it (to ~/.netrc, say) would upload a file
        the user never named. A FIFO or device is left out too (reading it would block)."""
        root = self.path.resolve()
        files, skipped = [], []
        for name in PUBLISHED:
            path = self.path / name
            if not (path.is_symlink() or path.exists()):
                continue  # not made by this run
            why = not_read(path, root)
            if why:
                skipped.append((path, why))
            elif path.is_dir():
                found, left_out = files_inside(path, root)
                files += found
                skipped += left_out
            else:
                files.append(path)
        relative = lambda p: p.relative_to(self.path).as_posix()  # noqa: E731
        return [relative(p) for p in files], [(relative(p), why) for p, why in skipped]

    def export_files(self) -> list:
        """(config name, path relative to the dir) of the Parquet and JSONL files of every export."""
        files = []
        if not self.exports.is_dir():
            return files
        for fmt in sorted(p for p in self.exports.iterdir() if p.is_dir()):
            # Parquet/JSONL only: a save_to_disk folder beside them holds the same rows as Arrow shards.
            # Only what `push` uploads: a link out of the run dir is neither uploaded nor listed.
            found, _ = files_inside(fmt, self.path.resolve(), lambda p: p.suffix in (".jsonl", ".parquet"))
            files += [
                (fmt.name if len(found) == 1 else f"{fmt.name}-{p.stem}", p.relative_to(self.path).as_posix())
                for p in found
            ]
        return files

    def loadable_files(self) -> list:
        """(config name, relative path) of what `datasets.load_dataset(<dir>)` reads: rows, rejects, brainstorm
        and exports. An empty file would make its config fail to load, so it is left out."""
        files = [
            (name, path)
            for name, path in (
                ("data", DATA_FILE),
                ("rejects", REJECTS_FILE),
                ("brainstorm", f"{BRAINSTORM_DIR}/{DATA_FILE}"),
            )
            if (self.path / path).is_file() and (self.path / path).stat().st_size
        ]
        return files + self.export_files()

    # The run that owns the dir.
    def claim(self) -> None:
        """Make (or reopen) the dir and lock it; refuse a dir synthkit did not make, or one in use."""
        path = self.path
        if str(path).strip() in ("", "."):
            raise UserError("output_dir is empty or '.': give a new directory, e.g. output_dir=outputs/my-run")
        if path.exists() and not path.is_dir():
            raise UserError(f"output_dir={path} is a file: choose a directory")
        self.check_own_files()
        if path.is_dir() and not self.run_file.exists():
            foreign = sorted(p.name for p in path.iterdir() if not _own(p))
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

    # Writers.
    def write_text(self, name: str, text: str) -> Path:
        """A whole file of the run (config, status...), keys redacted, replaced atomically."""
        target = self.path / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(redact(text), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as e:
            raise storage_error(target, e) from None
        return target

    def write_json(self, name: str, data: dict) -> Path:
        return self.write_text(name, json.dumps(data, indent=1, ensure_ascii=False))

    def write_lines(self, name: str, lines) -> Path:
        """A whole file of many lines, streamed into place: whole or not at all."""
        target = self.path / name
        partial = target.with_name(target.name + ".partial")
        try:
            with open(partial, "w", encoding="utf-8") as f:
                f.writelines(lines)
            os.replace(partial, target)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise storage_error(target, e) from None
        return target

    def write_scores(self, records, summary: dict) -> None:
        self.write_lines(SCORES_FILE, (json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self.write_lines(SCORES_SUMMARY_FILE, [json.dumps(summary, indent=2, ensure_ascii=False) + "\n"])

    def drop_scores(self) -> None:
        for path in (self.scores, self.scores_summary_file):
            path.unlink(missing_ok=True)

    def record_refusal(self, error: str, overrides: list) -> None:
        """A sweep job refused before it ran: its overrides and the error, for the sweep's coverage table."""
        if self.path.is_dir() and not self.data.exists():
            from omegaconf import OmegaConf

            self.write_text(OVERRIDES_FILE, OmegaConf.to_yaml(list(overrides)))
            self.write_text(STATUS_FILE, json.dumps({"error": error}))

    def open_rows(self) -> "RowFiles":
        return RowFiles(self)


def _own(path: Path) -> bool:
    """Whether an entry of a dir synthkit has not claimed yet is one synthkit writes before it claims it."""
    if path.name == HYDRA_DIR:
        return path.is_dir() and not path.is_symlink() and {p.name for p in path.iterdir()} <= OWN_HYDRA_FILES
    return path.name in FOREIGN_OK and path.is_file() and not path.is_symlink()


class RowFiles:
    """The rows of one stage of a run (its data and rejects files), read for resume, then appended to."""

    def __init__(self, run: RunDir):
        self.data_path, self.rejects_path = run.data, run.rejects
        self.done: dict = {}  # cell key -> row indices already written or rejected
        self.written: Counter = Counter()  # cell key -> rows already written
        self.earlier: list = []  # rows of an earlier run (their texts dropped), for the ledger's value counts
        try:
            run.path.mkdir(parents=True, exist_ok=True)
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
            raise storage_error(run.path, e) from None

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


def packaged_tasks() -> dict:
    """The packaged task configs (synthkit/conf/task/*.yaml) by name, unresolved."""
    from omegaconf import OmegaConf

    configs = {}
    for entry in resources.files("synthkit.conf").joinpath("task").iterdir():
        if entry.name.endswith(".yaml"):
            task = OmegaConf.to_container(OmegaConf.create(entry.read_text(encoding="utf-8")))
            configs[task["name"]] = task
    return configs


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
