"""aiortc bots as the other people of a page test: a sync (Playwright) test adds and removes them,
while trio runs them on a thread of its own. Cheaper than a page each: a small moving picture, no
browser. A bot that publishes a second video is shown on the page's stage, as a shared screen is."""

from __future__ import annotations

import threading

import trio

from testsupport.media_bot import bot, media_thread


class BotCrowd:
    """Bots in ``room`` of ``daemon``; :meth:`add` and :meth:`remove` block until done."""

    def __init__(self, daemon, room: str = "lobby"):
        self.daemon = daemon
        self.room = room
        self._stops: dict[str, trio.Event] = {}
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._media = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bot-crowd", daemon=True)
        self._thread.start()
        if not self._ready.wait(20) or self._token is None:
            raise AssertionError(f"the bots' thread did not start: {self._error!r}")

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # noqa: BLE001 (told to the test by the next call)
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._closed = trio.Event()
        async with media_thread() as media:
            self._media = media
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._ready.set()
                await self._closed.wait()
                for stop in self._stops.values():
                    stop.set()

    async def _hold(self, name: str, screens: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        stop = self._stops[name] = trio.Event()
        async with bot(self.daemon, name, self.room, self._media) as participant:
            for n in range(1 + screens):
                # one negotiation at a time: each video once the answer to the last came
                await participant.publish(audio=False, video=True)
                await participant.wait_for(lambda e, n=n: e["type"] == "sdpAnswer"
                                           and sum(x["type"] == "sdpAnswer" for x in participant.events) > n, 30)
            task_status.started()
            await stop.wait()

    def add(self, name: str, screens: int = 0) -> None:
        """A bot ``name`` joins and publishes a camera (and ``screens`` more videos, shown as screens)."""
        async def start():
            with trio.fail_after(30):
                await self._nursery.start(self._hold, name, screens)
        trio.from_thread.run(start, trio_token=self._token)

    def remove(self, name: str) -> None:
        """Bot ``name`` leaves."""
        trio.from_thread.run_sync(self._stops.pop(name).set, trio_token=self._token)

    def close(self) -> None:
        if self._token is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._closed.set, trio_token=self._token)
        self._thread.join(20)
        if self._error is not None:
            raise self._error
