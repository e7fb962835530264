"""`synthkit push RUN --repo user/name [--private]`: upload a run as a Hugging Face dataset repo
(synthkit.results.push). The token comes from HF_TOKEN only."""

import argparse
import sys

from synthkit.core.errors import UserError
from synthkit.interface.commands.parser import Parser
from synthkit.results.push import TOKEN_ENV, push
from synthkit.results.rundir import RunDir


def main(argv: list) -> None:
    parser = Parser(prog="synthkit push", description="Upload a run as a Hugging Face dataset repo.")
    parser.add_argument("run", help="a run's (or a merged sweep's) output dir")
    parser.add_argument("--repo", required=True, help="the dataset repo, user/name or org/name")
    parser.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)"
    )
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.token is not None:
        raise UserError(
            f"push takes no --token: the command line is saved in shell history; export {TOKEN_ENV} instead"
        )
    url, outside = push(RunDir(args.run), args.repo, private=args.private)
    for path, why in outside:
        print(f"synthkit: warning: not uploaded: {path}: {why}", file=sys.stderr)
    print(f"synthkit: pushed {args.run} to {url}")
