"""Composing a run config the way the command line does (Hydra's compose API over the packaged configs), and
what is said when a config does not compose: one line, never Hydra's multi-line report."""

import difflib
import re
from pathlib import Path
from typing import Optional

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

JUDGE_ALIASES = {"judge": "judge.enabled", "judge.llm": "llm@judge.llm"}
EVALUATE_ALIASES = {"evaluate": "evaluate.enabled"}
ALIASES = {**JUDGE_ALIASES, **EVALUATE_ALIASES}


def expand_aliases(overrides) -> list:
    """`judge=true`, `evaluate=true` and `judge.llm=NAME` as Hydra spells them (`judge` and `evaluate` are nodes,
    judge.llm an optional group)."""
    expanded = []
    for override in overrides:
        key, sep, value = str(override).partition("=")
        expanded.append(f"{ALIASES[key]}={value}" if sep and key in ALIASES else override)
    return expanded


_SECRET_OVERRIDE = re.compile(r"^[+~]*(llm\.api_key|hydra\.job\.env_set\.[^=]*)=", re.I)
_STORE_OVERRIDE = re.compile(r"^[+~]*store=(.+)$")


def refuse_secret_overrides(overrides) -> None:
    """Keys are never taken as overrides: synthkit saves overrides to disk (a password in the store's URL too)."""
    from synthkit.core.secrets import url_password_refusal

    for arg in overrides:
        if _SECRET_OVERRIDE.match(str(arg)):
            raise UserError(
                "keys are not taken as overrides (synthkit saves overrides to disk): put the key in the "
                "environment variable named by llm.api_key_env"
            )
        store = _STORE_OVERRIDE.match(str(arg))
        refusal = url_password_refusal(store.group(1).strip("'\""), None) if store else None
        if refusal:
            raise UserError(refusal)


def compose(*overrides: str, config_dir: Optional[str] = None):
    """The run config the command line would compose from these overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from synthkit.core.config import register

    check_overrides(overrides)
    refuse_secret_overrides(overrides)
    register()
    extra = [f"hydra.searchpath=[file://{checked_config_dir(config_dir)}]"] if config_dir is not None else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("synthkit.conf", version_base="1.3"):
            return hydra_compose(config_name="config", overrides=[*expand_aliases(overrides), *extra])
    except COMPOSITION_ERRORS as e:
        raise UserError(composition_error(e)) from None
    finally:
        GlobalHydra.instance().clear()


def compose_part(overrides: list, command: str, groups: tuple, refusal: str):
    """The config of a subcommand that takes only the settings of `groups` (the rest belongs to generation), its
    bounds checked; any other override is `refusal` (which says what it may be, with an example)."""
    from synthkit.core.config import check_bounds

    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.split(".", 1)[0] not in groups or "=" not in override:
            raise UserError(f"{command}: {override} {refusal}")
    cfg = compose(*overrides)
    check_bounds(cfg)
    return cfg


def check_overrides(overrides: tuple) -> None:
    """The Python API takes overrides as the command line does: strings, one argument each."""
    for override in overrides:
        if isinstance(override, (list, tuple)):
            raise UserError(
                f"overrides are separate string arguments, not a {type(override).__name__}: unpack it, "
                "synthkit.generate(*overrides)"
            )
        if not isinstance(override, str):
            raise UserError(
                f"overrides are strings as on the command line ('task=text_retrieval', 'num_rows=100'), "
                f"not {override!r} ({type(override).__name__})"
            )


def checked_config_dir(config_dir) -> Path:
    """The folder of a user's own configs, as --config-dir takes it: one line if it is not a folder (Hydra would
    compose the packaged configs alone, silently)."""
    if not isinstance(config_dir, (str, Path)) or not str(config_dir).strip():
        raise UserError(f"config_dir={config_dir!r} is not a path: give the folder that holds your configs")
    path = Path(config_dir).expanduser()
    if not path.is_dir():
        raise UserError(
            f"config_dir {config_dir} is not a directory: give the folder that holds your configs (task/, llm/...)"
        )
    return path.resolve()


def _composition_errors() -> tuple:
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return HydraException, OmegaConfBaseException, yaml.YAMLError


COMPOSITION_ERRORS = _composition_errors()


# Hydra launcher plugins by the extra that installs them (+launcher=... presets in conf/launcher/).
LAUNCHER_EXTRAS = {"joblib": "joblib", "submitit_slurm": "slurm", "submitit_local": "slurm", "ray": "ray"}


def composition_error(error: Exception) -> str:
    """One line for a config that does not compose: a missing option, a bad override or value, a YAML file
    that does not parse."""
    import yaml
    from hydra.errors import MissingConfigException

    if isinstance(error, yaml.YAMLError):
        mark = getattr(error, "problem_mark", None)
        where = f"{mark.name} line {mark.line + 1}" if mark else "a config file"
        return f"{where} is not valid YAML: {getattr(error, 'problem', None) or error}"
    if isinstance(error, MissingConfigException):
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        if group == "hydra/launcher" and name in LAUNCHER_EXTRAS:
            return f"the {name} launcher is not installed: {pip_install(LAUNCHER_EXTRAS[name])}"
        if group and error.options:
            return (
                f"no {group} named '{name}'{_did_you_mean(name, error.options)}; available: {', '.join(error.options)}"
            )
    return _one_line(error)


def _did_you_mean(name: str, candidates, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _one_line(error: Exception) -> str:
    unknown = re.match(r"Could not override '([^']+)'", str(error))
    if unknown and "not in" in str(error.__cause__):
        # The node the key was looked up in holds the keys it could have meant (num_row -> num_rows).
        key = unknown.group(1)
        parent = getattr(error.__cause__, "parent_node", None)
        keys = [k for k in parent.keys() if k != "hydra"] if hasattr(parent, "keys") else []
        path, _, leaf = key.rpartition(".")
        hint = _did_you_mean(leaf, keys, f"{path}." if path else "")
        return f"unknown key '{key}'{hint}; list the valid keys with: synthkit <your overrides> --cfg job"
    text = str(error)
    if error.__cause__ is not None and str(error.__cause__) not in text:
        text += ": " + str(error.__cause__)
    lines = [line.strip() for line in text.splitlines()]
    # OmegaConf appends location details (full_key, object_type) that repeat what the message says.
    lines = [line for line in lines if line and not line.startswith(("full_key:", "object_type=", "reference_type="))]
    text = " ".join(lines)
    if any(
        s in text
        for s in (
            "Ambiguous value",
            "Unknown function",
            "mismatched input",
            "no viable alternative",
            "extraneous input",
            "token recognition error",
            "LexerNoViableAlt",  # a character Hydra takes only quoted: `~/data`, `#`
        )
    ):
        text += (
            " -- free text with commas, brackets, parentheses or quotes must be quoted: "
            "'task.task=\"Given a city, retrieve...\"'"
        )
    return text
