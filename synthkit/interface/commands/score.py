"""`synthkit score RUN [embedder=... embedder.model=... scoring.*=...]`: judge a run's rows with a reference
embedder, writing scores.jsonl and scores_summary.json beside them (synthkit.results.scoring)."""

from synthkit.interface.commands.parser import Parser
from synthkit.results.rundir import DATA_FILE, RunDir
from synthkit.results.scoring import compose_scoring, report, score


def main(argv: list) -> None:
    parser = Parser(prog="synthkit score", description="Judge a run's rows with a reference embedder.")
    parser.add_argument("source", help=f"a run's (or merged sweep's) output dir, or its {DATA_FILE}")
    parser.add_argument("overrides", nargs="*", help="embedder=..., embedder.model=..., scoring.policy=drop, ...")
    args = parser.parse_args(argv)
    run = RunDir.of(args.source, f"a run's output dir or its {DATA_FILE}")
    cfg = compose_scoring(args.overrides, "score")
    print(report(score(run, cfg.embedder, cfg.scoring), run))
