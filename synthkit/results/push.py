"""`synthkit push RUN --repo user/name [--private]`: a finished run as a Hugging Face dataset repo.

Uploads the rows (data.jsonl, rejects.jsonl, brainstorm/), the dataset card (README.md, rewritten first so its
`configs:` list the exports present), plots/, the resolved config (.hydra/config.yaml) and exports/, in one commit.
The token comes from the HF_TOKEN environment variable only: a flag would end up in shell history and logs."""

import argparse
import os
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

TOKEN_ENV = "HF_TOKEN"
# Paths relative to the run dir; folders are uploaded whole. Anything else in a run dir (the resume
# fingerprint, the status file, Hydra's overrides and logs) stays local.
UPLOADED = ("data.jsonl", "rejects.jsonl", "README.md", "brainstorm", "plots", ".hydra/config.yaml", "exports")


def main(argv: list) -> None:
    parser = _Parser(prog="synthkit push", description="Upload a run as a Hugging Face dataset repo.")
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
    url = push(Path(args.run), args.repo, private=args.private)
    print(f"synthkit: pushed {args.run} to {url}")


def push(run_dir: Path, repo: str, private: bool = False) -> str:
    if not (run_dir / "data.jsonl").is_file():
        raise UserError(f"{run_dir} holds no data.jsonl: give a run's output dir")
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise UserError(f"{TOKEN_ENV} is not set: export a Hugging Face token with write access to push")
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    except ImportError:
        raise UserError(f"push needs the huggingface_hub library: {pip_install('hub')}") from None
    from synthkit.results.card import write_card

    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="dataset", private=private or None, exist_ok=True)  # None: the account default
        # After the Hub accepted the token: a refused push leaves the run dir as it was.
        write_card(run_dir)  # anew, so that its `configs:` list the exports made since the run
        files = _files(run_dir)
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(run_dir / path)) for path in files]
        api.create_commit(
            repo, operations, commit_message=f"synthkit: {len(files)} files of {run_dir.name}", repo_type="dataset"
        )
    except HFValidationError as e:
        raise UserError(f"--repo {repo!r} is not a repo id: give user/name ({_first_line(e)})") from None
    except HfHubHTTPError as e:
        raise UserError(_http_error(e, repo)) from None
    except (OSError, ValueError) as e:  # connection refused, DNS, a README the Hub rejects
        raise UserError(f"push to {repo} failed: {type(e).__name__}: {_first_line(e)}") from None
    return f"{api.endpoint}/datasets/{repo}"


def _files(run_dir: Path) -> list:
    files = []
    for name in UPLOADED:
        path = run_dir / name
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        files += [p.relative_to(run_dir).as_posix() for p in found]
    return files


def _http_error(error, repo: str) -> str:
    status = error.response.status_code if error.response is not None else None
    if status == 401:
        return f"the Hub refused {TOKEN_ENV} (401): the token is wrong or expired; export a valid one"
    if status == 403:
        return f"the Hub refused to write to {repo} (403): give {TOKEN_ENV} write access to that namespace"
    return f"push to {repo} failed: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"push: {message}; see synthkit push --help")
