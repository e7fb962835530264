"""`synthkit batches RUN [--cancel]`: the provider batches of a run made with llm.batch=true, as its
journal (RUN/batches.jsonl) holds them, refreshed from the provider: each batch's state and request
counts. --cancel cancels those still open (stop the run first, or it resubmits what they leave
unanswered); rerunning the run's command collects what they had answered and asks the rest again."""

import argparse
import asyncio
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.results.rundir import RunDir


def main(argv: list) -> None:
    parser = argparse.ArgumentParser(prog="synthkit batches", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the output dir of a run made with llm.batch=true")
    parser.add_argument("--cancel", action="store_true", help="cancel the run's open batches")
    parser.add_argument("--offline", action="store_true", help="show the journal only; ask the provider nothing")
    args = parser.parse_args(argv)
    print(asyncio.run(_batches(RunDir(args.run), args.cancel, args.offline)))


async def _batches(run: RunDir, cancel: bool, offline: bool) -> str:
    from synthkit.calls.batch.client import BatchClient
    from synthkit.calls.batch.journal import BatchJournal
    from synthkit.calls.batch.price import check_batch
    from synthkit.calls.batch.rounds import batch_status, cancel_all, format_status
    from synthkit.calls.providers import RequestFailed, check_key

    if not run.batches.is_file():
        raise UserError(f"{run.path} holds no batch journal ({run.batches.name}): it was not run with llm.batch=true")
    run.check_own_files()  # the journal is appended to: never through a link out of the run dir
    llm = _saved_llm(run)
    client = None if offline else BatchClient(check_batch(llm), check_key(llm), llm.timeout_s, name=llm.provider)
    journal = BatchJournal(run.batches)
    try:
        cancelled = await cancel_all(journal, client) if cancel and client is not None else []
        table = format_status(await batch_status(journal, client))
    except RequestFailed as e:
        raise UserError(
            f"{llm.provider} did not answer about the run's batches ({e}): try again later, or add --offline "
            "to see the journal alone"
        ) from None
    finally:
        journal.close()
        if client is not None:
            await client.aclose()
    if cancel:
        table += f"\ncancelled {len(cancelled)} batches" + (f": {', '.join(cancelled)}" if cancelled else "")
    return table


def _saved_llm(run: RunDir):
    """The run's llm settings, from the config it saved (keys are never in it: only their variable's name)."""
    from omegaconf import OmegaConf

    from synthkit.core.config import LLMConfig

    try:
        llm = OmegaConf.merge(OmegaConf.structured(LLMConfig), run.saved_config(strict=True).llm)
    except Exception as e:  # a missing, damaged or hand-edited config
        raise UserError(
            f"{run.config_file} does not load ({type(e).__name__}): the run's provider is unknown"
        ) from None
    return OmegaConf.to_object(llm)
