"""The reference embedder that judges a run's rows: one small protocol (queries and documents to
L2-normalised float32 matrices) with two backends, model2vec static embeddings (the light default,
no torch) and sentence-transformers (any ST model, its own query/document prompts). Each is loaded
through its library's own loader from a hub id or a local directory, imported only when asked for;
a model that cannot be loaded is a one-line UserError naming `embedder.model`, the extra to install and, for a hub id
(a first run offline), `synthkit fetch-models`, which downloads it ahead (`fetch`)."""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BACKEND = "model2vec"
DEFAULT_MODEL = "minishlab/potion-multilingual-128M"  # 256-d, 101 languages, distilled from bge-m3
BACKENDS = {"model2vec": "quality", "sentence-transformers": "st"}  # backend -> the extra that installs it


class Embedder(Protocol):
    def encode_queries(self, texts: Sequence[str]) -> "np.ndarray": ...

    def encode_documents(self, texts: Sequence[str]) -> "np.ndarray": ...


def normalise(matrix: "np.ndarray") -> "np.ndarray":
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # A text with no known token embeds to zeros: it stays zero (cosine 0 to everything), not NaN.
    return matrix / np.maximum(norms, 1e-12)


class StaticEmbedder:
    """model2vec: a token-vector lookup and a mean; queries and documents share one encoder."""

    def __init__(self, model, batch_size: int):
        self.model, self.batch_size = model, batch_size

    def _encode(self, texts: Sequence[str]) -> "np.ndarray":
        if not texts:
            import numpy as np

            return np.zeros((0, self.model.dim), dtype=np.float32)
        # Its own multiprocessing pays off only on huge single calls; callers here stream batches.
        return normalise(self.model.encode(list(texts), batch_size=self.batch_size, use_multiprocessing=False))

    encode_queries = encode_documents = _encode


class SentenceTransformerEmbedder:
    """sentence-transformers: queries and documents get the model's own prompts (its `prompts` named
    query / document, as its encode_query and encode_document use), unless explicit ones are given."""

    def __init__(self, model, batch_size: int, query_prompt: str | None, document_prompt: str | None):
        self.model, self.batch_size = model, batch_size
        prompts = getattr(model, "prompts", None) or {}
        self.query_prompt_args = _prompt_args(query_prompt, prompts, ("query",))
        self.document_prompt_args = _prompt_args(document_prompt, prompts, ("document", "passage", "corpus"))

    def _encode(self, texts: Sequence[str], prompt_args: dict) -> "np.ndarray":
        if not texts:
            import numpy as np

            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
            **prompt_args,
        )
        return normalise(vectors)

    def encode_queries(self, texts: Sequence[str]) -> "np.ndarray":
        return self._encode(texts, self.query_prompt_args)

    def encode_documents(self, texts: Sequence[str]) -> "np.ndarray":
        return self._encode(texts, self.document_prompt_args)


def _prompt_args(explicit: str | None, prompts: dict, names: tuple) -> dict:
    if explicit is not None:
        # A configured prompt is either one of the model's prompt names or the prompt text itself.
        return {"prompt_name": explicit} if explicit in prompts else {"prompt": explicit}
    for name in names:
        if name in prompts:
            return {"prompt_name": name}
    return {}


def load_embedder(
    backend: str = DEFAULT_BACKEND,
    model: str = DEFAULT_MODEL,
    device: str | None = None,
    batch_size: int = 256,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> Embedder:
    if backend not in BACKENDS:
        raise UserError(f"embedder.backend={backend} is not one of {', '.join(BACKENDS)}")
    extra = BACKENDS[backend]
    if _looks_like_a_path(model) and not Path(model).expanduser().is_dir():
        # Said here, not by the loader: it would take a missing directory for a hub id and go online.
        raise UserError(
            f"embedder.model={model} is no directory: give a local {backend} model directory "
            f"or a hub id; the backend installs with {pip_install(extra)}"
        )
    try:
        if backend == "model2vec":
            from model2vec import StaticModel

            # force_download=False: a model already in the hub cache loads offline.
            return StaticEmbedder(StaticModel.from_pretrained(_local(model), force_download=False), batch_size)
        from sentence_transformers import SentenceTransformer

        loaded = SentenceTransformer(_local(model), device=device)
        return SentenceTransformerEmbedder(loaded, batch_size, query_prompt, document_prompt)
    except ImportError as e:
        raise UserError(f"embedder.backend={backend} needs {e.name or 'its library'}: {pip_install(extra)}") from None
    except Exception as e:  # noqa: BLE001 - the loaders raise OSError, ValueError, hub and HTTP errors alike
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:160]
        if _looks_like_a_path(model):
            fix = "give a local model directory or a hub id"
        else:  # most often a first run offline: the model was never downloaded
            fix = (
                f"where the Hub is reachable, fetch it first with: {fetch_command(backend, model)} (--to DIR saves "
                "a copy to take along, then embedder.model=DIR)"
            )
        raise UserError(
            f"embedder.model={model} could not be loaded by {backend} ({reason}): {fix}; the backend installs "
            f"with {pip_install(extra)}"
        ) from None


GROUP_OPTIONS = {"model2vec": "model2vec", "sentence-transformers": "sentence_transformers"}  # backend -> embedder=


def fetch_command(backend: str, model: str) -> str:
    """The command that downloads this embedder ahead of an offline run."""
    group = "" if backend == DEFAULT_BACKEND else f"embedder={GROUP_OPTIONS.get(backend, backend)} "
    return f"synthkit fetch-models {group}embedder.model={model}"


def fetch(embedder_cfg, to: Optional[Path] = None) -> str:
    """Download the embedder an `embedder` config names into the Hugging Face cache (its own loader fetches what it
    loads, so a later run finds it there, offline too), and with `to` save it into a new folder; what was done."""
    model = embedder_cfg.model
    if to is not None:
        to = Path(to)
        if to.exists() and (not to.is_dir() or any(to.iterdir())):
            raise UserError(f"--to {to} already holds files: give a new folder to save the model into")
    if _looks_like_a_path(model) and to is None:
        return f"embedder.model={model} is a local directory: nothing to fetch"
    embedder = load(embedder_cfg)
    if to is None:
        from huggingface_hub import constants

        return (
            f"fetched {embedder_cfg.backend} {model} into the Hugging Face cache ({constants.HF_HUB_CACHE}): runs on "
            "this machine load it from there, offline too (HF_HUB_OFFLINE=1)"
        )
    try:
        if isinstance(embedder, StaticEmbedder):
            embedder.model.save_pretrained(str(to))
        else:
            embedder.model.save(str(to))
    except OSError as e:
        raise UserError(f"cannot write {to}: {e.strerror}; choose another --to") from None
    return f"saved {embedder_cfg.backend} {model} to {to}: score, relabel and mine with embedder.model={to}"


def _looks_like_a_path(model: str) -> bool:
    # Hub ids are `name` or `owner/name`; anything else is meant as a directory.
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model or Path(model).is_dir()


def _local(model: str) -> str:
    path = Path(model).expanduser()
    return str(path) if path.is_dir() else model


def load(embedder_cfg) -> Embedder:
    """The embedder an `embedder` config (EmbedderConfig) names, or a one-line error naming embedder.model and the
    extra to install."""
    try:
        import numpy  # noqa: F401 - the embedders' own dependency, absent from a bare install
    except ImportError as e:
        raise UserError(f"scoring needs {e.name}: {pip_install('quality')}") from None
    return load_embedder(
        embedder_cfg.backend,
        embedder_cfg.model,
        embedder_cfg.device,
        embedder_cfg.batch_size,
        embedder_cfg.query_prompt,
        embedder_cfg.document_prompt,
    )
