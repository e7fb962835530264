"""Where synthkit keeps what outlives a run on this machine: the cache dir (response cache, rate schedules, corpus
indexes), chosen by `cache_dir`, else $SYNTHKIT_CACHE_DIR, else the XDG cache home."""

import os
from pathlib import Path
from typing import Optional

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
