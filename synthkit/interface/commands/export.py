"""`synthkit export RUN --to e5|sentence-transformers|flagembedding|beir [--out DIR] [--force] [--allow-placeholder]
[--hard-negatives K [embedder=... embedder.model=...]] [--split test=0.1] [--policy flag|drop]
[--instruction prompts|column|anchor]`: a run's rows as training examples, in the formats trainers load
(synthkit.results.export)."""

import sys

from synthkit.interface.commands.parser import Parser
from synthkit.results.export import FORMATS, INSTRUCTION_MODES, POLICIES, export_run
from synthkit.results.rundir import RunDir


def main(argv: list) -> None:
    parser = Parser(prog="synthkit export", description="Write a run's rows as training examples.")
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
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        help="the rows scoring flagged: keep them (flag) or leave them out (drop); default: the run's scoring.policy",
    )
    parser.add_argument(
        "--instruction",
        choices=INSTRUCTION_MODES,
        help="sentence-transformers: the task definition as the trainer's prompts (default), as its own column, "
        "or in the anchor's text",
    )
    parser.add_argument("overrides", nargs="*", help="with --hard-negatives: embedder=..., embedder.model=...")
    args = parser.parse_intermixed_args(argv)
    run = RunDir.of(args.source, "a run's output dir or a .jsonl file")
    done = export_run(
        run, args.to, args.out, args.force, args.seed, args.allow_placeholder, args.hard_negatives, args.split,
        args.overrides, args.policy, args.instruction,
    )  # fmt: skip
    if done.placeholders:
        print(
            f"synthkit: warning: exporting {done.placeholders} PLACEHOLDER rows from llm=mock: do not train on them",
            file=sys.stderr,
        )
    print(f"synthkit: exported {done.examples} examples to {done.fmt}: {', '.join(map(str, done.written))}")
    if done.skipped:
        print(f"  skipped {done.skipped} rows of tasks that make no training examples (e.g. brainstorm)")
    if done.dropped:
        print(f"  left out by scoring.policy=drop: {done.dropped}")
    if done.hard_negatives:
        print(
            f"  hard negatives: up to {done.hard_negatives} mined per row"
            + (f"; {done.unmined} rows got fewer" if done.unmined else "")
        )
    if done.left_out:
        print(f"  left out {done.left_out} rows with fewer negatives than their dataset's others (one width each)")
