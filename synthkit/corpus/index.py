"""The offset index of a chunked corpus, on disk: one fixed-size record per chunk (file, where its document
lies in the file, where the chunk lies in the document, its number in the document), so a corpus of
millions of chunks is never held in memory; a chunk is read back from its source file when drawn. The
index lives in the cache dir under a key of the files (path, size, mtime) and the chunk settings, is built
once (into a temporary dir, then renamed: a failed build leaves nothing) and reused by every run."""

import hashlib
import json
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.paths import corpus_root
from synthkit.corpus.chunker import Chunker, ChunkSettings
from synthkit.corpus.reader import Reader, corpus_files

RECORD = struct.Struct("<IQQII")  # file, locator, start char, length in chars, chunk number in its document
FORMAT = 3  # bumped when RECORD or the layout changes: old indexes are rebuilt
_OPEN: dict = {}  # key -> CorpusIndex: every TaskSpec of a run shares one
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Chunk:
    number: int  # its place in the index
    id: str  # <document id>#<chunk number in the document>
    document: str
    source: str  # the file it comes from
    text: str


class CorpusIndex:
    def __init__(self, directory: Path, reader: Reader, suffixes: list):
        self.directory, self.reader, self._suffixes = directory, reader, suffixes
        self._file = open(directory / "chunks.bin", "rb")
        self.size = os.fstat(self._file.fileno()).st_size // RECORD.size
        # What the corpus held when indexed (texts, ids and chunk bounds): a run resumes only over the same corpus.
        self.digest = json.loads((directory / "index.json").read_text(encoding="utf-8"))["digest"]
        self._last = (None, None)  # (file, locator) -> document: consecutive chunks of one document
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.size

    def chunk(self, number: int) -> Chunk:
        with self._lock:
            self._file.seek(number * RECORD.size)
            file, locator, start, length, part = RECORD.unpack(self._file.read(RECORD.size))
            if self._last[0] != (file, locator):
                self._last = ((file, locator), self.reader.document(file, locator))
            document = self._last[1]
        path = self.reader.files[file]
        return Chunk(number, f"{document.id}#{part}", document.id, str(path), document.text[start : start + length])

    def chunks(self, start: int = 0, stop=None) -> Iterator[Chunk]:
        for number in range(start, self.size if stop is None else min(stop, self.size)):
            yield self.chunk(number)


def open_index(path: str, field: str, id_field: str, settings: ChunkSettings, root: Path | None = None) -> CorpusIndex:
    """The index of the corpus at `path`, built if no valid one is in the cache."""
    source = Path(path).expanduser()
    files = corpus_files(source)
    settings.check(f"corpus {source}")
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    identity = {"format": FORMAT, "files": stats, "field": field, "id": id_field, "chunks": asdict(settings)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    with _LOCK:
        if key in _OPEN:
            return _OPEN[key]
        directory = (root or corpus_root(None)) / key
        folder = source.is_dir()
        reader = Reader(source if folder else source.parent, files, field, id_field, folder=folder)
        if not (directory / "chunks.bin").is_file():
            _build(directory, reader, settings, identity)
        _OPEN[key] = CorpusIndex(directory, reader, [p.suffix for p in files])
        return _OPEN[key]


def _build(directory: Path, reader: Reader, settings: ChunkSettings, identity: dict) -> None:
    chunker = Chunker(settings)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
    except OSError as e:
        raise UserError(
            f"cannot write the corpus index in {directory.parent}: {e.strerror}; choose another with cache_dir=..."
        ) from None
    try:
        documents = chunks = 0
        ids: set = set()  # two documents of one id would share chunk ids: rows and BEIR qrels could not tell them apart
        digest = hashlib.sha256()
        with open(building / "chunks.bin", "wb") as out:
            for doc in reader.documents():
                documents += 1
                if doc.id in ids:
                    raise UserError(
                        f"corpus {reader.files[doc.file]}: document id {doc.id[:60]!r} is used twice; ids must be "
                        "unique across the corpus (give each document its own id, or leave the id field out)"
                    )
                ids.add(doc.id)
                digest.update(json.dumps([doc.id, doc.text], ensure_ascii=False).encode())
                suffix = reader.files[doc.file].suffix
                for part, (start, length) in enumerate(Chunker.spans(chunker, doc.text, suffix)):
                    record = RECORD.pack(doc.file, doc.locator, start, length, part)
                    out.write(record)
                    digest.update(record)
                    chunks += 1
        if not chunks:
            where = ", ".join(str(p) for p in reader.files[:3]) + (" ..." if len(reader.files) > 3 else "")
            raise UserError(f"corpus {where} holds no text ({documents} documents, 0 chunks): give documents with text")
        (building / "index.json").write_text(
            json.dumps({**identity, "documents": documents, "chunks": chunks, "digest": digest.hexdigest()[:24]})
        )
        try:
            building.rename(directory)
        except OSError:  # another process built it first: theirs is as good
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
