"""From a composed config to a finished run: plan the cells, build the call stack around the
provider (cache, limits, retries, budget), run the engine: a brainstorm stage first when task
definitions are needed, then the rows."""

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from synthkit.calls.cache import ResponseCache, default_cache_dir
from synthkit.calls.caller import ModelCaller
from synthkit.calls.cost import BUDGET_LEDGER, Budget, price_of
from synthkit.quality.dedup import Deduplicator
from synthkit.engine.rows import RunSettings, RunStats, run_cells
from synthkit.errors import UserError
from synthkit.calls.limits import RateLimits
from synthkit.outputs.files import RunFiles
from synthkit.engine.plan import (BRAINSTORM_DIR, brainstorm_cells, count_definitions, generate_cells, probe_spec, units_of,
                           write_flat_tasks)
from synthkit.outputs.progress import Progress
from synthkit.calls.providers import make_provider
from synthkit.outputs.sweep import grid_coverage

RUN_FILE = "synthkit-run.json"  # what the rows of an output dir were made with, to resume safely


@dataclass
class RunResult:
    stats: RunStats
    data_path: Path
    label: str  # what was made: a task name or a recipe
    notes: list = field(default_factory=list)  # lines for the summary
    coverage: str = ""  # the coverage table of a grid run


def generate(cfg: DictConfig, out_dir: Path, shared_dir: Optional[Path] = None) -> RunResult:
    """Make the run's rows in `out_dir`. Jobs of one sweep pass its dir as `shared_dir`: they share
    one max_cost_usd budget there."""
    _check_run_settings(cfg)
    units = units_of(cfg)
    for unit in units:  # config and template mistakes surface before any request
        spec = probe_spec(unit, cfg.preset)
        spec.render(spec.draw_attributes(cfg.seed, 0))
    price = price_of(cfg.llm)
    if cfg.max_cost_usd is not None and price is None:
        raise UserError(f"max_cost_usd needs a price, and litellm has none for {cfg.llm.model}: "
                        "set llm.input_cost_per_mtok and llm.output_cost_per_mtok")
    _claim_output_dir(out_dir, cfg)
    provider = make_provider(cfg.llm)
    cache_dir = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    cache = ResponseCache(cache_dir) if cfg.cache and not provider.placeholder else None
    limits = RateLimits(cache_dir / "limits", f"{cfg.llm.model}|{cfg.llm.api_base}", cfg.llm.rpm, cfg.llm.tpm)
    ledger = shared_dir / BUDGET_LEDGER if shared_dir and cfg.max_cost_usd is not None else None
    caller = ModelCaller(provider, cfg.llm, cache, limits, Budget(price, cfg.max_cost_usd, ledger))
    settings = RunSettings(seed=cfg.seed, concurrency=cfg.concurrency, max_attempts=cfg.max_attempts,
                           checks=cfg.checks and not provider.placeholder)  # placeholder text has no meaning to check
    label = f"recipe {cfg.recipe.name}" if cfg.recipe is not None else cfg.task.name
    if cfg.grid:
        label += f", a grid of {len(units)} cells x {cfg.num_rows} rows"
    notes, cells = [], []

    async def stage(cells: list, directory: Path) -> tuple[RunStats, Path]:
        files = RunFiles(directory)
        progress = Progress(sum(c.num_rows for c in cells), cfg.progress_every_s)
        dedup = Deduplicator(cfg.dedup_threshold) if cfg.dedup and not provider.placeholder else None
        return await run_cells(cells, caller, provider.model_name, files, settings, progress, dedup), files.data_path

    async def run() -> tuple[RunStats, Path]:
        try:
            brainstorm = brainstorm_cells(cfg, units)
            brainstormed = None
            if brainstorm:
                stats, brainstormed = await stage(brainstorm, out_dir / BRAINSTORM_DIR)
                kept, dropped = count_definitions(brainstormed)
                notes.append(f"brainstorm: {stats.written} answers, {kept} task definitions "
                             f"({dropped} duplicates dropped): {brainstormed}")
                if stats.stopped_early:
                    return stats, brainstormed
            cells.extend(generate_cells(cfg, units, brainstormed))
            return await stage(cells, out_dir)
        finally:
            await provider.aclose()
            if cache is not None:
                cache.close()

    stats, data_path = asyncio.run(run())
    stats.requests = caller.requests
    stats.priced = price is not None
    if cfg.recipe is None and cfg.task.get("flatten_tasks") and data_path.exists():
        notes.append(f"flattened task definitions: {write_flat_tasks(data_path)}")
    coverage = grid_coverage(out_dir, cells) if cfg.grid else ""
    return RunResult(stats, data_path, label, notes, coverage)


def _check_run_settings(cfg: DictConfig) -> None:
    for key, least in (("num_rows", 0), ("concurrency", 1), ("max_attempts", 1)):
        if cfg[key] < least:
            raise UserError(f"{key}={cfg[key]} must be at least {least}")
    for key, least in (("max_retries", 0), ("circuit_breaker", 1), ("rpm", 1), ("tpm", 1)):
        if cfg.llm[key] is not None and cfg.llm[key] < least:
            raise UserError(f"llm.{key}={cfg.llm[key]} must be at least {least}")


def _claim_output_dir(out_dir: Path, cfg: DictConfig) -> None:
    """Rows are only resumed into a dir made with the same row-shaping config."""
    made = {"recipe": cfg.recipe} if cfg.recipe is not None else {"task": cfg.task}
    shape = {
        "grid": list(cfg.grid or []),
        **{k: OmegaConf.to_container(v, resolve=True) for k, v in made.items()},
        "brainstorm": OmegaConf.to_container(cfg.brainstorm, resolve=True),
        "preset": cfg.preset,
        "seed": cfg.seed,
        "llm": {k: cfg.llm[k] for k in ("model", "api_base", "temperature", "top_p", "max_tokens")},
    }
    path = out_dir / RUN_FILE
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = _changed_keys(before, shape)
        if changed:
            raise UserError(f"{out_dir} holds rows made with another config ({', '.join(changed)} changed): "
                            "resume with the same settings, or choose a new output_dir")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(shape, indent=1, ensure_ascii=False), encoding="utf-8")


def _changed_keys(before, after, prefix: str = "") -> list:
    if isinstance(before, dict) and isinstance(after, dict):
        return [k for key in sorted(before.keys() | after.keys())
                for k in _changed_keys(before.get(key), after.get(key), f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if before != after else []
