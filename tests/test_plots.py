"""The dataset card's plots: drawn by a process started beside the run (it imports matplotlib while the rows are made),
the same files as drawn in the run's own process, and drawn there whenever that process cannot."""

import pytest

from synthkit.results import plots

FIGURES = [
    {
        "kind": "bars",
        "path": "attributes.png",
        "panels": [["t: unit", ["sentence", "phrase"], [7, 3], [5.0, 5.0]], ["t: length", ["short"], [10], None]],
    },
    {"kind": "hist", "path": "lengths.png", "panels": [["t: S1: words", [3, 5, 8, 8, 13]], ["t: S2: words", [1, 2]]]},
]


def _at(folder, figures=FIGURES) -> list:
    return [{**figure, "path": str(folder / figure["path"])} for figure in figures]


def test_the_drawing_process_draws_what_the_run_would(tmp_path, monkeypatch):
    (tmp_path / "process").mkdir()
    (tmp_path / "here").mkdir()
    plots.draw_here(_at(tmp_path / "here"))
    plots.start()
    with monkeypatch.context() as patched:
        patched.setattr(plots, "draw_here", lambda figures: pytest.fail("drawn in the run's own process"))
        plots.draw(_at(tmp_path / "process")).wait()
    for name in ("attributes.png", "lengths.png"):
        assert (tmp_path / "process" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()


def test_without_a_drawing_process_the_run_draws(tmp_path):
    plots._started.pop("process", None)
    plots.draw(_at(tmp_path)).wait()
    assert (tmp_path / "attributes.png").stat().st_size > 0 and (tmp_path / "lengths.png").stat().st_size > 0


def test_a_drawing_process_that_died_leaves_the_drawing_to_the_run(tmp_path):
    plots.start()
    plots._started["process"].kill()
    plots._started["process"].wait()
    plots.draw(_at(tmp_path)).wait()
    assert (tmp_path / "attributes.png").exists() and (tmp_path / "lengths.png").exists()


def test_a_failure_is_the_runs_own_error(tmp_path):
    """A figure that cannot be drawn fails in the drawing process, then again here, where the card reports it."""
    plots.start()
    broken = _at(tmp_path / "no-such-folder")
    with pytest.raises(FileNotFoundError):
        plots.draw(broken).wait()


def test_an_unused_drawing_process_ends_with_its_input():
    """A run refused or stopped before its card: the process ends when the run's end closes its input."""
    plots.start()
    process = plots._started.pop("process")
    process.stdin.close()
    assert process.wait(timeout=60) == 0


def test_a_run_without_a_card_ends_its_drawing_process():
    """The Python API: a run that fails leaves no drawing process waiting in the notebook's."""
    plots.start()
    process = plots._started["process"]
    plots.discard()
    assert process.poll() is not None and "process" not in plots._started
