"""All rooms of the daemon: one supervised task each, started, changed and stopped by reloads.

The registry owns a nursery (passed to :meth:`RoomRegistry.run`). Every room
runs under :func:`~videoroomd.daemon.supervisor.supervise`, so a room that
crashes is restarted with backoff while the other rooms run on. Entries are
created synchronously, so two sockets asking for the same new room at once
get the same room, never two.

A join is checked (room name, password, wrong-password throttle) before any
dynamic room is made for it, dynamic rooms are capped by ``[server]
max_dynamic_rooms``, and a dynamic room nobody joins is closed after a grace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import structlog
import trio

from ..config import Config, RoomConfig
from ..config.validate import ROOM_NAME_RULE, is_room_name
from ..daemon.supervisor import ChildState, RestartPolicy, supervise
from .room import Engine, JoinRefused, Peer, Room, password_matches
from .throttle import PasswordThrottle

log = structlog.get_logger("videoroomd.rooms")

OPEN_TIMEOUT = 5.0  # seconds a join waits for a starting room
UNUSED_GRACE = 10.0  # seconds a dynamic room may stay open without anyone having joined
# The throttle's room for dynamic rooms: they all share the [defaults] password, so
# a guesser must not get a fresh set of attempts by asking for another name.
DYNAMIC = "*dynamic*"


def shown_name(name: str) -> str:
    """``name`` quoted for a message or a log line: control characters escaped, at most 64 characters."""
    return repr(name[:64] + "…" if len(name) > 64 else name)


@dataclass(eq=False)
class RoomEntry:
    config: RoomConfig
    dynamic: bool
    state: ChildState
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    room: Room | None = None
    has_room: trio.Event = field(default_factory=trio.Event)  # set once the first Room object exists


@dataclass(frozen=True)
class ReloadSummary:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    untouched: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()  # unchanged, but out of order: a reload gives them another chance


def diff_rooms(old: dict[str, RoomConfig], new: dict[str, RoomConfig]) -> ReloadSummary:
    """Which rooms a reload adds, removes, changes, and leaves alone (pure)."""
    return ReloadSummary(
        added=tuple(sorted(n for n in new if n not in old)),
        removed=tuple(sorted(n for n in old if n not in new)),
        changed=tuple(sorted(n for n in new if n in old and new[n] != old[n])),
        untouched=tuple(sorted(n for n in new if n in old and new[n] == old[n])),
    )


class RoomRegistry:
    """The rooms of the running daemon, by name."""

    def __init__(
        self,
        config: Config,
        engine_factory: Callable[[RoomConfig], Engine | None] = lambda _config: None,
        policy: RestartPolicy = RestartPolicy(),
        *,
        unused_grace: float = UNUSED_GRACE,
    ):
        self.config = config
        self.engine_factory = engine_factory
        self.policy = policy
        self.unused_grace = unused_grace
        self.throttle = PasswordThrottle()
        self.entries: dict[str, RoomEntry] = {}
        self._leaving: set[RoomEntry] = set()  # removed by a reload, draining: counted and stopped with the rest
        # (code, reason) while draining: a fresh JoinRefused is raised from it each time.
        self.refusal: tuple[str, str] | None = None
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the configured rooms and supervise them; never returns until cancelled.

        ``started`` once every configured room is open (its media opened on a worker),
        or OPEN_TIMEOUT has passed: a room that cannot open keeps being retried by its
        supervisor, and must not hold up the others."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            entries = [self._start(room_config, dynamic=False) for room_config in self.config.rooms.values()]
            with trio.move_on_after(OPEN_TIMEOUT):
                for entry in entries:
                    await entry.has_room.wait()
                    if entry.room is not None:
                        await entry.room.opened.wait()
            task_status.started(self)
            await trio.sleep_forever()

    # -- joining -----------------------------------------------------------------------
    def admit(self, name: str, password: str | None, address: str) -> RoomConfig:
        """The settings of room ``name`` once ``password`` opens it for ``address``.

        Synchronous and makes no room: a join is checked before a dynamic room
        is started for it. Raises JoinRefused (bad_room_name, shutting_down,
        unknown_room, too_many_attempts, wrong_password) otherwise.
        """
        if not is_room_name(name):
            raise JoinRefused("bad_room_name", f"{shown_name(name)} is not a room name: {ROOM_NAME_RULE}")
        if self.refusal is not None:
            raise JoinRefused(*self.refusal)
        entry = self.entries.get(name)
        if entry is not None:
            config, dynamic = entry.config, entry.dynamic
        elif self.config.server.dynamic_rooms:
            config, dynamic = self.config.room_from_defaults(name), True
        else:
            raise JoinRefused("unknown_room", f"there is no room called '{name}'")
        if config.password is None:
            return config
        key, now = (DYNAMIC if dynamic else name), trio.current_time()
        wait = self.throttle.wait(address, key, now)
        if wait:
            raise JoinRefused("too_many_attempts",
                              f"too many wrong passwords for room '{name}' from your address; try again in {wait} s")
        if not password_matches(password, config.password):
            if password:  # a join without a password is asking whether one is needed, not guessing
                self.throttle.wrong(address, key, now)
            raise JoinRefused("wrong_password", "wrong password" if password else "this room needs a password")
        return config

    async def join(self, name: str, display: str, password: str | None, *, kind: str, address: str) -> tuple[Room, Peer]:
        """Check the join (:meth:`admit`), open the room and add the peer; returns both.

        Raises JoinRefused with a reason a person can read.
        """
        self.admit(name, password, address)
        return await self.enter(name, display, password, kind=kind)

    async def enter(self, name: str, display: str, password: str | None, *, kind: str) -> tuple[Room, Peer]:
        """Open room ``name`` and add the peer (already admitted); returns both. Raises JoinRefused."""
        room = await self.open_room(name)
        return room, room.join(display, password, kind=kind)  # no checkpoint between: the room is still open

    # -- looking rooms up --------------------------------------------------------------
    async def open_room(self, name: str) -> Room:
        """The running room called ``name``, created from [defaults] if rooms are dynamic.

        Raises JoinRefused when the name is not a room name, there is no such
        room, it is stopping or failed, dynamic rooms are at their cap, or the
        daemon is draining.
        """
        if not is_room_name(name):
            raise JoinRefused("bad_room_name", f"{shown_name(name)} is not a room name: {ROOM_NAME_RULE}")
        for _ in range(2):
            entry = self._entry_for(name)
            room = await self._opened_room(entry)
            if room is not None and not room.stopping:
                return room
            if self.entries.get(name) is entry:
                break
            # The room went away while this join waited for it (it emptied, or a reload
            # changed or removed it): the name's next room, if there is one, takes the join.
        raise JoinRefused("room_unavailable", f"room '{name}' is restarting; try again in a moment")

    def _entry_for(self, name: str) -> RoomEntry:
        """The entry of room ``name``, started now if it is a new dynamic room; raises JoinRefused."""
        if self.refusal is not None:
            raise JoinRefused(*self.refusal)
        entry = self.entries.get(name)
        if entry is None:
            if not self.config.server.dynamic_rooms:
                raise JoinRefused("unknown_room", f"there is no room called '{name}'")
            cap = self.config.server.max_dynamic_rooms
            if self.dynamic_count() >= cap:
                raise JoinRefused("too_many_rooms", f"the server already runs its limit of {cap} rooms made on demand; "
                                                    "join a room that is open, or try again later")
            entry = self._start(self.config.room_from_defaults(name), dynamic=True)
        if entry.state.status == "failed":
            raise JoinRefused("room_failed", f"room '{name}' is out of order (it kept failing); the operator has been told")
        return entry

    @staticmethod
    async def _opened_room(entry: RoomEntry) -> Room | None:
        """The entry's room once it opened; None when it ended first or did not open within OPEN_TIMEOUT."""
        with trio.move_on_after(OPEN_TIMEOUT):
            await entry.has_room.wait()
            room = entry.room
            if room is not None:
                await room.settled.wait()
                if room.opened.is_set():
                    return room
        return None

    def get(self, name: str) -> Room | None:
        entry = self.entries.get(name)
        return entry.room if entry is not None else None

    def dynamic_count(self) -> int:
        """Dynamic rooms running or starting now (what ``max_dynamic_rooms`` caps)."""
        return sum(1 for e in self.entries.values() if e.dynamic)

    def total_peers(self) -> int:
        """People in every room, those still draining after a reload removed them included."""
        return sum(e.room.peer_count() for e in (*self.entries.values(), *self._leaving) if e.room is not None)

    def snapshot(self) -> list[dict]:
        """A JSON-ready view of every room, for `videoroomd rooms --live` and metrics."""
        rows = []
        for name in sorted(self.entries):
            entry = self.entries[name]
            room = entry.room
            rows.append({
                "name": name,
                "status": entry.state.status,
                "dynamic": entry.dynamic,
                "max_peers": entry.config.max_peers,
                "password": entry.config.password is not None,
                "peers": room.peer_count("rtc") if room else 0,
                "relay_peers": room.peer_count("relay") if room else 0,
                "tracks": room.track_count() if room else 0,
                "media": room.media_counters() if room else {},
                "worker": room.media_worker() if room else None,
                "restarts": entry.state.restarts,
                "last_error": entry.state.last_error,
            })
        return rows

    # -- changing the set of rooms -------------------------------------------------------
    def _start(self, room_config: RoomConfig, *, dynamic: bool) -> RoomEntry:
        assert self._nursery is not None, "RoomRegistry.run() is not running"
        entry = RoomEntry(room_config, dynamic, ChildState(room_config.name))
        self.entries[room_config.name] = entry
        self._nursery.start_soon(self._run_entry, entry, name=f"room:{room_config.name}")
        return entry

    async def _run_entry(self, entry: RoomEntry) -> None:
        name = entry.config.name
        structlog.contextvars.bind_contextvars(room=name)
        with entry.scope:
            await supervise(f"room:{name}", lambda: self._run_room_once(entry), entry.state, self.policy)
            entry.room = None
            entry.has_room.set()
            if entry.dynamic and entry.state.status == "failed":
                # Joins hear that it is out of order for a while; then its place under
                # max_dynamic_rooms is freed (a reload never restarts dynamic rooms).
                await trio.sleep(self.policy.window)
        entry.room = None
        entry.has_room.set()  # joins still waiting for a room of this entry learn there is none
        if (entry.dynamic or entry.state.status != "failed") and self.entries.get(name) is entry:
            del self.entries[name]

    async def _run_room_once(self, entry: RoomEntry) -> None:
        room = Room(entry.config, engine=self.engine_factory(entry.config),
                    unused_grace=self.unused_grace if entry.dynamic else None)
        if entry.dynamic:
            room.on_empty = lambda: self._stop_dynamic(entry, room)
        entry.room = room
        entry.has_room.set()
        await room.run()

    def _stop_dynamic(self, entry: RoomEntry, room: Room) -> None:
        # Synchronous, so the next join of this name makes a fresh room.
        if self.entries.get(entry.config.name) is entry:
            del self.entries[entry.config.name]
        room.stop("the last person left")

    def apply(self, config: Config, drain_timeout: float) -> ReloadSummary:
        """Switch to ``config``: start added rooms, restart changed ones, drain removed ones."""
        old = {n: e.config for n, e in self.entries.items() if not e.dynamic}
        summary = diff_rooms(old, dict(config.rooms))
        self.config = config
        for name in summary.removed:
            entry = self.entries.pop(name)
            assert self._nursery is not None
            self._leaving.add(entry)
            self._nursery.start_soon(self._drain_and_stop, entry, drain_timeout, "room was removed from the configuration")
        for name in summary.changed:
            entry = self.entries.pop(name)
            self._stop_entry(entry, "room settings changed; please rejoin", rejoin=True)
            self._start(config.rooms[name], dynamic=False)
        failed = tuple(n for n in summary.untouched if self.entries[n].state.status == "failed")
        for name in failed:
            self.entries.pop(name)
            self._start(config.rooms[name], dynamic=False)
        summary = replace(summary, untouched=tuple(n for n in summary.untouched if n not in failed), restarted=failed)
        for name in summary.added:
            existing = self.entries.pop(name, None)
            if existing is not None:  # a dynamic room of that name becomes a configured one
                self._stop_entry(existing, "room settings changed; please rejoin", rejoin=True)
            self._start(config.rooms[name], dynamic=False)
        return summary

    def _stop_entry(self, entry: RoomEntry, reason: str, *, rejoin: bool = False) -> None:
        if entry.room is not None:
            entry.room.stop(reason, rejoin=rejoin)
        else:
            entry.scope.cancel()

    async def _drain_and_stop(self, entry: RoomEntry, timeout: float, reason: str) -> None:
        room = entry.room
        try:
            if room is not None:
                room.refuse_joins("closed", reason)
                with trio.move_on_after(timeout):
                    while room.peer_count():
                        await room.became_empty.wait()
            self._stop_entry(entry, reason)
        finally:
            self._leaving.discard(entry)

    def refuse_all(self, code: str, reason: str) -> None:
        """Take no new peers anywhere (draining); calls in progress go on."""
        self.refusal = (code, reason)
        for entry in self.entries.values():
            if entry.room is not None:
                entry.room.refuse_joins(code, reason)

    def stop_all(self, reason: str, *, rejoin: bool = False) -> None:
        for entry in [*self.entries.values(), *self._leaving]:
            self._stop_entry(entry, reason, rejoin=rejoin)
