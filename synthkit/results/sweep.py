"""Sweeps: one dataset and one coverage table from many cells, whether the cells were the jobs of a
Hydra multirun (each in its own subfolder of the sweep dir) or an in-process grid (one run)."""

import json
import os
from collections import Counter
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from synthkit.core.config import ScoreFlag
from synthkit.quality.dedup import Deduplicator
from synthkit.results.rundir import RunDir, note_new_dirs

# The CLI names a file here before a multirun; the callback writes the jobs that failed into it.
REPORT_ENV = "SYNTHKIT_SWEEP_REPORT"


class NewDirs(Callback):
    """Registered in conf/config.yaml: before Hydra makes the run's dir (or the sweep's), note which of its folders
    are new, so that a refused run leaves nothing behind (synthkit.results.rundir.drop_made_dirs)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        note_new_dirs(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        note_new_dirs(config.hydra.sweep.dir)


class MergeSweep(Callback):
    """Registered in conf/config.yaml: after a multirun, merge the jobs' rows and report coverage."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep = RunDir(config.hydra.sweep.dir)
        if sweep.path.is_dir():
            summary, failed = merge_sweep(sweep)
            print(summary, flush=True)
            report = os.environ.get(REPORT_ENV)
            if report:
                Path(report).write_text(json.dumps(failed), encoding="utf-8")
            if config.get("card"):
                from synthkit.results.card import write_card

                print(f"  dataset card: {write_card(sweep)}", flush=True)


def merge_sweep(sweep) -> tuple:
    """(the summary with its coverage table, the names of the jobs that did not finish cleanly) of a sweep's dir
    (a RunDir, or its path)."""
    sweep = RunDir.at(sweep)
    jobs = sweep.jobs()
    overrides = {job.path: _overrides(job) for job in jobs}
    # The sweep's coordinates are the overrides whose values differ from job to job.
    keys = [
        k
        for k in dict.fromkeys(k for o in overrides.values() for k in o)
        if len({json.dumps(o.get(k), sort_keys=True, default=str) for o in overrides.values()}) > 1  # lists too
    ]
    table, dedup, dropped, failed = [], Deduplicator(), 0, []
    with open(sweep.data, "w", encoding="utf-8") as merged:
        for job in jobs:
            coordinates = {k: overrides[job.path].get(k) for k in keys}
            count = 0
            for row in job.rows():
                count += 1
                row.tags.update(sweep=coordinates, job=job.path.name)
                if dedup.add(row.key, row.text()) is not None:
                    dropped += 1  # the same example made by another job
                    continue
                merged.write(row.to_line())
            status = _status(job)
            if status != "ok":
                failed.append(job.path.name)
            rejects = sum(1 for _ in job.rejected_rows())
            table.append([job.path.name, *(str(coordinates[k]) for k in keys), count, rejects, status])
    total = sum(r[-3] for r in table) - dropped
    header = [
        "job",
        *keys,
        "rows",
        "rejects",
        "status",
        *_score_columns(jobs, table),
        *_evaluation_columns(jobs, table),
    ]
    text = _markdown(header, table)
    summary = (
        f"synthkit: sweep of {len(jobs)} jobs: {total} rows merged into {sweep.data} ({dropped} duplicates dropped)"
    )
    return _save(sweep, text, summary), failed


def _score_columns(jobs: list, table: list) -> list:
    """Flag shares of the jobs that were scored (synthkit score, score=true), appended to their table rows."""
    from synthkit.results.scoring import flag_shares

    summaries = [job.scores_summary() for job in jobs]
    if not any(summaries):
        return []
    for row, summary in zip(table, summaries):
        row += list(flag_shares(summary).values()) if summary else ["-"] * len(ScoreFlag)
    return [flag.heading for flag in ScoreFlag]


def _evaluation_columns(jobs: list, table: list) -> list:
    """Δ per evaluation set of the jobs that were evaluated (evaluate=true, synthkit evaluate), with their rank,
    appended to their table rows: the cells whose data helped a model, and the ones whose data hurt it."""
    from synthkit.results.evaluation.report import delta_columns

    headings, cells = delta_columns([job.evaluation() for job in jobs])
    for row, extra in zip(table, cells):
        row += extra
    return headings


def grid_coverage(run: RunDir, cells: list) -> str:
    """The coverage table of an in-process grid run: rows and rejects per cell."""
    rows = Counter(r.cell for r in run.rows())
    rejects = Counter(r.cell for r in run.rejected_rows())
    keys = list(cells[0].tags["grid"]) if cells else []
    table = [
        [
            *(str(c.tags["grid"][k]) for k in keys),
            rows[c.key],
            rejects[c.key],
            "ok" if rows[c.key] >= c.num_rows else "short",
        ]
        for c in cells
    ]
    summary = f"coverage of the grid's {len(cells)} cells:"
    return _save(run, _markdown([*keys, "rows", "rejects", "status"], table), summary)


def _save(run: RunDir, table: str, summary: str) -> str:
    run.write_text(run.coverage.name, f"# Coverage\n\n{table}\n")
    return f"{summary}\n{table}\n  coverage table: {run.coverage}"


def _overrides(job: RunDir) -> dict:
    """The job's overrides as {key: value}, values parsed the way Hydra read them."""
    parsed = OverridesParser.create().parse_overrides(job.overrides())
    return {o.get_key_element(): o.value() for o in parsed}


def _status(job: RunDir) -> str:
    if job.status is None:
        return "did not finish"
    return job.status.get("error") or job.status.get("stopped_early") or "ok"


def _markdown(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
