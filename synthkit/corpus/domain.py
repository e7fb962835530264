"""A corpus as an attribute domain: `domains.<attr>: {corpus: PATH, field: text, id: id, size: 1000,
overlap: 100, per_document: 1, sample: null}`. Row r draws chunk perm((r // per_document) mod M), where perm
is a bijection of the chunk numbers fixed by (seed, stream, attribute) and M is `sample` or the number of
chunks: every chunk (or each of the M sampled) gets per_document rows before any gets more, and a row's
chunk depends only on (seed, row). The drawn value is the chunk's text, carrying its id and document."""

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from synthkit.core.errors import UserError
from synthkit.corpus.chunker import ChunkSettings

KEYS = {"corpus", "field", "id", "size", "overlap", "unit", "tokenizer", "per_document", "sample"}
TAG = "corpus"  # the row tag that records the chunk (synthkit/core/record.py TAGS)


class ChunkText(str):
    """A chunk's text as a prompt attribute, knowing which chunk it is."""

    chunk = None  # synthkit.corpus.index.Chunk

    @classmethod
    def of(cls, chunk) -> "ChunkText":
        text = cls(chunk.text)
        text.chunk = chunk
        return text


def is_corpus_domain(spec: Any) -> bool:
    return isinstance(spec, dict) and "corpus" in spec


@dataclass(frozen=True)
class CorpusAttribute:
    name: str
    index: Any  # synthkit.corpus.index.CorpusIndex
    per_document: int
    sample: Optional[int]
    # The Attribute interface (synthkit/spec/task.py): a corpus draws like free text, never counted per value.
    values: Any = None
    weights: Any = None
    differs_from: Any = None
    choices: Any = None
    fixed: Any = None

    def draw(self, seed: int, row: int, drawn: dict, stream: str = "") -> ChunkText:
        return ChunkText.of(self.index.chunk(self.chunk_number(seed, row, stream)))

    def shares(self, other=None, even: bool = False) -> None:
        return None  # as free text: a corpus's chunks are not values to count

    def chunk_number(self, seed: int, row: int, stream: str = "") -> int:
        n = len(self.index)
        slot = (row // self.per_document) % min(self.sample or n, n)
        step, offset = _permutation(n, f"{seed}:{stream}:{self.name}")
        return (step * slot + offset) % n


def _permutation(n: int, key: str) -> tuple:
    """(a, b) with gcd(a, n) = 1: i -> (a*i + b) mod n is a bijection of range(n), cheap for any n."""
    rng = random.Random(key)
    if n == 1:
        return 1, 0
    while True:
        step = rng.randrange(1, n)
        if math.gcd(step, n) == 1:
            return step, rng.randrange(n)


def corpus_attribute(name: str, spec: dict, setting: Any, root: Optional[Path] = None) -> CorpusAttribute:
    unknown = spec.keys() - KEYS
    if unknown:
        raise UserError(
            f"domains.{name}: unknown corpus keys {', '.join(sorted(unknown))}; known: {', '.join(sorted(KEYS))}"
        )
    if not spec.get("corpus"):
        raise UserError(f"{name} is drawn from a corpus and none is given: set corpus=PATH (a file or a folder)")
    if setting is not None:
        raise UserError(f"task.{name} is drawn from the corpus: leave it null")
    return CorpusAttribute(name, index_of(name, spec, root), *_coverage(name, spec))


def _coverage(name: str, spec: dict) -> tuple:
    per_document, sample = spec.get("per_document", 1), spec.get("sample")
    if (
        not isinstance(per_document, int)
        or per_document < 1
        or (sample is not None and (not isinstance(sample, int) or sample < 1))
    ):
        raise UserError(f"domains.{name}: per_document and sample are whole numbers >= 1")
    return per_document, sample


def index_of(name: str, spec: dict, root: Optional[Path] = None):
    """The chunk index of a corpus domain (built on first use, in `root` or the default cache dir)."""
    from synthkit.corpus.index import open_index

    try:
        settings = ChunkSettings(
            int(spec.get("size", 1000)), int(spec.get("overlap", 100)), spec.get("unit", "chars"), spec.get("tokenizer")
        )
    except (TypeError, ValueError):
        raise UserError(f"domains.{name}: size and overlap are whole numbers") from None
    return open_index(str(spec["corpus"]), spec.get("field", "text"), spec.get("id", "id"), settings, root)


def corpus_digests(specs: list) -> dict:
    """{task/attribute: the digest of its corpus index} for the corpus domains of `specs`."""
    return {
        f"{spec.name}/{attribute.name}": attribute.index.digest
        for spec in specs
        for attribute in spec.attributes
        if isinstance(attribute, CorpusAttribute)
    }


def check_corpus_used(corpus: Any, specs: list) -> None:
    """corpus=PATH on a run whose tasks draw from no corpus would be ignored: the user meant another task."""
    if corpus in (None, "") or any(isinstance(a, CorpusAttribute) for s in specs for a in s.attributes):
        return
    names = ", ".join(sorted({s.name for s in specs}))
    raise UserError(
        f"corpus={corpus} is set but task {names} draws from no corpus: use task=grounded_retrieval (or a task "
        "whose domains hold {corpus: ${corpus}}), or drop corpus="
    )


def corpus_tags(attributes: dict) -> dict:
    """The row tag naming the chunk its attributes hold (the first corpus attribute), or nothing."""
    for name, value in attributes.items():
        chunk = getattr(value, "chunk", None)
        if chunk is not None:
            return {TAG: {"attribute": name, "chunk": chunk.id, "document": chunk.document, "source": chunk.source}}
    return {}
