"""Evaluation sets, each named as the user gave it in `evaluate.sets`:

- a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (what `synthkit export --to beir` writes, and what
  BEIR and MTEB users already have);
- a Hugging Face dataset id in MTEB's layout (configs `corpus`, `queries`, and `default` holding the qrels; or the
  qrels in a repo `<id>-qrels` of their own), where the machine is online;
- `heldout`: a share of the run's own queries, held out of training. Its positives were chosen by the run itself
  (its generator, embedder or judge), so it is labelled self-labelled and in-domain wherever it is reported.

A set that cannot be read is one line naming the file and line, never a traceback."""

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.core.paths import special_file
from synthkit.results.beir import assign, write_beir
from synthkit.results.export import QUERY_TEMPLATE
from synthkit.results.rundir import RunDir

HELDOUT = "heldout"
BEIR_LAYOUT = "corpus.jsonl, queries.jsonl, qrels/{split}.tsv"


@dataclass
class EvalSet:
    name: str  # as given in evaluate.sets
    corpus: dict  # doc id -> text (title and text joined, as BEIR and MTEB join them)
    queries: dict  # query id -> text, only queries with a relevant document in the corpus
    qrels: dict  # query id -> {doc id}, relevance > 0
    instructions: dict = field(default_factory=dict)  # query id -> task definition (synthkit's metadata.instruction)
    digest: str = ""  # of the corpus: with the model's, the key of cached corpus embeddings
    dropped_qrels: int = 0  # naming a document that is not in the corpus
    self_labelled: bool = False  # its labels came from the run being evaluated (heldout)

    def query_texts(self, default_instruction: Optional[str]) -> dict:
        """The texts a model sees: the instruction template before each query, as in training."""
        out = {}
        for qid, text in self.queries.items():
            instruction = self.instructions.get(qid) or default_instruction
            out[qid] = QUERY_TEMPLATE.format(instruction=instruction) + text if instruction else text
        return out


def check_names(names: list) -> None:
    if not names:
        raise UserError(
            "evaluate.sets is empty: name BEIR folders, Hugging Face dataset ids or heldout, e.g. "
            "'evaluate.sets=[outputs/docs/exports/beir]' (synthkit export RUN --to beir writes one)"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"evaluate.sets names {repeated[0]} twice: name each set once")


def kind_of(name: str) -> str:
    """heldout, beir (a folder, or meant as one) or hub (`owner/name`, not a folder here)."""
    if name == HELDOUT:
        return "heldout"
    meant_as_folder = name.startswith((".", "/", "~")) or name.count("/") != 1 or "\\" in name
    return "beir" if meant_as_folder or Path(name).expanduser().is_dir() else "hub"


def load_sets(names: list, split: str, examples: list, heldout_share: float, seed: int, run: RunDir) -> tuple:
    """(the sets named, the query ids of `examples` held out of training for `heldout`)."""
    check_names(names)
    sets, held_out = [], set()
    for name in names:
        kind = kind_of(name)
        if kind == "heldout":
            heldout, held_out = heldout_set(examples, heldout_share, seed, run)
            sets.append(heldout)
        else:
            sets.append(load_beir(name, split) if kind == "beir" else load_hub(name, split))
    return sets, held_out


def load_beir(name: str, split: str = "test") -> EvalSet:
    folder = Path(name).expanduser()
    layout = BEIR_LAYOUT.format(split=split)
    if not folder.is_dir():
        raise UserError(f"evaluation set {name} is not a folder: give a BEIR folder ({layout}), a Hub id or heldout")
    paths = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"]
    for path in paths:
        special = special_file(path)  # a FIFO would block the read for ever
        if special or not path.is_file():
            what = f"holds {special} as" if special else "lacks"
            raise UserError(f"evaluation set {name} {what} {path.relative_to(folder)} (a BEIR folder holds {layout})")
    corpus = {row["_id"]: _document(row) for row in _jsonl(paths[0])}
    queries, instructions = {}, {}
    for row in _jsonl(paths[1]):
        queries[row["_id"]] = row["text"]
        metadata = row.get("metadata")
        instruction = metadata.get("instruction") if isinstance(metadata, dict) else None
        if isinstance(instruction, str) and instruction.strip():
            instructions[row["_id"]] = instruction
    qrels, dropped = _qrels(paths[2], queries, corpus)
    digest = hashlib.sha256(paths[0].read_bytes()).hexdigest()[:16]
    return _made(name, corpus, queries, qrels, instructions, digest, dropped, paths[2])


def _made(name, corpus, queries, qrels, instructions, digest, dropped, qrels_source, self_labelled=False) -> EvalSet:
    if not qrels:
        raise UserError(f"{qrels_source} pairs no query of the set with a document of its corpus: nothing to score")
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    instructions = {q: i for q, i in instructions.items() if q in queries}
    return EvalSet(name, corpus, queries, qrels, instructions, digest, dropped, self_labelled)


def _document(row: dict) -> str:
    title = row.get("title")
    return (f"{title} {row['text']}" if isinstance(title, str) and title.strip() else row["text"]).strip()


def _jsonl(path: Path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                row = None
            if not (
                isinstance(row, dict)
                and isinstance(row.get("_id"), (str, int))
                and not isinstance(row.get("_id"), bool)
                and isinstance(row.get("text"), str)
            ):
                raise UserError(f"{path}:{number}: not a JSON object with a string _id and text (BEIR's layout)")
            row["_id"] = str(row["_id"])
            yield row


def _qrels(path: Path, queries: dict, corpus: dict) -> tuple:
    """({query id: {relevant doc ids}}, qrels naming a document not in the corpus). Rows of BEIR's three columns
    (query-id, corpus-id, score) or TREC's four (query-id, 0, corpus-id, score); a header line is skipped."""
    qrels, dropped = {}, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            cells = line.rstrip("\r\n").split("\t")
            if not line.strip() or (number == 1 and cells[0] == "query-id"):
                continue
            try:
                qid, did, score = cells if len(cells) == 3 else (cells[0], cells[2], cells[3])
                relevant = float(score) > 0
            except (ValueError, IndexError):
                raise UserError(f"{path}:{number}: not 'query-id<TAB>corpus-id<TAB>score' (BEIR's qrels)") from None
            if not relevant or qid not in queries:
                continue
            if did not in corpus:
                dropped += 1
                continue
            qrels.setdefault(qid, set()).add(did)
    return qrels, dropped


def load_hub(name: str, split: str = "test") -> EvalSet:
    """A dataset of the Hugging Face Hub in MTEB's layout (mteb/scifact): one line when it cannot be loaded
    (offline, no such dataset, another layout)."""
    try:
        from datasets import load_dataset
    except ImportError:
        from synthkit.core.extras import pip_install

        raise UserError(
            f"evaluation set {name}: reading Hub datasets needs datasets: {pip_install('evaluate')}"
        ) from None
    try:
        corpus = {str(r["_id"]): _document(r) for r in _only_split(load_dataset(name, "corpus"))}
        queries = {str(r["_id"]): r["text"] for r in _only_split(load_dataset(name, "queries"))}
        try:
            rows = load_dataset(name, "default", split=split)
        except Exception:  # noqa: BLE001 - some sets keep their qrels in a repo of their own (<id>-qrels)
            rows = load_dataset(f"{name}-qrels", split=split)
        qrels, dropped = {}, 0
        for r in rows:
            qid, did = str(r["query-id"]), str(r["corpus-id"])
            if float(r["score"]) > 0 and qid in queries:
                if did in corpus:
                    qrels.setdefault(qid, set()).add(did)
                else:
                    dropped += 1
    except Exception as e:  # noqa: BLE001 - datasets raises hub, HTTP, offline and layout errors alike
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(
            f"evaluation set {name} is no folder here and does not load from the Hugging Face Hub ({reason}): give "
            f"a BEIR folder ({BEIR_LAYOUT.format(split=split)}) or a reachable Hub id in MTEB's layout"
        ) from None
    digest = hashlib.sha256(json.dumps(sorted(corpus.items())).encode()).hexdigest()[:16]
    return _made(name, corpus, queries, qrels, {}, digest, dropped, f"{name}'s {split} qrels")


def _only_split(dataset_dict):
    return dataset_dict[next(iter(dataset_dict))] if hasattr(dataset_dict, "keys") else dataset_dict


def heldout_set(examples: list, share: float, seed: int, run: RunDir) -> tuple:
    """(the run's held-out queries as a set, their query ids). Made by the BEIR export itself (its corpus: every
    chunk of a grounded run's corpus when it can still be read, else the rows' own documents; its seeded split),
    so the set is the one `synthkit export RUN --to beir --split test=SHARE` writes."""
    split_of = assign([e.query_id for e in examples], {"test": share}, seed)
    held_out = {q for q, name in split_of.items() if name == "test"}
    if not held_out or len(held_out) == len(examples):
        raise UserError(
            f"evaluate.heldout_share={share} of {len(examples)} queries holds out {len(held_out)}: "
            "choose a share that leaves queries for both training and evaluation"
        )
    with tempfile.TemporaryDirectory(prefix="synthkit-heldout-") as folder:
        write_beir(examples, Path(folder), seed, {"test": share}, run)
        loaded = load_beir(folder, "test")
    loaded.name, loaded.self_labelled = HELDOUT, True
    return loaded, held_out
