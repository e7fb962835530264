"""`preview=N`: a run of N real rows at full fidelity, shown readably (one row per task type and cell), with
the cost per row it measured and what the whole run would cost at that rate. Answers replayed from the response
cache count at what they cost when they were paid: a preview run again projects the same cost, not $0."""

import textwrap
from dataclasses import dataclass
from typing import Optional

from synthkit.core.record import read_rows
from synthkit.core.text import printable

SHOWN_CHARS = 400  # of each output field
MAX_SHOWN = 12  # rows printed at most


@dataclass(frozen=True)
class Projection:
    """What a preview measured, and the whole run's cost at that rate."""

    rows: int  # rows the preview wrote
    full_rows: int  # the num_rows it projects to
    tokens_per_row: float
    requests_per_row: float  # requests sent (answers from the cache are not)
    cost_per_row_usd: Optional[float]  # paid and replayed answers alike; None: the model has no known price
    text: str  # the report the command line prints

    @property
    def projected_cost_usd(self) -> Optional[float]:
        return None if self.cost_per_row_usd is None else self.cost_per_row_usd * self.full_rows


def preview_rows(cfg) -> int:
    """Turn a config with `preview=N` into the preview's run (its first N rows; never more than num_rows);
    returns num_rows, the rows the projection is for. The command line and the Python API both start here."""
    full_rows = cfg.num_rows
    if cfg.preview:
        cfg.num_rows = min(cfg.preview, full_rows)
    return full_rows


def project(result, full_rows: int) -> Projection:
    totals = result.ledger.totals()
    written = result.ledger.generation.tally.written
    per = 1 / written if written else 0.0
    cost = (totals.cost_usd + totals.cached_cost_usd) * per if result.ledger.priced else None
    tokens, requests = (totals.prompt_tokens + totals.completion_tokens) * per, totals.requests * per
    return Projection(written, full_rows, tokens, requests, cost, _report(result, written, full_rows, tokens, cost))


def preview_report(result, full_rows: int) -> str:
    return project(result, full_rows).text


def _report(result, written: int, full_rows: int, tokens: float, per_row: Optional[float]) -> str:
    seen, shown = set(), []
    for row in read_rows(result.data_path):
        if (row.task_type, row.cell) not in seen and len(shown) < MAX_SHOWN:
            seen.add((row.task_type, row.cell))
            shown.append(row)
    totals = result.ledger.totals()
    lines = [
        f"preview: {written} rows of {result.label} with {result.model}"
        f"{' (PLACEHOLDER text: llm=mock)' if result.placeholder else ''}",
        "",
    ]
    for row in shown:
        where = f" [{row.cell}]" if row.cell else ""
        drawn = ", ".join(f"{k}={printable(v, SHOWN_CHARS)}" for k, v in row.attributes.items())
        lines.append(f"--- {row.task_type}{where}, row {row.row}: {drawn}")
        for key, value in row.outputs.items():  # a model's text: its escape codes must not drive the terminal
            text = printable(value, SHOWN_CHARS)
            lines += textwrap.wrap(f"{key}: {text}", width=110, initial_indent="  ", subsequent_indent="      ")
        lines.append("")
    if written:
        cached = f"; {totals.cached} answers from the cache, counted at their price" if totals.cached else ""
        lines.append(
            f"measured per row: {tokens:,.0f} tokens, {totals.requests / written:.2f} requests "
            f"(brainstorm and re-asks included{cached})"
        )
        if per_row is not None:
            lines.append(f"cost: ${per_row:.6f} per row -> ~${per_row * full_rows:,.2f} for num_rows={full_rows:,}")
        else:
            lines.append(
                f"cost: unknown (no price for {result.model}; set llm.input_cost_per_mtok and llm.output_cost_per_mtok)"
            )
    lines.append(f"rows: {result.data_path}")
    return "\n".join(lines)
