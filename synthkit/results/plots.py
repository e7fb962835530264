"""The dataset card's plots, drawn with matplotlib (synthkit/results/card.py says what they show). Importing matplotlib
takes half a second, about what a small run takes to make its rows: a run that will write a card starts a drawing
process first thing (`start`), which imports matplotlib beside the run, and the card hands it its figures (`draw`)
while it writes its text. Without that process, or if it fails, the figures are drawn here: the same code draws the
same files either way.

A figure is a dict: {"kind": "bars", "path": ..., "panels": [[title, values, numbers, expected or null], ...]}
(horizontal bars, one panel per attribute, the expected rows of each value marked across its bar) or {"kind": "hist", "path": ..., "panels": [[title, numbers], ...]} (histograms of 30 bins).
This module imports nothing of synthkit: the drawing process loads it by its path alone."""

import json
import subprocess
import sys
from pathlib import Path

WAIT_S = 300  # for the drawing process, before the figures are drawn here instead
_BOOT = (  # the drawing process: this file, loaded by path (no synthkit package to import), then serve()
    "import importlib.util as u, sys; s = u.spec_from_file_location('synthkit_plots', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.serve()"
)
_started: dict = {}  # "process": the drawing process `start` made, until a card takes it


def start() -> None:
    """Start the drawing process (once): it imports matplotlib now and waits for one card's figures."""
    if "process" in _started:
        return
    try:
        _started["process"] = subprocess.Popen(
            [sys.executable, "-c", _BOOT, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its failures come back as a line, and the figures are then drawn here
            text=True,
            encoding="utf-8",
        )
    except OSError:
        pass


def discard() -> None:
    """End the drawing process `start` made, if no card took it."""
    process = _started.pop("process", None)
    if process is not None:
        Drawing._stop(process)


class Drawing:
    """Figures on their way to their files; `wait` returns once they are there (or raises why not)."""

    def __init__(self, figures: list):
        self.figures, self._process = figures, _started.pop("process", None)
        if self._process is not None:
            try:
                self._process.stdin.write(json.dumps(figures) + "\n")
                self._process.stdin.flush()
            except (OSError, ValueError):  # the process is gone: drawn here
                self._process = self._stop(self._process)

    def wait(self) -> None:
        if self._process is not None:
            try:
                answer, _ = self._process.communicate(timeout=WAIT_S)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                answer = ""
            self._process = self._stop(self._process)
            if answer.strip() == "ok":
                return
        draw_here(self.figures)  # no drawing process, or it failed: here, where a failure says why

    @staticmethod
    def _stop(process) -> None:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()
            except OSError:  # what it still buffered cannot reach a process that is gone
                pass
        return None


def draw(figures: list) -> Drawing:
    """Start drawing `figures` (in the drawing process if one was started); `.wait()` for them."""
    return Drawing(figures)


def draw_here(figures: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for figure in figures:
        panels = figure["panels"]
        fig, axes = _grid(plt, len(panels))
        for ax, panel in zip(axes, panels):
            if figure["kind"] == "bars":
                title, values, numbers, expected = panel
                ax.barh(range(len(values)), numbers)
                if expected is not None:  # the expected rows of each value, a mark across its bar
                    ax.scatter(expected, range(len(values)), marker="|", s=120, color="black", label="expected")
                ax.set_yticks(range(len(values)), values, fontsize=7)
                ax.invert_yaxis()
            else:
                title, numbers = panel
                ax.hist(numbers, bins=30)
            ax.set_title(title, fontsize=9)
        fig.savefig(Path(figure["path"]), dpi=72)
        plt.close(fig)


def _grid(plt, n: int):
    columns = min(n, 3)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.2 * rows), squeeze=False)
    # Fixed margins: tight_layout would draw every figure twice, which takes most of the card's time.
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.08, top=0.94, wspace=0.55, hspace=0.4)
    flat = [ax for line in axes for ax in line]
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def serve() -> None:
    """The drawing process: matplotlib imported first, then one line of figures from stdin, drawn; "ok" or the
    failure on stdout. An end of input (the run ended without a card) ends it."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; it closes our input
    try:
        os.nice(19)  # the cores the run leaves idle (it waits for its model most of the time), never the run's own
    except (AttributeError, OSError):
        pass
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception as e:
        print(f"error {type(e).__name__}: {e}", flush=True)
        return
    line = sys.stdin.readline()
    if not line.strip():
        return
    try:
        draw_here(json.loads(line))
    except Exception as e:
        print(f"error {type(e).__name__}: {e}", flush=True)
        return
    print("ok", flush=True)
