"""The Python API: a run from a notebook or a script, with the same overrides, cache, resume, limits
and errors as the command line (a UserError carries the one-line message).

    import synthkit
    run = synthkit.generate(task="text_retrieval", llm="openai", num_rows=100)   # or the CLI's "num_rows=100"
    run.dataset()                    # the rows, a datasets.Dataset (pip install synthkit-embed[export])
    run.rejects(), run.scores()      # rejected rows; the reference embedder's scores (after synthkit score)
    run.export(to="sentence-transformers")
    check = synthkit.preview(llm="openai", num_rows=5000, rows=5)   # 5 rows made, the cost of 5000 projected
    check.to_pandas(), check.preview.projected_cost_usd
    synthkit.open_run("outputs/...")                                  # a finished run, from its dir

It works where an event loop is already running (Jupyter): the run then gets a thread of its own. A run reads its
dir only through synthkit.results.rundir.RunDir."""

import os
from pathlib import Path
from typing import Optional

from synthkit.core.compose import compose as compose_overrides
from synthkit.core.config import RUN_ID_ENV
from synthkit.core.errors import RunStoppedEarly, UserError
from synthkit.core.extras import pip_install
from synthkit.results.rundir import RunDir

ROW_FILES = ("data", "rejects", "brainstorm")  # what dataset() reads besides exports, as the card names them


class Run:
    """A run's dir (`path`) and what it made: its rows as datasets, its scores, exports and card. A run made in this
    process also holds `result` (its ledger and notes); a preview run (`preview=N`) holds `preview`, what it
    measured and the whole run's projected cost (synthkit.engine.preview.Projection: `projected_cost_usd`,
    `cost_per_row_usd`, `text` as the command line prints it)."""

    def __init__(self, result, path, preview=None):
        self.result, self.path, self.preview = result, Path(path), preview

    out_dir = property(lambda self: self.path)  # the name earlier releases used
    run_dir = property(lambda self: RunDir(self.path))

    @property
    def data_path(self) -> Path:
        return self.run_dir.data

    @property
    def card_path(self) -> Optional[Path]:
        """The dataset card (README.md), None where none was written (card=False)."""
        card = self.run_dir.card
        return card if card.is_file() else None

    def __fspath__(self) -> str:  # open(run), Path(run), datasets.load_dataset(os.fspath(run))
        return str(self.path)

    def dataset(self, name: str = "data"):
        """The rows of one of the run's files as a datasets.Dataset: `data` (the rows), `rejects`, `brainstorm`, or an
        export the card lists (`e5`, `sentence-transformers-text_retrieval`, ...). Rows of several task types hold
        different keys: they are read with the union of them. A file with no rows gives an empty Dataset."""
        datasets = _datasets()
        run = self.run_dir
        if name in ROW_FILES:
            source = {"data": run, "rejects": RunDir(run.path, data=run.rejects), "brainstorm": run.brainstorm}[name]
            return _rows_dataset(datasets, source.data, source.rows() if source.data.is_file() else ())
        exports = dict(run.export_files())
        if name not in exports:
            known = ", ".join([*ROW_FILES, *exports])
            raise UserError(f"{self.path} has no {name!r} to load: it has {known}")
        return datasets.load_dataset("json", data_files=str(run.path / exports[name]), split="train")

    def rejects(self):
        """The rejected rows (row, reason, check, the raw answer...), an empty Dataset where none were."""
        return self.dataset("rejects")

    def scores(self):
        """The reference embedder's scores of each row (synthkit score, or score=true), as a datasets.Dataset."""
        run = self.run_dir
        if not run.scores.is_file():
            raise UserError(f"{self.path} is not scored: run synthkit score {self.path} (or generate with score=true)")
        return _datasets().load_dataset("json", data_files=str(run.scores), split="train")

    def to_pandas(self, name: str = "data"):
        """dataset(name) as a pandas DataFrame."""
        return self.dataset(name).to_pandas()

    def export(self, to: str, out=None, force: bool = False, **options):
        """Write the rows for a trainer, as `synthkit export RUN --to ...`: `to` is e5, sentence-transformers,
        flagembedding or beir; options as the command's (seed, allow_placeholder, hard_negatives, splits,
        embedder_overrides, policy, instruction). Returns what was written (synthkit.results.export.Exported)."""
        from synthkit.results.export import export_run

        return export_run(RunDir.of(self.path), to, out, force, **options)

    def __repr__(self) -> str:
        made = self._made()
        if self.preview is None:
            return f"<synthkit run {self.path}: {made}>"
        cost = self.preview.projected_cost_usd
        projected = f"~${cost:,.2f}" if cost is not None else "cost unknown"
        return f"<synthkit preview {self.path}: {made}; {projected} for num_rows={self.preview.full_rows:,}>"

    def _made(self) -> str:
        if self.result is not None:
            rows = self.result.ledger.generation.tally  # brainstorm answers are not rows
            written, rejected = rows.written, rows.rejected
        else:  # a run opened from its dir: count its files (the generation stage's: brainstorm rows apart)
            run = self.run_dir
            written = sum(1 for _ in run.rows()) if run.data.is_file() else 0
            rejected = sum(1 for _ in run.rejected_rows()) if run.rejects.is_file() else 0
        return f"{written} rows, {rejected} rejected"


def _datasets():
    try:
        import datasets
    except ImportError:
        raise UserError(f"reading a run as datasets needs the datasets library: {pip_install('export')}") from None
    datasets.disable_progress_bars()
    return datasets


def _rows_dataset(datasets, path: Path, rows):
    """A JSONL file of rows, read with the union of their columns (as the card declares them)."""
    from synthkit.results.schema import datasets_features, infer, merge

    schema = None
    for row in rows:
        schema = merge(schema, infer(row.to_json()))
    if schema is None:
        return datasets.Dataset.from_dict({})
    return datasets.load_dataset("json", data_files=str(path), features=datasets_features(schema), split="train")


def open_run(path) -> Run:
    """A finished run (or a merged sweep) from its dir, to read as generate() returns it."""
    return Run(None, RunDir.of(path, "a run's output dir").path)


def keyword_overrides(keywords: dict) -> list:
    """Python keywords as command-line overrides: `num_rows=100` -> "num_rows=100", `task="text_retrieval"`,
    `llm__model="gpt-4o"` or `**{"llm.model": "gpt-4o"}` -> "llm.model=gpt-4o", a dict -> one override per key,
    a list -> a list value, None -> null. Strings the override grammar would read otherwise are quoted."""
    overrides = []
    for key, value in keywords.items():
        key = key.replace("__", ".")
        if isinstance(value, dict):
            overrides += keyword_overrides({f"{key}.{k}": v for k, v in value.items()})
        else:
            overrides.append(f"{key}={_value_text(key, value)}")
    return overrides


def _value_text(key: str, value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value_text(key, v) for v in value) + "]"
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise UserError(f"{key}={value!r}: a keyword takes a string, number, bool, None, list or dict")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:  # as written, where the grammar reads back the very string (no sweep, no number, no null)
        parsed = OverridesParser.create().parse_override(f"{key}={value}")
        if not parsed.is_sweep_override() and parsed.value() == value:
            return value
    except Exception:  # noqa: BLE001 - the grammar's own errors: quote it
        pass
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose(*overrides: str, config_dir: Optional[str] = None, **keywords):
    """The config the command line would compose from these overrides and keywords."""
    return compose_overrides(*overrides, *keyword_overrides(keywords), config_dir=config_dir)


def generate(*overrides: str, config_dir: Optional[str] = None, card: Optional[bool] = None, **keywords) -> Run:
    """Run synthkit with command-line overrides ("task=...", "num_rows=...") and keywords (task=..., num_rows=...;
    a keyword wins over an override of the same key); returns the finished Run. With preview=N, as on the command
    line, only N rows are made and `Run.preview` projects the cost of num_rows. Raises UserError (one line) for a
    mistake, and RunStoppedEarly (its `.run` holds what was made) when the run stopped early."""
    from synthkit.engine.preview import preview_rows, project
    from synthkit.engine.run import generate as run

    overrides = (*overrides, *keyword_overrides(keywords))
    os.environ.pop(RUN_ID_ENV, None)  # each call is a run of its own, with a new default output dir
    cfg = compose_overrides(*overrides, config_dir=config_dir)
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


def preview(*overrides: str, rows: int = 5, **options) -> Run:
    """`rows` real rows of the run these overrides and keywords describe, at full fidelity, and the cost of its
    num_rows projected from them: the Run's `.preview` (projected_cost_usd, cost_per_row_usd, text), its rows as
    `.to_pandas()` or `.dataset()`. The answers stay in the response cache: the full run does not pay for them again."""
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise UserError(f"preview: rows={rows!r} must be a whole number of at least 1")
    return generate(*overrides, **{**options, "preview": rows})
