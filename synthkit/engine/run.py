"""From a composed config to a finished run, in explicit steps: check the config, claim the output
dir, build the call stack around the provider (cache, limits, retries, budget), plan the stages
(a brainstorm stage first when task definitions are needed, then the rows), run each stage through
the scheduler, and write the run's status (and dataset card)."""

import asyncio
import functools
import json
import re
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from synthkit.calls.caller import ModelCaller
from synthkit.calls.cost import price_of
from synthkit.calls.providers import make_provider
from synthkit.calls.stores import Stores, open_stores
from synthkit.core.config import check_bounds
from synthkit.core.errors import UserError
from synthkit.core.ledger import Ledger, ValueCounts
from synthkit.core.secrets import key_like_name, protect
from synthkit.corpus.domain import check_corpus_used, corpus_digests
from synthkit.engine.plan import (
    BRAINSTORM_DIR,
    brainstorm_cells,
    corpus_root,
    count_definitions,
    generate_cells,
    probe_spec,
    units_of,
    write_flat_tasks,
)
from synthkit.engine.progress import Progress
from synthkit.engine.rows import RowMaker, RowSettings
from synthkit.engine.scheduler import RejectLimits, Scheduler, run_pool
from synthkit.quality.dedup import Deduplicator
from synthkit.quality.llm_judge import plan_judge
from synthkit.results.rundir import RUN_FILE, STATUS_FILE, OutputDir, RunFiles, write_json


@dataclass
class RunResult:
    ledger: Ledger
    data_path: Path
    label: str  # what was made: a task name or a recipe
    model: str
    placeholder: bool  # llm=mock: the rows are not model output
    notes: list = field(default_factory=list)  # lines for the summary
    coverage: str = ""  # the coverage table of a grid run

    @property
    def stopped_early(self) -> Optional[str]:
        return self.ledger.stopped_early


@dataclass
class CallStack:
    provider: object
    caller: ModelCaller
    stores: Stores
    relabel: object = None  # relabel=true: synthkit.quality.relabel.Relabeler, for the generation stage
    judge_plan: object = None  # synthkit.quality.llm_judge.JudgePlan with judge=true
    judge: object = None  # its RowJudge

    async def aclose(self) -> None:
        await self.provider.aclose()
        if hasattr(self.caller, "aclose"):  # the batch caller: its client and journal
            await self.caller.aclose()
        if self.judge_plan is not None:
            await self.judge_plan.aclose()
        await self.stores.aclose()


def generate(
    cfg: DictConfig, out_dir: Path, shared_dir: Optional[Path] = None, overrides: tuple = (), job: str = ""
) -> RunResult:
    """Make the run's rows in `out_dir`. Jobs of one sweep pass its dir as `shared_dir` (they share one
    max_cost_usd budget there) and their coordinates as `job` (they draw apart)."""
    check_bounds(cfg)
    protect(cfg.llm.api_key_env or "")
    units = units_of(cfg)
    specs = [probe_spec(unit, cfg.preset, corpus_root(cfg)) for unit in units]
    check_corpus_used(cfg.get("corpus"), specs)
    for spec in specs:  # config and template mistakes surface before any request or file
        spec.render(spec.draw_attributes(cfg.seed, 0))
    price = price_of(cfg.llm)
    if cfg.llm.batch:  # batch tokens are priced (and budgeted) at the batch price
        from synthkit.calls.batch.price import batch_price_of, check_batch

        check_batch(cfg.llm)
        price, why = batch_price_of(cfg.llm)
        if cfg.max_cost_usd is not None and price is None:
            raise UserError(f"max_cost_usd needs a batch price: {why}")
    if cfg.max_cost_usd is not None and price is None:
        raise UserError(
            f"max_cost_usd needs a price, and litellm has none for {cfg.llm.model}: "
            "set llm.input_cost_per_mtok and llm.output_cost_per_mtok"
        )
    _refuse_env_keys(cfg)
    relabel = None
    if cfg.relabel:  # embedder and corpus embeddings ready (or refused) before the output dir is made
        from synthkit.quality.relabel import make_relabeler

        relabel = make_relabeler(cfg, specs)
    # A plain object: the call path reads these settings on every request, and OmegaConf nodes are slow to read.
    llm = OmegaConf.to_object(cfg.llm)
    # Everything that can be refused is, before the output dir is made.
    provider = make_provider(llm)
    judge = plan_judge(cfg, specs) if not provider.placeholder else None  # placeholder rows have nothing to rate
    stores = open_stores(cfg, price, shared_dir or out_dir, use_cache=cfg.cache and not provider.placeholder)
    out = OutputDir(out_dir)
    try:
        out.claim()
        _record_config(out, cfg, overrides, corpus_digests(specs))
        ledger = Ledger(priced=price is not None)
        if llm.batch:
            from synthkit.calls.batch.caller import BatchCaller
            from synthkit.calls.providers import check_key, structured_output

            key, structured = check_key(llm), structured_output(llm)
            caller = BatchCaller(
                llm, key, structured, stores.cache, stores.budget, ledger, out_dir, cfg.max_attempts,
                cfg.progress_every_s,
            )  # fmt: skip
        else:
            caller = ModelCaller(provider, llm, stores, ledger)
        stack = CallStack(provider, caller, stores, relabel, judge)
        if judge is not None:
            stack.judge = judge.judge(caller, cfg, stores, shared_dir or out_dir, ledger)
        label = f"recipe {cfg.recipe.name}" if cfg.recipe is not None else cfg.task.name
        if cfg.grid:
            label += f", a grid of {len(units)} cells x {cfg.num_rows} rows"
        result = RunResult(ledger, out_dir / "data.jsonl", label, cfg.llm.model, provider.placeholder)
        try:
            cells = _run_in_loop(_stages(cfg, units, out_dir, stack, ledger, result, job))
        except (UserError, KeyboardInterrupt) as e:  # the rows written are kept: say how the run ended
            write_status(out, ledger, error=str(e) or "interrupted")
            raise
        if cfg.recipe is None and cfg.task.get("flatten_tasks") and result.data_path.exists():
            result.notes.append(f"flattened task definitions: {write_flat_tasks(result.data_path)}")
        if cfg.grid:
            from synthkit.results.sweep import grid_coverage

            result.coverage = grid_coverage(out_dir, cells)
        write_status(out, ledger, language=_language_outcomes(cells))
        if cfg.score:  # the rows are written and the status with them: a failed scoring loses nothing
            from synthkit.results.scoring import after_run

            result.notes.append(after_run(cfg, out_dir))
        return result
    except BaseException:
        stores.close()
        raise
    finally:
        out.release()


async def _stages(
    cfg: DictConfig, units: list, out_dir: Path, stack: CallStack, ledger: Ledger, result: RunResult, job: str
) -> list:
    """Run the brainstorm stage (when definitions are needed), then the generation stage."""
    try:
        brainstormed = None
        brainstorm = brainstorm_cells(cfg, units)
        if brainstorm:
            brainstormed = await _run_stage(cfg, "brainstorm", brainstorm, out_dir / BRAINSTORM_DIR, stack, ledger)
            kept, dropped = count_definitions(brainstormed)
            result.notes.append(
                f"brainstorm: {ledger.current.tally.written} answers, {kept} task definitions "
                f"({dropped} duplicates dropped): {brainstormed}"
            )
            if ledger.stopped_early:
                result.data_path = brainstormed
                return []
        cells = generate_cells(cfg, units, brainstormed)
        for cell in brainstorm + cells:
            cell.job = job
        await _run_stage(cfg, "generate", cells, out_dir, stack, ledger)
        return cells
    finally:
        await stack.aclose()


async def _run_stage(
    cfg: DictConfig, name: str, cells: list, directory: Path, stack: CallStack, ledger: Ledger
) -> Path:
    files = RunFiles(directory)
    placeholder = stack.provider.placeholder  # placeholder text has no meaning to check or deduplicate
    dedup = Deduplicator(cfg.dedup_threshold) if cfg.dedup and not placeholder else None
    if dedup is not None:  # rows from an earlier run into this dir count too
        for row in files.existing_rows():
            dedup.add(row.key, row.text())
    settings = RowSettings(cfg.seed, cfg.max_attempts, cfg.llm.max_tokens, checks=cfg.checks and not placeholder)
    reviews = []
    if stack.relabel is not None and name == "generate" and not placeholder:
        reviews.append(functools.partial(stack.relabel, caller=stack.caller))
    if stack.judge is not None:
        reviews.append(stack.judge.rate)
    maker = RowMaker(stack.caller, stack.provider.model_name, files, settings, ledger, dedup, reviews)
    scheduler = Scheduler(
        cells, files.done, files.written, RejectLimits(cfg.max_reject_rate, cfg.reject_window, cfg.reject_min_rows)
    )
    stage = ledger.stage_started(name, scheduler.target, files.resumed, _earlier(files, cells))
    progress = Progress(stage, cfg.progress_every_s)
    progress.start()
    concurrency = cfg.concurrency
    if cfg.llm.batch:  # a round goes when every row in flight waits: many rows, one batch
        stack.caller.rows_in_flight = lambda: scheduler.in_flight
        concurrency = max(concurrency, cfg.llm.batch_max_requests)
    try:
        await run_pool(scheduler, maker, concurrency, ledger, on_row=progress.update)
    finally:
        files.close()
        progress.close()
        lost = stage.tally.values.lost() if name != "brainstorm" else []
        ledger.stage_ended(scheduler.shortfall(stage.tally.failed, files.rejects_path, lost))
    return files.data_path


def _run_in_loop(coroutine):
    """asyncio.run, also from code that already runs an event loop (a notebook): then in a thread.
    SIGTERM and SIGHUP (a scheduler's preemption, `timeout`) stop the run like Ctrl-C."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _with_stop_signals(coroutine)
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="synthkit-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop sending, keep the rows, exit non-zero."""


def _with_stop_signals(coroutine):
    """Run `coroutine`; SIGTERM or SIGHUP cancels it as Ctrl-C does in asyncio.run (its cleanup runs, at an
    await), then raises Terminated. Raising from the signal handler instead would interrupt whatever line
    ran, e.g. a connection half made, whose clean-up then fails noisily at exit."""
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coroutine)
    received: list = []

    async def main():
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop(signum: int) -> None:
            if not received:
                received.append(signal.Signals(signum).name)
                task.cancel()

        for s in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(s, stop, s)
        try:
            return await coroutine
        finally:
            for s in (signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(s)

    try:
        value = asyncio.run(main())
    except asyncio.CancelledError:
        if received:
            raise Terminated(received[0]) from None
        raise
    if received:  # the run finished before it saw the cancellation: it still was asked to stop
        raise Terminated(received[0])
    return value


_ENV_INTERPOLATION = re.compile(r"\$\{oc\.env:\s*([^,}\s]+)")


def _refuse_env_keys(cfg: DictConfig) -> None:
    """A key read into a task config by ${oc.env:...} would be written into rows, prompts and config files."""
    for section in ("task", "brainstorm", "recipe"):
        node = cfg.get(section)
        text = OmegaConf.to_yaml(node, resolve=False) if node is not None else ""
        for name in _ENV_INTERPOLATION.findall(text):
            if key_like_name(name):
                raise UserError(
                    f"{section} reads ${{oc.env:{name}}}, a key: keys go only in llm.api_key_env, "
                    "never into task configs (they would be written with the rows)"
                )


def write_status(out: OutputDir, ledger: Ledger, error: str = "", language: Optional[dict] = None) -> None:
    totals = ledger.totals()
    write_json(
        out,
        STATUS_FILE,
        {
            "written": totals.written,
            "rejected": totals.rejected,
            "failed": totals.failed,
            "stopped_early": error or ledger.stopped_early or "",
            "error": error,
            "lost_values": totals.values.lost(),
            **({"degenerate_answers": totals.degenerate_shares()} if totals.degenerate else {}),
            **({"language_check": language} if language else {}),
        },
    )


def _language_outcomes(cells: list) -> dict:
    """The language check's verdicts over the run (texts judged per field and attempt), for the card."""
    total: dict = {}
    for task in {id(c.task): c.task for c in cells}.values():
        for outcome, n in task.language_outcomes().items():
            total[outcome] = total.get(outcome, 0) + n
    return dict(sorted(total.items()))


def _earlier(files: RunFiles, cells: list) -> Optional[ValueCounts]:
    """What rows an earlier run into this dir wrote and rejected, per attribute value drawn."""
    if not files.earlier:
        return None
    tasks = {c.key: c.task for c in cells}
    counts = ValueCounts()
    for row in files.earlier:
        task = tasks.get(row.cell)
        if task is None or not set(row.attributes) >= {a.name for a in task.attributes}:
            continue  # a cell this run does not make
        drawn = task.drawn(row.attributes)
        if row.rejected:
            counts.add_rejected(row.check or "rejected", drawn, (row.cell, row.tags.get("refills", row.row)))
        else:
            counts.add_written(drawn)
    return counts


def _record_config(out: OutputDir, cfg: DictConfig, overrides: tuple, corpora: dict) -> None:
    """The config of the run (.hydra/, as Hydra would write it, keys redacted), and the row-shaping part
    of it (synthkit-run.json): rows are only resumed into a dir made with the same row-shaping config."""
    made = {"recipe": cfg.recipe} if cfg.recipe is not None else {"task": cfg.task}
    made = {k: OmegaConf.to_container(v, resolve=True) for k, v in made.items()}
    if isinstance(made.get("task", {}).get("judge"), dict):
        made["task"]["judge"].pop("enabled", None)  # as judge=true, switching the judge on or off resumes
    shape = {
        "grid": list(cfg.grid or []),
        **made,
        "brainstorm": OmegaConf.to_container(cfg.brainstorm, resolve=True),
        "preset": str(getattr(cfg.preset, "value", cfg.preset)),
        "seed": cfg.seed,
        "llm": {k: cfg.llm[k] for k in ("model", "api_base", "temperature", "top_p", "max_tokens")},
        # Only when on, so that dirs made before the setting existed still resume.
        **({"relabel": True} if cfg.get("relabel") else {}),
        # The corpora drawn from, by content: an edited corpus would draw other chunks for the rows still to make.
        **({"corpus": corpora} if corpora else {}),
    }
    path = out.path / RUN_FILE
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            raise UserError(
                f"{path} is damaged: this output dir cannot be resumed safely; choose a new output_dir"
            ) from None
        changed = _changed_keys(before, json.loads(json.dumps(shape)))
        if changed:
            raise UserError(
                f"{out.path} holds rows made with another config ({', '.join(changed)} changed): "
                "resume with the same settings, or choose a new output_dir"
            )
    else:
        write_json(out, RUN_FILE, shape)
    out.write_text(".hydra/config.yaml", OmegaConf.to_yaml(cfg))
    out.write_text(".hydra/overrides.yaml", OmegaConf.to_yaml(list(overrides)))


def _changed_keys(before, after, prefix: str = "") -> list:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            k
            for key in sorted(before.keys() | after.keys())
            for k in _changed_keys(before.get(key), after.get(key), f"{prefix}{key}.")
        ]
    return [prefix.rstrip(".")] if before != after else []
