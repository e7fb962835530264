"""Documents of a corpus, one at a time, and each one again from where it lies: a JSONL line (by byte
offset), a Parquet row (by row number) or a whole text or Markdown file. Bad input (a missing path, a
binary file, a field that is not there) is a one-line UserError naming the fix."""

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install
from synthkit.core.paths import files_inside, inside, open_regular, special_file

JSONL = (".jsonl", ".ndjson")
PARQUET = (".parquet",)
TEXT = (".txt", ".md", ".markdown", ".text")
SUFFIXES = JSONL + PARQUET + TEXT


@dataclass(frozen=True)
class Document:
    file: int  # index into the corpus' files
    locator: int  # byte offset of a JSONL line, row number in a Parquet file, 0 for a text file
    id: str
    text: str


def corpus_files(path: Path) -> list:
    """The files of a corpus: the file itself, or every supported file under a directory, in a fixed order. In a
    folder only what lies inside it is read: a link out of it (to ~/secret.txt, say) would send a file the user
    never named to the model, and a FIFO or device would block the run; each is skipped with a warning."""
    if not path.exists():
        raise UserError(f"corpus {path} does not exist: give a JSONL, Parquet, text or Markdown file, or a folder")
    if path.is_dir():
        files = _folder_files(path)
        if not files:
            raise UserError(f"corpus {path} holds no {', '.join(SUFFIXES)} files")
        return files
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(
            f"corpus {path}: {path.suffix or 'no suffix'} is not a corpus format; use {', '.join(SUFFIXES)}"
        )
    kind = special_file(path)
    if kind:
        raise UserError(f"corpus {path} is {kind}, not a file: give a JSONL, Parquet, text or Markdown file")
    return [path]


def _folder_files(folder: Path) -> list:
    files, skipped = files_inside(folder, folder.resolve(), lambda path: path.suffix.lower() in SUFFIXES)
    for path, why in skipped:
        print(
            f"synthkit: warning: corpus {folder}: {path.relative_to(folder).as_posix()} skipped: {why}", file=sys.stderr
        )
    return files


class Reader:
    """Reads the documents of `files`; `field` and `id_field` name the text and id of JSONL and Parquet records."""

    def __init__(self, root: Path, files: list, field: str, id_field: str, folder: bool = False):
        """`folder`: the corpus is the folder `root`, and a file read must still lie inside it (a file swapped for
        a link out of it after the listing is refused, not read)."""
        self.root, self.files, self.field, self.id_field = root, files, field, id_field
        self._inside = root.resolve() if folder else None
        self._parquet: dict = {}  # file -> (ParquetFile, row-group starts), opened once
        self._group: tuple = (None, None, None)  # (file, group, table): consecutive chunks share a row group

    def documents(self) -> Iterator[Document]:
        for number, path in enumerate(self.files):
            suffix = path.suffix.lower()
            if suffix in JSONL:
                yield from self._jsonl(number, path)
            elif suffix in PARQUET:
                yield from self._parquet_rows(number, path)
            else:
                yield Document(number, 0, self._text_id(path), _decode(path, self._read(path)))

    def document(self, file: int, locator: int) -> Document:
        path = self.files[file]
        suffix = path.suffix.lower()
        if suffix in JSONL:
            with self._open(path) as f:
                f.seek(locator)
                return self._record(file, locator, path, f.readline(), None)
        if suffix in PARQUET:
            return self._parquet_row(file, path, locator)
        return Document(file, 0, self._text_id(path), _decode(path, self._read(path)))

    def _open(self, path: Path):
        if self._inside is not None and not inside(path, self._inside):
            raise UserError(f"corpus {path} now leads out of the corpus folder {self.root}: it is not read")
        return open_regular(path, "corpus")

    def _read(self, path: Path) -> bytes:
        with self._open(path) as f:
            return f.read()

    def _text_id(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path != self.root else path.name

    def _jsonl(self, number: int, path: Path) -> Iterator[Document]:
        with self._open(path) as f:
            line_number = 0
            while True:
                offset = f.tell()
                line = f.readline()
                if not line:
                    return
                line_number += 1
                if line.strip():
                    yield self._record(number, offset, path, line, line_number)

    def _record(self, number: int, offset: int, path: Path, line: bytes, line_number) -> Document:
        where = f"{path} line {line_number}" if line_number else f"{path} at byte {offset}"
        try:
            record = json.loads(_decode(path, line))
        except (ValueError, RecursionError) as e:
            raise UserError(f"corpus {where} is not JSON ({e}): repair or remove that line") from None
        if not isinstance(record, dict):
            raise UserError(f"corpus {where} is not a JSON object")
        # Without an id a line is named by its byte offset: known when it is read back, unlike its line number.
        return Document(number, offset, *self._fields(record, where, f"{self._text_id(path)}@{offset}"))

    def _fields(self, record: dict, where: str, fallback_id: str) -> tuple:
        if self.field not in record:
            raise UserError(
                f"corpus {where} has no field {self.field!r} (it has {', '.join(map(repr, record)) or 'none'}): "
                "set the domain's `field:` to the one that holds the text"
            )
        text = record[self.field]
        if not isinstance(text, str):
            raise UserError(f"corpus {where}: field {self.field!r} is not text")
        ident = record.get(self.id_field)
        if ident is None:
            return fallback_id, text
        if isinstance(ident, bool) or not isinstance(ident, (str, int)):
            raise UserError(
                f"corpus {where}: id field {self.id_field!r} holds {type(ident).__name__} {str(ident)[:40]!r}; "
                "ids are strings or whole numbers: set the domain's `id:` to the field that names the document"
            )
        ident = str(ident)
        if not ident.strip() or any(c in ident for c in "\t\n\r"):
            # BEIR's qrels are tab-separated lines: such an id would break them.
            raise UserError(f"corpus {where}: id {ident[:40]!r} is empty or holds a tab or line break; give clean ids")
        return ident, text

    def _parquet_file(self, number: int, path: Path):
        if number not in self._parquet:
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise UserError(f"corpus {path}: Parquet needs pyarrow: {pip_install('corpus')}") from None
            source = self._open(path)  # kept open: row groups are read from it as chunks are drawn
            try:
                handle = pq.ParquetFile(source)
            except Exception as e:  # noqa: BLE001 - pyarrow raises its own error types for damaged files
                source.close()
                raise UserError(f"corpus {path} is not a Parquet file ({type(e).__name__})") from None
            names = handle.schema_arrow.names
            if self.field not in names:
                raise UserError(
                    f"corpus {path} has no column {self.field!r} (it has {', '.join(map(repr, names))}): "
                    "set the domain's `field:` to the one that holds the text"
                )
            starts, total = [], 0
            for g in range(handle.num_row_groups):
                starts.append(total)
                total += handle.metadata.row_group(g).num_rows
            self._parquet[number] = (handle, starts)
        return self._parquet[number]

    def _columns(self, handle) -> list:
        return [self.field] + ([self.id_field] if self.id_field in handle.schema_arrow.names else [])

    def _parquet_rows(self, number: int, path: Path) -> Iterator[Document]:
        handle, _ = self._parquet_file(number, path)
        row = 0
        for batch in handle.iter_batches(columns=self._columns(handle)):
            for record in batch.to_pylist():
                yield Document(number, row, *self._fields(record, f"{path} row {row}", f"{self._text_id(path)}:{row}"))
                row += 1

    def _parquet_row(self, number: int, path: Path, row: int) -> Document:
        handle, starts = self._parquet_file(number, path)
        group = max(g for g, s in enumerate(starts) if s <= row)
        if self._group[:2] != (number, group):
            self._group = (number, group, handle.read_row_group(group, columns=self._columns(handle)))
        record = self._group[2].slice(row - starts[group], 1).to_pylist()[0]
        return Document(number, row, *self._fields(record, f"{path} row {row}", f"{self._text_id(path)}:{row}"))


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw:
        raise UserError(f"corpus {path} is a binary file: give JSONL, Parquet, text or Markdown")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"corpus {path} is not UTF-8 text: convert it, or leave it out of the corpus") from None
