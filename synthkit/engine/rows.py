"""The generic engine. The path of one row reads top to bottom in `RowMaker.make`:
sampled attributes -> prompt + schema -> model call -> parse -> validate and check -> write
(or re-ask, or reject).

A run is a list of cells: a task with some attributes fixed and a number of rows to write. A plain
run is one cell; a recipe mixture or an in-process grid is many, all served by one pool of workers."""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from synthkit.calls.caller import Answer, ModelCaller, RunStopped
from synthkit.spec.checks import CheckFailure
from synthkit.quality.dedup import Deduplicator, row_text
from synthkit.outputs.files import RunFiles
from synthkit.spec.parsing import ParseError
from synthkit.outputs.progress import Progress
from synthkit.calls.providers import RequestFailed
from synthkit.spec.task import TaskSpec


@dataclass
class Cell:
    task: TaskSpec
    num_rows: int
    key: str = ""  # names the cell in rows and summaries; empty for a single-cell run
    extra: dict = field(default_factory=dict)  # written into each of the cell's rows
    # More fields for a row, from its attributes (e.g. the brainstorm row its task definition came from).
    row_extra: Optional[Callable[[dict], dict]] = None


@dataclass
class RunStats:
    written: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: int = 0  # answers replayed from the response cache
    duplicates: int = 0  # answers that repeated an earlier row
    failed: int = 0  # rows whose requests failed after every retry; a later run makes them
    resumed: int = 0  # rows already in the output dir from an earlier run
    requests: int = 0  # requests sent to the model, retries included
    priced: bool = True  # False when the model has no known price
    elapsed_s: float = 0.0  # from the first request to the last row
    stopped_early: Optional[str] = None


@dataclass
class RunSettings:
    seed: int
    concurrency: int
    max_attempts: int
    checks: bool = True  # the tasks' quality checks


class RowMaker:
    def __init__(self, caller: ModelCaller, model_name: str, files: RunFiles, settings: RunSettings, stats: RunStats,
                 dedup: Optional[Deduplicator]):
        self.caller, self.model_name, self.files, self.settings, self.stats = caller, model_name, files, settings, stats
        self.dedup = dedup

    async def make(self, cell: Cell, row: int) -> Optional[bool]:
        """Make one row of `cell`: True if it was written, False if it went to rejects, None if
        its requests failed (the row is left for a later run to make)."""
        task, seed = cell.task, self.settings.seed
        attributes = task.draw_attributes(seed, row, stream=cell.key)
        messages = [{"role": "user", "content": task.render(attributes)}]
        identity = {"row": row, **({"cell": cell.key} if cell.key else {}), "seed": seed, "task_type": task.name}
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "cached": 0}
        reason, text, check = "", "", None
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                answer = await self.caller.call(messages, task.schema, task.name, f"{seed}:{cell.key}:{row}")
            except RequestFailed:
                self.stats.failed += 1
                return None
            self._count(usage, answer)
            text = answer.completion.text
            parsed, problem = self._judge(cell, row, text, attributes)
            if problem is None:
                self.files.write_row({
                    **identity,
                    **parsed,
                    "model_name": self.model_name,
                    "attributes": attributes,
                    **cell.extra,
                    **(cell.row_extra(attributes) if cell.row_extra else {}),
                    "attempts": attempt,
                    "usage": usage,
                })
                return True
            reason, check = problem.message, problem.name or None
            if not problem.reask:
                break
            # Re-ask in the same conversation: the model sees what was wrong with its answer.
            messages = messages + [
                {"role": "assistant", "content": text},
                {"role": "user", "content": _reask(reason, task.output_keys)},
            ]
        self.files.write_reject({**identity, "reason": reason, **({"check": check} if check else {}), "raw": text,
                                 "attributes": attributes, "attempts": attempt, "usage": usage})
        return False

    def _judge(self, cell: Cell, row: int, text: str, attributes: dict) -> tuple:
        """(the parsed answer, what is wrong with it or None): parse, schema, the task's checks,
        then whether it repeats an earlier row."""
        task = cell.task
        try:
            parsed = task.parse(text)
        except ParseError as e:
            return None, CheckFailure("", str(e), reask=True)
        reason = task.validation_error(parsed)
        if reason is not None:
            return parsed, CheckFailure("", reason, reask=True)
        for c in task.checks if self.settings.checks else ():
            failure = c.failure(parsed, attributes)
            if failure is not None:
                return parsed, CheckFailure(failure.name, f"check {failure.name}: {failure.message}", failure.reask)
        if self.dedup is not None:
            earlier = self.dedup.add(f"{cell.key}:{row}", row_text(parsed, task.output_keys))
            if earlier is not None:
                self.stats.duplicates += 1
                return parsed, CheckFailure("duplicate", f"check duplicate: the same as (or nearly) row {earlier}", True)
        return parsed, None

    def _count(self, usage: dict, answer: Answer) -> None:
        completion, stats = answer.completion, self.stats
        usage["prompt_tokens"] += completion.prompt_tokens
        usage["completion_tokens"] += completion.completion_tokens
        usage["cached"] += answer.cached
        stats.prompt_tokens += completion.prompt_tokens
        stats.completion_tokens += completion.completion_tokens
        stats.cached += answer.cached
        if answer.cost_usd is None:
            usage["cost_usd"] = None  # the model has no price
        elif usage["cost_usd"] is not None:
            usage["cost_usd"] += answer.cost_usd
            stats.cost_usd += answer.cost_usd


def _reask(reason: str, keys: list) -> str:
    return (
        f"Your answer was not valid: {reason}. Answer again with only the JSON object, "
        f"with the keys {', '.join(keys)}, and nothing else."
    )


class CellSchedule:
    """Hands out a cell's row indices until `num_rows` rows are written. A rejected row is replaced
    by the next unused index, so the cell ends full unless the run's reject limit is reached."""

    def __init__(self, cell: Cell, written: set, rejected: set):
        self.cell = cell
        self.done = {row for key, row in written | rejected if key == cell.key}
        self.written = sum(1 for key, _ in written if key == cell.key)
        self.in_flight = 0
        self._next = 0

    def next_row(self) -> Optional[int]:
        if self.written + self.in_flight >= self.cell.num_rows:
            return None
        while self._next in self.done:
            self._next += 1
        self.in_flight += 1
        self._next += 1
        return self._next - 1

    def finish(self, ok: bool) -> None:
        self.in_flight -= 1
        self.written += bool(ok)


async def run_cells(cells: list, caller: ModelCaller, model_name: str, files: RunFiles, settings: RunSettings,
                    progress: Optional[Progress] = None, dedup: Optional[Deduplicator] = None) -> RunStats:
    stats = RunStats(resumed=len(files.written_rows))
    schedules = [CellSchedule(c, files.written_rows, files.rejected_rows) for c in cells]
    target = sum(c.num_rows for c in cells)
    # A model that fails every row should not burn the budget: stop after this many rejects.
    max_rejects = max(10, target)
    if dedup is not None:  # rows from an earlier run into this dir count too
        keys = {c.key: c.task.output_keys for c in cells}
        for r in files.existing_rows():
            dedup.add(f"{r.get('cell', '')}:{r['row']}", row_text(r, keys.get(r.get("cell", ""), [])))
    maker = RowMaker(caller, model_name, files, settings, stats, dedup)
    turn = 0

    def next_job() -> Optional[tuple]:
        nonlocal turn
        if stats.stopped_early or stats.rejected >= max_rejects:
            return None
        # Round-robin over cells, so that all of them progress together.
        for i in range(len(schedules)):
            schedule = schedules[(turn + i) % len(schedules)]
            row = schedule.next_row()
            if row is not None:
                turn = (turn + i + 1) % len(schedules)
                return schedule, row
        return None

    finished = asyncio.Condition()

    async def worker() -> None:
        while True:
            job = next_job()
            if job is None:
                # Rows in flight may still be rejected and need replacing: wait for them, then look again.
                if stats.stopped_early or stats.rejected >= max_rejects or not any(s.in_flight for s in schedules):
                    return
                async with finished:
                    await finished.wait()
                continue
            schedule, row = job
            ok = None
            try:
                ok = await maker.make(schedule.cell, row)
            except RunStopped as e:
                stats.stopped_early = stats.stopped_early or str(e)
                if not e.graceful:
                    raise
            finally:
                schedule.finish(ok)
            stats.written += ok is True
            stats.rejected += ok is False
            if progress:
                progress.update()
            async with finished:
                finished.notify_all()

    if progress:
        progress.start(stats)
    started = time.monotonic()
    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(settings.concurrency, target)))]
    try:
        # The first worker to raise (a refused key, an endpoint that is down) stops them all.
        done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for w in pending:
            w.cancel()
        for w in done:
            if not isinstance(w.exception(), RunStopped):
                w.result()
    finally:
        stats.elapsed_s = time.monotonic() - started
        files.close()
        if progress:
            progress.close()
    if not stats.stopped_early and sum(s.written for s in schedules) < target:
        if stats.rejected >= max_rejects:
            stats.stopped_early = f"stopped after {stats.rejected} rejected rows; see {files.rejects_path}"
        else:
            stats.stopped_early = f"{stats.failed} rows failed after every retry; run again with the same output_dir to make them"
    return stats
