"""Scoring a finished run (`synthkit score RUN`, and `score=true` at the end of a run): its rows judged by the
configured reference embedder (synthkit.quality.score), written as scores.jsonl and scores_summary.json; and the
readers of what that wrote (the rows `scoring.policy=drop` leaves out of exports, the figures of the card and of a
sweep's coverage table). numpy and the embedder libraries load only when rows are scored."""

from collections import Counter

from synthkit.core.config import ScoreFlag
from synthkit.core.errors import UserError
from synthkit.results.rundir import RunDir

OVERRIDABLE = ("embedder", "scoring")  # the config a scoring takes; the rest belongs to generation


def compose_scoring(overrides: list, command: str):
    """The config of a scoring (or mining) from embedder and scoring overrides, its settings checked."""
    from synthkit.core.compose import compose_part

    refusal = (
        "is not an embedder or scoring setting; "
        "give e.g. embedder=sentence_transformers embedder.model=DIR scoring.policy=drop"
    )
    return compose_part(overrides, command, OVERRIDABLE, refusal)


def score(run: RunDir, embedder_cfg, scoring) -> dict:
    """Score the run's rows, write scores.jsonl and scores_summary.json (each whole or not at all); the summary."""
    from synthkit.quality.embedder import load
    from synthkit.quality.score import export_specs, records, score_rows, summary

    exports = export_specs(run.task_configs())
    embedder = load(embedder_cfg)
    scores = score_rows(run.raw_rows(), exports, embedder, scoring)
    result = {
        **summary(scores, scoring),
        "embedder": {"backend": embedder_cfg.backend, "model": embedder_cfg.model},
        "policy": str(getattr(scoring.policy, "value", scoring.policy)),
        "drop": [str(getattr(f, "value", f)) for f in scoring.drop],
    }
    if not result["rows"]:
        run.drop_scores()
        raise UserError(
            f"{run.data} holds no rows to score: their task types have no export block naming a query "
            "and a positive (a brainstorm run?)"
        )
    run.write_scores(records(scores), result)
    return result


def after_run(run: RunDir, embedder_cfg, scoring) -> str:
    """score=true: the run's summary line; the rows stay whatever the scoring says."""
    if not run.data.is_file():
        return "scores: no rows to score"
    try:
        result = score(run, embedder_cfg, scoring)
    except UserError as e:
        raise UserError(f"{e} (the rows are kept: score them with synthkit score {run.path})") from None
    return report(result, run).split("\n", 1)[0].removeprefix("synthkit: ")


def report(result: dict, run: RunDir) -> str:
    embedder = result.get("embedder") or {}
    lines = [
        f"synthkit: scored {result['rows']} rows with {embedder.get('backend')} {embedder.get('model')}: "
        f"{run.scores}"
        + (f" ({result['skipped']} rows without query and positive skipped)" if result["skipped"] else "")
    ]
    for task_type, figures in result["task_types"].items():
        flags = ", ".join(
            f"{flag} {f['count']}" + (f" ({f['share']:.1%})" if f["share"] is not None else "")
            for flag, f in figures["flags"].items()
        )
        lines.append(f"  {task_type}: {figures['rows']} rows; {flags}")
    if result.get("policy") == "drop":
        keys, why = left_out(run, result["rows"] + result["skipped"])
        lines.append(f"  scoring.policy=drop: exports leave out {len(keys)} rows ({_why(why)})")
    return "\n".join(lines)


def row_key(record) -> tuple:
    """A row's identity in scores.jsonl (a dict) or data.jsonl (a synthkit Row) alike."""
    if isinstance(record, dict):
        return record.get("job") or "", record.get("cell") or "", record["row"], record["task_type"]
    return record.tags.get("job") or "", record.cell, record.row, record.task_type


def left_out(run: RunDir, data_rows: int, policy=None) -> tuple:
    """(keys of the rows scoring.policy=drop leaves out of exports, their flags counted), empty under
    policy flag. `policy` overrides the one the run was scored with (export --policy). Scores of fewer or more rows
    than data.jsonl holds now are refused: they judge other rows."""
    summary = run.scores_summary()
    if policy == "drop" and not (summary and run.scores.is_file()):
        raise UserError(
            f"--policy drop leaves out the rows scoring flagged, and {run.path} is not scored: "
            f"run synthkit score {run.path} first"
        )
    if not summary or (policy or summary.get("policy")) != "drop":
        return set(), Counter()
    if summary["rows"] + summary["skipped"] != data_rows:
        raise UserError(
            f"{run.scores} judges {summary['rows'] + summary['skipped']} rows but "
            f"{run.data.name} holds {data_rows}: run synthkit score {run.path} again"
        )
    drop, keys, why = set(summary.get("drop") or []), set(), Counter()
    for record in run.score_records():
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
    for flag in ScoreFlag:
        count = base = 0
        for figures in summary["task_types"].values():
            count += figures["flags"][flag.value]["count"]
            base += figures["with_negative"] if flag.negative else figures["rows"]
        shares[flag.value] = f"{count / base:.1%}" if base else "-"
    return shares
