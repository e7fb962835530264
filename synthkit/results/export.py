"""`synthkit export`: a run's rows as training examples, in the formats trainers load.

    synthkit export RUN_DIR_OR_JSONL --to e5|sentence-transformers|flagembedding [--out DIR] [--force]
                    [--allow-placeholder] [--hard-negatives K [embedder=... embedder.model=...]]

Which output keys are a row's query, positive and negative is data: the `export:` block of its task
YAML, read from the run's saved config (.hydra/config.yaml) or else the packaged task configs. Rows that
`synthkit score ... scoring.policy=drop` flagged are left out; --hard-negatives mines K more negatives per
row from the run's own documents with the reference embedder (synthkit.quality.mining)."""

import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install
from synthkit.core.record import read_rows
from synthkit.results.rundir import EXPORT_MARKER, RunDir
from synthkit.spec.fields import lookup

FORMATS = ("e5", "sentence-transformers", "flagembedding", "beir")
QUERY_TEMPLATE = "Instruct: {instruction}\nQuery: "  # spec §5: queries get an instruction, documents do not
# FlagEmbedding's own example data (examples/finetune/embedder/example_data): a folder per kind of data. Its
# same-dataset sampler takes a batch from one file and asserts one `type` per batch, and a folder name ending in
# `no_in_batch_neg` turns in-batch negatives off (other rows' labels would be false negatives for classification).
FLAGEMBEDDING_FOLDERS = {
    "symmetric_class": "classification-no_in_batch_neg",
    "symmetric_sts": "sts",
    "symmetric_clustering": "clustering-no_in_batch_neg",
}


@dataclass
class Example:
    task_type: str
    instruction: str
    query: str
    positive: str
    negative: Optional[str]
    kind: str  # FlagEmbedding's `type`: only_1neg unless the task's export block says otherwise
    mined: object = None  # synthkit.quality.mining.Mined, with --hard-negatives
    query_id: str = ""  # for BEIR: the row's identity, and the corpus chunks of grounded rows
    positive_id: Optional[str] = None
    negative_id: Optional[str] = None
    # The grades the row was asked for (its high_score and low_score attributes: STS, bitext): the similarity of
    # (query, positive) and (query, negative), for a score loss. None where a row has none.
    scores: Optional[tuple] = None


@dataclass
class Exported:
    """What an export wrote, for its report."""

    fmt: str
    examples: int
    written: list
    skipped: int  # rows of tasks that make no training examples
    dropped: str  # what scoring.policy=drop left out, described
    placeholders: int  # llm=mock rows exported anyway (--allow-placeholder)
    hard_negatives: Optional[int] = None
    unmined: int = 0  # rows that got fewer than hard_negatives mined negatives


def export_run(
    run: RunDir,
    fmt: str,
    out: Optional[Path] = None,
    force: bool = False,
    seed: int = 0,
    allow_placeholder: bool = False,
    hard_negatives: Optional[int] = None,
    splits: Optional[list] = None,
    embedder_overrides: list = (),
) -> Exported:
    """Write `run`'s rows as training examples in `fmt` (into `out`, by default the run's exports/<fmt>)."""
    if fmt not in FORMATS:
        raise UserError(f"export: {fmt!r} is not a format; choose one of {', '.join(FORMATS)}")
    if hard_negatives is not None and (hard_negatives < 1 or fmt == "e5"):
        raise UserError("--hard-negatives takes K >= 1, for --to flagembedding or sentence-transformers")
    if splits and fmt != "beir":
        raise UserError("--split goes with --to beir")
    if embedder_overrides and hard_negatives is None:
        raise UserError(f"export: {embedder_overrides[0]}: config overrides only go with --hard-negatives")
    rows = list(read_rows(run.data, missing_ok=False))  # before --force removes an export: a refusal loses nothing
    placeholders = sum(row.placeholder for row in rows)
    if placeholders and not allow_placeholder:
        raise UserError(
            f"{run.data} holds {placeholders} PLACEHOLDER rows from llm=mock, not model output: generate with "
            "a real llm, or add --allow-placeholder to export them anyway (to test a pipeline only)"
        )
    rows, dropped = _apply_policy(rows, run)
    examples, skipped = to_examples(rows, run.task_configs())
    if not examples:
        raise UserError(
            f"{run.data} holds no rows that make training examples ({skipped} rows of tasks without an export block)"
        )
    if fmt == "beir":
        from synthkit.results.beir import parse_splits, write_beir

        parsed_splits = parse_splits(splits)
    unmined = _mine(examples, hard_negatives, list(embedder_overrides), run) if hard_negatives else 0
    out = Path(out) if out else run.export_dir(fmt)
    _make_export_dir(out, run, force)
    written = {
        "beir": lambda examples, out, seed: write_beir(examples, out, seed, parsed_splits, run),
        "e5": write_e5,
        "sentence-transformers": write_sentence_transformers,
        "flagembedding": write_flagembedding,
    }[fmt](examples, out, seed)
    return Exported(fmt, len(examples), written, skipped, dropped, placeholders, hard_negatives, unmined)


def _make_export_dir(out: Path, run: RunDir, force: bool) -> None:
    """A new dir for the export. --force replaces only an earlier export (it holds synthkit's marker),
    never the run's own dir or a folder synthkit did not write."""
    if out.exists():
        if not force:
            raise UserError(f"{out} already exists: add --force to replace it, or choose --out")
        if not (out / EXPORT_MARKER).is_file() or out.resolve() in (run.path.resolve(), *run.path.resolve().parents):
            raise UserError(f"{out} is not an export synthkit wrote: --force replaces only those; choose another --out")
        try:
            shutil.rmtree(out)
        except OSError as e:
            raise UserError(f"cannot replace {out}: {e.strerror}") from None
    try:
        out.mkdir(parents=True)
        (out / EXPORT_MARKER).write_text(f"written by synthkit export from {run.data}\n", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}; choose another --out") from None


def _apply_policy(rows: list, run: RunDir) -> tuple:
    """The rows an export keeps, and what it left out (text) under scoring.policy=drop."""
    from synthkit.results.scoring import describe_left_out, left_out, row_key

    keys, why = left_out(run, len(rows))
    if not keys:
        return rows, ""
    kept = [row for row in rows if row_key(row) not in keys]
    return kept, describe_left_out(why, len(rows) - len(kept))


def _mine(examples: list, k: int, overrides: list, run: RunDir) -> int:
    """Mine k negatives per example in place; how many examples got fewer than k. The embedder is the
    one the run was scored with, unless overrides name one."""
    from synthkit.quality.embedder import load
    from synthkit.results.scoring import compose_scoring

    cfg = compose_scoring(overrides, "export")
    scored = (run.scores_summary() or {}).get("embedder")
    if scored and not overrides:
        cfg.embedder.backend, cfg.embedder.model = scored["backend"], scored["model"]
    from synthkit.quality.mining import mine_hard_negatives

    mined = mine_hard_negatives(load(cfg.embedder), examples, k=k, ratio=cfg.scoring.false_negative_ratio)
    found: dict = {}
    for example, m in zip(examples, mined):
        example.mined = m
        found[example.task_type] = found.get(example.task_type, 0) + len(m.negatives)
    empty = [t for t, n in found.items() if not n]
    if empty:
        raise UserError(
            f"--hard-negatives: {', '.join(empty)} has no documents to mine negatives from (too few "
            "distinct positives and negatives); export without --hard-negatives"
        )
    return sum(len(m.negatives) < k for m in mined)


def to_examples(rows, tasks: dict) -> tuple:
    examples, skipped = [], 0
    for row in rows:
        spec = (tasks.get(row.task_type) or {}).get("export")
        if not spec:
            skipped += 1
            continue
        flat = {**row.outputs, "attributes": row.attributes}
        instruction = (
            spec.get("instruction") or lookup(flat, spec.get("instruction_from")) or row.attributes.get("task")
        )
        if not instruction:
            raise UserError(f"row {row.row} of {row.task_type} has no task definition for its instruction")
        query, positive = lookup(flat, spec["query"]), lookup(flat, spec["positive"])
        if query is None or positive is None:
            missing = spec["query"] if query is None else spec["positive"]
            raise UserError(f"row {row.row} of {row.task_type} lacks {missing}, which its task's export block names")
        negative = lookup(flat, spec.get("negative"))
        # Every example has one negative: FlagEmbedding's only_1neg takes groups of two rather than
        # repeating that negative to fill --train_group_size.
        example = Example(row.task_type, instruction, query, positive, negative, spec.get("type", "only_1neg"))
        grounded = row.tags.get("corpus") or {}
        example.query_id = "q-" + "/".join(str(p) for p in (*row.key[:2], row.row) if p != "")
        example.positive_id = grounded.get("positive") or grounded.get("chunk")
        example.negative_id = grounded.get("negative")
        example.scores = _grades(row.attributes)
        examples.append(example)
    return examples, skipped


def _grades(attributes: dict) -> Optional[tuple]:
    high, low = attributes.get("high_score"), attributes.get("low_score")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (high, low))
    return (float(high), float(low)) if numbers else None


def write_e5(examples: list, out: Path, seed: int) -> list:
    path = out / "e5.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            row = {"instruction": e.instruction, "query": e.query, "positive": e.positive, "negative": e.negative}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return [path]


def write_sentence_transformers(examples: list, out: Path, seed: int) -> list:
    """Two datasets, because a dataset has one set of columns: triplets (anchor, positive,
    negative) and pairs (anchor, positive) for rows generated without a negative."""
    try:
        import datasets
    except ImportError:
        raise UserError(f"this export needs the datasets library: {pip_install('export')}") from None
    datasets.disable_progress_bars()
    written = []
    for name, group in (
        ("triplets", [e for e in examples if e.negative]),
        ("pairs", [e for e in examples if not e.negative]),
    ):
        mined = group and group[0].mined is not None
        if mined:  # --hard-negatives: anchor, positive, negative_1..n, the generated one first (ST's n-tuple)
            width = max(len(e.mined.negatives) for e in group) + (name == "triplets")
            group = [e for e in group if len(e.mined.negatives) + (name == "triplets") == width]  # one width
        if not group or (mined and not width):
            continue
        columns = {
            "anchor": [QUERY_TEMPLATE.format(instruction=e.instruction) + e.query for e in group],
            "positive": [e.positive for e in group],
        }
        if mined:
            negatives = [([e.negative] if e.negative else []) + e.mined.negatives for e in group]
            columns.update({f"negative_{i + 1}": [n[i] for n in negatives] for i in range(width)})
        elif name == "triplets":
            columns["negative"] = [e.negative for e in group]
        dataset = datasets.Dataset.from_dict(columns)
        dataset.save_to_disk(str(out / name))
        dataset.to_parquet(str(out / f"{name}.parquet"))
        written += [out / name, out / f"{name}.parquet"]
    return written


def write_flagembedding(examples: list, out: Path, seed: int) -> list:
    """One file per task type, in FlagEmbedding's folder layout; `prompt` is the bare task definition, which
    its trainer puts into --query_instruction_format. FlagEmbedding wants a non-empty `neg`: where none was
    generated, one is drawn from the positives of other rows of the same task type, as its docs advise."""
    rng = random.Random(seed)
    by_type: dict = {}
    for e in examples:
        by_type.setdefault(e.task_type, []).append(e)
    written = []
    for task_type, group in by_type.items():
        positives = [e.positive for e in group]
        path = out / FLAGEMBEDDING_FOLDERS.get(group[0].kind, "retrieval") / f"{task_type}.jsonl"
        path.parent.mkdir(exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for e in group:
                if e.mined is not None:  # with --hard-negatives: scores for FlagEmbedding's distillation
                    negatives = ([e.negative] if e.negative else []) + e.mined.negatives
                    scores = ([e.mined.neg_score] if e.negative else []) + e.mined.scores
                    if not negatives:
                        continue  # nothing eligible: FlagEmbedding needs a negative, and one sampled has no score
                    row = {
                        "query": e.query,
                        "pos": [e.positive],
                        "neg": negatives,
                        "pos_scores": [e.mined.pos_score],
                        "neg_scores": scores,
                        "prompt": e.instruction,
                        "type": e.kind,
                    }
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    continue
                negative = e.negative
                if not negative:
                    others = [p for p in positives if p != e.positive]
                    if not others:
                        raise UserError(
                            f"{task_type} has a single distinct positive: no negative can be sampled for it"
                        )
                    negative = rng.choice(others)
                row = {
                    "query": e.query,
                    "pos": [e.positive],
                    "neg": [negative],
                    "prompt": e.instruction,
                    "type": e.kind,
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        written.append(path)
    return written
