"""Gecko-style relabelling (relabel=true): for each generated query the reference embedder retrieves the
top_k chunks of the corpus (the seed chunk kept among them), the task's judge prompt (its `relabel:` block)
rates each, the best-rated becomes the positive (it may not be the seed chunk) and the highest-ranked one
rated irrelevant the hard negative. The judge is asked through the run's own ModelCaller: the same cache,
rate limits, retries and budget as every other call. Chunk embeddings are computed once per corpus index and
embedder, kept beside the index as a memory-mapped .npy, and scanned in blocks."""

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jsonschema

from synthkit.calls.caller import Caller
from synthkit.calls.conversation import ask
from synthkit.core.errors import UserError
from synthkit.core.review import Asking, CheckFailure
from synthkit.corpus.domain import TAG, CorpusAttribute
from synthkit.spec.parsing import ParseError, parse_json_object
from synthkit.spec.templates import compile_template, render

BLOCK = 1 << 16  # chunk embeddings scored at once
SCORE_KEYS = ("query", "top_k", "positive", "negative", "prompt")
IRRELEVANT = 1  # ratings at most this are not an answer: candidates for the hard negative


@dataclass(frozen=True)
class Judged:
    candidates: list  # chunk numbers, in retrieval order
    ratings: list
    positive: int  # an index into candidates
    negative: Optional[int]


@dataclass
class Plan:
    """What relabelling needs of one task: its corpus attribute and its `relabel:` block."""

    attribute: CorpusAttribute
    query: str
    top_k: int
    positive: str
    negative: str
    template: object


def plan_of(task) -> Plan:
    attribute = next((a for a in task.attributes if isinstance(a, CorpusAttribute)), None)
    block = task.data.get("relabel")
    if attribute is None or not isinstance(block, dict):
        raise UserError(
            f"relabel=true needs a task with a corpus domain and a relabel: block; {task.name} lacks "
            f"{'a corpus domain' if attribute is None else 'a relabel: block'} (task=grounded_retrieval has both)"
        )
    missing = [k for k in SCORE_KEYS if k not in block]
    if missing:
        raise UserError(f"task {task.name}: relabel: lacks {', '.join(missing)}")
    if block["query"] not in task.output_keys:
        raise UserError(f"task {task.name}: relabel.query names {block['query']}, which is not an output key")
    if not isinstance(block["top_k"], int) or block["top_k"] < 2:
        raise UserError(f"task {task.name}: relabel.top_k must be at least 2")
    template = compile_template(block["prompt"], f"task {task.name}: relabel.prompt")
    return Plan(attribute, block["query"], block["top_k"], block["positive"], block["negative"], template)


def choose(candidates: list, ratings: list, seed: int) -> Judged:
    """The positive: the best-rated candidate (the seed chunk on a tie, then the higher-ranked); the negative:
    the highest-ranked candidate rated irrelevant that is neither the seed nor the positive."""
    best = max(range(len(candidates)), key=lambda i: (ratings[i], candidates[i] == seed, -i))
    negative = next(
        (
            i
            for i in range(len(candidates))
            if ratings[i] <= IRRELEVANT and candidates[i] not in (seed, candidates[best])
        ),
        None,
    )
    return Judged(candidates, ratings, best, negative)


def judge_schema(k: int) -> dict:
    ratings = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 3}, "minItems": k, "maxItems": k}
    return {
        "type": "object",
        "properties": {"ratings": ratings},
        "required": ["ratings"],
        "additionalProperties": False,
    }


class Relabeler:
    def __init__(self, embedder, embedder_name: str, tasks: list):
        self.embedder, self.name = embedder, embedder_name
        self.plans = {id(t): (t, plan_of(t)) for t in tasks}  # the task is kept: its id stays its own
        self.vectors: dict = {}  # index dir -> memory-mapped chunk embeddings
        for _, plan in self.plans.values():
            self._vectors(plan.attribute.index)

    def _vectors(self, index):
        import numpy as np

        key = str(index.directory)
        if key not in self.vectors:
            path = index.directory / f"embeddings-{hashlib.sha256(self.name.encode()).hexdigest()[:12]}.npy"
            if not path.is_file():
                _embed(self.embedder, index, path)
            self.vectors[key] = np.load(path, mmap_mode="r")
        return self.vectors[key]

    def retrieve(self, index, query: str, k: int) -> list:
        import numpy as np

        vectors = self._vectors(index)
        q = self.embedder.encode_queries([query])[0]
        best_ids, best_scores = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        for start in range(0, len(vectors), BLOCK):
            scores = np.asarray(vectors[start : start + BLOCK]) @ q
            top = np.argsort(-scores, kind="stable")[:k]
            best_ids = np.concatenate([best_ids, top + start])
            best_scores = np.concatenate([best_scores, scores[top]])
        order = np.argsort(-best_scores, kind="stable")[:k]
        return [int(i) for i in best_ids[order]]

    def review(self, caller: Caller) -> "RelabelReview":
        """Relabelling as a review of rows, its judge asked through `caller` (the run's own)."""
        return RelabelReview(self, caller)


class RelabelReview:
    name = "relabel"

    def __init__(self, relabeler: Relabeler, caller: Caller):
        self.relabeler, self.caller = relabeler, caller

    async def review(self, asking: Asking, row, outputs: dict) -> Optional[CheckFailure]:
        """Relabel `row` (its outputs and corpus tag) in place; what is wrong with it, or None."""
        relabeler, task = self.relabeler, asking.task
        if id(task) not in relabeler.plans:
            relabeler.plans[id(task)] = (task, plan_of(task))
        plan = relabeler.plans[id(task)][1]
        index = plan.attribute.index
        seed = getattr(row.attributes[plan.attribute.name], "chunk", None)
        if seed is None or plan.query not in outputs:  # no chunk, or a step that does not write the query
            return None
        query = str(outputs[plan.query])
        candidates = relabeler.retrieve(index, query, min(plan.top_k, len(index)))
        if seed.number not in candidates:
            candidates[-1] = seed.number
        chunks = [index.chunk(n) for n in candidates]
        prompt = render(
            plan.template, {"query": query, "passages": [c.text for c in chunks]}, f"task {task.name}: relabel"
        )
        schema = judge_schema(len(candidates))

        async def read(completion) -> tuple:
            try:
                ratings = parse_json_object(completion.text)
                jsonschema.validate(ratings, schema)
            except (ParseError, jsonschema.ValidationError) as e:
                return None, CheckFailure(
                    "relabel", f"the judge's answer is not {len(candidates)} ratings ({str(e)[:120]})", False
                )
            return ratings["ratings"], None

        asked = await ask(
            self.caller, [{"role": "user", "content": prompt}], schema, "relabel", f"{asking.call_id}:relabel", 1, read,
            lambda problem: problem.message, row.usage,
            lambda refusal: CheckFailure("relabel", f"the judge's request was refused: {refusal}", reask=False),
        )  # fmt: skip
        if asked.problem is not None:
            return asked.problem
        judged = choose(candidates, asked.value, seed.number)
        if judged.ratings[judged.positive] <= IRRELEVANT:
            return CheckFailure("relabel", "the judge found no passage that answers the query", reask=False)
        positive = chunks[judged.positive]
        outputs[plan.positive] = positive.text
        record = {
            "seed_chunk": seed.id,
            "positive": positive.id,
            "positive_document": positive.document,
            "negative": None,
            "judge": {"candidates": [c.id for c in chunks], "ratings": judged.ratings},
        }
        if judged.negative is not None:
            negative = chunks[judged.negative]
            outputs[plan.negative] = negative.text
            record.update(negative=negative.id, negative_document=negative.document)
        row.tags[TAG] = {**row.tags.get(TAG, {}), **record}
        return None


def _embed(embedder, index, path: Path) -> None:
    """Every chunk's embedding into `path`, batch by batch, through a temporary file (a killed build leaves none)."""
    import numpy as np

    handle, temporary = tempfile.mkstemp(suffix=".npy", dir=path.parent)
    os.close(handle)
    try:
        matrix = None
        for start in range(0, len(index), 4096):
            vectors = embedder.encode_documents([c.text for c in index.chunks(start, start + 4096)])
            if matrix is None:
                matrix = np.lib.format.open_memmap(
                    temporary, mode="w+", dtype=np.float32, shape=(len(index), vectors.shape[1])
                )
            matrix[start : start + len(vectors)] = vectors
        matrix.flush()
        del matrix
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def make_relabeler(embedder_cfg, tasks: list) -> Relabeler:
    """The relabeler of relabel=true with the reference embedder `embedder_cfg`, loaded and checked before the run
    starts."""
    from synthkit.quality.embedder import load

    for task in tasks:  # refuse a task without a corpus or a judge before loading anything
        plan_of(task)
    embedder = load(embedder_cfg)
    return Relabeler(embedder, json.dumps([embedder_cfg.backend, embedder_cfg.model]), tasks)
