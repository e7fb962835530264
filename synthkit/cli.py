"""`synthkit` command line: a Hydra app. User mistakes end as one line on stderr and exit 2;
only bugs show a traceback."""

import os
import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from synthkit.config import register
from synthkit.errors import UserError

# Keys must come from the environment: Hydra writes every override into <output_dir>/.hydra/.
_SECRET_OVERRIDE = re.compile(r"^[+~]*llm\.api_key=", re.IGNORECASE)


def main() -> None:
    if sys.argv[1:2] in (["export"], ["push"]):  # plain subcommands, outside Hydra: they read a finished run
        from synthkit.export import main as export
        from synthkit.push import main as push

        try:
            {"export": export, "push": push}[sys.argv[1]](sys.argv[2:])
        except UserError as e:
            _fail(str(e))
        return
    for arg in sys.argv[1:]:
        if _SECRET_OVERRIDE.match(arg):
            _fail("API keys are not taken on the command line; put the key in the environment variable named by llm.api_key_env instead")
    register()
    # Let composition errors reach us so they can be reported in one line, not Hydra's multi-line form.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _run()
        from synthkit.sweep import failed_jobs  # filled after a multirun, in this process

        if failed_jobs:
            _fail(f"{len(failed_jobs)} sweep jobs did not finish cleanly ({', '.join(failed_jobs)}); see the coverage table",
                  code=1)
    except UserError as e:
        _fail(str(e))
    except MissingConfigException as e:
        _fail(_missing_config(e))
    except (HydraException, OmegaConfBaseException) as e:
        _fail(_one_line(e))
    except ValueError as e:  # Hydra's own command-line checks, e.g. -m with --cfg
        if "can be specified" not in str(e):
            raise
        _fail(str(e))
    except BrokenPipeError:  # output piped into e.g. `head`: the reader left, the run is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:
        _fail("interrupted; rows written so far are kept, run again with the same output_dir to resume", code=130)


@hydra.main(version_base="1.3", config_path="pkg://synthkit.conf", config_name="config")
def _run(cfg: DictConfig) -> None:
    if cfg.dry_run:
        from synthkit.dry_run import describe

        _print(describe(cfg))
        return
    from synthkit.run import generate  # after composition: `--cfg job` never loads the engine
    from synthkit.sweep import write_status

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    # In a sweep, a job that fails or stops early is reported and the others go on.
    sweep_dir = Path(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    try:
        result = generate(cfg, out_dir, shared_dir=sweep_dir)
    except UserError as e:
        if sweep_dir is None:
            _fail(str(e))  # here, not in main(): Hydra would first print the job's overrides
        write_status(out_dir, error=str(e))
        print(f"synthkit: error: job {hydra_cfg.job.num}: {e}", file=sys.stderr)
        return
    write_status(out_dir, result.stats)
    if cfg.card:
        result.notes.append(_card(out_dir))
    try:
        print(_summary(cfg, result), flush=True)
    except ValueError as e:  # Hydra's own command-line checks, e.g. -m with --cfg
        if "can be specified" not in str(e):
            raise
        _fail(str(e))
    except BrokenPipeError:  # output piped into e.g. `head`: the reader left; the rows are written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if result.stats.stopped_early:
        if sweep_dir is None:
            _fail(result.stats.stopped_early, code=1)
        print(f"synthkit: error: job {hydra_cfg.job.num}: {result.stats.stopped_early}", file=sys.stderr)


def _print(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # output piped into e.g. `head`: the reader left; nothing is lost
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _card(out_dir: Path) -> str:
    from synthkit.card import write_card

    try:
        return f"dataset card: {write_card(out_dir)}"
    except Exception as e:  # the rows are written: a card that fails must not fail the run
        return f"dataset card not written ({type(e).__name__}: {e})"


def _summary(cfg: DictConfig, result) -> str:
    stats = result.stats
    lines = [
        f"synthkit: {result.label} with {cfg.llm.model}: {stats.written} rows written, {stats.rejected} rejected"
        + (f", {stats.failed} failed" if stats.failed else "")
        + (f" ({stats.resumed} already there from an earlier run)" if stats.resumed else ""),
        f"  requests: {stats.requests}" + (f", {stats.cached} answers replayed from the cache" if stats.cached else ""),
        *([f"  duplicates: {stats.duplicates} answers repeated an earlier row and were asked again or rejected"]
          if stats.duplicates else []),
        f"  time: {stats.elapsed_s:.2f} s, {stats.written / max(stats.elapsed_s, 1e-9):.1f} rows/s",
        f"  tokens: {stats.prompt_tokens} prompt + {stats.completion_tokens} completion",
        f"  cost: ${stats.cost_usd:.4f}" if stats.priced else f"  cost: unknown (litellm has no price for {cfg.llm.model})",
        *(f"  {note}" for note in result.notes),
        *(f"  {line}" for line in result.coverage.splitlines()),
        f"  data: {result.data_path}",
    ]
    if cfg.llm.provider == "mock":
        lines.append("  note: llm=mock writes PLACEHOLDER rows (schema-valid, not model output); use a real llm for training data")
    return "\n".join(lines)


def _missing_config(error: MissingConfigException) -> str:
    group, _, name = (error.missing_cfg_file or "").rpartition("/")
    if group and error.options:
        return f"no {group} named '{name}'; available: {', '.join(error.options)}"
    return _one_line(error)


def _one_line(error: Exception) -> str:
    unknown = re.match(r"Could not override '([^']+)'", str(error))
    if unknown and "not in" in str(error.__cause__):
        return f"unknown key '{unknown.group(1)}'; list the valid keys with: synthkit <your overrides> --cfg job"
    text = str(error)
    if error.__cause__ is not None and str(error.__cause__) not in text:
        text += ": " + str(error.__cause__)
    lines = [line.strip() for line in text.splitlines()]
    # OmegaConf appends location details (full_key, object_type) that repeat what the message says.
    lines = [line for line in lines if line and not line.startswith(("full_key:", "object_type=", "reference_type="))]
    return " ".join(lines)


def _fail(message: str, code: int = 2) -> None:
    print(f"synthkit: error: {message}", file=sys.stderr)
    sys.exit(code)
