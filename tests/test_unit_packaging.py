"""The wheel ships every package and config group: a folder missing from pyproject's list would install a
synthkit that fails only on a fresh machine."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


ROOT = Path(__file__).resolve().parent.parent


def test_every_package_and_config_group_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "synthkit").rglob("__init__.py")}
    groups = {f"synthkit.conf.{d.name}" for d in (ROOT / "conf").iterdir() if d.is_dir() and any(d.glob("*.yaml"))}
    assert packages | groups | {"synthkit.conf"} == listed
