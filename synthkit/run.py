"""From a composed config to a finished run: plan the cells, make the provider, run the engine."""

import asyncio
from pathlib import Path

from omegaconf import DictConfig

from synthkit.errors import UserError
from synthkit.engine import Cell, RunSettings, RunStats, run_cells
from synthkit.output import RunFiles
from synthkit.providers import make_provider
from synthkit.task import TaskSpec


def generate(cfg: DictConfig, out_dir: Path) -> tuple[RunStats, Path]:
    _check_run_settings(cfg)
    task = TaskSpec(cfg.task)
    task.render(task.draw_attributes(cfg.seed, 0))  # a template mistake surfaces before any request
    provider = make_provider(cfg.llm)
    files = RunFiles(out_dir)
    settings = RunSettings(seed=cfg.seed, concurrency=cfg.concurrency, max_attempts=cfg.max_attempts)
    stats = asyncio.run(run_cells([Cell(task, cfg.num_rows)], provider, files, settings))
    return stats, files.data_path


def _check_run_settings(cfg: DictConfig) -> None:
    for key, least in (("num_rows", 0), ("concurrency", 1), ("max_attempts", 1)):
        if cfg[key] < least:
            raise UserError(f"{key}={cfg[key]} must be at least {least}")
