"""The training examples of a run, as `synthkit export` would give them: its rows (placeholder rows refused), the
scoring policy applied (rows `scoring.policy=drop` flagged are left out), each task's `export:` block, and with
`evaluate.hard_negatives=K` K more negatives mined per row from the run's own documents, as `--hard-negatives K`."""

from dataclasses import dataclass

from synthkit.core.errors import UserError
from synthkit.core.record import read_rows
from synthkit.results.export import to_examples
from synthkit.results.rundir import RunDir
from synthkit.results.scoring import compose_scoring, describe_left_out, left_out, row_key


@dataclass
class RunExamples:
    examples: list  # synthkit.results.export.Example, in row order
    skipped: int  # rows of tasks that make no training examples (brainstorm)
    dropped: str  # what scoring.policy=drop left out, described ("" when nothing)


def run_examples(run: RunDir) -> RunExamples:
    """The run's rows as export gives them; one line when they are placeholders or none makes an example."""
    rows = list(read_rows(run.data, missing_ok=False))
    placeholders = sum(row.placeholder for row in rows)
    if placeholders:
        raise UserError(
            f"{run.data} holds {placeholders} PLACEHOLDER rows from llm=mock, not model output: a model trained on "
            "them says nothing about the data; evaluate rows generated with a real llm"
        )
    keys, why = left_out(run, len(rows))
    kept = [row for row in rows if row_key(row) not in keys]
    examples, skipped = to_examples(kept, run.task_configs())
    if not examples:
        raise UserError(
            f"{run.data} holds no rows to train on ({len(rows)} rows: {skipped} of tasks without an export block, "
            f"{len(rows) - len(kept)} left out by scoring.policy=drop)"
        )
    return RunExamples(examples, skipped, describe_left_out(why, len(rows) - len(kept)) if keys else "")


def mine_negatives(examples: list, k: int, run: RunDir, embedder_overrides: list) -> int:
    """Mine k negatives per example in place (example.mined), with the embedder the run was scored with unless
    embedder overrides name one, as `export --hard-negatives`; how many examples got fewer than k."""
    from synthkit.quality.embedder import load
    from synthkit.quality.mining import mine_hard_negatives

    cfg = compose_scoring(embedder_overrides, "evaluate")
    scored = (run.scores_summary() or {}).get("embedder")
    if scored and not embedder_overrides:
        cfg.embedder.backend, cfg.embedder.model = scored["backend"], scored["model"]
    mined = mine_hard_negatives(load(cfg.embedder), examples, k=k, ratio=cfg.scoring.false_negative_ratio)
    for example, m in zip(examples, mined):
        example.mined = m
    return sum(len(m.negatives) < k for m in mined)
