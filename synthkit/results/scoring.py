"""`synthkit score RUN [embedder=... embedder.model=... scoring.*=...]`, and `score=true` at the end of a run:
judge a run's rows with the configured reference embedder, writing scores.jsonl and scores_summary.json
beside data.jsonl; and the readers of what that wrote (the rows `scoring.policy=drop` leaves out of
exports, the figures of the card and of a sweep's coverage table). numpy and the embedder libraries
load only when rows are scored."""

import argparse
import json
from collections import Counter
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

SCORES_FILE = "scores.jsonl"
SUMMARY_FILE = "scores_summary.json"
OVERRIDABLE = ("embedder", "scoring")  # the config a scoring takes; the rest belongs to generation
NEGATIVE_FLAGS = ("false_negative", "easy_negative")  # shares of the rows with a negative


def main(argv: list) -> None:
    parser = _Parser(prog="synthkit score", description="Judge a run's rows with a reference embedder.")
    parser.add_argument("source", help="a run's (or merged sweep's) output dir, or its data.jsonl")
    parser.add_argument("overrides", nargs="*", help="embedder=..., embedder.model=..., scoring.policy=drop, ...")
    args = parser.parse_args(argv)
    data = data_file(args.source)
    cfg = compose_scoring(args.overrides, "score")
    print(report(score_dir(data, cfg.embedder, cfg.scoring), data.parent))


def compose_scoring(overrides: list, command: str):
    """The config of a scoring (or mining) from embedder and scoring overrides, its settings checked."""
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.split(".", 1)[0] not in OVERRIDABLE or "=" not in override:
            raise UserError(
                f"{command}: {override} is not an embedder or scoring setting; "
                "give e.g. embedder=sentence_transformers embedder.model=DIR scoring.policy=drop"
            )
    from synthkit.core.config import check_bounds
    from synthkit.interface.api import compose

    cfg = compose(*overrides)
    check_bounds(cfg)
    return cfg


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"score: {message}; see synthkit score --help")


def data_file(source) -> Path:
    path = Path(source)
    data = path / "data.jsonl" if path.is_dir() else path
    if not data.is_file():
        raise UserError(f"{source} holds no data.jsonl: give a run's output dir or its data.jsonl")
    return data


def load(embedder_cfg):
    """The configured embedder, or a one-line error naming embedder.model and the extra to install."""
    try:
        from synthkit.quality.embedder import BACKENDS, load_embedder
    except ImportError as e:  # numpy: the embedders' own dependency, absent from a bare install
        raise UserError(f"scoring needs {e.name}: {pip_install('quality')}") from None
    try:
        return load_embedder(
            embedder_cfg.backend,
            embedder_cfg.model,
            embedder_cfg.device,
            embedder_cfg.batch_size,
            embedder_cfg.query_prompt,
            embedder_cfg.document_prompt,
        )
    except UserError as e:
        extra = BACKENDS.get(embedder_cfg.backend)
        # The library's messages name the package by its import name; the install line needs its PyPI name.
        message = str(e).replace(f"pip install 'synthkit[{extra}]'", pip_install(extra)) if extra else str(e)
        raise UserError(message) from None


def score_dir(data: Path, embedder_cfg, scoring) -> dict:
    """Score data.jsonl, write scores.jsonl and scores_summary.json beside it; the summary."""
    from synthkit.quality.score import Thresholds, export_specs, score_run
    from synthkit.results.export import _task_configs

    exports = export_specs(_task_configs(data.parent))
    embedder = load(embedder_cfg)
    thresholds = Thresholds(
        scoring.false_negative_ratio, scoring.top_k, scoring.near_duplicate, scoring.batch_size, scoring.easy_margin
    )
    about = {
        "embedder": {"backend": embedder_cfg.backend, "model": embedder_cfg.model},
        "policy": str(getattr(scoring.policy, "value", scoring.policy)),
        "drop": [str(getattr(f, "value", f)) for f in scoring.drop],
    }
    _, result = score_run(data, exports, embedder, thresholds, about)
    if not result["rows"]:
        for name in (SCORES_FILE, SUMMARY_FILE):
            (data.parent / name).unlink(missing_ok=True)
        raise UserError(
            f"{data} holds no rows to score: their task types have no export block naming a query "
            "and a positive (a brainstorm run?)"
        )
    return result


def after_run(cfg, out_dir: Path) -> str:
    """score=true: the run's summary line; the rows stay whatever the scoring says."""
    data = Path(out_dir) / "data.jsonl"
    if not data.is_file():
        return "scores: no rows to score"
    try:
        result = score_dir(data, cfg.embedder, cfg.scoring)
    except UserError as e:
        raise UserError(f"{e} (the rows are kept: score them with synthkit score {out_dir})") from None
    return report(result, data.parent).split("\n", 1)[0].removeprefix("synthkit: ")


def report(result: dict, run_dir: Path) -> str:
    embedder = result.get("embedder") or {}
    lines = [
        f"synthkit: scored {result['rows']} rows with {embedder.get('backend')} {embedder.get('model')}: "
        f"{run_dir / SCORES_FILE}"
        + (f" ({result['skipped']} rows without query and positive skipped)" if result["skipped"] else "")
    ]
    for task_type, figures in result["task_types"].items():
        flags = ", ".join(
            f"{flag} {f['count']}" + (f" ({f['share']:.1%})" if f["share"] is not None else "")
            for flag, f in figures["flags"].items()
        )
        lines.append(f"  {task_type}: {figures['rows']} rows; {flags}")
    if result.get("policy") == "drop":
        keys, why = left_out(run_dir, result["rows"] + result["skipped"])
        lines.append(f"  scoring.policy=drop: exports leave out {len(keys)} rows ({_why(why)})")
    return "\n".join(lines)


def read_summary(run_dir: Path):
    try:
        return json.loads((Path(run_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def row_key(record) -> tuple:
    """A row's identity in scores.jsonl (a dict) or data.jsonl (a synthkit Row) alike."""
    if isinstance(record, dict):
        return record.get("job") or "", record.get("cell") or "", record["row"], record["task_type"]
    return record.tags.get("job") or "", record.cell, record.row, record.task_type


def left_out(run_dir: Path, data_rows: int) -> tuple:
    """(keys of the rows scoring.policy=drop leaves out of exports, their flags counted), empty under
    policy flag. Scores of fewer or more rows than data.jsonl holds now are refused: they judge other rows."""
    summary = read_summary(run_dir)
    if not summary or summary.get("policy") != "drop":
        return set(), Counter()
    if summary["rows"] + summary["skipped"] != data_rows:
        raise UserError(
            f"{Path(run_dir) / SCORES_FILE} judges {summary['rows'] + summary['skipped']} rows but "
            f"data.jsonl holds {data_rows}: run synthkit score {run_dir} again"
        )
    drop, keys, why = set(summary.get("drop") or []), set(), Counter()
    with open(Path(run_dir) / SCORES_FILE, encoding="utf-8") as f:
        for line in filter(str.strip, f):
            record = json.loads(line)
            flags = [flag for flag in record["flags"] if flag in drop]
            if flags:
                keys.add(row_key(record))
                why.update(flags)
    return keys, why


def _why(why: Counter) -> str:
    return ", ".join(f"{flag} {n}" for flag, n in why.most_common()) or "none flagged"


def describe_left_out(why: Counter, count: int) -> str:
    return f"{count} rows flagged {_why(why)} (a row may carry several flags)"


def flag_shares(summary: dict) -> dict:
    """Each flag's share over all task types of a summary (of the rows with a negative, for the negative
    flags), for a sweep's coverage table."""
    shares = {}
    for flag in ("false_negative", "easy_negative", "inconsistent", "near_duplicate"):
        count = base = 0
        for figures in summary["task_types"].values():
            count += figures["flags"][flag]["count"]
            base += figures["with_negative"] if flag in NEGATIVE_FLAGS else figures["rows"]
        shares[flag] = f"{count / base:.1%}" if base else "-"
    return shares
