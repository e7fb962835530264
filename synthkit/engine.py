"""The generic engine. The path of one row reads top to bottom in `RowMaker.make`:
sampled attributes -> prompt + schema -> model call -> parse -> validate -> write."""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from synthkit.output import RunFiles
from synthkit.parsing import ParseError, parse_json_object
from synthkit.providers import Provider, RequestFailed, make_provider
from synthkit.task import TaskSpec


@dataclass
class RunStats:
    written: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    resumed: int = 0  # rows already in the output dir from an earlier run
    stopped_early: Optional[str] = None


class RowMaker:
    def __init__(self, task: TaskSpec, provider: Provider, files: RunFiles, seed: int, max_attempts: int, stats: RunStats):
        self.task, self.provider, self.files = task, provider, files
        self.seed, self.max_attempts, self.stats = seed, max_attempts, stats

    async def make(self, row: int) -> bool:
        """Make row `row`; True if it was written, False if it went to rejects."""
        attributes = self.task.draw_attributes(self.seed, row)
        messages = [{"role": "user", "content": self.task.render(attributes)}]
        reason, text = "", ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                completion = await self.provider.complete(messages, self.task.schema, self.task.name)
            except RequestFailed as e:
                reason, text = f"request failed: {e}", ""
                continue
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.completion_tokens += completion.completion_tokens
            text = completion.text
            try:
                answer = parse_json_object(text)
                reason = self.task.validation_error(answer)
            except ParseError as e:
                reason = str(e)
            if reason is None:
                self.files.write_row({
                    "row": row,
                    "seed": self.seed,
                    "task_type": self.task.name,
                    **answer,
                    "model_name": self.provider.model_name,
                    "attributes": attributes,
                    "attempts": attempt,
                })
                return True
            # Re-ask in the same conversation: the model sees what was wrong with its answer.
            messages = messages + [
                {"role": "assistant", "content": text},
                {"role": "user", "content": _reask(reason, self.task.output_keys)},
            ]
        self.files.write_reject({
            "row": row,
            "seed": self.seed,
            "task_type": self.task.name,
            "reason": reason,
            "raw": text,
            "attributes": attributes,
            "attempts": self.max_attempts,
        })
        return False


def _reask(reason: str, keys: list) -> str:
    return (
        f"Your answer was not valid: {reason}. Answer again with only the JSON object, "
        f"with the keys {', '.join(keys)}, and nothing else."
    )


class RowSchedule:
    """Hands out row indices until `target` rows are written. A rejected row is replaced by the
    next unused index, so a run ends with `target` valid rows unless rejects pass `max_rejects`."""

    def __init__(self, target: int, written: set, rejected: set, max_rejects: int):
        self.target, self.max_rejects = target, max_rejects
        self.done = written | rejected
        self.written, self.rejected, self.in_flight = len(written), len(rejected), 0
        self._next = 0

    def next_row(self) -> Optional[int]:
        if self.written + self.in_flight >= self.target or self.rejected >= self.max_rejects:
            return None
        while self._next in self.done:
            self._next += 1
        self.in_flight += 1
        self._next += 1
        return self._next - 1

    def finish(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self.written += 1
        else:
            self.rejected += 1


async def generate(cfg: DictConfig, out_dir: Path) -> tuple[RunStats, RunFiles]:
    task = TaskSpec(cfg.task)
    task.render(task.draw_attributes(cfg.seed, 0))  # a template mistake surfaces before any request
    provider = make_provider(cfg.llm)
    files = RunFiles(out_dir)
    stats = RunStats(resumed=len(files.written_rows))
    # A model that fails every row should not burn the budget: stop after this many rejects.
    schedule = RowSchedule(cfg.num_rows, files.written_rows, files.rejected_rows, max_rejects=max(10, cfg.num_rows))
    maker = RowMaker(task, provider, files, cfg.seed, cfg.max_attempts, stats)

    async def worker() -> None:
        while (row := schedule.next_row()) is not None:
            ok = await maker.make(row)
            schedule.finish(ok)
            stats.written += ok
            stats.rejected += not ok

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(cfg.concurrency, cfg.num_rows)))]
    try:
        # The first worker to raise (e.g. the provider refuses the key) stops them all.
        done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for w in pending:
            w.cancel()
        for w in done:
            w.result()
    finally:
        files.close()
        await provider.aclose()
    if schedule.written < cfg.num_rows:
        stats.stopped_early = f"stopped after {schedule.rejected} rejected rows; see {files.rejects_path}"
    return stats, files
