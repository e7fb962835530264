"""How an evaluation reads: one summary line (the run's summary, a sweep job's), the command's report, and the
Δ cells of a sweep's coverage table. No number goes out alone: a delta always comes with its interval, the queries it
was measured on, the seeds, the verdict, and the setting of its set."""


def cell(text: str) -> str:
    """Text for a Markdown table cell: a set named with a `|` must not split its row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def signed(x: float) -> str:
    return f"{x:+.3f}"


def interval(entry: dict, low: str = "ci_low", high: str = "ci_high") -> str:
    return f"[{signed(entry[low])}, {signed(entry[high])}]"


def setting_tag(entry: dict) -> str:
    """Short, for a line or a column: the self-labelled and in-domain caveat travels with the number."""
    if entry.get("self_labelled"):
        return " (self-labelled, in-domain)"
    return " (in-domain)" if entry.get("setting", "").startswith("in-domain") else ""


def seeds_phrase(entry: dict) -> str:
    runs = entry.get("seeds") or []
    if len(runs) < 2:
        return "1 seed: no spread measured"
    spread = entry["seed_spread"]
    return f"{len(runs)} seeds: Δ {signed(spread['min'])} to {signed(spread['max'])}"


def set_phrase(entry: dict) -> str:
    return (
        f"{entry['metric']} on {entry['set']}{setting_tag(entry)} {entry['base']:.3f} -> {entry['tuned']:.3f} "
        f"(Δ {signed(entry['delta'])}, 95% CI {interval(entry)}, {entry['queries']} queries, {seeds_phrase(entry)}): "
        f"{entry['verdict']}"
    )


def summary_line(result: dict) -> str:
    sets = "; ".join(set_phrase(entry) for entry in result["sets"])
    return (
        f"evaluation of {result['base']} tuned on {result['train_rows']} rows "
        f"({result['decontaminated']} left out as copies of evaluation queries): {sets}"
    )


def describe(result: dict, path) -> str:
    """The command's report: the summary, then per set every metric, the decontamination, the training."""
    lines = [f"synthkit: {result['summary']}", f"  written: {path}"]
    for entry in result["sets"]:
        lines.append(
            f"  {entry['set']}: {entry['setting']}; {entry['queries']} queries, {entry['documents']} documents"
        )
        for metric, m in entry["metrics"].items():
            lines.append(
                f"    {metric}: base {m['base']:.3f}, tuned {m['tuned']:.3f}, Δ {signed(m['delta'])} "
                f"95% CI {interval(m)}: {m['verdict']}"
            )
    if result["decontaminated"]:
        shown = ", ".join(
            f"{e['query'][:60]!r} ({e['rule']}, {e['set']} {e['query_id']})" for e in result["decontaminated_examples"]
        )
        lines.append(f"  decontaminated: {result['decontaminated']} rows, e.g. {shown}")
    if result["held_out"]:
        lines.append(f"  held out of training for heldout: {result['held_out']} rows")
    if result["left_out_by_policy"]:
        lines.append(f"  left out by scoring.policy=drop: {result['left_out_by_policy']}")
    if result["unmined"]:
        k = (result.get("settings") or {}).get("hard_negatives")
        lines.append(f"  hard negatives: {result['unmined']} rows got fewer than {k} (others' positives fill in)")
    if result["untrainable"]:
        lines.append(f"  not trained on: {', '.join(f'{t} {n}' for t, n in result['untrainable'].items())}")
    plan = result["training"][0]
    lines.append(
        "  trained: "
        + ", ".join(f"{t} {n} rows ({plan['loss'][t]})" for t, n in plan["rows"].items())
        + f"; {plan['steps']} steps per seed, learning rate {plan['learning_rate']:g}"
    )
    unseen = {t: n for t, n in plan["rows_per_epoch"].items() if n < plan["rows"][t]}
    if unseen:
        seen = ", ".join(f"{n} of {plan['rows'][t]} {t}" for t, n in unseen.items())
        lines.append(
            f"  note: {plan['sampler']} sampling saw only {seen} rows per epoch (it ends an epoch when the smallest "
            "task type runs out): raise evaluate.epochs or evaluate.max_steps, or evaluate.sampler=proportional"
        )
    for block in (result.get("ablation") or {}).get("sets", []):
        lines.append(f"  without each task type, {block['metric']} on {block['set']} (what the type adds):")
        for row in block["left_out"]:
            lines.append(
                f"    without {row['left_out']}: {row['tuned']:.3f}; it adds {signed(row['adds'])} "
                f"95% CI {interval(row, 'adds_ci_low', 'adds_ci_high')}: {row['verdict']}"
            )
    return "\n".join(lines)


def delta_cell(entry: dict) -> str:
    """A sweep job's cell for one set: the delta, its interval and verdict."""
    mark = {"better": "↑", "worse": "↓"}.get(entry["verdict"], "=")
    return f"{mark} {signed(entry['delta'])} {interval(entry)}"


def delta_columns(evaluations: list) -> tuple:
    """(column headings, one row of cells per job) for a sweep's coverage table: per set named by any job, Δ of
    the headline metric with the job's rank among the jobs (1: the largest gain), so the cells that help and the
    ones that hurt stand out. `evaluations`: each job's evaluation.json (None where it has none)."""
    names = list(dict.fromkeys(e["set"] for ev in evaluations if ev for e in ev["sets"]))
    entries = [{e["set"]: e for e in ev["sets"]} if ev else {} for ev in evaluations]
    headings, cells = [], [[] for _ in evaluations]
    for name in names:
        found = [(i, by_set[name]) for i, by_set in enumerate(entries) if name in by_set]
        metric = found[0][1]["metric"]
        ranks = {i: rank for rank, (i, _) in enumerate(sorted(found, key=lambda f: -f[1]["delta"]), 1)}
        headings.append(cell(f"Δ {metric} {name}{setting_tag(found[0][1])} (rank)"))
        for i, by_set in enumerate(entries):
            cells[i].append(f"{delta_cell(by_set[name])} #{ranks[i]}" if name in by_set else "-")
    return headings, cells
