"""Run progress, read from the ledger's current stage: a live bar on a terminal (stderr) and in a Jupyter notebook
(tqdm's notebook bar, where ipywidgets is installed), a plain line every few seconds otherwise (logs, CI, a
launcher's job output)."""

import asyncio
import sys
import time
from typing import Optional


class Progress:
    def __init__(self, stage, every_s: float, stream=None):
        self.stage, self.every_s, self.stream = stage, every_s, stream or sys.stderr
        self._bar = None
        self._ticker: Optional[asyncio.Task] = None

    def start(self) -> None:
        notebook = in_notebook()
        if self.stream.isatty() or notebook:
            if notebook:  # a widget in the cell; tqdm.auto falls back to text where ipywidgets is missing
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm

            tally = self.stage.tally
            self._bar = tqdm(
                total=self.stage.target,
                initial=tally.resumed,
                unit="row",
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
                desc=self.stage.name,
            )
        elif self.every_s > 0:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def update(self) -> None:
        if self._bar is not None:
            tally = self.stage.tally
            self._bar.set_postfix_str(self._counters(), refresh=False)
            self._bar.update(tally.resumed + tally.written - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self.update()
            self._bar.close()
        if self._ticker is not None:
            self._ticker.cancel()

    def _counters(self) -> str:
        s = self.stage.tally
        cost = f", ${s.cost_usd:.4f}" if s.cost_usd else ""
        return f"{s.rejected} rejected, {s.prompt_tokens + s.completion_tokens} tokens{cost}"

    def line(self) -> str:
        tally = self.stage.tally
        rate = tally.written / max(time.monotonic() - self.stage.started, 1e-9)
        return (
            f"synthkit: {self.stage.name}: {tally.resumed + tally.written}/{self.stage.target} rows, "
            f"{rate:.1f} rows/s, {self._counters()}"
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            print(self.line(), file=self.stream, flush=True)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (as tqdm.autonotebook tells): its stderr is no terminal, yet a bar
    in the cell is what its user reads."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
