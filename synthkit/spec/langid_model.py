"""py3langid's model for the language check: 68 MB of arrays its wheel ships packed with LZMA, which take half a second
of CPU to unpack at every start. A run unpacks them once into the cache dir (`langid/`, beside the response cache and
the corpus indexes) and later runs map them from there in a few milliseconds, sharing their pages with every other
process of the machine. The same arrays either way: the same verdicts. A copy that is damaged or of another model is
set aside and unpacked again; a cache dir that cannot be written leaves the model unpacked from the wheel."""

import json
import os
import shutil
import tempfile
from array import array
from pathlib import Path
from typing import Optional

import numpy as np

FORMAT = 1  # of the unpacked copy: bump when its files change


def load(cache_dir: Optional[Path] = None):
    """py3langid's LanguageIdentifier (probabilities normalised by text length), from the cache dir's copy when it
    has one, else from the wheel (then copied there)."""
    from py3langid import langid

    model_file = langid.MODEL_DIR / langid.MODEL_FILE
    copy = _copy_dir(cache_dir, model_file) if cache_dir is not None else None
    if copy is not None and copy.is_dir():
        try:
            return _identifier(*_read(copy))
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(copy, ignore_errors=True)  # damaged: unpacked again below
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, output = load_model(model_file)
    if copy is not None:
        _write(copy, np.asarray(ptc), np.asarray(pc), classes, nextmove, row, output)
    return _identifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, row, output)


def _identifier(ptc, pc, classes: list, nextmove: array, row: array, output: list):
    from py3langid.langid import LanguageIdentifier

    # norm_probs: probabilities scaled by text length, so short texts get modest confidence
    return LanguageIdentifier(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row)


def _copy_dir(cache_dir: Path, model_file: Path) -> Path:
    """Where the copy of this model (this py3langid's file, by size and time) lives in `cache_dir`."""
    from importlib.metadata import version

    stat = model_file.stat()
    return cache_dir / "langid" / f"py3langid-{version('py3langid')}-{stat.st_size}-{stat.st_mtime_ns}-v{FORMAT}"


def _read(copy: Path) -> tuple:
    meta = json.loads((copy / "model.json").read_text(encoding="utf-8"))
    # mapped: its rows are read where a text's features fall (a plain array on the map: np.memmap's indexing is slower)
    ptc = np.asarray(np.load(copy / "ptc.npy", mmap_mode="r"))
    pc = np.load(copy / "pc.npy")
    nextmove, row = array(meta["nextmove"]), array(meta["row"])
    nextmove.frombytes(_bytes(copy / "nextmove.npy"))  # indexed per byte of text: an array, as py3langid's own
    row.frombytes(_bytes(copy / "row.npy"))
    output = np.load(copy / "output.npy").tolist()
    classes = meta["classes"]
    if ptc.shape != (meta["features"], len(classes)) or pc.shape != (len(classes),) or len(row) != len(output):
        raise ValueError(f"{copy} does not hold the model it names")
    return ptc, pc, classes, nextmove, row, output


def _bytes(path: Path) -> memoryview:
    return memoryview(np.ascontiguousarray(np.load(path, mmap_mode="r"))).cast("B")


def _write(copy: Path, ptc, pc, classes: list, nextmove: array, row: array, output: list) -> None:
    """Write the copy beside its final place, then rename it there: another process reads all of it or none."""
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=copy.parent))
    except OSError:
        return  # a cache dir that cannot be written: the next run unpacks the wheel's model again
    try:
        np.save(staging / "ptc.npy", ptc)
        np.save(staging / "pc.npy", pc)
        np.save(staging / "nextmove.npy", np.frombuffer(nextmove, dtype=np.dtype(nextmove.typecode)))
        np.save(staging / "row.npy", np.frombuffer(row, dtype=np.dtype(row.typecode)))
        np.save(staging / "output.npy", np.asarray(output, dtype=np.int32))
        meta = {"classes": classes, "features": ptc.shape[0], "nextmove": nextmove.typecode, "row": row.typecode}
        (staging / "model.json").write_text(json.dumps(meta), encoding="utf-8")
        os.rename(staging, copy)
    except OSError:  # no space, or another process renamed its copy there first
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
