"""A finished run as a Hugging Face dataset repo (`synthkit push RUN --repo user/name [--private]`).

Uploads, in one commit, what a run publishes (RunDir.published_files: the rows, rejects and brainstorm, the dataset
card rewritten first so its `configs:` list the exports present, plots, the resolved config and exports). Only files
inside the run dir leave the machine: a link out of it is skipped with a warning. The token comes from the HF_TOKEN environment
variable only: a flag would end up in shell history and logs."""

import os
import socket

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install
from synthkit.results.rundir import RunDir

TOKEN_ENV = "HF_TOKEN"


def push(run: RunDir, repo: str, private: bool = False) -> tuple:
    """(the repo's URL, (path, why) of the files left out: links out of the run dir, FIFOs, devices)."""
    if not run.data.is_file():
        raise UserError(f"{run.path} holds no {run.data.name}: give a run's output dir")
    run.check_own_files()  # the card is written from them: a link out would put its target in the card
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
        write_card(run)  # anew, so that its `configs:` list the exports made since the run
        files, outside = run.published_files()
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(run.path / path)) for path in files]
        api.create_commit(
            repo, operations, commit_message=f"synthkit: {len(files)} files of {run.path.name}", repo_type="dataset"
        )
    except HFValidationError as e:
        raise UserError(f"--repo {repo!r} is not a repo id: give user/name ({_first_line(e)})") from None
    except HfHubHTTPError as e:
        raise UserError(_http_error(e, repo)) from None
    except (OSError, ValueError) as e:  # a README the Hub rejects, a file that went away
        raise UserError(f"push to {repo} failed: {type(e).__name__}: {_first_line(e)}") from None
    except Exception as e:
        if not _network_error(e):
            raise
        raise UserError(
            f"push to {repo} failed: cannot reach the Hub at {api.endpoint} ({type(e).__name__}: {_first_line(e)}); "
            "check the network (or HF_ENDPOINT) and push again"
        ) from None
    return f"{api.endpoint}/datasets/{repo}", outside


HTTP_CLIENTS = ("httpx", "httpcore", "requests", "urllib3", "aiohttp")


def _network_error(error: Exception) -> bool:
    """An HTTP client's connection, DNS or timeout error, or one it wraps (huggingface_hub speaks httpx, httpx2 or
    requests by version: a numbered fork counts as its client)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)) or any(
            cls.__module__.split(".")[0].rstrip("0123456789") in HTTP_CLIENTS for cls in type(error).__mro__
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def _http_error(error, repo: str) -> str:
    status = error.response.status_code if error.response is not None else None
    if status == 401:
        return f"the Hub refused {TOKEN_ENV} (401): the token is wrong or expired; export a valid one"
    if status == 403:
        return f"the Hub refused to write to {repo} (403): give {TOKEN_ENV} write access to that namespace"
    return f"push to {repo} failed: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
