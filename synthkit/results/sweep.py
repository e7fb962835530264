"""Sweeps: one dataset and one coverage table from many cells, whether the cells were the jobs of a
Hydra multirun (each in its own subfolder of the sweep dir) or an in-process grid (one run)."""

import json
import os
from collections import Counter
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from synthkit.core.record import read_rows
from synthkit.core.secrets import redact
from synthkit.quality.dedup import Deduplicator
from synthkit.results.rundir import DATA_FILE, REJECTS_FILE, STATUS_FILE

COVERAGE_FILE = "coverage.md"
# The CLI names a file here before a multirun; the callback writes the jobs that failed into it.
REPORT_ENV = "SYNTHKIT_SWEEP_REPORT"


def precheck(argv: list) -> set:
    """Before a multirun: refuse once what would fail every job alike (a missing key), rather than once per
    job. Returns the keys the sweep varies."""
    from synthkit.calls.providers import check_key
    from synthkit.calls.stores import check_store
    from synthkit.interface.api import compose

    fixed, swept, config_dir, skip = [], set(), None, False
    parser = OverridesParser.create()
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--config-dir", "-cd"):
            config_dir, skip = argv[i + 1] if i + 1 < len(argv) else None, True
        elif arg.startswith("--config-dir="):
            config_dir = arg.split("=", 1)[1]
        elif arg.startswith("-") or "=" not in arg or arg.startswith("hydra"):
            skip = arg in ("--config-name", "-cn", "--config-path", "-cp")
        else:
            override = parser.parse_override(arg)
            (swept.add(override.get_key_element()) if override.is_sweep_override() else fixed.append(arg))
    swept = {key.lstrip("+~") for key in swept}
    cfg = compose(*fixed, config_dir=config_dir)
    if not any(key == "llm" or key.startswith("llm.api_key_env") for key in swept):
        check_key(cfg.llm)
    if not swept & {"store", "store_password_env"}:
        check_store(cfg)
    return swept


def record_job_error(out_dir: Path, error: str, overrides: list) -> None:
    """A sweep job refused before it ran: say so in its dir (Hydra made it), for the coverage table."""
    if out_dir.is_dir() and not (out_dir / DATA_FILE).exists():
        (out_dir / ".hydra").mkdir(exist_ok=True)
        (out_dir / ".hydra" / "overrides.yaml").write_text(redact(OmegaConf.to_yaml(list(overrides))), encoding="utf-8")
        (out_dir / STATUS_FILE).write_text(json.dumps({"error": redact(error)}), encoding="utf-8")


class MergeSweep(Callback):
    """Registered in conf/config.yaml: after a multirun, merge the jobs' rows and report coverage."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            summary, failed = merge_sweep(sweep_dir)
            print(summary, flush=True)
            report = os.environ.get(REPORT_ENV)
            if report:
                Path(report).write_text(json.dumps(failed), encoding="utf-8")
            if config.get("card"):
                from synthkit.results.card import write_card

                print(f"  dataset card: {write_card(sweep_dir)}", flush=True)


def merge_sweep(sweep_dir: Path) -> tuple:
    """(the summary with its coverage table, the names of the jobs that did not finish cleanly)"""
    jobs = sorted(
        (d for d in sweep_dir.iterdir() if (d / ".hydra" / "overrides.yaml").exists()),
        key=lambda d: (len(d.name), d.name),
    )
    overrides = {d: _overrides(d) for d in jobs}
    # The sweep's coordinates are the overrides whose values differ from job to job.
    keys = [
        k
        for k in dict.fromkeys(k for o in overrides.values() for k in o)
        if len({o.get(k) for o in overrides.values()}) > 1
    ]
    table, dedup, dropped, failed = [], Deduplicator(), 0, []
    with open(sweep_dir / DATA_FILE, "w", encoding="utf-8") as merged:
        for job in jobs:
            coordinates = {k: overrides[job].get(k) for k in keys}
            count = 0
            for row in read_rows(job / DATA_FILE):
                count += 1
                row.tags.update(sweep=coordinates, job=job.name)
                if dedup.add(row.key, row.text()) is not None:
                    dropped += 1  # the same example made by another job
                    continue
                merged.write(row.to_line())
            status = _status(job)
            if status != "ok":
                failed.append(job.name)
            rejects = sum(1 for _ in read_rows(job / REJECTS_FILE))
            table.append([job.name, *(str(coordinates[k]) for k in keys), count, rejects, status])
    total = sum(r[-3] for r in table) - dropped
    header = ["job", *keys, "rows", "rejects", "status", *_score_columns(jobs, table)]
    text = _markdown(header, table)
    summary = (
        f"synthkit: sweep of {len(jobs)} jobs: {total} rows merged into {sweep_dir / DATA_FILE}"
        f" ({dropped} duplicates dropped)"
    )
    return _save(sweep_dir, text, summary), failed


def _score_columns(jobs: list, table: list) -> list:
    """Flag shares of the jobs that were scored (synthkit score, score=true), appended to their table rows."""
    from synthkit.results.scoring import flag_shares, read_summary

    summaries = [read_summary(job) for job in jobs]
    if not any(summaries):
        return []
    for row, summary in zip(table, summaries):
        row += list(flag_shares(summary).values()) if summary else ["-"] * 4
    return ["false negatives", "easy negatives", "inconsistent", "near duplicates"]


def grid_coverage(out_dir: Path, cells: list) -> str:
    """The coverage table of an in-process grid run: rows and rejects per cell."""
    rows = Counter(r.cell for r in read_rows(out_dir / DATA_FILE))
    rejects = Counter(r.cell for r in read_rows(out_dir / REJECTS_FILE))
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
    return _save(out_dir, _markdown([*keys, "rows", "rejects", "status"], table), summary)


def _save(directory: Path, table: str, summary: str) -> str:
    (directory / COVERAGE_FILE).write_text(redact(f"# Coverage\n\n{table}\n"), encoding="utf-8")
    return f"{summary}\n{table}\n  coverage table: {directory / COVERAGE_FILE}"


def _overrides(job: Path) -> dict:
    """The job's overrides as {key: value}, values parsed the way Hydra read them."""
    parsed = OverridesParser.create().parse_overrides(
        [str(o) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml")]
    )
    return {o.get_key_element(): o.value() for o in parsed}


def _status(job: Path) -> str:
    try:
        status = json.loads((job / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "did not finish"
    return status.get("error") or status.get("stopped_early") or "ok"


def _markdown(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
