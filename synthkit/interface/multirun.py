"""What the command line does around a Hydra multirun (`synthkit -m ...`): refuse once what would fail every job
alike, and tell each job the keys the sweep varies, so that the jobs of one sweep draw apart, reproducibly."""

import json
import os

SWEPT_ENV = "SYNTHKIT_SWEPT_KEYS"  # the keys a multirun sweeps, for its jobs' draws


def precheck(argv: list) -> None:
    """Before a multirun: refuse once what would fail every job alike (a missing key, a store that cannot be
    reached), rather than once per job; then record the keys the sweep varies for its jobs (here or in launcher
    processes, which inherit the environment)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from synthkit.calls.providers import check_key
    from synthkit.calls.stores import StoreSettings, check_store
    from synthkit.core.compose import compose

    fixed, swept, config_dir, skip = [], set(), None, False
    parser = OverridesParser.create()
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--config-dir", "-cd"):
            config_dir, skip = argv[i + 1] if i + 1 < len(argv) else None, True
        elif arg.startswith("--config-dir="):
            config_dir = arg.split("=", 1)[1]
        elif arg.startswith("-") or "=" not in arg or arg.startswith("hydra"):
            skip = arg in ("--config-name", "-cn", "--config-path", "-cp")
        else:
            override = parser.parse_override(arg)
            (swept.add(override.get_key_element()) if override.is_sweep_override() else fixed.append(arg))
    swept = {key.lstrip("+~") for key in swept}
    cfg = compose(*fixed, config_dir=config_dir)
    if not any(key == "llm" or key.startswith("llm.api_key_env") for key in swept):
        check_key(cfg.llm)
    if not swept & {"store", "store_password_env"}:
        check_store(StoreSettings.of(cfg))
    os.environ[SWEPT_ENV] = json.dumps(sorted(swept))


def job_stream(overrides: tuple) -> str:
    """A sweep job's coordinates (its values of the swept keys): jobs of one sweep draw apart, reproducibly."""
    try:
        swept = set(json.loads(os.environ.get(SWEPT_ENV) or "[]"))
    except ValueError:
        return ""
    return ",".join(o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept)
