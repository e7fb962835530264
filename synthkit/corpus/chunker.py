"""Long documents to chunks with semantic-text-splitter (a maintained Rust splitter): windows of up to
`size` characters, or tokens of a tokenizer.json, with `overlap`, cut at the largest semantic unit that
fits (paragraph, sentence, word); Markdown files by Markdown structure. A chunk is a span of its document."""

from dataclasses import dataclass
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

MARKDOWN = (".md", ".markdown")


@dataclass(frozen=True)
class ChunkSettings:
    size: int = 1000  # at most this many characters (or tokens) per chunk
    overlap: int = 100
    unit: str = "chars"  # chars | tokens
    tokenizer: Optional[str] = None  # a tokenizer.json, for unit=tokens

    def check(self, where: str) -> None:
        if self.size < 1 or not 0 <= self.overlap < self.size:
            raise UserError(
                f"{where}: chunk size must be >= 1 and 0 <= overlap < size (got {self.size}, {self.overlap})"
            )
        if self.unit not in ("chars", "tokens"):
            raise UserError(f"{where}: unit is chars or tokens, not {self.unit!r}")
        if self.unit == "tokens" and not self.tokenizer:
            raise UserError(f"{where}: unit: tokens needs tokenizer: path/to/tokenizer.json")


class Chunker:
    def __init__(self, settings: ChunkSettings):
        try:
            import semantic_text_splitter as sts
        except ImportError:
            raise UserError(f"a corpus is split with semantic-text-splitter: {pip_install('corpus')}") from None
        # A segment holds many chunks, so cuts between segments are rare, and keeps the splitter's time linear.
        self._segment = max(32 * settings.size * (4 if settings.unit == "tokens" else 1), 32_768)
        self._splitters = {
            False: _splitter(sts.TextSplitter, settings),
            True: _splitter(sts.MarkdownSplitter, settings),
        }

    def spans(self, text: str, suffix: str = "") -> list:
        """(start, length) in characters of each chunk of `text`, in order."""
        splitter = self._splitters[suffix.lower() in MARKDOWN]
        spans = []
        for offset, segment in segments(text, self._segment):
            spans += [(offset + start, len(chunk)) for start, chunk in splitter.chunk_indices(segment) if chunk.strip()]
        return spans


BREAKS = ("\n\n", "\n", ". ", " ")  # where a long document is cut into segments, best first


def segments(text: str, limit: int) -> list:
    """(offset, part) of `text` in parts of at most `limit` characters, each cut at the last paragraph, line,
    sentence or word break in its second half. The splitter takes time quadratic in the length of a text
    without paragraph breaks (a 10 MB single line took minutes); chunks never cross a cut."""
    parts, start = [], 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = next((i + len(b) for b in BREAKS if (i := window.rfind(b, limit // 2)) >= 0), limit)
        parts.append((start, window[:cut]))
        start += cut
    parts.append((start, text[start:]))
    return parts


def _splitter(kind, settings: ChunkSettings):
    if settings.unit == "chars":
        return kind(settings.size, overlap=settings.overlap)
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(settings.tokenizer)
    except ImportError:
        raise UserError(f"unit: tokens needs the tokenizers library: {pip_install('corpus')}") from None
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a bad file
        raise UserError(
            f"tokenizer {settings.tokenizer} does not load ({str(e)[:120]}): give a tokenizer.json"
        ) from None
    tokenizer.no_truncation()
    return kind.from_huggingface_tokenizer(tokenizer, settings.size, overlap=settings.overlap)
