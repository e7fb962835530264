"""`synthkit evaluate RUN [evaluate.base=... 'evaluate.sets=[...]' evaluate.seeds=[0,1,2] ...]`: does training on a
run's rows make a better embedder? Fine-tune a base model on them and compare it with the base on evaluation sets
(synthkit.results.evaluation), writing evaluation.json beside the rows and the card's section when it has a card."""

from synthkit.interface.commands.parser import Parser
from synthkit.results.evaluation.evaluate import compose_evaluation, evaluate_run
from synthkit.results.evaluation.report import describe
from synthkit.results.rundir import DATA_FILE, RunDir


def main(argv: list) -> None:
    parser = Parser(
        prog="synthkit evaluate",
        description="Fine-tune a base embedding model on a run's rows and compare it with the base on evaluation sets.",
    )
    parser.add_argument("source", help=f"a run's (or merged sweep's) output dir, or its {DATA_FILE}")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="evaluate.base=MODEL 'evaluate.sets=[BEIR_DIR,HUB_ID,heldout]' evaluate.seeds=[0,1,2] evaluate.*=..., "
        "embedder.* (with evaluate.hard_negatives), cache_dir=..., card=true|false (write the dataset card anew; "
        "default: when the run has one)",
    )
    args = parser.parse_args(argv)
    run = RunDir.of(args.source, f"a run's output dir or its {DATA_FILE}")
    cfg = compose_evaluation(args.overrides)
    embedder = [o for o in args.overrides if o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] == "embedder"]
    result = evaluate_run(run, cfg, embedder)
    print(describe(result, run.evaluation_file))
    given = {o.lstrip("+~").split("=", 1)[0] for o in args.overrides}
    if cfg.card if "card" in given else run.card.is_file():  # a run made with card=false gets none unless asked
        from synthkit.results.card import write_card

        print(f"  dataset card: {write_card(run)}")
