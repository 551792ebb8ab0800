"""Any node accepts any participant: the room service of a clustered daemon.

A join is routed by the room directory: a room nobody holds is placed on
the node with the most room left (:func:`.nodes.pick_node` over the nodes'
published loads; this node when it is the one, or when the node directory
does not answer) and claimed there as its registry opens it, a room this
node holds is joined locally, and a room another node holds is joined
through that node over Redis (:mod:`.remote_link` here, :mod:`.room_side` there; messages on
:mod:`.link_bus`). Media never crosses nodes: the room's engine, and so the
answer's candidates and TURN servers, are those of the room's node.

Both halves beat every ``beat`` seconds: each node tells every other node
the keys of the links it holds with it (``links_alive`` from the edge,
``endpoints_alive`` from the room's node). A link not spoken of for
``silence`` seconds ends (unless this node cannot reach Redis: then
nobody is to blame, and the links ride it out): at the edge with ``retry`` (the room's node died;
the client joins again and the room is placed again once its lease lapsed),
at the room's node by leaving the room (the edge died).
"""

from __future__ import annotations

from typing import Any, Callable

import structlog
import trio

from ..auth.tokens import AccessToken
from ..rooms.admission import JoinRefused
from ..rooms.directory import RoomDirectory
from ..rooms.link import ParticipantLink
from ..rooms.link_codec import encode
from ..rooms.local_link import LocalRoomService
from ..rooms.moderation import ModerationRefused
from .link_bus import LinkBus
from .nodes import NodeDirectory, pick_node
from .remote_link import EdgeLinks
from .room_calls import RoomCalls
from .room_view import ClusterRoomView
from .room_side import RoomSide

log = structlog.get_logger("videoroomd.cluster")

BEAT = 1.0      # seconds between the links' beats
SILENCE = 3.5   # seconds without a word of a link before it is ended
LOOKUP_TIMEOUT = 1.0
JOIN_TIMEOUT = 2.0          # seconds a join waits for the node that runs the room
PLACED_JOIN_TIMEOUT = 7.0   # and for a node the room was just placed on (it opens the room first)
DIRECTORY_AWAY = ("room '{name}' cannot be joined right now: the servers' shared room directory (Redis) does not "
                  "answer; calls in progress go on; try again in a moment")
OVERRUN = "this server fell behind the room's messages; please rejoin"
MOVE_WAIT = 5.0     # seconds a join waits for the lease of a dead node's room to lapse (clients wait 10 s)
MOVE_POLL = 0.25
PLACED_TTL = 10.0           # seconds a placement counts against its node when no publication of it came since


_NO_ANSWER = "\0no answer"  # what _owner says when the directory did not answer (never a node id: ids are names)


class ClusterRoomService:
    """The :class:`~videoroomd.rooms.link.RoomService` of a node: rooms here, or on the node that holds them."""

    def __init__(self, local: LocalRoomService, directory: RoomDirectory, bus: LinkBus, *,
                 nodes: NodeDirectory | None = None, view: ClusterRoomView | None = None, beat: float = BEAT, silence: float = SILENCE, clock: Callable[[], float] = trio.current_time):
        self.local = local
        self.directory = directory
        self.nodes = nodes  # None: rooms nobody holds are opened here
        self.view = view    # None: the admin view shows this node's rooms only
        self.bus = bus
        self.node = bus.node
        self.edge = EdgeLinks(bus, clock)
        self.room_side = RoomSide(bus, local, clock)
        self.calls = RoomCalls(bus, local)
        self.beat_interval = beat
        self.silence = silence
        self.unhandled = 0
        self.refused_no_directory = 0  # joins refused because the room directory did not answer
        bus.handler = self._handle
        bus.on_lost = self._lost

    # -- the room service ---------------------------------------------------------------
    def admit(self, name: str, password: str | None, address: str, token: str | None = None) -> AccessToken | None:
        """Check a join at this node (every node reads the same rooms file and keys); returns the
        checked token. Raises JoinRefused."""
        return self.local.admit(name, password, address, token)

    async def join(self, name: str, display: str, password: str | None, *, kind: str, address: str,
                   token: str | None = None, waiting: Any = None) -> ParticipantLink:
        """Join room ``name`` wherever it runs; returns the link. Raises JoinRefused.

        Checked once, on the room's node: its gate knows the room's throttle and count. ``waiting`` is
        told of a wait in the room's waiting room, on whichever node the room runs."""
        return await self._route(name, display, password, kind=kind, address=address, enter=False, token=token,
                                 waiting=waiting)

    async def enter(self, name: str, display: str, password: str | None, *, kind: str,
                    ticket: AccessToken | None = None) -> ParticipantLink:
        """Enter room ``name`` (admitted already, by :meth:`admit`) wherever it runs; a room on another
        node checks the ticket's token again. Raises JoinRefused."""
        return await self._route(name, display, password, kind=kind, address="", enter=True, ticket=ticket)

    async def _route(self, name: str, display: str, password: str | None, *, kind: str, address: str,
                     enter: bool, token: str | None = None, ticket: AccessToken | None = None,
                     waiting: Any = None) -> ParticipantLink:
        refusal = self.local.registry.refusal
        if refusal is not None:  # draining: this node takes no joins, for any room
            raise JoinRefused(*refusal)
        owner = await self._owner(name)
        if owner is _NO_ANSWER:  # nobody can tell where the room runs, nor claim it: refused now, clearly
            self.refused_no_directory += 1
            raise JoinRefused("room_unavailable", DIRECTORY_AWAY.format(name=name))
        wait = JOIN_TIMEOUT  # a room that runs answers at once; one placed there now may have to open
        if owner is not None and owner != self.node and not await self._alive(owner):
            owner = await self._moved(name, owner)
        if owner is None:  # a room that may be made at all, within the cluster's cap of dynamic rooms
            self.local.registry.gate.may_open(name, running=None, dynamic_count=self._dynamic_rooms(name))
            owner = await self._place()
            wait = PLACED_JOIN_TIMEOUT
        raw = ticket.raw if ticket is not None else token
        if owner != self.node:
            return await self.edge.join(owner, name, display, password, kind=kind, address=address, enter=enter,
                                        token=raw, timeout=wait, waiting=waiting)
        try:
            if enter:
                return await self.local.enter(name, display, password, kind=kind, ticket=ticket)
            return await self.local.join(name, display, password, kind=kind, address=address, token=token,
                                         waiting=waiting)
        except JoinRefused as refused:
            if refused.code != "room_unavailable":
                raise
            owner = await self._owner(name)  # another node may have claimed it between the lookup and the claim
            if owner is None or owner is _NO_ANSWER or owner == self.node:
                raise
        return await self.edge.join(owner, name, display, password, kind=kind, address=address, enter=enter,
                                    token=raw, waiting=waiting)

    async def _owner(self, name: str) -> str | None:
        """The node that holds room ``name`` now (this one when it runs here); None when nobody does;
        ``_NO_ANSWER`` when the directory does not answer."""
        if self.local.registry.get(name) is not None:
            return self.node
        try:
            with trio.fail_after(LOOKUP_TIMEOUT):
                lease = await self.directory.lookup(name)
        except Exception as error:  # Redis away: rooms running here go on, others cannot be claimed
            log.debug("room lookup failed", room=name[:80], why=repr(error))
            return _NO_ANSWER
        return None if lease is None else lease.owner

    async def _moved(self, name: str, dead: str) -> str | None:
        """Where room ``name`` runs once the lease of ``dead`` (a node no longer listed live) lapsed: None
        when nobody holds it (it is placed next), else the node that took it. The join waits here rather
        than the client retrying with its backoff, so the call is back as soon as the room can move.
        Raises JoinRefused after MOVE_WAIT, or when the directory stops answering."""
        with trio.move_on_after(MOVE_WAIT):
            while True:
                await trio.sleep(MOVE_POLL)
                owner = await self._owner(name)
                if owner is _NO_ANSWER:
                    self.refused_no_directory += 1
                    raise JoinRefused("room_unavailable", DIRECTORY_AWAY.format(name=name))
                if owner is None or owner == self.node or (owner != dead and await self._alive(owner)):
                    return owner
        raise JoinRefused("room_unavailable", f"room '{name}' is moving to another server; try again in a moment")

    async def _alive(self, node: str) -> bool:
        """Whether ``node`` is listed live (its leases outlive it by a few seconds); True when the node
        directory does not answer, or there is none."""
        if self.edge.is_silent(node):
            return False
        if self.nodes is None:
            return True
        try:
            with trio.fail_after(LOOKUP_TIMEOUT):
                return any(load.node == node for load in await self.nodes.nodes())
        except Exception:
            return True

    def _dynamic_rooms(self, joining: str) -> int:
        """The dynamic rooms of every live node but ``joining``: this node's now, the others' as they last
        shared their lists (at most a few heartbeats ago), so that ``max_dynamic_rooms`` caps the cluster.
        Rooms made through several nodes within one heartbeat may pass it by a few."""
        others = self.view.others() if self.view is not None else []
        return self.local.registry.dynamic_count() + sum(
            1 for row in others if row.dynamic and row.name != joining and row.node != self.node
            and not self.edge.is_silent(row.node))

    async def _place(self) -> str:
        """The node a room nobody holds opens on: the least loaded live one; this node when it is that one,
        when no node is listed, or when the node directory does not answer."""
        if self.nodes is None:
            return self.node
        try:
            with trio.fail_after(LOOKUP_TIMEOUT):
                loads = await self.nodes.nodes()
        except Exception as error:  # Redis away: open it here, if this node can claim it
            log.debug("node list not read", why=repr(error))
            return self.node
        live = [load for load in loads if not self.edge.is_silent(load.node)]
        try:
            with trio.fail_after(LOOKUP_TIMEOUT):  # counted in Redis: a burst through any nodes is spread
                picked = await self.nodes.place(live, ttl=PLACED_TTL)
        except Exception as error:  # Redis away: placed on what the loads said
            log.debug("placement not counted", why=repr(error))
            picked = pick_node(live)
        return self.node if picked is None else picked.node

    def people(self, name: str) -> int:
        """Room ``name``'s "rtc" participants: counted here when it runs here, else as its node last said
        (to one of this node's links into it, or in its room list)."""
        if self.local.registry.get(name) is not None:
            return self.local.people(name)
        if any(link.room == name for link in self.edge.links.values()):
            return self.edge.people.get(name, 0)
        listed = next((row for row in self.view.others() if row.name == name), None) if self.view is not None else None
        return listed.peers if listed is not None else 0

    # -- the server API: on the node the room runs on (room_calls.py, docs/api.md) -------------
    def participants(self, name: str) -> list[dict[str, Any]] | None:
        return self.local.participants(name)

    async def create(self, config: Any, unused_grace: float) -> None:
        """Start the room here (a room made through the API is held by the node asked, and its joins come
        here from every node); refused when another node runs it, or the cluster's dynamic rooms are at
        their cap. Raises JoinRefused."""
        owner = await self._owner(config.name)
        if owner is _NO_ANSWER:
            raise JoinRefused("room_unavailable", DIRECTORY_AWAY.format(name=config.name))
        if owner is not None and owner != self.node:
            raise JoinRefused("room_exists", f"room '{config.name}' exists already, on node '{owner}'")
        cap = self.local.registry.config.server.max_dynamic_rooms
        if self._dynamic_rooms(config.name) >= cap:
            raise JoinRefused("too_many_rooms", f"the servers already run their limit of {cap} rooms made on demand")
        await self.local.create(config, unused_grace)

    async def rooms(self) -> dict[str, Any]:
        """Every node's rooms as each node answers them, with its node; a node that does not answer in
        time is named under ``unreachable`` and its rooms listed as it last shared them."""
        rows = [{**row, "node": self.node} for row in self.local.rows()]
        others = await self._other_nodes()
        shared = self.view.others() if self.view is not None else []  # read now: it ages while the nodes answer
        answers, failed = await self.calls.ask_all(others)
        listed = {row["name"] for row in rows}
        for node in others:
            for row in answers.get(node, []):
                if row["name"] not in listed:
                    listed.add(row["name"])
                    rows.append(row)
        for other in shared:
            if other.node in failed and other.name not in listed:
                listed.add(other.name)
                rows.append({**self._listed(other), "participants": None})
        result: dict[str, Any] = {"rooms": sorted(rows, key=lambda row: row["name"])}
        if failed:
            result["unreachable"] = [{"node": node, "reason": failed[node]} for node in sorted(failed)]
        return result

    async def _other_nodes(self) -> list[str]:
        """The other live nodes: as the node directory lists them, else those last heard of (in their room
        lists, or holding rooms this node's participants are in)."""
        if self.nodes is not None:
            try:
                with trio.fail_after(LOOKUP_TIMEOUT):
                    return sorted(load.node for load in await self.nodes.nodes() if load.node != self.node)
            except Exception as error:  # Redis away: the nodes last heard of
                log.debug("node list not read", why=repr(error))
        heard = {row.node for row in self.view.others()} if self.view is not None else set()
        return sorted((heard | {link.node for link in self.edge.links.values()}) - {self.node})

    async def room(self, name: str) -> dict[str, Any]:
        owner = await self._api_owner(name)
        if owner == self.node:
            return {**await self.local.room(name), "node": self.node}
        return await self.calls.call(owner, name, "room")

    async def moderate(self, name: str, request: Any) -> dict[str, Any]:
        owner = await self._api_owner(name)
        if owner == self.node:
            return await self.local.moderate(name, request)
        return await self.calls.call(owner, name, "moderate", request=request)

    async def record(self, name: str, action: str) -> dict[str, Any]:
        owner = await self._api_owner(name)
        if owner == self.node:
            return await self.local.record(name, action)
        return await self.calls.call(owner, name, "record", action)

    async def _api_owner(self, name: str) -> str:
        """The node room ``name`` runs on, for the server API. Raises ModerationRefused: no_such_room,
        room_unavailable (the directory does not answer), node_unreachable (its node stopped answering)."""
        owner = await self._owner(name)
        if owner is _NO_ANSWER:
            raise ModerationRefused("room_unavailable", DIRECTORY_AWAY.format(name=name))
        if owner is None:
            raise ModerationRefused("no_such_room", f"room '{name[:64]}' is not running on any node")
        if owner != self.node and not await self._alive(owner):
            raise ModerationRefused("node_unreachable", f"room '{name[:64]}' runs on node '{owner}', which stopped "
                                                        "answering; the room moves once its people rejoin")
        return owner

    @staticmethod
    def _listed(other: Any) -> dict[str, Any]:
        """A room of another node as that node last shared it (a :class:`.records.RoomRow`)."""
        return {"name": other.name, "status": other.status, "node": other.node, "dynamic": other.dynamic,
                "max_peers": None, "password": None, "peers": other.peers, "relay_peers": other.relay_peers,
                "tracks": other.tracks, "media": {}, "worker": other.worker, "restarts": None, "last_error": None}

    def snapshot(self) -> list[dict[str, Any]]:
        """Every node's rooms, each with its node: this node's as its registry has them, the others' as
        they last shared them (:class:`.room_view.ClusterRoomView`), and the rooms elsewhere this node's
        participants are in that no list named yet (status ``elsewhere``)."""
        rows = [{**row, "node": self.node} for row in self.local.snapshot()]
        listed = {row["name"] for row in rows}
        for other in self.view.others() if self.view is not None else []:
            if other.name not in listed:
                listed.add(other.name)
                rows.append(self._listed(other))
        elsewhere: dict[str, str] = {}
        for link in self.edge.links.values():
            if link.room not in listed:
                elsewhere[link.room] = link.node
        for name in sorted(elsewhere):
            rows.append({"name": name, "status": "elsewhere", "node": elsewhere[name], "dynamic": None,
                         "max_peers": None, "password": None, "peers": self.people(name), "relay_peers": None,
                         "tracks": None, "media": {}, "worker": None, "restarts": 0, "last_error": None})
        return sorted(rows, key=lambda row: row["name"])

    # -- the links' traffic -----------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Carry this node's links until cancelled: the bus, the remote participants' tasks, the beats."""
        async with trio.open_nursery() as nursery:
            self.room_side.nursery = nursery
            self.calls.nursery = nursery
            await nursery.start(self.bus.run)
            nursery.start_soon(self._beat)
            task_status.started()

    async def _handle(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "links_alive":
            unknown = self.room_side.heard(fields["links"])
        elif kind == "endpoints_alive":
            unknown = self.edge.heard(fields["links"])
        elif kind == "gone":
            self.edge.gone(fields["links"])
            self.room_side.gone(fields["links"])
            return
        else:
            if not (self.edge.handle(kind, fields) or self.calls.handle(kind, fields)
                    or await self.room_side.handle(kind, fields)):
                self.unhandled += 1
            return
        if unknown:
            self.bus.post(fields["origin"], encode("gone", links=unknown))

    def _lost(self, key: str) -> None:
        """A message of link ``key`` was dropped (this node read too slowly): the link ends here, its client
        rejoins (a link's messages depend on each other); the other node hears so at its next beat."""
        self.edge.gone([key], reason=OVERRUN)
        self.room_side.gone([key])

    async def _beat(self) -> None:
        while True:
            await trio.sleep(self.beat_interval)
            if not self.bus.up:  # Redis away: no node hears another, none is to blame; the calls ride it out
                self.edge.heard([link.key for link in self.edge.links.values()])
                self.room_side.heard(list(self.room_side.endpoints))
            for node, keys in self.edge.beat(self.silence).items():
                self.bus.post(node, encode("links_alive", origin=self.node, links=keys))
            for node, keys in self.room_side.beat(self.silence).items():
                self.bus.post(node, encode("endpoints_alive", origin=self.node, links=keys))
