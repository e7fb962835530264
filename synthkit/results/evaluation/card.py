"""The dataset card's section on the evaluation (synthkit evaluate, evaluate=true): per set, base and tuned, the delta
with its interval and verdict, the setting (self-labelled, in-domain, out-of-domain), the decontamination, and a plot
of each metric's delta with its interval, so a reader sees at once whether the data helped a model, and where."""

from pathlib import Path

from synthkit.results.evaluation.report import cell, interval, seeds_phrase, signed
from synthkit.results.rundir import RunDir

PLOT = "evaluation"


def evaluation_section(run: RunDir) -> list:
    """Card lines from the run's evaluation.json; empty when the run was not evaluated."""
    result = run.evaluation()
    if not result or not result.get("sets"):
        return []
    lines = [
        "## Does the data help?",
        "",
        f"`{result['base']}` was fine-tuned on {result['train_rows']} rows of this dataset (the rows `synthkit "
        f"export` gives) with sentence-transformers, and compared with itself untuned on each evaluation set. "
        "Δ is tuned minus base; the interval is a paired bootstrap 95 % interval over queries; an interval that "
        "spans 0 is no measurable change.",
        "",
        "| set | setting | queries | metric | base | tuned | Δ (95% CI) | seeds | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in result["sets"]:
        for metric, m in entry["metrics"].items():
            lines.append(
                f"| {cell(entry['set'])} | {entry['setting'].split(':')[0]} | {entry['queries']} | {metric} | "
                f"{m['base']:.3f} | {m['tuned']:.3f} | {signed(m['delta'])} {interval(m)} | "
                f"{seeds_phrase(m)} | {m['verdict']} |"
            )
    lines.append("")
    lines += [f"- **{e['set']}**: {e['setting']}." for e in result["sets"]]
    lines += [
        f"- Decontamination: {result['decontaminated']} training rows copied an evaluation query and were left out"
        + (":" if result["decontaminated"] else "."),
        *(
            f"  - {e['query'][:100]!r} ({e['rule']}; {e['set']} query {e['query_id']})"
            for e in result["decontaminated_examples"]
        ),
        "",
    ]
    lines += _ablation_lines(result.get("ablation"))
    plot = _plot(result, run)
    return lines + [f"![evaluation]({plot.relative_to(run.path).as_posix()})", ""]


def _ablation_lines(ablation) -> list:
    if not ablation:
        return []
    if not ablation.get("sets"):
        return [f"Leave-one-task-type-out: {ablation.get('note', 'not run')}.", ""]
    lines = [
        "### Without each task type",
        "",
        "| set | left out | tuned without it | what it adds (95% CI) | verdict |",
    ]
    lines.append("|---|---|---|---|---|")
    for block in ablation["sets"]:
        for row in block["left_out"]:
            lines.append(
                f"| {cell(block['set'])} | {row['left_out']} | {row['tuned']:.3f} | {signed(row['adds'])} "
                f"{interval(row, 'adds_ci_low', 'adds_ci_high')} | {row['verdict']} |"
            )
    return lines + [""]


def _plot(result: dict, run: RunDir) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = result["sets"]
    metrics = list(sets[0]["metrics"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.6 + 0.45 * len(sets)), squeeze=False)
    fig.subplots_adjust(left=0.25, right=0.98, bottom=0.2, top=0.85, wspace=0.5)
    for ax, metric in zip(axes[0], metrics):
        figures = [entry["metrics"][metric] for entry in sets]
        y = list(range(len(sets)))
        deltas = [f["delta"] for f in figures]
        errors = [[f["delta"] - f["ci_low"] for f in figures], [f["ci_high"] - f["delta"] for f in figures]]
        colours = [{"better": "tab:green", "worse": "tab:red"}.get(f["verdict"], "tab:gray") for f in figures]
        ax.barh(y, deltas, xerr=errors, color=colours, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(y, [entry["set"][-28:] for entry in sets], fontsize=7)
        ax.set_title(f"Δ {metric} (95% CI)", fontsize=9)
    run.plots.mkdir(exist_ok=True)
    path = run.plot(PLOT)
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path
