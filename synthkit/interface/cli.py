"""`synthkit` command line: a Hydra app for runs, plus plain subcommands that read a finished run.
User mistakes, faults and refusals end as one line on stderr and a non-zero exit; only bugs show a
traceback."""

import contextlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

SUBCOMMANDS = {
    "export": (
        "synthkit.interface.commands.export",
        "write a run's rows for a trainer (e5, sentence-transformers, flagembedding)",
    ),
    "score": (
        "synthkit.interface.commands.score",
        "judge a run's rows with a reference embedder (their scores and flags)",
    ),
    "push": (
        "synthkit.interface.commands.push",
        "upload a run to the Hugging Face Hub as a dataset repo (token: HF_TOKEN)",
    ),
    "batches": (
        "synthkit.interface.commands.batches",
        "show a batch-mode run's provider batches; --cancel cancels open ones",
    ),
}


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in SUBCOMMANDS:  # outside Hydra: it reads a finished run
        _subcommand(command, sys.argv[2:])
        return
    if command in ("--help", "-h"):
        print(_subcommand_help())
    from synthkit.core.compose import refuse_secret_overrides
    from synthkit.core.errors import UserError

    try:
        refuse_secret_overrides(sys.argv[1:])
        sys.argv[1:] = options_first(sys.argv[1:])
    except UserError as e:
        _fail(str(e))
    from synthkit.core.compose import expand_aliases

    sys.argv[1:] = expand_aliases(sys.argv[1:])
    _main_hydra()


# Hydra's command-line options that take a value (--info takes one if it is given).
VALUE_OPTIONS = {"--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "--cfg", "-c", "--package",
                 "-p", "--experimental-rerun"}  # fmt: skip
OPTIONAL_VALUE_OPTIONS = {"--info", "-i"}


def options_first(argv: list) -> list:
    """The options before the overrides, each with its value: Hydra's argparse takes no override after an option
    (`synthkit llm=mock --config-dir my_configs task=faq` would be "unrecognized arguments: task=faq"). A bare
    --info goes last, where it cannot take an override for its value. A value Hydra would refuse with its usage
    text is one line here."""
    from synthkit.core.errors import UserError

    options, overrides, last, i = [], [], [], 0
    while i < len(argv):
        arg, value = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        takes = arg in VALUE_OPTIONS or (arg in OPTIONAL_VALUE_OPTIONS and _is_value(value))
        if arg in VALUE_OPTIONS and not _is_value(value):
            raise UserError(f"{arg} needs a value, e.g. synthkit {arg} {_EXAMPLES.get(arg, 'VALUE')} <overrides>")
        if takes and arg in CHOICES and value not in CHOICES[arg]:
            raise UserError(f"{arg} {value}: choose one of {', '.join(CHOICES[arg])}")
        if takes:
            options += [arg, value]
        else:
            (last if arg in OPTIONAL_VALUE_OPTIONS else options if arg.startswith("-") else overrides).append(arg)
        i += 2 if takes else 1
    return options + overrides + last


_CFG = ("job", "hydra", "all")
_INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
CHOICES = {"--cfg": _CFG, "-c": _CFG, "--info": _INFO, "-i": _INFO}


def _is_value(token) -> bool:
    """An option's value: not another option, nor an override (key=value)."""
    return token is not None and not token.startswith("-") and not _OVERRIDE.match(token)


_EXAMPLES = {"--config-dir": "my_configs", "-cd": "my_configs", "--cfg": "job", "-c": "job"}
_OVERRIDE = re.compile(r"[+~]*[A-Za-z_][\w.@/-]*=")


def _subcommand(name: str, argv: list) -> None:
    from importlib import import_module

    from synthkit.core.errors import UserError

    try:
        import_module(SUBCOMMANDS[name][0]).main(argv)
    except UserError as e:
        _fail(str(e))


def _subcommand_help() -> str:
    lines = ["synthkit: generate synthetic training data for embedding models; subcommands:"]
    lines += [f"  synthkit {name:<8} {about} (synthkit {name} --help)" for name, (_, about) in SUBCOMMANDS.items()]
    return "\n".join(lines) + "\n"


def _main_hydra() -> None:
    from synthkit.core.compose import COMPOSITION_ERRORS, composition_error
    from synthkit.core.config import register
    from synthkit.core.errors import UserError
    from synthkit.results.sweep import REPORT_ENV

    register()
    # Let composition errors reach us so they can be reported in one line, not Hydra's multi-line form.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    if {"-m", "--multirun"} & set(sys.argv[1:]):
        from synthkit.interface.multirun import precheck

        try:
            precheck(sys.argv[1:])
        except UserError as e:
            _fail(str(e))
    report = Path(tempfile.mkstemp(prefix="synthkit-sweep-", suffix=".json")[1])
    os.environ[REPORT_ENV] = str(report)
    try:
        with _mode_from_the_command_line(sys.argv[1:]):
            _run()
        failed = _read_report(report)
        if failed:
            _fail(
                f"{len(failed)} sweep jobs did not finish cleanly ({', '.join(failed)}); see the coverage table", code=1
            )
    except UserError as e:
        _fail(str(e))
    except COMPOSITION_ERRORS as e:
        _fail(composition_error(e))
    except ValueError as e:  # Hydra's own command-line checks, e.g. -m with --cfg
        if "can be specified" in str(e):
            _fail(str(e))
        _fail_if_launcher(e)
        raise
    except BrokenPipeError:  # output piped into e.g. `head`: the reader left, the run is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except OSError as e:  # Hydra makes the output dir before the run can check it
        if isinstance(e, FileExistsError) and e.filename and Path(e.filename).is_file():
            _fail(f"output_dir={e.filename} is a file: choose a directory")
        _fail(f"cannot create {e.filename or 'the output dir'}: {e.strerror}; choose another output_dir")
    except KeyboardInterrupt as e:
        why = f"stopped by {e}" if str(e).startswith("SIG") else "interrupted"
        _fail(f"{why}; rows written so far are kept, run again with the same output_dir to resume", code=130)
    except Exception as e:
        _fail_if_launcher(e)
        raise
    finally:
        report.unlink(missing_ok=True)


# Where a sweep's launcher runs (Hydra's launcher plugins and what they drive): an error raised there, before or
# around synthkit's jobs, is a setting or an environment to fix (no `srun` on this machine, n_jobs=0), not a bug.
LAUNCHER_PACKAGES = ("hydra_plugins", "submitit", "joblib", "ray")


def _fail_if_launcher(error: BaseException) -> None:
    """One line for an error a launcher raised itself; anything else (a bug) keeps its traceback."""
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    launcher = next((i for i, m in enumerate(frames) if m.split(".")[0] in LAUNCHER_PACKAGES), None)
    job_code = any(m.startswith("synthkit") for m in frames[launcher or 0 :]) or "synthkit" in str(error.__cause__)
    if launcher is None or frames[-1].split(".")[0] not in LAUNCHER_PACKAGES or job_code:
        return
    hint = (
        "run the sweep on a SLURM login node, or its jobs on this machine with +launcher=submitit_local or "
        "+launcher=joblib"
        if "srun" in str(error)
        else "check the hydra.launcher.* settings"
    )
    first = (str(error).strip().splitlines() or [""])[0]
    from synthkit.results.rundir import drop_made_dirs

    drop_made_dirs()  # the sweep dir Hydra made for jobs that never ran
    _fail(f"the sweep's launcher ({frames[-1].split('.')[0]}) failed: {type(error).__name__}: {first}; {hint}")


@contextlib.contextmanager
def _mode_from_the_command_line(argv: list):
    """Hydra composes the whole config once only to read `hydra.mode`, then again to run: a third of a
    small run's start-up. synthkit's packaged configs never set the mode, so unless the command line
    sets it or brings configs of its own, the mode is -m's (what Hydra decides when the config is silent)."""
    from hydra._internal.hydra import Hydra

    own_configs = {"--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn"}
    if any(arg.split("=", 1)[0] in own_configs or arg.lstrip("+~").startswith("hydra.mode") for arg in argv):
        yield
        return
    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = probe


def _read_report(path: Path) -> list:

    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else []
    except (OSError, ValueError):
        return []


def _hydra_main():
    import hydra

    return hydra.main(version_base="1.3", config_path="pkg://synthkit.conf", config_name="config")


@_hydra_main()
def _run(cfg) -> None:
    if cfg.dry_run:
        from hydra.core.hydra_config import HydraConfig

        from synthkit.core.errors import UserError
        from synthkit.engine.dry_run import describe

        _drop_if_made_empty(Path(HydraConfig.get().runtime.output_dir))  # a dry run writes nothing
        try:
            text = describe(cfg)
        except UserError as e:
            _fail(str(e))  # here, not in main(): Hydra would first print the job's overrides
        _print(text)
        return
    # What takes half a second each, started beside the run: the language identifier (every packaged task checks
    # languages) and the process that draws the card's plots (its matplotlib import)
    if cfg.checks and cfg.llm.provider != "mock":
        from synthkit.core.paths import configured_cache_dir
        from synthkit.spec.langid import load_in_background

        load_in_background(configured_cache_dir(cfg.cache_dir))
    if cfg.card:
        from synthkit.results.plots import start

        start()
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from synthkit.core.errors import UserError
    from synthkit.engine.run import Interrupted, generate  # after composition: `--cfg job` never loads the engine
    from synthkit.interface.multirun import job_stream
    from synthkit.results.rundir import RunDir

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = tuple(hydra_cfg.overrides.task)
    # In a sweep, a job that fails or stops early is reported and the others go on.
    sweep_dir = Path(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    from synthkit.engine.preview import preview_rows

    full_rows = preview_rows(cfg)
    try:
        result = generate(cfg, out_dir, shared_dir=sweep_dir, overrides=overrides, job=job_stream(overrides))
    except Interrupted as e:  # Ctrl-C, SIGTERM, SIGHUP: what was made, then the one line (main)
        _print(summary(e.result))
        raise
    except UserError as e:
        if sweep_dir is None:
            _drop_if_made_empty(out_dir)
            _fail(str(e))  # here, not in main(): Hydra would first print the job's overrides
        RunDir(out_dir).record_refusal(str(e), list(overrides))
        print(f"synthkit: error: job {hydra_cfg.job.num}: {e}", file=sys.stderr)
        return
    if cfg.preview:
        from synthkit.engine.preview import preview_report

        _print(preview_report(result, full_rows))
    else:
        _print(summary(result))
    if cfg.card:  # after the summary: its plots take a second, the summary none
        card = _card(result.run)
        if not cfg.preview:
            _print(f"  {card}")
    if result.stopped_early:
        if sweep_dir is None:
            _fail(result.stopped_early, code=1)
        print(f"synthkit: error: job {hydra_cfg.job.num}: {result.stopped_early}", file=sys.stderr)


def _drop_if_made_empty(out_dir: Path) -> None:
    """Hydra makes the output dir before the run can refuse: a refused run leaves nothing behind."""
    from synthkit.results.rundir import drop_made_dirs

    drop_made_dirs(out_dir)


def _print(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # output piped into e.g. `head`: the reader left; nothing is lost
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _card(run) -> str:
    from synthkit.results.card import write_card

    try:
        return f"dataset card: {write_card(run)}"
    except Exception as e:  # the rows are written: a card that fails must not fail the run
        return f"dataset card not written ({type(e).__name__}: {e})"


def summary(result) -> str:
    """The rows of the generation stage; requests, tokens and cost of all the stages (brainstorm included)."""
    ledger, totals = result.ledger, result.ledger.totals()
    rows = ledger.generation.tally
    lines = [
        f"synthkit: {result.label} with {result.model}: {rows.written} rows written, {rows.rejected} rejected"
        + (f", {rows.failed} failed" if rows.failed else "")
        + (f" ({rows.resumed} already there from an earlier run)" if rows.resumed else ""),
        f"  requests: {totals.requests}"
        + (f", {totals.cached} answers replayed from the cache" if totals.cached else ""),
        *(
            [f"  duplicates: {totals.duplicates} answers repeated an earlier row and were asked again or rejected"]
            if totals.duplicates
            else []
        ),
        *(
            [f"  truncated: {totals.truncated} answers were cut off at llm.max_tokens; raise llm.max_tokens"]
            if totals.truncated
            else []
        ),
        *(
            [f"  rejects by reason: {', '.join(f'{k} {v}' for k, v in totals.reasons.most_common(6))}"]
            if totals.reasons
            else []
        ),
        *(
            f"  degenerate answers (not answers: echoes, placeholders...): {line}"
            for line in totals.degenerate_shares()
        ),
        *(
            [f"  judge scores: {', '.join(f'{s}: {n}' for s, n in sorted(totals.judged.items(), reverse=True))}"]
            if totals.judged
            else []
        ),
        f"  time: {ledger.elapsed_s:.2f} s, {rows.written / max(ledger.generation.elapsed_s, 1e-9):.1f} rows/s",
        f"  tokens: {totals.prompt_tokens} prompt + {totals.completion_tokens} completion",
        f"  cost: ${totals.cost_usd:.4f}"
        if ledger.priced
        else f"  cost: unknown (litellm has no price for {result.model})",
        *(f"  {note}" for note in result.notes),
        *(f"  {line}" for line in result.coverage.splitlines()),
        f"  data: {result.data_path}",
    ]
    if result.placeholder:
        lines.append(
            "  note: llm=mock writes PLACEHOLDER rows (schema-valid, not model output); use a real llm for training data"
        )
    return "\n".join(lines)


def _fail(message: str, code: int = 2) -> None:
    from synthkit.core.text import MESSAGE_CHARS, printable

    print(f"synthkit: error: {printable(message, MESSAGE_CHARS)}", file=sys.stderr)
    sys.exit(code)
