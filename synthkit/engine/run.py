"""From a composed config to a finished run, as a short list of stages: plan what to make (nothing is written yet),
open the call stack (every refusal before the output dir exists), claim the output dir and record the config, run
the brainstorm stage (when task definitions are needed) and the generation stage through the scheduler, and write
how the run ended. What reads the finished run (the card, scoring, exports) goes through its RunDir."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from synthkit.core.errors import UserError
from synthkit.core.ledger import GENERATE, Ledger, ValueCounts
from synthkit.core.paths import configured_cache_dir
from synthkit.corpus.domain import corpus_digests
from synthkit.engine.loop import run_in_loop
from synthkit.engine.plan import (
    RunPlan,
    brainstorm_cells,
    count_definitions,
    generate_cells,
    plan_run,
    write_flat_tasks,
)
from synthkit.engine.progress import Progress
from synthkit.engine.resume import record_config
from synthkit.engine.reviews import Duplicates, reviews_of
from synthkit.engine.rows import RowMaker, RowSettings
from synthkit.engine.scheduler import Breaker, RejectLimits, Scheduler, run_pool
from synthkit.engine.stack import CallStack
from synthkit.quality.dedup import Deduplicator
from synthkit.results.rundir import STATUS_FILE, RowFiles, RunDir
from synthkit.spec.checks import prepare as prepare_checks


@dataclass
class RunResult:
    ledger: Ledger
    run: RunDir
    data_path: Path  # the rows the run's last stage wrote
    label: str  # what was made: a task name or a recipe
    model: str
    placeholder: bool  # llm=mock: the rows are not model output
    notes: list = field(default_factory=list)  # lines for the summary
    coverage: str = ""  # the coverage table of a grid run

    @property
    def stopped_early(self) -> Optional[str]:
        return self.ledger.stopped_early


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP stopped the run: the rows written are kept; `.result` is what it made."""

    def __init__(self, why: str, result: RunResult):
        super().__init__(why)
        self.result = result


def generate(
    cfg: DictConfig, out_dir: Path, shared_dir: Optional[Path] = None, overrides: tuple = (), job: str = ""
) -> RunResult:
    """Make the run's rows in `out_dir`. Jobs of one sweep pass its dir as `shared_dir` (they share one
    max_cost_usd budget there) and their coordinates as `job` (they draw apart)."""
    plan = plan_run(cfg)
    if cfg.checks and cfg.llm.provider != "mock":  # (mock's placeholder text is not checked)
        prepare_checks(plan.specs, configured_cache_dir(cfg.cache_dir))  # loads while the call stack opens
    run = RunDir(out_dir)
    stack = CallStack.open(cfg, plan.specs, RunDir(shared_dir or out_dir).spent)
    try:
        if cfg.evaluate.enabled:  # before any row is paid for: sets that do not read, a missing extra
            from synthkit.results.evaluation.evaluate import check_before_run

            check_before_run(cfg, stack.provider.placeholder)
        run.claim()
        record_config(run, cfg, overrides, corpus_digests(plan.specs))
        ledger = Ledger(priced=stack.priced)
        stack.start(ledger, run.batches, cfg.max_attempts, cfg.progress_every_s)
        result = RunResult(ledger, run, run.data, plan.label, cfg.llm.model, stack.provider.placeholder)
        try:
            cells = run_in_loop(_stages(cfg, plan, run, stack, ledger, result, job))
        except (UserError, KeyboardInterrupt) as e:  # the rows written are kept: say how the run ended
            write_status(run, ledger, error=str(e) or "interrupted")
            if isinstance(e, KeyboardInterrupt):
                raise Interrupted(str(e) or "interrupted", result) from None
            raise
        _after_stages(cfg, run, cells, ledger, result)
        return result
    except BaseException:
        stack.close()
        raise
    finally:
        run.release()


async def _stages(
    cfg: DictConfig, plan: RunPlan, run: RunDir, stack: CallStack, ledger: Ledger, result: RunResult, job: str
) -> list:
    """Run the brainstorm stage (when definitions are needed), then the generation stage."""
    try:
        brainstormed = None
        brainstorm = brainstorm_cells(cfg, plan.units)
        if brainstorm:
            brainstormed = await _run_stage(cfg, "brainstorm", brainstorm, run.brainstorm, stack, ledger)
            kept, dropped = count_definitions(brainstormed.data)
            result.notes.append(
                f"brainstorm: {ledger.current.tally.written} answers, {kept} task definitions "
                f"({dropped} duplicates dropped): {brainstormed.data}"
            )
            if ledger.stopped_early:
                result.data_path = brainstormed.data
                return []
        cells = generate_cells(cfg, plan.units, brainstormed.data if brainstormed else None)
        for cell in brainstorm + cells:
            cell.job = job
        await _run_stage(cfg, GENERATE, cells, run, stack, ledger)
        return cells
    finally:
        await stack.aclose()


async def _run_stage(
    cfg: DictConfig, name: str, cells: list, stage_dir: RunDir, stack: CallStack, ledger: Ledger
) -> RunDir:
    files = RowFiles(stage_dir)
    placeholder = stack.provider.placeholder  # placeholder text has no meaning to check or deduplicate
    dedup = Duplicates(Deduplicator(cfg.dedup_threshold), ledger) if cfg.dedup and not placeholder else None
    if dedup is not None:  # rows from an earlier run into this dir count too
        tasks = {c.task.name: c.task for c in cells}
        for row in files.existing_rows():
            dedup.remember(row, tasks.get(row.task_type))
    reviews = reviews_of(name, ledger, cfg.checks and not placeholder, dedup, stack.relabel, stack.judge)
    settings = RowSettings(cfg.seed, cfg.max_attempts, cfg.llm.max_tokens)
    maker = RowMaker(stack.caller_of, stack.provider.model_name, files, settings, ledger, reviews)
    scheduler = Scheduler(cells, files.done, files.written, RejectLimits.of(cfg))
    stage = ledger.stage_started(name, scheduler.target, files.resumed, _earlier(files, cells))
    progress = Progress(stage, cfg.progress_every_s)
    progress.start()
    stack.caller.watch(lambda: scheduler.in_flight)
    try:
        breaker = Breaker(cfg.llm.circuit_breaker, cfg.llm.max_retries)
        await run_pool(scheduler, maker, stack.caller.workers(cfg.concurrency), ledger, breaker, on_row=progress.update)
    finally:
        files.close()
        progress.close()
        lost = stage.tally.values.lost() if name == GENERATE else []
        ledger.stage_ended(scheduler.shortfall(stage.tally.failed, files.rejects_path, lost))
    return stage_dir


def _after_stages(cfg: DictConfig, run: RunDir, cells: list, ledger: Ledger, result: RunResult) -> None:
    """What the rows make once written: brainstormed definitions flattened, a grid's coverage, the status file,
    the scores (score=true) and the evaluation (evaluate=true)."""
    if cfg.recipe is None and cfg.task.get("flatten_tasks") and result.data_path.exists():
        result.notes.append(f"flattened task definitions: {write_flat_tasks(RunDir(result.data_path.parent))}")
    if cfg.grid:
        from synthkit.results.sweep import grid_coverage

        result.coverage = grid_coverage(run, cells)
    write_status(run, ledger, language=_language_outcomes(cells))
    if cfg.score:  # the rows are written and the status with them: a failed scoring loses nothing
        from synthkit.results.scoring import after_run

        result.notes.append(after_run(run, cfg.embedder, cfg.scoring))
    if cfg.evaluate.enabled and cfg.preview:  # a few rows measure nothing: the settings were checked above
        result.notes.append("evaluation: not run for a preview (evaluate=true evaluates the full run)")
    elif cfg.evaluate.enabled:  # after the scores: the scoring policy decides which rows are trained on
        from synthkit.results.evaluation.evaluate import after_run as evaluate_after_run

        result.notes.append(evaluate_after_run(run, cfg))


def write_status(run: RunDir, ledger: Ledger, error: str = "", language: Optional[dict] = None) -> None:
    """How the run ended: its rows (the generation stage's; brainstorm answers apart), why it stopped early."""
    totals, rows = ledger.totals(), ledger.generation.tally
    brainstorm = [s.tally for s in ledger.stages if s.name != GENERATE]
    run.write_json(
        STATUS_FILE,
        {
            "written": rows.written,
            "rejected": rows.rejected,
            "failed": rows.failed,
            **(
                {
                    "brainstorm": {
                        "written": sum(t.written for t in brainstorm),
                        "rejected": sum(t.rejected for t in brainstorm),
                    }
                }
                if brainstorm
                else {}
            ),
            "stopped_early": error or ledger.stopped_early or "",
            "error": error,
            "lost_values": rows.values.lost(),
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


def _earlier(files: RowFiles, cells: list) -> Optional[ValueCounts]:
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
