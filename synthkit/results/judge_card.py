"""The dataset card's section on the LLM judge (judge=true): per task type, how the judge scored the rows that
were written and the answers it rejected (the last score of a rejected row), with a bar plot of the scores, so a
reader sees at once whether the data was vouched for and how strictly."""

from collections import Counter
from pathlib import Path

from synthkit.quality.llm_judge import SCALE
from synthkit.results.rundir import RunDir


def judge_section(written: Counter, rejected: Counter, run: RunDir) -> list:
    """`written` / `rejected`: Counter of (task type, score). Empty when nothing was judged."""
    if not written and not rejected:
        return []
    scores = range(SCALE[0], SCALE[1] + 1)
    table = []
    for task in sorted({t for t, _ in written} | {t for t, _ in rejected}):
        kept = [written[task, s] for s in scores]
        rated = sum(kept)
        mean = sum(s * n for s, n in zip(scores, kept)) / rated if rated else None
        table.append(
            [task, rated, *kept, sum(n for (t, _), n in rejected.items() if t == task), f"{mean:.2f}" if mean else "-"]
        )
    header = ["task type", "rows rated", *(f"score {s}" for s in scores), "rejected by the judge", "mean score"]
    lines = [
        "## LLM judge",
        "",
        "Each row was rated 1-5 by an LLM against its task's rubric (`judge=true`); rows under `judge.min_score` "
        "were asked again with the judge's reason, then rejected.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in table),
        "",
    ]
    plot = _plot(written, rejected, run)
    return lines + [f"![judge scores]({plot.relative_to(run.path).as_posix()})", ""]


def _plot(written: Counter, rejected: Counter, run: RunDir) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for t, _ in written} | {t for t, _ in rejected})
    scores = list(range(SCALE[0], SCALE[1] + 1))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 2.8), squeeze=False)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.18, top=0.86, wspace=0.4)
    for ax, task in zip(axes[0], tasks):
        kept = [written[task, s] for s in scores]
        dropped = [rejected[task, s] for s in scores]
        ax.bar(scores, kept, label="written")
        ax.bar(scores, dropped, bottom=kept, label="rejected", color="tab:red")
        ax.set_xticks(scores)
        ax.set_title(f"{task}: judge scores", fontsize=9)
        ax.legend(fontsize=7)
    run.plots.mkdir(exist_ok=True)
    path = run.plot("judge_scores")
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path
