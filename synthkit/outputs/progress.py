"""Run progress on stderr: a live bar on a terminal, a plain line every few seconds otherwise
(logs, CI, a launcher's job output)."""

import asyncio
import sys
import time
from typing import Optional


class Progress:
    def __init__(self, total: int, every_s: float, stream=sys.stderr):
        self.total, self.every_s, self.stream = total, every_s, stream
        self.stats = None
        self._started = time.monotonic()
        self._bar = None
        self._ticker: Optional[asyncio.Task] = None

    def start(self, stats) -> None:
        self.stats = stats
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.stats.resumed, unit="row", file=self.stream,
                             dynamic_ncols=True, smoothing=0.1)
        elif self.every_s > 0:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def update(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self._counters(), refresh=False)
            self._bar.update(self.stats.resumed + self.stats.written - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self.update()
            self._bar.close()
        if self._ticker is not None:
            self._ticker.cancel()

    def _counters(self) -> str:
        s = self.stats
        cost = f", ${s.cost_usd:.4f}" if s.cost_usd else ""
        return f"{s.rejected} rejected, {s.prompt_tokens + s.completion_tokens} tokens{cost}"

    def line(self) -> str:
        done = self.stats.resumed + self.stats.written
        rate = self.stats.written / max(time.monotonic() - self._started, 1e-9)
        return f"synthkit: {done}/{self.total} rows, {rate:.1f} rows/s, {self._counters()}"

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            print(self.line(), file=self.stream, flush=True)
