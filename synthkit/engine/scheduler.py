"""Which row to make next, and the pool of workers that makes them.

The scheduler hands out (cell, row index) jobs round-robin over the cells, so all of them progress
together, until each cell holds its rows. A rejected row is replaced by the next unused index. A
cell whose answers keep failing is starved, so one cell that cannot succeed neither sinks the run
nor burns its budget: a cell stops when `max_reject_rate` of its last `reject_window` rows were rejected,
once `reject_min_rows` are seen (or after twice its rows in rejects); the run stops when all its cells
are full or starved, or when the run as a whole crosses the same rate."""

import asyncio
from collections import Counter, deque
from dataclasses import dataclass
from typing import Optional

from synthkit.calls.caller import EndpointDown, RunStopped
from synthkit.core.ledger import Ledger
from synthkit.engine.rows import Cell, Outcome, RowMaker

REFILLS = 2  # times a rejected row's attributes are asked again in a new row before fresh ones are drawn


@dataclass(frozen=True)
class RejectLimits:
    rate: float  # share of rejects among the last `window` rows that stops a cell
    window: int
    min_rows: int  # rows seen before the rate counts

    @classmethod
    def of(cls, cfg) -> "RejectLimits":
        return cls(cfg.max_reject_rate, cfg.reject_window, cfg.reject_min_rows)


class _Window:
    def __init__(self, limits: RejectLimits):
        self.limits = limits
        self.recent: deque = deque(maxlen=limits.window)
        self.reasons: Counter = Counter()

    def add(self, outcome: Outcome, reason: Optional[str]) -> None:
        if outcome is Outcome.failed:
            return
        self.recent.append(outcome is Outcome.rejected)
        if reason:
            self.reasons[reason] += 1

    @property
    def starved(self) -> bool:
        seen = len(self.recent)
        return seen >= self.limits.min_rows and sum(self.recent) >= self.limits.rate * seen

    def top_reasons(self, n: int = 3) -> str:
        return ", ".join(f"{reason} {count}" for reason, count in self.reasons.most_common(n))


class CellSchedule:
    def __init__(self, cell: Cell, done: set, written: int, limits: RejectLimits):
        self.cell = cell
        self.done = done  # row indices already written or rejected (an earlier run into this dir)
        self.written = written
        self.in_flight = 0
        self.window = _Window(limits)
        self.rejects = 0
        self._next = 0
        # Rejected rows whose attributes the next rows take again (up to REFILLS times each): a refill keeps
        # the drawn distribution instead of drifting toward what the model finds easy.
        self._retry: deque = deque()
        self._refills: Counter = Counter()

    @property
    def full(self) -> bool:
        return self.written >= self.cell.num_rows

    @property
    def starved(self) -> bool:
        limit = max(self.window.limits.min_rows, self.cell.num_rows * 2)
        return self.window.starved or self.rejects >= limit

    def next_row(self) -> Optional[tuple]:
        """(a new row index, the row whose attributes it takes), or None when the cell needs no more."""
        if self.written + self.in_flight >= self.cell.num_rows or self.starved:
            return None
        while self._next in self.done:
            self._next += 1
        self.in_flight += 1
        self._next += 1
        index = self._next - 1
        return index, self._retry.popleft() if self._retry else index

    def finish(self, outcome: Outcome, reason: Optional[str], source: Optional[int] = None) -> None:
        self.in_flight -= 1
        if outcome is Outcome.rejected and source is not None and self._refills[source] < REFILLS:
            self._refills[source] += 1
            self._retry.append(source)
        self.written += outcome is Outcome.written
        self.rejects += outcome is Outcome.rejected
        self.window.add(outcome, reason)


class Scheduler:
    def __init__(self, cells: list, done: dict, written: Counter, limits: RejectLimits):
        """`done`: row indices per cell key already in the output dir; `written`: rows per cell key."""
        self.schedules = [CellSchedule(c, done.get(c.key, set()), written.get(c.key, 0), limits) for c in cells]
        self.window = _Window(limits)  # the run's, over all cells
        self.stopped: Optional[str] = None
        self._turn = 0

    @property
    def target(self) -> int:
        return sum(s.cell.num_rows for s in self.schedules)

    @property
    def in_flight(self) -> int:
        return sum(s.in_flight for s in self.schedules)

    def next_job(self) -> Optional[tuple]:
        if self.stopped or self.window.starved:
            return None
        for i in range(len(self.schedules)):
            schedule = self.schedules[(self._turn + i) % len(self.schedules)]
            row = schedule.next_row()
            if row is not None:
                self._turn = (self._turn + i + 1) % len(self.schedules)
                return schedule, row
        return None

    def finish(
        self, schedule: CellSchedule, outcome: Outcome, reason: Optional[str], source: Optional[int] = None
    ) -> None:
        schedule.finish(outcome, reason, source)
        self.window.add(outcome, reason)

    def shortfall(self, failed: int, rejects_file, lost: list = ()) -> Optional[str]:
        """Why the run ended before every cell was full (or full without some attribute value), or None."""
        if self.stopped:
            return self.stopped
        if all(s.full for s in self.schedules):
            if lost:
                return (
                    f"no rows for {'; '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}: the model failed "
                    f"every row asked with these values (the other rows are written); see {rejects_file}"
                )
            return None
        if self.window.starved:
            return (
                f"stopped: {sum(self.window.recent)} of the last {len(self.window.recent)} rows were rejected "
                f"(top reasons: {self.window.top_reasons()}); see {rejects_file}"
            )
        starved = [s for s in self.schedules if s.starved and not s.full]
        if starved:
            names = "; ".join(
                f"{s.cell.key or 'the run'} ({s.written}/{s.cell.num_rows} rows; {s.window.top_reasons(1)})"
                for s in starved[:5]
            )
            more = f" and {len(starved) - 5} more" if len(starved) > 5 else ""
            return f"{len(starved)} cells starved by rejects: {names}{more}; see {rejects_file}"
        return f"{failed} rows failed after every retry; run again with the same output_dir to make them"


@dataclass(frozen=True)
class Breaker:
    """When the endpoint counts as down: `rows` rows in a row failed, each after `retries` retries (llm.*)."""

    rows: int
    retries: int


async def run_pool(
    scheduler: Scheduler, maker: RowMaker, concurrency: int, ledger: Ledger, breaker: Breaker, on_row=None
) -> None:
    """Make rows with `concurrency` workers until the scheduler has no more to hand out. The first
    worker to raise (a refused key, an endpoint that is down) stops them all. Rows count towards the breaker, not
    requests: a row of several steps whose first steps are answered and whose last one fails is a failed row."""
    finished = asyncio.Condition()
    failed_in_a_row = 0

    async def worker() -> None:
        while True:
            job = scheduler.next_job()
            if job is None:
                # Rows in flight may still be rejected and need replacing: wait for them, then look again.
                if scheduler.stopped or scheduler.window.starved or not scheduler.in_flight:
                    return
                async with finished:
                    await finished.wait()
                continue
            schedule, (row, source) = job
            outcome, reason = Outcome.failed, None
            try:
                outcome, reason = await maker.make(schedule.cell, row, source)
            except RunStopped as e:
                scheduler.stopped = scheduler.stopped or str(e)
                ledger.stop(str(e))
                if not e.graceful:
                    raise
            finally:
                scheduler.finish(schedule, outcome, reason, source)
                async with finished:
                    finished.notify_all()
            nonlocal failed_in_a_row  # a row stopped with the run (its budget reached) did not fail
            failed_in_a_row = failed_in_a_row + 1 if outcome is Outcome.failed and not scheduler.stopped else 0
            if failed_in_a_row >= breaker.rows:
                down = EndpointDown(
                    f"the endpoint kept failing ({failed_in_a_row} rows in a row, each after {breaker.retries} "
                    f"retries; last: {reason})"
                )
                scheduler.stopped = scheduler.stopped or str(down)
                ledger.stop(str(down))
                raise down
            if on_row is not None:
                on_row()

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, scheduler.target)))]
    try:
        done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for w in workers:
            w.cancel()
        # Every worker's end read, the cancelled ones' too: an exception no one reads (the other workers refused in
        # the same instant) would be printed with its traceback when its task is collected.
        await asyncio.gather(*workers, return_exceptions=True)
    for w in done:
        if not isinstance(w.exception(), RunStopped):
            w.result()
