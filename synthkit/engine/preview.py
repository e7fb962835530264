"""`preview=N`: a run of N real rows at full fidelity, shown readably (one row per task type and cell), with
the cost per row it measured and what the whole run would cost at that rate."""

import textwrap

from synthkit.core.record import read_rows

SHOWN_CHARS = 400  # of each output field
MAX_SHOWN = 12  # rows printed at most


def preview_report(result, full_rows: int) -> str:
    seen, shown = set(), []
    for row in read_rows(result.data_path):
        if (row.task_type, row.cell) not in seen and len(shown) < MAX_SHOWN:
            seen.add((row.task_type, row.cell))
            shown.append(row)
    totals = result.ledger.totals()
    written = result.ledger.generation.tally.written
    lines = [
        f"preview: {written} rows of {result.label} with {result.model}"
        f"{' (PLACEHOLDER text: llm=mock)' if result.placeholder else ''}",
        "",
    ]
    for row in shown:
        where = f" [{row.cell}]" if row.cell else ""
        lines.append(
            f"--- {row.task_type}{where}, row {row.row}: " + ", ".join(f"{k}={v}" for k, v in row.attributes.items())
        )
        for key, value in row.outputs.items():
            text = " ".join(str(value).split())
            text = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + " ..."
            lines += textwrap.wrap(f"{key}: {text}", width=110, initial_indent="  ", subsequent_indent="      ")
        lines.append("")
    if written:
        tokens = (totals.prompt_tokens + totals.completion_tokens) / written
        lines.append(
            f"measured per row: {tokens:,.0f} tokens, {totals.requests / written:.2f} requests "
            f"(brainstorm and re-asks included)"
        )
        if result.ledger.priced:
            per_row = totals.cost_usd / written
            lines.append(f"cost: ${per_row:.6f} per row -> ~${per_row * full_rows:,.2f} for num_rows={full_rows:,}")
        else:
            lines.append(
                f"cost: unknown (no price for {result.model}; set llm.input_cost_per_mtok and llm.output_cost_per_mtok)"
            )
    lines.append(f"rows: {result.data_path}")
    return "\n".join(lines)
