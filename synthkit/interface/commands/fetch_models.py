"""`synthkit fetch-models [embedder=... embedder.model=...] [--to DIR]`: download the reference embedder ahead of an
offline run (scoring, relabelling, mining), into the Hugging Face cache or a folder to take along
(synthkit.quality.embedder.fetch)."""

from synthkit.interface.commands.parser import Parser
from synthkit.quality.embedder import fetch
from synthkit.results.scoring import compose_scoring


def main(argv: list) -> None:
    parser = Parser(
        prog="synthkit fetch-models",
        description="Download the reference embedder (synthkit score, relabel=true, --hard-negatives) ahead of an "
        "offline run: into the Hugging Face cache, or with --to into a folder to give as embedder.model=DIR.",
    )
    parser.add_argument("--to", metavar="DIR", help="also save the model into this new folder")
    parser.add_argument("overrides", nargs="*", help="embedder=sentence_transformers, embedder.model=..., as for score")
    args = parser.parse_intermixed_args(argv)
    cfg = compose_scoring(args.overrides, "fetch-models")
    print(f"synthkit: {fetch(cfg.embedder, args.to)}")
