"""What the rows of an output dir were made with: the config of the run (.hydra/, as Hydra would write it, keys
redacted) and its row-shaping part (synthkit-run.json). Rows are only resumed into a dir made with the same
row-shaping config, so that a resumed run's rows are the rows a single run would have made."""

import json

from omegaconf import DictConfig, OmegaConf

from synthkit.core.errors import UserError
from synthkit.results.rundir import CONFIG_FILE, OVERRIDES_FILE, RUN_FILE, RunDir


def record_config(run: RunDir, cfg: DictConfig, overrides: tuple, corpora: dict) -> None:
    """Record the run's config in `run`, refusing one that would shape rows otherwise than the rows already there.
    `corpora`: the digests of the corpora drawn from (an edited corpus would draw other chunks)."""
    shape = row_shape(cfg, corpora)
    if run.run_file.exists():
        try:
            before = json.loads(run.run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            raise UserError(
                f"{run.run_file} is damaged: this output dir cannot be resumed safely; choose a new output_dir"
            ) from None
        changed = _changed_keys(before, json.loads(json.dumps(shape)))
        if changed:
            raise UserError(
                f"{run.path} holds rows made with another config ({', '.join(changed)} changed): "
                "resume with the same settings, or choose a new output_dir"
            )
    else:
        run.write_json(RUN_FILE, shape)
    run.write_text(CONFIG_FILE, OmegaConf.to_yaml(cfg))
    run.write_text(OVERRIDES_FILE, OmegaConf.to_yaml(list(overrides)))


def row_shape(cfg: DictConfig, corpora: dict) -> dict:
    """The part of the config that decides what the rows are: what is made, the seed, the model and its sampling."""
    made = {"recipe": cfg.recipe} if cfg.recipe is not None else {"task": cfg.task}
    made = {k: OmegaConf.to_container(v, resolve=True) for k, v in made.items()}
    if isinstance(made.get("task", {}).get("judge"), dict):
        made["task"]["judge"].pop("enabled", None)  # as judge=true, switching the judge on or off resumes
    return {
        "grid": list(cfg.grid or []),
        **made,
        "brainstorm": OmegaConf.to_container(cfg.brainstorm, resolve=True),
        "preset": str(getattr(cfg.preset, "value", cfg.preset)),
        "seed": cfg.seed,
        "llm": {k: cfg.llm[k] for k in ("model", "api_base", "temperature", "top_p", "max_tokens")},
        # Only when on, so that dirs made before the setting existed still resume.
        **({"relabel": True} if cfg.get("relabel") else {}),
        **({"corpus": corpora} if corpora else {}),
    }


def _changed_keys(before, after, prefix: str = "") -> list:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            k
            for key in sorted(before.keys() | after.keys())
            for k in _changed_keys(before.get(key), after.get(key), f"{prefix}{key}.")
        ]
    return [prefix.rstrip(".")] if before != after else []
