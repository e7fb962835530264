"""synthkit touches one private part of Hydra (synthkit/interface/cli.py, `_mode_from_the_command_line`): it skips
the composition Hydra makes only to read `hydra.mode`. These tests fail when a Hydra release moves what that
relies on, instead of the patch silently doing nothing (or breaking runs)."""

import inspect

from helpers import run_synthkit


def test_hydra_still_composes_a_first_time_only_to_read_the_mode():
    import hydra._internal.utils
    from hydra._internal.hydra import Hydra

    assert list(inspect.signature(Hydra.get_mode).parameters) == ["self", "config_name", "overrides"]
    assert "hydra.get_mode(config_name=config_name, overrides=overrides)" in inspect.getsource(
        hydra._internal.utils._run_hydra
    )


def test_a_run_composes_its_config_once(tmp_path, monkeypatch):
    from hydra._internal.hydra import Hydra

    composed = []
    compose = Hydra.compose_config

    def counting(self, *args, **kwargs):
        composed.append(kwargs.get("run_mode"))
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(Hydra, "compose_config", counting)
    result = run_synthkit("llm=mock", "num_rows=2", f"output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(composed) == 1, composed
    assert Hydra.get_mode is not None and "lambda" not in repr(Hydra.get_mode)  # put back after the run
