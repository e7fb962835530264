"""From a composed config to a finished run: plan the cells, build the call stack around the
provider (cache, limits, retries, budget), run the engine."""

import asyncio
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from synthkit.cache import ResponseCache, default_cache_dir
from synthkit.calls import ModelCaller
from synthkit.cost import Budget, price_of
from synthkit.engine import Cell, RunSettings, RunStats, run_cells
from synthkit.errors import UserError
from synthkit.limits import RateLimits
from synthkit.output import RunFiles
from synthkit.progress import Progress
from synthkit.providers import make_provider
from synthkit.task import TaskSpec

RUN_FILE = "synthkit-run.json"  # what the rows of an output dir were made with, to resume safely


def generate(cfg: DictConfig, out_dir: Path) -> tuple[RunStats, Path]:
    _check_run_settings(cfg)
    task = TaskSpec(cfg.task)
    task.render(task.draw_attributes(cfg.seed, 0))  # a template mistake surfaces before any request
    cells = [Cell(task, cfg.num_rows)]
    price = price_of(cfg.llm)
    if cfg.max_cost_usd is not None and price is None:
        raise UserError(f"max_cost_usd needs a price, and litellm has none for {cfg.llm.model}: "
                        "set llm.input_cost_per_mtok and llm.output_cost_per_mtok")
    _claim_output_dir(out_dir, cfg)
    provider = make_provider(cfg.llm)
    cache_dir = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    cache = ResponseCache(cache_dir) if cfg.cache and not provider.placeholder else None
    limits = RateLimits(cache_dir / "limits", f"{cfg.llm.model}|{cfg.llm.api_base}", cfg.llm.rpm, cfg.llm.tpm)
    caller = ModelCaller(provider, cfg.llm, cache, limits, Budget(price, cfg.max_cost_usd))
    files = RunFiles(out_dir)
    settings = RunSettings(seed=cfg.seed, concurrency=cfg.concurrency, max_attempts=cfg.max_attempts)

    async def run() -> RunStats:
        progress = Progress(sum(c.num_rows for c in cells), cfg.progress_every_s)
        try:
            return await run_cells(cells, caller, provider.model_name, files, settings, progress)
        finally:
            await provider.aclose()
            if cache is not None:
                cache.close()

    stats = asyncio.run(run())
    stats.requests = caller.requests
    stats.priced = price is not None
    return stats, files.data_path


def _check_run_settings(cfg: DictConfig) -> None:
    for key, least in (("num_rows", 0), ("concurrency", 1), ("max_attempts", 1)):
        if cfg[key] < least:
            raise UserError(f"{key}={cfg[key]} must be at least {least}")
    for key, least in (("max_retries", 0), ("circuit_breaker", 1), ("rpm", 1), ("tpm", 1)):
        if cfg.llm[key] is not None and cfg.llm[key] < least:
            raise UserError(f"llm.{key}={cfg.llm[key]} must be at least {least}")


def _claim_output_dir(out_dir: Path, cfg: DictConfig) -> None:
    """Rows are only resumed into a dir made with the same row-shaping config."""
    shape = {
        "task": OmegaConf.to_container(cfg.task, resolve=True),
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
