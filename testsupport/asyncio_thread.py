"""The one place where asyncio lives: an event loop in its own thread, called from trio.

aiortc is asyncio code; the daemon is trio. aiortc runs in a plain asyncio
loop on a thread of its own (cheaper per packet than hosting it in trio
through trio-asyncio), and the two sides talk through two doors only:
:meth:`AsyncioThread.call` runs a coroutine there and awaits it here, and
:meth:`AsyncioThread.notify` hands a plain callable back to trio.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, Awaitable, Callable

import structlog
import trio

from videoroomd.media.workers import event_loop
from videoroomd.media.workers.task_errors import MAX_ERRORS, TaskErrors  # noqa: F401  (MAX_ERRORS: for tests)

log = structlog.get_logger("testsupport.asyncio_thread")



class BridgeClosed(Exception):
    """The asyncio thread is gone; nothing more can be run there."""


class AsyncioThread:
    """An asyncio event loop running in a daemon thread, with a trio token to call back."""

    def __init__(self, name: str = "media"):
        self.loop = event_loop.new_event_loop()
        self.task_errors = TaskErrors()
        self.loop.set_exception_handler(self.task_errors)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._closing = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def errors(self):
        return self.task_errors.errors

    @property
    def error_count(self) -> int:
        return self.task_errors.error_count

    @property
    def errors_logged(self) -> int:
        return self.task_errors.errors_logged

    def start(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._thread.start()

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``fn(*args)`` on the asyncio loop and return its result here; its exception is raised here.

        Cancelling the trio side cancels the asyncio task.
        """
        if self._closing or not self._thread.is_alive():
            raise BridgeClosed("the media thread is not running")
        future: Future = asyncio.run_coroutine_threadsafe(_wrap(fn, *args), self.loop)
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake(_future: Future) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        if future.cancelled():
            raise BridgeClosed("the media thread stopped before the call finished")
        return future.result()

    def notify(self, fn: Callable[..., None], *args: Any) -> None:
        """From the asyncio thread: run ``fn(*args)`` in trio soon (it must not block).

        An exception from ``fn`` is logged: raised there, it would end the whole trio run.
        """
        if self._token is None:
            return
        try:
            self._token.run_sync_soon(_guarded, fn, *args)
        except trio.RunFinishedError:
            pass

    def stop(self) -> None:
        """Cancel what still runs there (its callers get BridgeClosed), then end the thread."""
        self._closing = True
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._shutdown()))
            self._thread.join(timeout=5)

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=2) if tasks else None
        self.loop.stop()


def _guarded(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("a callback from the media thread failed")


async def _wrap(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await fn(*args)
