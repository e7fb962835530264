"""The run ledger: every count of a run, fed by events as they happen (a request sent, an answer
paid for or replayed, a row written, rejected or failed, a stage started or ended). It spans all the
stages of a run (brainstorm, then generation), so the totals are the run's; progress and the summary
only read it."""

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from synthkit.core.text import MESSAGE_CHARS, printable


@dataclass
class Tally:
    """Counts of one stage, or of a whole run."""

    written: int = 0
    rejected: int = 0
    failed: int = 0  # rows whose requests failed after every retry; a later run makes them
    resumed: int = 0  # rows already in the output dir from an earlier run
    duplicates: int = 0  # answers that repeated an earlier row
    requests: int = 0  # requests sent to the model, retries included
    cached: int = 0  # answers replayed from the response cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # paid in this run
    cached_cost_usd: float = 0.0  # what the answers replayed from the cache cost when they were paid (a preview's rate)
    truncated: int = 0  # answers cut off by llm.max_tokens
    reasons: Counter = field(default_factory=Counter)  # why rows were rejected: the check, or the kind of reason
    checked: Counter = field(default_factory=Counter)  # task type -> answers that reached the task's checks
    degenerate: Counter = field(default_factory=Counter)  # (task type, check) -> answers that were not answers
    judged: Counter = field(default_factory=Counter)  # the LLM judge's scores (judge=true), every rating
    values: "ValueCounts" = field(default_factory=lambda: ValueCounts())

    def add(self, other: "Tally") -> None:
        for name in (
            "written",
            "rejected",
            "failed",
            "resumed",
            "duplicates",
            "requests",
            "cached",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "cached_cost_usd",
            "truncated",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)
        self.checked.update(other.checked)
        self.degenerate.update(other.degenerate)
        self.judged.update(other.judged)
        self.values.update(other.values)

    def degenerate_shares(self) -> list:
        """Per task type, `task: N of M answers degenerate (P%: check n, ...)`, worst first: the share of answers
        that were not answers (every attempt counts) says whether the model is fit for the task."""
        lines = []
        for task, checked in self.checked.items():
            by_check = Counter({c: n for (t, c), n in self.degenerate.items() if t == task})
            bad = sum(by_check.values())
            if bad:
                why = ", ".join(f"{c} {n}" for c, n in by_check.most_common())
                lines.append((bad / checked, f"{task} {bad} of {checked} answers ({100 * bad / checked:.0f}%: {why})"))
        return [line for _, line in sorted(lines, reverse=True)]


class ValueCounts:
    """Rows written and rejected per (attribute, value) drawn: a value the model always fails is not lost
    silently behind refills of other values."""

    def __init__(self):
        self.written: Counter = Counter()
        self.rejected: Counter = Counter()
        self.reasons: dict = {}  # (attribute, value) -> Counter of reasons
        self.origins: dict = {}  # (attribute, value) -> the rows whose draws were rejected

    def add_written(self, drawn: dict) -> None:
        self.written.update(_values(drawn))

    def add_rejected(self, reason: str, drawn: dict, origin) -> None:
        """`origin`: the row the attributes were drawn for (a refill shares its rejected row's)."""
        for value in _values(drawn):
            self.rejected[value] += 1
            self.reasons.setdefault(value, Counter())[reason] += 1
            self.origins.setdefault(value, set()).add(origin)

    def update(self, other: "ValueCounts") -> None:
        self.written.update(other.written)
        self.rejected.update(other.rejected)
        for value, reasons in other.reasons.items():
            self.reasons.setdefault(value, Counter()).update(reasons)
        for value, origins in other.origins.items():
            self.origins.setdefault(value, set()).update(origins)

    def lost(self, least_rejects: int = 3, least_origins: int = 3) -> list:
        """`attribute=value (N rejected: top reason)` for values never written though rejected at least that
        often, in rows drawn apart (one unlucky draw asked again is not a value the model fails)."""
        lost = []
        for value, rejected in self.rejected.most_common():
            if rejected >= least_rejects and not self.written[value] and len(self.origins[value]) >= least_origins:
                reason = self.reasons[value].most_common(1)[0][0]
                lost.append(f"{value[0]}={value[1]} ({rejected} rejected: {reason})")
        return lost


@dataclass
class Stage:
    name: str
    target: int  # rows the stage is to hold
    tally: Tally = field(default_factory=Tally)
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0
    stopped_early: Optional[str] = None


GENERATE = "generate"  # the stage that makes the rows (a brainstorm stage may come first)


class Ledger:
    def __init__(self, priced: bool = True):
        self.priced = priced  # False when the model has no known price: costs are unknown
        self.stages: list = []

    # Events.
    def stage_started(self, name: str, target: int, resumed: int, before: Optional[ValueCounts] = None) -> Stage:
        """`before`: the values an earlier run into the same dir wrote and rejected."""
        tally = Tally(resumed=resumed)
        if before is not None:
            tally.values.update(before)
        stage = Stage(name, target, tally)
        self.stages.append(stage)
        return stage

    def stage_ended(self, stopped_early: Optional[str] = None) -> None:
        stage = self.current
        stage.elapsed_s = time.monotonic() - stage.started
        stage.stopped_early = stage.stopped_early or stopped_early

    def request_sent(self) -> None:
        self.current.tally.requests += 1

    def answered(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: Optional[float],
        cached: bool,
        truncated: bool = False,
        cached_cost_usd: Optional[float] = None,
    ) -> None:
        """`cost_usd`: paid now (0 for an answer from the cache); `cached_cost_usd`: what a cached one is worth at
        the run's price."""
        tally = self.current.tally
        tally.prompt_tokens += prompt_tokens
        tally.completion_tokens += completion_tokens
        tally.cost_usd += cost_usd or 0.0
        tally.cached_cost_usd += cached_cost_usd or 0.0
        tally.cached += cached
        tally.truncated += truncated

    def row_written(self, drawn: dict) -> None:
        tally = self.current.tally
        tally.written += 1
        tally.values.add_written(drawn)

    def row_rejected(self, reason: str, drawn: dict, origin=None) -> None:
        tally = self.current.tally
        tally.rejected += 1
        tally.reasons[reason] += 1
        tally.values.add_rejected(reason, drawn, origin)

    def answer_checked(self, task: str) -> None:
        self.current.tally.checked[task] += 1

    def degenerate_answer(self, task: str, check: str) -> None:
        """An answer failed a degenerate-output check (synthkit/spec/degenerate.py): echoed, placeholder..."""
        self.current.tally.degenerate[task, check] += 1

    def judge_scored(self, score: int) -> None:
        self.current.tally.judged[score] += 1

    def row_failed(self) -> None:
        self.current.tally.failed += 1

    def duplicate(self) -> None:
        self.current.tally.duplicates += 1

    def stop(self, reason: str) -> None:
        """No more rows in this stage (and so in this run). The reason may quote a provider: it is printed and
        stored printable."""
        self.current.stopped_early = self.current.stopped_early or printable(reason, MESSAGE_CHARS)

    # Readings.
    @property
    def current(self) -> Stage:
        return self.stages[-1]

    @property
    def generation(self) -> Stage:
        """The stage that makes the rows: what a run's row counts are of (brainstorm answers are not rows). An empty
        stage when the run stopped before it."""
        return next((s for s in self.stages if s.name == GENERATE), Stage(GENERATE, 0))

    @property
    def stopped_early(self) -> Optional[str]:
        return next((s.stopped_early for s in self.stages if s.stopped_early), None)

    def totals(self) -> Tally:
        total = Tally()
        for stage in self.stages:
            total.add(stage.tally)
        return total

    @property
    def elapsed_s(self) -> float:
        return sum(s.elapsed_s for s in self.stages)


def _values(attributes: dict) -> list:
    return [(name, str(value)) for name, value in attributes.items()]
