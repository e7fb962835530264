"""The base model: any sentence-transformers model id or local path, or a bare model2vec folder (wrapped as
sentence-transformers' StaticEmbedding, as synthkit's reference embedder loads it). A model that does not load is one
line naming `evaluate.base`; missing libraries are one line naming the extra that installs them."""

import hashlib
import json
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

# What training needs: sentence-transformers (and torch under it); its trainer refuses to start without accelerate
# and datasets.
LIBRARIES = ("sentence_transformers", "accelerate", "datasets")


def require_libraries() -> None:
    """One line naming the extra when a library evaluation needs is not installed."""
    from importlib import import_module

    for name in LIBRARIES:
        try:
            import_module(name)
        except ImportError as e:
            missing = e.name if e.name and e.name.split(".")[0] in (*LIBRARIES, "torch") else name
            raise UserError(
                f"evaluate needs {missing.replace('_', '-')}: {pip_install('evaluate')}; without a GPU install a CPU "
                "build of torch first (pip install torch --index-url https://download.pytorch.org/whl/cpu)"
            ) from None


def check_device(device) -> None:
    """A device this machine lacks is one line before anything loads (torch would fail deep inside the load)."""
    if not device:
        return
    import torch

    kind = str(device).split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(kind, True):
        raise UserError(f"evaluate.device={device}: this machine has no {kind} device; use evaluate.device=cpu or null")


def load_model(name: str, device=None):
    """A SentenceTransformer from `name` (evaluate.base), or a one-line error."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per load on stderr, where synthkit's lines go
    transformers_logging.set_verbosity_error()

    check_base(name)
    path = Path(name).expanduser()
    try:
        if path.is_dir() and not (path / "modules.json").exists() and _is_model2vec(path):
            from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

            return SentenceTransformer(modules=[StaticEmbedding.from_model2vec(str(path)), Normalize()], device=device)
        return SentenceTransformer(str(path) if path.is_dir() else name, device=device)
    except Exception as e:  # noqa: BLE001 - the loaders raise OSError, ValueError, hub and HTTP errors alike
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:160]
        raise UserError(
            f"evaluate.base={name} does not load as a sentence-transformers model ({reason}): give a model folder "
            "or a Hub id that is reachable or cached"
        ) from None


def check_base(name: str) -> None:
    """A base meant as a folder that is none is said at once (sentence-transformers would take it for a Hub id and
    go online), before any library is imported."""
    if _looks_like_a_path(name) and not Path(name).expanduser().is_dir():
        raise UserError(f"evaluate.base={name} is no folder: give a local model folder or a Hub model id")


def _looks_like_a_path(name: str) -> bool:
    # Hub ids are `name` or `owner/name`; anything else is meant as a folder.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _is_model2vec(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type") == "model2vec"
    except (OSError, ValueError, AttributeError):
        return False


def is_static(model) -> bool:
    """A static model (token vectors and a mean): it has no pretrained layers to protect, and learns at a far higher
    rate than a transformer."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    return any(isinstance(module, StaticEmbedding) for module in model)


def fingerprint(name: str) -> str:
    """The base model's identity for the corpus-embedding cache: a local folder's files (path, size, modification
    time: a model saved again gets a new key), or a Hub id with the revision cached here."""
    path = Path(name).expanduser()
    if path.is_dir():
        stats = sorted(
            (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()
        )
        identity = [str(path.resolve()), stats]
    else:
        identity = [name, _cached_revision(name)]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def _cached_revision(repo_id: str) -> str:
    """The snapshot of a Hub model in the local cache (its commit), or "" when it is not there."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "modules.json") or try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an id the hub library refuses: the id alone is the key
        return ""
    return Path(found).parent.name if isinstance(found, str) else ""
