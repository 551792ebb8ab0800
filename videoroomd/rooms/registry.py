"""The supervisor table: one supervised task per room of this daemon, started, changed and stopped by reloads.

The registry owns a nursery (passed to :meth:`RoomRegistry.run`). Every room
runs under :func:`~videoroomd.daemon.supervisor.supervise`, so a room that
crashes is restarted with backoff while the other rooms run on. Entries are
created synchronously, so two sockets asking for the same new room at once
get the same room, never two.

Two seams decide what the table does: the :class:`AdmissionGate` says
whether a join may go in (it is asked before any dynamic room is made for
it), and the :class:`RoomDirectory` says who runs a room. An entry is made
at once, but its room starts only once the entry's task has claimed the
room's lease: a claim refused (another server runs it) or unanswered ends
that entry, and the joins waiting on it are refused with the reason. The
lease is renewed while the entry lives, a room whose lease is lost is stopped
(that room only), and every call to the directory has a deadline, so a slow
or unreachable directory never holds up a reload or a shutdown. A dynamic
room nobody joins is closed after a grace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable

import structlog
import trio

from ..auth.tokens import AccessToken
from ..config import Config, RoomConfig
from ..daemon.supervisor import ChildState, RestartPolicy, supervise
from .chat_store import ChatStore, tie
from .admission import Admission, AdmissionGate, JoinRefused, check_name, runs_elsewhere, shown_name  # noqa: F401 (shown_name: imported from here)
from .directory import LEASE_TTL, Lease, LeaseLost, LocalRoomDirectory, RoomDirectory, RoomTaken
from .events import NO_EVENTS, RoomEvents
from .leases import ClaimFailed, LeaseHolder
from .reload_diff import ReloadSummary, diff_rooms  # noqa: F401 (diff_rooms: importable from here)
from .room import Engine, Peer, Room
from .room import shown_name as joiner_name
from .throttle import PasswordThrottle

log = structlog.get_logger("videoroomd.rooms")
Waiting = Callable[[dict], None]  # told that a join waits in the waiting room, and where (a JSON-ready dict)

OPEN_TIMEOUT = 5.0  # seconds a join waits for a starting room
UNUSED_GRACE = 10.0  # seconds a dynamic room may stay open without anyone having joined
OWNER = "local"      # who this daemon is in the room directory
LEASE_LOST = "the room moved to another server; please rejoin"
NOT_CLAIMED = "room '{name}' cannot be opened right now; try again in a moment"


@dataclass(eq=False)
class RoomEntry:
    config: RoomConfig
    dynamic: bool
    state: ChildState
    holder: LeaseHolder  # the room's lease in the directory
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    room: Room | None = None
    has_room: trio.Event = field(default_factory=trio.Event)  # set once the first Room object exists
    previous: RoomEntry | None = None   # the name's entry before this one, until it let its lease go
    refusal: tuple[str, str] | None = None  # (code, reason) for its joins once its claim was refused
    retired: bool = False       # out of the table: it must not start its room any more
    lost: bool = False          # the lease was lost: the room is not run here again
    grace: float | None = None  # seconds its dynamic room may stay unused; None: the registry's

    @property
    def admission(self) -> Admission:
        return Admission(self.config, self.dynamic)

    @property
    def lease(self) -> Lease | None:
        """The lease this entry runs its room under; None before its claim and once it ended."""
        return self.holder.lease


class RoomRegistry:
    """The supervisor table: the rooms this daemon runs, by name (``entries``)."""

    def __init__(
        self,
        config: Config,
        engine_factory: Callable[[RoomConfig], Engine | None] = lambda _config: None,
        policy: RestartPolicy = RestartPolicy(),
        *,
        unused_grace: float = UNUSED_GRACE,
        directory: RoomDirectory | None = None,
        owner: str = OWNER,
        lease_ttl: float = LEASE_TTL,
        ride_out: bool = False,
        events: RoomEvents = NO_EVENTS,
        chat_store: ChatStore | None = None,
    ):
        """``directory``: who runs which room (by default this process's own, on trio's clock);
        ``owner``: this daemon's name there; ``lease_ttl``: seconds a room's lease lives unrenewed;
        ``ride_out``: rooms go on while the directory does not answer (see LeaseHolder);
        ``events``: what every room tells of itself (webhooks);
        ``chat_store``: where the rooms' chat histories outlive this process (None: in memory only)."""
        self.config = config
        self.engine_factory = engine_factory
        self.policy = policy
        self.unused_grace = unused_grace
        self.gate = AdmissionGate(config)
        self.directory = directory if directory is not None else LocalRoomDirectory(trio.current_time)
        self.owner = owner
        self.lease_ttl = lease_ttl
        self.ride_out = ride_out
        self.events = events
        self.chat_store = chat_store
        self.entries: dict[str, RoomEntry] = {}
        self._leaving: set[RoomEntry] = set()  # removed by a reload, draining: counted and stopped with the rest
        self._letting_go: dict[str, RoomEntry] = {}  # retired entries still giving their lease up, by name
        self._nursery: trio.Nursery | None = None

    @property
    def refusal(self) -> tuple[str, str] | None:
        """(code, reason) while draining: every join is refused with it."""
        return self.gate.refusal

    @property
    def throttle(self) -> PasswordThrottle:
        return self.gate.throttle

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the configured rooms and supervise them; never returns until cancelled.

        ``started`` once every configured room is open (its media opened on a worker),
        or OPEN_TIMEOUT has passed: a room that cannot open keeps being retried by its
        supervisor, and must not hold up the others."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            entries = [self._start_configured(room_config) for room_config in self.config.rooms.values()]
            with trio.move_on_after(OPEN_TIMEOUT):
                for entry in entries:
                    await entry.has_room.wait()
                    if entry.room is not None:
                        await entry.room.opened.wait()
            task_status.started(self)
            await trio.sleep_forever()

    # -- joining -----------------------------------------------------------------------
    def admit(self, name: str, password: str | None, address: str, token: str | None = None) -> Admission:
        """What room ``name`` admits a join from ``address`` with ``password`` or access ``token`` to
        (its settings, and the checked token's ticket).

        Synchronous and makes no room: a join is checked before a dynamic room
        is started for it. Raises JoinRefused (bad_room_name, shutting_down,
        unknown_room, a token's refusal, too_many_attempts, wrong_password) otherwise.
        """
        entry = self.entries.get(name) if isinstance(name, str) else None
        running = entry.admission if entry is not None else None
        return self.gate.admit(name, password, address, running=running, now=trio.current_time(), token=token)

    async def join(self, name: str, display: str, password: str | None, *, kind: str, address: str,
                   token: str | None = None, waiting: Waiting | None = None) -> tuple[Room, Peer]:
        """Check the join (:meth:`admit`), open the room and add the peer; returns both.

        Raises JoinRefused with a reason a person can read.
        """
        ticket = self.admit(name, password, address, token).ticket
        return await self.enter(name, display, password, kind=kind, ticket=ticket, waiting=waiting)

    async def enter(self, name: str, display: str, password: str | None, *, kind: str,
                    ticket: AccessToken | None = None, waiting: Waiting | None = None) -> tuple[Room, Peer]:
        """Open room ``name`` and add the peer (already admitted, with ``ticket`` when by a token);
        returns both. In a room with a waiting room it first waits there for a moderator (``waiting``
        hears that it does). Raises JoinRefused."""
        room = await self.open_room(name)
        if room.at_door(password, kind=kind, ticket=ticket):
            await room.waiting.wait(joiner_name(display, ticket), waiting)
            room = await self.open_room(name)
        # No checkpoint between: the room is still open.
        return room, room.join(display, password, kind=kind, ticket=ticket)

    # -- looking rooms up --------------------------------------------------------------
    async def open_room(self, name: str) -> Room:
        """The running room called ``name``, created from [defaults] if rooms are dynamic.

        Raises JoinRefused when the name is not a room name, there is no such
        room, it is stopping or failed, another server runs it or the room
        directory did not answer, dynamic rooms are at their cap, or the daemon
        is draining.
        """
        for _ in range(2):
            entry = self._entry_for(name)
            room = await self._opened_room(entry)
            if room is not None and not room.stopping:
                return room
            if entry.refusal is not None:  # its claim was refused: what the directory said is the answer
                raise JoinRefused(*entry.refusal)
            if self.entries.get(name) is entry:
                break
            # The room went away while this join waited for it (it emptied, or a reload
            # changed or removed it): the name's next room, if there is one, takes the join.
        raise JoinRefused("room_unavailable", f"room '{name}' is restarting; try again in a moment")

    def _entry_for(self, name: str) -> RoomEntry:
        """The entry of room ``name``, started now if it is not running here; raises JoinRefused.

        Synchronous, so that two joins of a new room land in one entry; whether
        the room may run here is the directory's answer to the entry's claim."""
        entry = self.entries.get(name)
        if entry is not None:
            self.gate.may_open(name, running=entry.admission, failed=entry.state.status == "failed")
            return entry
        admission = self.gate.may_open(name, running=None, dynamic_count=self.dynamic_count())
        return self._start(admission.config, dynamic=admission.dynamic)

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
        """Start an entry for the room; its task claims the room's lease before the room is made."""
        assert self._nursery is not None, "RoomRegistry.run() is not running"
        name = room_config.name
        holder = LeaseHolder(self.directory, name, self.owner, self.lease_ttl, ride_out=self.ride_out)
        entry = RoomEntry(room_config, dynamic, ChildState(name), holder, previous=self._letting_go.get(name))
        self.entries[name] = entry
        self._nursery.start_soon(self._run_entry, entry, name=f"room:{name}")
        return entry

    def create(self, room_config: RoomConfig, unused_grace: float) -> None:
        """Start a dynamic room with ``room_config`` (asked for through the server API), closed once
        nobody joined it within ``unused_grace`` seconds or the last person left. Raises JoinRefused
        (bad_room_name, the drain's code, room_exists, too_many_rooms)."""
        name = room_config.name
        check_name(name)
        if self.gate.refusal is not None:
            raise JoinRefused(*self.gate.refusal)
        if name in self.entries or name in self.config.rooms:
            raise JoinRefused("room_exists", f"room '{name}' exists already")
        cap = self.config.server.max_dynamic_rooms
        if self.dynamic_count() >= cap:
            raise JoinRefused("too_many_rooms", f"the server already runs its limit of {cap} rooms made on demand")
        self._start(room_config, dynamic=True).grace = unused_grace

    def _start_configured(self, room_config: RoomConfig) -> RoomEntry:
        return self._start(room_config, dynamic=False)

    def _retire(self, name: str) -> RoomEntry | None:
        """Take room ``name``'s entry out of the table and give up its lease now, so that the
        name can be claimed again soon (the entry's room may still be closing): the name's
        next entry claims once this one let go."""
        entry = self.entries.pop(name, None)
        if entry is not None:
            assert self._nursery is not None
            entry.retired = True
            if not entry.holder.let_go.is_set():
                self._letting_go[name] = entry
                self._nursery.start_soon(self._let_go, entry, entry.holder.release)
        return entry

    async def _let_go(self, entry: RoomEntry, give_up: Callable[[], Awaitable[None]]) -> None:
        """Run ``give_up`` (the holder's release or close: bounded, never raises); then the
        name's next entry no longer waits for this one once it let go."""
        await give_up()
        name = entry.config.name
        if entry.holder.let_go.is_set() and self._letting_go.get(name) is entry:
            del self._letting_go[name]

    async def _claim(self, entry: RoomEntry) -> bool:
        """Claim the entry's room, once the name's previous entry let go; True when its room may start.
        A refused or unanswered claim leaves the refusal its joins get (the holder logged why)."""
        previous, entry.previous = entry.previous, None
        name = entry.config.name
        try:
            await entry.holder.claim(after=previous.holder if previous is not None else None)
        except RoomTaken:
            refused = runs_elsewhere(name)
            entry.refusal = (refused.code, refused.reason)
            return False
        except ClaimFailed as failed:
            entry.state.last_error = str(failed)
            entry.refusal = ("room_unavailable", NOT_CLAIMED.format(name=name))
            return False
        return not entry.retired  # retired while it claimed: the lease is given up at once

    async def _run_entry(self, entry: RoomEntry) -> None:
        name = entry.config.name
        structlog.contextvars.bind_contextvars(room=name)
        try:
            with entry.scope:
                if await self._claim(entry):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._keep_lease, entry)
                        await supervise(f"room:{name}", lambda: self._run_room_once(entry), entry.state, self.policy)
                        nursery.cancel_scope.cancel()
                self._no_room(entry)
                await entry.holder.close()  # nothing runs under it any more
                if entry.dynamic and entry.state.status == "failed":
                    # Joins hear that it is out of order for a while; then its place under
                    # max_dynamic_rooms is freed (a reload never restarts dynamic rooms).
                    await trio.sleep(self.policy.window)
        finally:
            self._no_room(entry)
            await self._let_go(entry, entry.holder.close)  # bounded, and runs on when cancelled
        if (entry.dynamic or entry.state.status != "failed") and self.entries.get(name) is entry:
            del self.entries[name]

    @staticmethod
    def _no_room(entry: RoomEntry) -> None:
        entry.room = None
        entry.has_room.set()  # joins still waiting for a room of this entry learn there is none

    async def _keep_lease(self, entry: RoomEntry) -> None:
        """Renew the entry's lease while it holds one; returns once it holds none.
        A lost lease stops that room, with a log line that says so."""
        lost = await entry.holder.keep(lambda: entry.room.media_worker() if entry.room is not None else None)
        if lost is not None:
            self._lease_lost(entry, lost)

    def _lease_lost(self, entry: RoomEntry, lost: LeaseLost) -> None:
        name = entry.config.name
        log.error("room lease lost; stopping the room", room=name, token=lost.lease.token, why=lost.why)
        entry.lost = True  # its supervisor must not start it again
        if self.entries.get(name) is entry:
            del self.entries[name]
        if entry.room is not None and not entry.room.stopping:
            entry.room.stop(LEASE_LOST, rejoin=True)
        else:  # starting, or waiting to be restarted: no room to tell
            entry.scope.cancel()

    async def _run_room_once(self, entry: RoomEntry) -> None:
        if entry.lost:  # lost while the room was restarting: it is someone else's now
            return
        grace = entry.grace if entry.grace is not None else self.unused_grace
        room = Room(entry.config, engine=self.engine_factory(entry.config),
                    unused_grace=grace if entry.dynamic else None, events=self.events)
        if entry.dynamic:
            room.on_empty = lambda: self._stop_dynamic(entry, room)
        if self.chat_store is not None:  # before joins reach the room: they get the history
            await tie(self.chat_store, entry.config.name, room.chat_log)
        entry.room = room
        entry.has_room.set()
        await room.run()

    def _stop_dynamic(self, entry: RoomEntry, room: Room) -> None:
        # Synchronous, so the next join of this name makes a fresh room.
        if self.chat_store is not None and entry.lease is not None:  # the room ended: its history with it
            self.chat_store.forget(entry.config.name, entry.lease.token)
        if self.entries.get(entry.config.name) is entry:
            self._retire(entry.config.name)
        room.stop("the last person left")

    def apply(self, config: Config, drain_timeout: float) -> ReloadSummary:
        """Switch to ``config``: start added rooms, restart changed ones, drain removed ones."""
        old = {n: e.config for n, e in self.entries.items() if not e.dynamic}
        summary = diff_rooms(old, dict(config.rooms))
        self.config = config
        self.gate.config = config
        for name in summary.removed:
            entry = self._retire(name)
            assert self._nursery is not None and entry is not None
            self._leaving.add(entry)
            self._nursery.start_soon(self._drain_and_stop, entry, drain_timeout, "room was removed from the configuration")
        for name in summary.changed:
            entry = self._retire(name)
            assert entry is not None
            self._stop_entry(entry, "room settings changed; please rejoin", rejoin=True)
            self._start_configured(config.rooms[name])
        failed = tuple(n for n in summary.untouched if self.entries[n].state.status == "failed")
        for name in failed:
            self._retire(name)
            self._start_configured(config.rooms[name])
        summary = replace(summary, untouched=tuple(n for n in summary.untouched if n not in failed), restarted=failed)
        for name in summary.added:
            existing = self._retire(name)
            if existing is not None:  # a dynamic room of that name becomes a configured one
                self._stop_entry(existing, "room settings changed; please rejoin", rejoin=True)
            self._start_configured(config.rooms[name])
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
        self.gate.refuse_all(code, reason)
        for entry in self.entries.values():
            if entry.room is not None:
                entry.room.refuse_joins(code, reason)

    def stop_all(self, reason: str, *, rejoin: bool = False) -> None:
        for entry in [*self.entries.values(), *self._leaving]:
            self._stop_entry(entry, reason, rejoin=rejoin)
