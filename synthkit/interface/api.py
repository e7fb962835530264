"""The Python API: a run from a notebook or a script, with the same overrides, cache, resume, limits
and errors as the command line (a UserError carries the one-line message).

    import synthkit
    run = synthkit.generate("task=text_retrieval", "llm=openai", "num_rows=100")
    dataset = run.dataset()          # a datasets.Dataset of the rows (pip install synthkit-e5[export])
    check = synthkit.generate("llm=openai", "num_rows=5000", "preview=5")   # 5 rows, the cost of 5000 projected
    check.preview.projected_cost_usd

It works where an event loop is already running (Jupyter): the run then gets a thread of its own."""

import os
from pathlib import Path
from typing import Optional

from synthkit.core.compose import compose
from synthkit.core.config import RUN_ID_ENV
from synthkit.core.errors import RunStoppedEarly, UserError


class Run:
    """A finished run: its ledger and notes (`result`), its dir, and its rows as a dataset. A preview run
    (`preview=N`) also holds `preview`, what it measured and the whole run's projected cost
    (synthkit.engine.preview.Projection: `projected_cost_usd`, `cost_per_row_usd`, `text` as the CLI prints it)."""

    def __init__(self, result, out_dir: Path, preview=None):
        self.result, self.out_dir, self.preview = result, out_dir, preview

    @property
    def data_path(self) -> Path:
        return self.result.data_path

    def dataset(self):
        """The rows as a datasets.Dataset."""
        try:
            import datasets
        except ImportError:
            from synthkit.core.extras import DISTRIBUTION

            raise UserError(f"dataset() needs the datasets library: pip install '{DISTRIBUTION}[export]'") from None
        return datasets.Dataset.from_json(str(self.data_path))

    def __repr__(self) -> str:
        rows = self.result.ledger.generation.tally  # brainstorm answers are not rows
        made = f"{rows.written} rows, {rows.rejected} rejected"
        if self.preview is None:
            return f"<synthkit run {self.out_dir}: {made}>"
        cost = self.preview.projected_cost_usd
        projected = f"~${cost:,.2f}" if cost is not None else "cost unknown"
        return f"<synthkit preview {self.out_dir}: {made}; {projected} for num_rows={self.preview.full_rows:,}>"


def generate(*overrides: str, config_dir: Optional[str] = None, card: Optional[bool] = None) -> Run:
    """Run synthkit with command-line overrides ("task=...", "num_rows=..."); returns the finished Run.
    With "preview=N", as on the command line, only N rows are made and `Run.preview` projects the cost of
    num_rows. Raises UserError (one line) for a mistake, and when the run stopped early."""
    from synthkit.engine.preview import preview_rows, project
    from synthkit.engine.run import generate as run

    os.environ.pop(RUN_ID_ENV, None)  # each call is a run of its own, with a new default output dir
    cfg = compose(*overrides, config_dir=config_dir)
    if cfg.dry_run:
        raise UserError("dry_run is for the command line; call synthkit.compose() to inspect a config")
    out_dir = Path(cfg.output_dir)
    os.environ.pop(RUN_ID_ENV, None)
    full_rows = preview_rows(cfg)
    with_card = cfg.card if card is None else card
    if with_card:
        from synthkit.results import plots

        plots.start()  # the card's plots are drawn in a process that imports matplotlib while the rows are made
    try:
        result = run(cfg, out_dir, overrides=overrides)
    except BaseException:
        if with_card:
            plots.discard()  # no card: the drawing process would wait in this (notebook's) process for ever
        raise
    if with_card:
        from synthkit.results.card import write_card

        write_card(result.run)
    finished = Run(result, out_dir, project(result, full_rows) if cfg.preview else None)
    if result.stopped_early:
        raise RunStoppedEarly(result.stopped_early, finished)
    return finished
