"""The event loop a run's stages go through: asyncio.run, also from code that already runs an event loop (a
notebook: then in a thread of its own), with SIGTERM and SIGHUP (a scheduler's preemption, `timeout`) stopping the
run as Ctrl-C does."""

import asyncio
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop sending, keep the rows, exit non-zero."""


def run_in_loop(coroutine):
    """asyncio.run, also from code that already runs an event loop (a notebook): then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _with_stop_signals(coroutine)
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="synthkit-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _with_stop_signals(coroutine):
    """Run `coroutine`; SIGTERM or SIGHUP cancels it as Ctrl-C does in asyncio.run (its cleanup runs, at an
    await), then raises Terminated. Raising from the signal handler instead would interrupt whatever line
    ran, e.g. a connection half made, whose clean-up then fails noisily at exit."""
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coroutine)
    received: list = []

    async def main():
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop(signum: int) -> None:
            if not received:
                received.append(signal.Signals(signum).name)
                task.cancel()

        for s in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(s, stop, s)
        try:
            return await coroutine
        finally:
            for s in (signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(s)

    try:
        value = asyncio.run(main())
    except asyncio.CancelledError:
        if received:
            raise Terminated(received[0]) from None
        raise
    if received:  # the run finished before it saw the cancellation: it still was asked to stop
        raise Terminated(received[0])
    return value
