"""The server API on the rooms of other nodes: one request and its one reply over the nodes' link bus.

A node asked ``/api/v1`` about a room that runs on another node sends that
node a ``call`` (``call_moderate`` for an action on a participant or the
room) on the link bus (:mod:`.link_bus`) and waits for its ``reply``: the
room's node carries it out through its own room service, exactly as if it
had been asked, and answers its body or its refusal (code and reason), so
the caller gets what a single daemon answers. The same bus as the
participant links, not HTTP to the other node: nodes advertise only the
address their media is reached at, every node already reads its channel,
and a call costs two PUBLISH and no connection (LiveKit routes its
RoomService calls to the room's node over Redis the same way).

Bounded on both sides: at most ``IN_FLIGHT`` requests await one node at
once (more: ``node_busy``), each waits ``TIMEOUT`` seconds at most
(then ``node_timeout``, naming the node); a node carries out at most
``SERVING`` requests of other nodes at once, each within ``TIMEOUT``, and
a reply over ``MAX_REPLY`` bytes is refused (``reply_too_large``) rather
than sent. A reply that comes too late finds nobody waiting and is dropped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import structlog
import trio

from ..rooms.admission import JoinRefused
from ..rooms.link_codec import MAX_MESSAGE, encode
from ..rooms.local_link import LocalRoomService
from ..rooms.moderation import ModerationRefused, ModerationRequest
from .link_bus import LinkBus

log = structlog.get_logger("videoroomd.cluster")

TIMEOUT = 5.0        # seconds a request waits for the room's node (and the room's node gives it)
IN_FLIGHT = 16       # requests awaiting one node at once
SERVING = 64         # other nodes' requests this node carries out at once
MAX_REPLY = MAX_MESSAGE - 4096  # bytes of a reply, all told
OPS = ("rooms", "room", "record")
RECORD_ACTIONS = ("start", "stop")


class _Pending:
    """One request awaiting its reply."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.fields: dict[str, Any] = {}


class RoomCalls:
    """This node's requests to other nodes (:meth:`call`) and its answers to theirs (:meth:`handle`)."""

    def __init__(self, bus: LinkBus, local: LocalRoomService, *, timeout: float = TIMEOUT):
        self.bus = bus
        self.node = bus.node
        self.local = local
        self.timeout = timeout
        self.nursery: trio.Nursery | None = None  # where the room side carries requests out (set by run)
        self._next = 0
        self._waiting: dict[int, _Pending] = {}
        self._in_flight: Counter[str] = Counter()
        self._serving = 0
        self.timed_out = 0   # requests another node did not answer in time
        self.refused = 0     # other nodes' requests refused because this node carried out SERVING already

    # -- the asking node ------------------------------------------------------------------
    async def call(self, node: str, room: str, op: str, arg: str = "",
                   request: ModerationRequest | None = None) -> dict[str, Any]:
        """Ask ``node`` to carry out ``op`` (``rooms``, ``room``, ``record`` with ``arg``; with ``request``
        a moderation of ``room``); returns the body it answered. Raises ModerationRefused with the code
        and reason it answered, or ``node_busy`` / ``node_timeout`` naming the node."""
        if self._in_flight[node] >= IN_FLIGHT:
            raise ModerationRefused("node_busy", f"node '{node}' has {IN_FLIGHT} requests of this node to answer "
                                                 "already; try again in a moment")
        self._next += 1
        req, pending = self._next, _Pending()
        if request is not None:
            message = encode("call_moderate", origin=self.node, req=req, room=room, item=request)
        else:
            message = encode("call", origin=self.node, req=req, op=op, room=room, arg=arg)
        self._waiting[req] = pending
        self._in_flight[node] += 1
        try:
            if not self.bus.post(node, message):
                raise ModerationRefused("node_busy", "this node's messages to the other nodes queue up; try again "
                                                     "in a moment")
            with trio.move_on_after(self.timeout):
                await pending.done.wait()
        finally:
            del self._waiting[req]
            self._in_flight[node] -= 1
            if not self._in_flight[node]:
                del self._in_flight[node]
        if not pending.done.is_set():
            self.timed_out += 1
            where = f", which runs room '{room}'," if room else ""
            raise ModerationRefused("node_timeout", f"node '{node}'{where} did not answer within {self.timeout:g} s")
        if pending.fields["ok"]:
            return pending.fields["body"]
        raise ModerationRefused(pending.fields["code"], pending.fields["reason"])

    async def ask_all(self, nodes: list[str]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
        """Every node of ``nodes`` asked for its rooms at once: (rows by node, the reason by node for
        those that did not answer them)."""
        answers: dict[str, list[dict[str, Any]]] = {}
        failed: dict[str, str] = {}

        async def ask(node: str) -> None:
            try:
                body = await self.call(node, "", "rooms")
            except ModerationRefused as refused:
                failed[node] = refused.reason
                return
            rows = body.get("rooms")
            if not isinstance(rows, list):
                failed[node] = f"node '{node}' answered no list of rooms"
                return
            answers[node] = [row for row in rows if isinstance(row, dict) and isinstance(row.get("name"), str)]

        async with trio.open_nursery() as nursery:
            for node in nodes:
                nursery.start_soon(ask, node)
        return answers, failed

    # -- the room's node ------------------------------------------------------------------
    def handle(self, kind: str, fields: dict[str, Any]) -> bool:
        """Take one message of the bus; returns False when it is not a call's or a reply's."""
        if kind == "reply":
            pending = self._waiting.get(fields["req"])
            if pending is not None and not pending.done.is_set():
                pending.fields = fields
                pending.done.set()
            return True
        if kind not in ("call", "call_moderate"):
            return False
        if self.nursery is None or self._serving >= SERVING:
            self.refused += 1
            self._reply(fields, ModerationRefused("node_busy", f"node '{self.node}' carries out {SERVING} requests "
                                                               "of other nodes already; try again in a moment"))
            return True
        self._serving += 1
        self.nursery.start_soon(self._serve, kind, fields)
        return True

    async def _serve(self, kind: str, fields: dict[str, Any]) -> None:
        try:
            with trio.fail_after(self.timeout):
                body = await self._carry_out(kind, fields)
        except (ModerationRefused, JoinRefused) as refused:
            self._reply(fields, refused)
        except trio.TooSlowError:
            self._reply(fields, ModerationRefused("node_timeout", f"node '{self.node}' did not carry the request "
                                                                  f"out within {self.timeout:g} s"))
        except Exception as error:  # one request that went wrong must not end the node's other work
            log.exception("cluster: a server API request of another node failed", origin=fields["origin"])
            self._reply(fields, ModerationRefused("failed", f"node '{self.node}' failed: {type(error).__name__}"))
        else:
            self._reply(fields, body)
        finally:
            self._serving -= 1

    async def _carry_out(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """What the local room service answers; raises ModerationRefused, JoinRefused."""
        room = fields["room"]
        if kind == "call_moderate":
            return await self.local.moderate(room, fields["item"])
        op, arg = fields["op"], fields["arg"]
        if op == "rooms":
            return {"rooms": [{**row, "node": self.node} for row in self.local.rows()]}
        if op == "room":
            return {**await self.local.room(room), "node": self.node}
        if op == "record" and arg in RECORD_ACTIONS:
            return await self.local.record(room, arg)
        raise ModerationRefused("malformed", f"node '{self.node}' does not know the request {op[:32]!r} {arg[:32]!r}")

    def _reply(self, fields: dict[str, Any], answer: dict[str, Any] | ModerationRefused | JoinRefused) -> None:
        """Post the reply to the asking node (dropped when the bus's queue is full: it times out there)."""
        if isinstance(answer, dict):
            message = encode("reply", req=fields["req"], ok=True, body=answer, code="", reason="")
            if len(message) <= MAX_REPLY:
                self.bus.post(fields["origin"], message)
                return
            answer = ModerationRefused("reply_too_large", f"the answer of node '{self.node}' is over "
                                                          f"{MAX_REPLY} bytes")
        code, reason = getattr(answer, "code", "failed"), getattr(answer, "reason", str(answer))
        self.bus.post(fields["origin"], encode("reply", req=fields["req"], ok=False, body={}, code=code,
                                               reason=reason[:1000]))
