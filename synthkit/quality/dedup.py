"""Exact and near-duplicate detection over texts: exact after case and space folding, near by
MinHash LSH over word 3-grams (datasketch). Used online within a run (a duplicate row is rejected
and replaced), over a merged sweep, and over a brainstormed pool of task definitions."""

import hashlib
import re
from typing import Optional

_WORD = re.compile(r"\w+", re.UNICODE)
NUM_PERM = 64


class Deduplicator:
    def __init__(self, threshold: float = 0.9):
        from datasketch import MinHash, MinHashLSH  # numpy and scipy: only for runs that deduplicate

        self.threshold = threshold
        # Drawn once: a MinHash draws its permutations anew otherwise, most of its cost.
        template = MinHash(num_perm=NUM_PERM, hashfunc=_hash32)
        self._permutations, self._scheme = template.permutations, template.scheme
        self._exact: dict = {}
        self._keys: list = []  # LSH entries by number: the caller's keys need not be unique
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM) if threshold < 1 else None

    def add(self, key: str, text: str) -> Optional[str]:
        """Remember `text` under `key`, unless it duplicates an earlier text: then return that one's key."""
        words = _WORD.findall(text.lower())
        if not words:
            return None
        digest = hashlib.sha256(" ".join(words).encode()).hexdigest()
        if digest in self._exact:
            return self._exact[digest]
        minhash = None
        if self._lsh is not None and len(words) >= 3:
            minhash = self._minhash(words)
            similar = self._lsh.query(minhash)
            if similar:
                return self._keys[min(similar)]
        self._exact[digest] = key
        if minhash is not None:
            self._lsh.insert(len(self._keys), minhash)
            self._keys.append(key)
        return None

    def _minhash(self, words: list):
        from datasketch import MinHash

        minhash = MinHash(num_perm=NUM_PERM, hashfunc=_hash32, permutations=self._permutations, scheme=self._scheme)
        minhash.update_batch([" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)])
        return minhash


def _hash32(data: bytes) -> int:
    # Not Python's hash(): it is salted per process, and a seed must give the same rows in every run.
    # BLAKE2b cut to 4 bytes is as good as datasketch's default SHA-1 and faster.
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little")
