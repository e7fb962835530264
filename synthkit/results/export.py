"""`synthkit export`: a run's rows as training examples, in the formats trainers load.

    synthkit export RUN_DIR_OR_JSONL --to e5|sentence-transformers|flagembedding [--out DIR] [--force]
                    [--allow-placeholder] [--hard-negatives K [embedder=... embedder.model=...]]

Which output keys are a row's query, positive and negative is data: the `export:` block of its task
YAML, read from the run's saved config (.hydra/config.yaml) or else the packaged task configs. Rows that
`synthkit score ... scoring.policy=drop` flagged are left out; --hard-negatives mines K more negatives per
row from the run's own documents with the reference embedder (synthkit.quality.mining)."""

import argparse
import json
import random
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install
from synthkit.core.record import read_rows
from synthkit.corpus.fields import lookup

FORMATS = ("e5", "sentence-transformers", "flagembedding", "beir")
EXPORT_MARKER = ".synthkit-export"  # in every export dir: what --force may replace
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


def main(argv: list) -> None:
    parser = _Parser(prog="synthkit export", description="Write a run's rows as training examples.")
    parser.add_argument("source", help="a run's output dir, or a data .jsonl file")
    parser.add_argument("--to", required=True, choices=FORMATS, help="the trainer format")
    parser.add_argument("--out", help="where to write (default: <run dir>/exports/<format>)")
    parser.add_argument("--force", action="store_true", help="replace an earlier export at --out")
    parser.add_argument("--seed", type=int, default=0, help="for negatives sampled where none was generated")
    parser.add_argument(
        "--allow-placeholder",
        action="store_true",
        help="export llm=mock placeholder rows anyway (to test a training pipeline, never to train)",
    )
    parser.add_argument(
        "--hard-negatives",
        type=int,
        metavar="K",
        help="mine K more negatives per row with the reference embedder (flagembedding, sentence-transformers)",
    )
    parser.add_argument(
        "--split", action="append", metavar="NAME=SHARE", help="beir: hold out a share of the queries (test=0.1)"
    )
    parser.add_argument("overrides", nargs="*", help="with --hard-negatives: embedder=..., embedder.model=...")
    args = parser.parse_intermixed_args(argv)
    if args.hard_negatives is not None and (args.hard_negatives < 1 or args.to == "e5"):
        raise UserError("--hard-negatives takes K >= 1, for --to flagembedding or sentence-transformers")
    if args.split and args.to != "beir":
        raise UserError("--split goes with --to beir")
    if args.overrides and args.hard_negatives is None:
        raise UserError(f"export: {args.overrides[0]}: config overrides only go with --hard-negatives")
    data = Path(args.source)
    data = data / "data.jsonl" if data.is_dir() else data
    if not data.is_file():
        raise UserError(f"{args.source} holds no data.jsonl: give a run's output dir or a .jsonl file")
    rows = list(read_rows(data, missing_ok=False))  # before --force removes an earlier export: a refusal loses nothing
    placeholders = sum(row.placeholder for row in rows)
    if placeholders and not args.allow_placeholder:
        raise UserError(
            f"{data} holds {placeholders} PLACEHOLDER rows from llm=mock, not model output: generate with "
            "a real llm, or add --allow-placeholder to export them anyway (to test a pipeline only)"
        )
    rows, dropped = _apply_policy(rows, data.parent)
    examples, skipped = to_examples(rows, _task_configs(data.parent))
    if not examples:
        raise UserError(
            f"{data} holds no rows that make training examples ({skipped} rows of tasks without an export block)"
        )
    if args.to == "beir":
        from synthkit.results.beir import parse_splits, write_beir

        splits = parse_splits(args.split)
    unmined = _mine(examples, args.hard_negatives, args.overrides, data.parent) if args.hard_negatives else 0
    out = Path(args.out) if args.out else data.parent / "exports" / args.to
    _make_export_dir(out, data, args.force)
    if placeholders:
        print(
            f"synthkit: warning: exporting {placeholders} PLACEHOLDER rows from llm=mock: do not train on them",
            file=sys.stderr,
        )
    written = {
        "beir": lambda examples, out, seed: write_beir(examples, out, seed, splits, data.parent),
        "e5": write_e5,
        "sentence-transformers": write_sentence_transformers,
        "flagembedding": write_flagembedding,
    }[args.to](examples, out, args.seed)
    print(f"synthkit: exported {len(examples)} examples to {args.to}: {', '.join(map(str, written))}")
    if skipped:
        print(f"  skipped {skipped} rows of tasks that make no training examples (e.g. brainstorm)")
    if dropped:
        print(f"  left out by scoring.policy=drop: {dropped}")
    if args.hard_negatives:
        print(
            f"  hard negatives: up to {args.hard_negatives} mined per row"
            + (f"; {unmined} rows got fewer" if unmined else "")
            + (" (left out: n-tuples have one width)" if unmined and args.to == "sentence-transformers" else "")
        )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"export: {message}; see synthkit export --help")


def _make_export_dir(out: Path, data: Path, force: bool) -> None:
    """A new dir for the export. --force replaces only an earlier export (it holds synthkit's marker),
    never the run's own dir or a folder synthkit did not write."""
    if out.exists():
        if not force:
            raise UserError(f"{out} already exists: add --force to replace it, or choose --out")
        if not (out / EXPORT_MARKER).is_file() or out.resolve() in (
            data.parent.resolve(),
            *data.parent.resolve().parents,
        ):
            raise UserError(f"{out} is not an export synthkit wrote: --force replaces only those; choose another --out")
        try:
            shutil.rmtree(out)
        except OSError as e:
            raise UserError(f"cannot replace {out}: {e.strerror}") from None
    try:
        out.mkdir(parents=True)
        (out / EXPORT_MARKER).write_text(f"written by synthkit export from {data}\n", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}; choose another --out") from None


def _task_configs(run_dir: Path) -> dict:
    """Task configs by name: the packaged ones, overridden by those the run was made with (when
    these say how to export, as a user's own task does)."""
    configs = {}
    for entry in resources.files("synthkit.conf").joinpath("task").iterdir():
        if entry.name.endswith(".yaml"):
            task = OmegaConf.to_container(OmegaConf.create(entry.read_text(encoding="utf-8")))
            configs[task["name"]] = task
    saved = run_dir / ".hydra" / "config.yaml"
    if saved.exists():
        try:
            cfg = OmegaConf.load(saved)
        except Exception as e:  # YAML or OmegaConf errors of a file someone edited or damaged
            raise UserError(
                f"{saved} does not load ({type(e).__name__}); repair it, or remove it to export with "
                "the packaged task configs"
            ) from None
        used = [cfg.get("task")] + list((cfg.get("recipe") or {}).get("tasks", {}).values())
        for task in filter(None, used):
            if task.get("export"):
                configs[task["name"]] = OmegaConf.to_container(task)
    return configs


def _apply_policy(rows: list, run_dir: Path) -> tuple:
    """The rows an export keeps, and what it left out (text) under scoring.policy=drop."""
    from synthkit.results.scoring import describe_left_out, left_out, row_key

    keys, why = left_out(run_dir, len(rows))
    if not keys:
        return rows, ""
    kept = [row for row in rows if row_key(row) not in keys]
    return kept, describe_left_out(why, len(rows) - len(kept))


def _mine(examples: list, k: int, overrides: list, run_dir: Path) -> int:
    """Mine k negatives per example in place; how many examples got fewer than k. The embedder is the
    one the run was scored with, unless overrides name one."""
    from synthkit.results.scoring import compose_scoring, load, read_summary

    cfg = compose_scoring(overrides, "export")
    scored = (read_summary(run_dir) or {}).get("embedder")
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
        examples.append(example)
    return examples, skipped


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
