"""Sweeps: one dataset and one coverage table from many cells, whether the cells were the jobs of a
Hydra multirun (each in its own subfolder of the sweep dir) or an in-process grid (one run)."""

import json
from collections import Counter
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from synthkit.quality.dedup import Deduplicator
from synthkit.outputs.files import DATA_FILE, REJECTS_FILE

STATUS_FILE = "synthkit-status.json"  # how a job ended: rows, rejects, and why it stopped early
COVERAGE_FILE = "coverage.md"
failed_jobs: list = []  # set in the launching process by MergeSweep, read by the CLI for its exit status


def write_status(out_dir: Path, stats=None, error: str = "") -> None:
    status = {"error": error} if error else {
        "written": stats.written, "rejected": stats.rejected, "failed": stats.failed,
        "stopped_early": stats.stopped_early or ""}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STATUS_FILE).write_text(json.dumps(status), encoding="utf-8")


class MergeSweep(Callback):
    """Registered in conf/config.yaml: after a multirun, merge the jobs' rows and report coverage."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            print(merge_sweep(sweep_dir), flush=True)
            if config.get("card"):
                from synthkit.outputs.card import write_card

                print(f"  dataset card: {write_card(sweep_dir)}", flush=True)


def merge_sweep(sweep_dir: Path) -> str:
    jobs = sorted((d for d in sweep_dir.iterdir() if (d / ".hydra" / "overrides.yaml").exists()),
                  key=lambda d: (len(d.name), d.name))
    overrides = {d: _overrides(d) for d in jobs}
    # The sweep's coordinates are the overrides whose values differ from job to job.
    keys = [k for k in dict.fromkeys(k for o in overrides.values() for k in o)
            if len({o.get(k) for o in overrides.values()}) > 1]
    table, dedup, dropped = [], Deduplicator(), 0
    with open(sweep_dir / DATA_FILE, "w", encoding="utf-8") as merged:
        for job in jobs:
            coordinates = {k: overrides[job].get(k) for k in keys}
            count = 0
            for row in _read(job / DATA_FILE):
                count += 1
                if dedup.add(f"{job.name}:{row.get('cell', '')}:{row['row']}", _text(row)) is not None:
                    dropped += 1  # the same example made by another job
                    continue
                merged.write(json.dumps({**row, "sweep": coordinates, "job": job.name}, ensure_ascii=False) + "\n")
            status = _status(job)
            if status != "ok":
                failed_jobs.append(job.name)
            rejects = sum(1 for _ in _read(job / REJECTS_FILE))
            table.append([job.name, *(str(coordinates[k]) for k in keys), count, rejects, status])
    total = sum(r[-3] for r in table) - dropped
    text = _markdown(["job", *keys, "rows", "rejects", "status"], table)
    summary = (f"synthkit: sweep of {len(jobs)} jobs: {total} rows merged into {sweep_dir / DATA_FILE}"
               f" ({dropped} duplicates dropped)")
    return _save(sweep_dir, text, summary)


def grid_coverage(out_dir: Path, cells: list) -> str:
    """The coverage table of an in-process grid run: rows and rejects per cell."""
    rows = Counter(r.get("cell", "") for r in _read(out_dir / DATA_FILE))
    rejects = Counter(r.get("cell", "") for r in _read(out_dir / REJECTS_FILE))
    keys = list(cells[0].extra["grid"]) if cells else []
    table = [[*(str(c.extra["grid"][k]) for k in keys), rows[c.key], rejects[c.key],
              "ok" if rows[c.key] >= c.num_rows else "short"] for c in cells]
    summary = f"coverage of the grid's {len(cells)} cells:"
    return _save(out_dir, _markdown([*keys, "rows", "rejects", "status"], table), summary)


def _save(directory: Path, table: str, summary: str) -> str:
    (directory / COVERAGE_FILE).write_text(f"# Coverage\n\n{table}\n", encoding="utf-8")
    return f"{summary}\n{table}\n  coverage table: {directory / COVERAGE_FILE}"


def _text(row: dict) -> str:
    """A row's generated text: its string fields other than the bookkeeping ones."""
    skip = {"cell", "task_type", "model_name", "job"}
    return "\n".join(v for k, v in row.items() if isinstance(v, str) and k not in skip)


def _overrides(job: Path) -> dict:
    """The job's overrides as {key: value}, values parsed the way Hydra read them."""
    parsed = OverridesParser.create().parse_overrides([str(o) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml")])
    return {o.get_key_element(): o.value() for o in parsed}


def _status(job: Path) -> str:
    try:
        status = json.loads((job / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "did not finish"
    return status.get("error") or status.get("stopped_early") or "ok"


def _read(path: Path):
    """The rows of a JSONL file, one at a time."""
    if path.exists():
        with open(path, encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())


def _markdown(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
