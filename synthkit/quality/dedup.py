"""Exact and near-duplicate detection over texts: exact after case and space folding, near by MinHash LSH over
word 3-grams. Used online within a run (a duplicate row is rejected and replaced), over a merged sweep, and over a
brainstormed pool of task definitions.

The MinHash and its LSH index are datasketch's (2.0, scheme affine32: the same permutations, hash values, bands
and candidates, so the same texts are found duplicates), written here in a few lines of numpy: datasketch imports
scipy only to choose the bands, which cost a run half a second of start-up. numpy itself loads on first use: the
command line imports this module to merge sweeps, and `--cfg job` needs none of it."""

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Optional

_WORD = re.compile(r"\w+", re.UNICODE)
_blake2b = hashlib.blake2b
NUM_PERM = 64
SEED = 1  # datasketch's default: the permutations drawn from np.random.RandomState(1)
# Bands are chosen to minimise false positives + false negatives, weighed alike (datasketch's defaults).
_GRID = 2001  # points of the integrals over similarity (Simpson's rule; scipy's quad agrees on every choice)


@dataclass(frozen=True)
class Signature:
    hashvalues: "np.ndarray"  # noqa: F821 - NUM_PERM minimum hash values (uint32)


class Deduplicator:
    def __init__(self, threshold: float = 0.9):
        self.threshold = threshold
        self._exact: dict = {}
        self._keys: list = []  # LSH entries by number: the caller's keys need not be unique
        self._bands = _band_ranges(threshold, NUM_PERM) if threshold < 1 else None
        self._tables: list = [{} for _ in self._bands] if self._bands else []

    def add(self, key: str, text: str) -> Optional[str]:
        """Remember `text` under `key`, unless it duplicates an earlier text: then return that one's key."""
        words = _WORD.findall(text.lower())
        if not words:
            return None
        digest = hashlib.sha256(" ".join(words).encode()).hexdigest()
        if digest in self._exact:
            return self._exact[digest]
        bands = None
        if self._bands is not None and len(words) >= 3:
            hashvalues = self._minhash(words).hashvalues
            bands = [hashvalues[start:end].tobytes() for start, end in self._bands]
            similar = [n for table, band in zip(self._tables, bands) for n in table.get(band, ())]
            if similar:
                return self._keys[min(similar)]
        self._exact[digest] = key
        if bands is not None:
            number = len(self._keys)
            for table, band in zip(self._tables, bands):
                table.setdefault(band, []).append(number)
            self._keys.append(key)
        return None

    def _minhash(self, words: list) -> Signature:
        import numpy as np

        # Not Python's hash(): it is salted per process, and a seed must give the same rows in every run.
        # BLAKE2b cut to 4 bytes (read little-endian) is as good as datasketch's default SHA-1 and faster.
        digests = [
            _blake2b(f"{a} {b} {c}".encode(), digest_size=4).digest() for a, b, c in zip(words, words[1:], words[2:])
        ]
        hashes = np.frombuffer(b"".join(digests), dtype="<u4").astype(np.uint32)
        a, b = _permutations()
        return Signature((_fmix32(hashes)[:, None] * a + b).min(axis=0))  # uint32 arithmetic wraps: modulo 2^32


def _fmix32(values):
    """MurmurHash3's finalizer, which mixes each hash once before the permutations (datasketch's affine32)."""
    import numpy as np

    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


@functools.cache
def _permutations() -> tuple:
    """(a, b) of the NUM_PERM permutations h -> a*h + b mod 2^32, `a` odd, drawn as datasketch draws them."""
    import numpy as np

    draw = np.random.RandomState(SEED)
    a = draw.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = draw.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


@functools.cache
def _band_ranges(threshold: float, num_perm: int) -> tuple:
    """The LSH bands, (start, end) of each in a signature: b bands of r rows, the (b, r) with the least false
    positives (texts under `threshold` sharing a band) plus false negatives (texts over it sharing none)."""
    b, r = _optimal_bands(threshold, num_perm)
    return tuple((i * r, (i + 1) * r) for i in range(b))


def _optimal_bands(threshold: float, num_perm: int) -> tuple:
    import numpy as np

    below, above = np.linspace(0.0, threshold, _GRID), np.linspace(threshold, 1.0, _GRID)
    best, error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            false_positive = _simpson(1 - (1 - below**r) ** b, below)
            false_negative = _simpson((1 - above**r) ** b, above)
            if false_positive + false_negative < error:
                best, error = (b, r), false_positive + false_negative
    return best


def _simpson(values, points) -> float:
    step = points[1] - points[0]
    return float(step / 3 * (values[0] + values[-1] + 4 * values[1:-1:2].sum() + 2 * values[2:-1:2].sum()))
