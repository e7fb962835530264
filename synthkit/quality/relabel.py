"""Gecko-style relabelling (relabel=true): for each generated query the reference embedder retrieves the
top_k chunks of the corpus (the seed chunk kept among them), and the task's judge prompt (its `relabel:` block)
rates them twice, in retrieval order and reversed, so that a rater who follows the candidates' positions (small
models rate [3, 2, 1, 0] whatever they read) cannot steer the labels:

- a rater whose two ratings of one chunk differ by more than AGREEMENT is inconsistent: the seed chunk stays the
  positive, no negative is taken, and the row's corpus tag says `relabel: inconsistent`;
- else the seed chunk stays the positive unless another is rated clearly better (by MARGIN) in both orders;
- the hard negative is the highest-ranked chunk rated irrelevant in both orders.

The query and the passages are fenced as data (synthkit.spec.fence) and a rating is read strictly (one JSON object
of exactly the schema). The judge is asked through the run's own caller: the same cache, rate limits, retries and
budget as every other call, its answers capped at judge.max_tokens. Chunk embeddings are computed once per corpus
index and embedder, kept beside the index as a memory-mapped .npy, and scanned in blocks."""

import asyncio
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
from synthkit.spec.fence import Fence
from synthkit.spec.parsing import ParseError, parse_only_json_object
from synthkit.spec.templates import compile_template, render

BLOCK = 1 << 16  # chunk embeddings scored at once
SCORE_KEYS = ("query", "top_k", "positive", "negative", "prompt")
IRRELEVANT = 1  # ratings at most this are not an answer: candidates for the hard negative
AGREEMENT = 1  # one chunk's ratings in the two orders differ by at most this from a rater who reads the passages
MARGIN = 1  # another chunk replaces the seed only when rated at least this much higher in every order
ORDERS = ("retrieval", "reversed")  # the orders the candidates are rated in (the row's corpus tag names them)
MOVED, KEPT, INCONSISTENT = "moved", "kept", "inconsistent"  # the verdicts, in the row's corpus tag
GECKO_MOVED_SHARE = 0.15  # positives Gecko's relabelling moved off the seed passage: the card's reference


@dataclass(frozen=True)
class Judged:
    candidates: list  # chunk numbers, in retrieval order
    ratings: list  # per order (ORDERS), the rating of each candidate, in retrieval order
    positive: int  # an index into candidates
    negative: Optional[int]
    verdict: str  # MOVED, KEPT or INCONSISTENT


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
    """`ratings`: one list per order the candidates were shown in, each in retrieval order. The positive: the seed
    chunk, unless another is rated at least MARGIN higher in every order (the best of those by its lowest rating,
    then its total, then its rank); a rater inconsistent across orders keeps the seed and gives no negative. The
    negative: the highest-ranked candidate rated irrelevant in every order that is neither seed nor positive."""
    per_candidate = list(zip(*ratings))
    home = candidates.index(seed)
    if any(max(r) - min(r) > AGREEMENT for r in per_candidate):
        return Judged(candidates, ratings, home, None, INCONSISTENT)
    seed_ratings = per_candidate[home]
    better = [
        i for i, r in enumerate(per_candidate) if all(own >= other + MARGIN for own, other in zip(r, seed_ratings))
    ]
    best = max(better, key=lambda i: (min(per_candidate[i]), sum(per_candidate[i]), -i), default=home)
    negative = next(
        (i for i, r in enumerate(per_candidate) if max(r) <= IRRELEVANT and i not in (home, best)),
        None,
    )
    return Judged(candidates, ratings, best, negative, MOVED if best != home else KEPT)


def relabel_prompt(plan: Plan, query: str, passages: list, where: str) -> str:
    """The judge prompt of `plan` for `query` and `passages` (in the order shown), each fenced as data."""
    fence = Fence(query, *passages)
    variables = {"query": fence.wrap(query), "passages": [fence.wrap(p) for p in passages], "fence": fence.tag}
    return render(plan.template, variables, where)


def rating_cap(max_tokens: int, k: int) -> int:
    """The cap on an answer rating k passages: judge.max_tokens, or more where k ratings need it (~3 tokens each)."""
    return max(max_tokens, 8 + 3 * k)


def judge_schema(k: int) -> dict:
    ratings = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 3}, "minItems": k, "maxItems": k}
    return {
        "type": "object",
        "properties": {"ratings": ratings},
        "required": ["ratings"],
        "additionalProperties": False,
    }


class Relabeler:
    def __init__(self, embedder, embedder_name: str, tasks: list, max_tokens: int):
        """`max_tokens`: the cap on each rating's answer (judge.max_tokens)."""
        self.embedder, self.name, self.max_tokens = embedder, embedder_name, max_tokens
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
        asked = await _gather(
            self._rate(asking, row, plan, query, chunks, ORDERS[0], list(range(len(chunks)))),
            self._rate(asking, row, plan, query, chunks, ORDERS[1], list(reversed(range(len(chunks))))),
        )
        problem = next((p for p in asked if isinstance(p, CheckFailure)), None)
        if problem is not None:
            return problem
        judged = choose(candidates, asked, seed.number)
        if judged.verdict != INCONSISTENT and max(r[judged.positive] for r in judged.ratings) <= IRRELEVANT:
            return CheckFailure("relabel", "the judge found no passage that answers the query", reask=False)
        positive = chunks[judged.positive]
        outputs[plan.positive] = positive.text
        record = {
            "seed_chunk": seed.id,
            "positive": positive.id,
            "positive_document": positive.document,
            "negative": None,
            "relabel": judged.verdict,
            "judge": {"candidates": [c.id for c in chunks], "ratings": dict(zip(ORDERS, judged.ratings))},
        }
        if judged.negative is not None:
            negative = chunks[judged.negative]
            outputs[plan.negative] = negative.text
            record.update(negative=negative.id, negative_document=negative.document)
        row.tags[TAG] = {**row.tags.get(TAG, {}), **record}
        return None

    async def _rate(self, asking: Asking, row, plan: Plan, query: str, chunks: list, order: str, shown: list):
        """The judge's ratings of `chunks` shown in the order `shown` (indices into chunks), given back in the
        chunks' own order; or the CheckFailure saying why there are none."""
        prompt = relabel_prompt(plan, query, [chunks[i].text for i in shown], f"task {asking.task.name}: relabel")
        schema = judge_schema(len(chunks))
        cap = rating_cap(self.relabeler.max_tokens, len(chunks))

        async def read(completion) -> tuple:
            if completion.finish_reason == "length":
                return None, CheckFailure(
                    "relabel", f"the judge's ratings were truncated at {cap} tokens: raise judge.max_tokens", False
                )
            try:
                ratings = parse_only_json_object(completion.text)
                jsonschema.validate(ratings, schema)
            except (ParseError, jsonschema.ValidationError) as e:
                return None, CheckFailure(
                    "relabel", f"the judge's answer is not {len(chunks)} ratings ({str(e)[:120]})", False
                )
            return ratings["ratings"], None

        call_id = f"{asking.call_id}:relabel" + ("" if order == ORDERS[0] else f":{order}")
        asked = await ask(
            self.caller, [{"role": "user", "content": prompt}], schema, "relabel", call_id, 1, read,
            lambda problem: problem.message, row.usage,
            lambda refusal: CheckFailure("relabel", f"the judge's request was refused: {refusal}", reask=False),
            max_tokens=cap,
        )  # fmt: skip
        if asked.problem is not None:
            return asked.problem
        in_chunk_order = [0] * len(chunks)
        for position, i in enumerate(shown):
            in_chunk_order[i] = asked.value[position]
        return in_chunk_order


async def _gather(*ratings):
    """The results of `ratings`, asked at once (one batch round in batch mode, not one per order); the others are
    cancelled when one raises (the run stops, or a request failed for good)."""
    tasks = [asyncio.ensure_future(a) for a in ratings]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


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


def make_relabeler(embedder_cfg, tasks: list, max_tokens: int) -> Relabeler:
    """The relabeler of relabel=true with the reference embedder `embedder_cfg`, loaded and checked before the run
    starts; `max_tokens` caps the judge's answers (judge.max_tokens)."""
    from synthkit.quality.embedder import load

    for task in tasks:  # refuse a task without a corpus or a judge before loading anything
        plan_of(task)
    embedder = load(embedder_cfg)
    return Relabeler(embedder, json.dumps([embedder_cfg.backend, embedder_cfg.model]), tasks, max_tokens)
