"""Let one of our aiortc connections (answerer, ICE-controlled) follow a remote ICE restart.

The browser client calls ``restartIce()`` before every renegotiation after the
first, so each re-offer carries new ICE credentials and candidates. aiortc 1.16
starts each RTCIceTransport once and keeps the first remote ufrag/pwd for good,
and aioice 0.13 answers the new generation's checks with 401: the browser then
stays on its first path and cannot move to another (a new network, a new TURN
allocation). Call :func:`handle_remote_ice_restart` right before
``setRemoteDescription(offer)``. Only this connection's own aioice objects are
touched (instance attributes; no class or module is patched), which ties this
module to aioice 0.13's internals: the pinned version in pyproject.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aioice import stun
from aioice.ice import CandidatePair
from aioice.utils import random_string
from aiortc import sdp as aiortc_sdp


@dataclass
class _LiveGeneration:
    """Credentials under which the pair that still carries media was nominated."""
    local_username: str
    local_password: str
    remote_username: str
    remote_password: str
    pair: object  # aioice CandidatePair

    def active(self, connection) -> bool:
        # Until the controlling side nominates a pair of the new generation.
        return connection._nominated.get(self.pair.component) is self.pair


def _started_ice_transports(pc):
    """(mid, RTCIceTransport) for each distinct ICE transport whose start() has run."""
    found = {}
    holders = [(t.mid, t.receiver.transport) for t in pc.getTransceivers()]
    if pc.sctp is not None:
        holders.append((pc.sctp.mid, pc.sctp.transport))
    for mid, dtls in holders:
        ice = dtls.transport
        if mid is None or ice.state in ("new", "closed") or ice._connection.remote_username is None:
            continue
        found.setdefault(id(ice), (mid, ice))
    return list(found.values())


def _install_previous_generation_support(connection) -> None:
    """Make-before-break: keep answering (and consent-checking) the pair that carries
    media with its own credentials until a pair of the new generation is nominated.
    Without this, a new generation that never connects (e.g. its TURN allocation
    fails) would take the working old path down: the browser's keepalives get 401 and
    our consent checks, signed with the new credentials, fail."""
    if getattr(connection, "_videoroomd_restart_hooks", False):
        return
    connection._videoroomd_restart_hooks = True
    original_build_request = connection.build_request

    def build_request(pair, nominate):
        request = original_build_request(pair, nominate)
        live = connection._videoroomd_live
        if live is not None and pair is live.pair and live.active(connection):
            # Consent freshness (RFC 7675) on the old pair, with the old credentials.
            request.attributes["USERNAME"] = f"{live.remote_username}:{live.local_username}"
            request._videoroomd_integrity_key = live.remote_password.encode("utf8")
        return request

    connection.build_request = build_request
    for protocol in connection._protocols:
        original_request = protocol.request

        async def request(message, addr, integrity_key=None, retransmissions=None, _original=original_request):
            key = getattr(message, "_videoroomd_integrity_key", None)
            return await _original(message, addr, integrity_key=key or integrity_key,
                                   retransmissions=retransmissions)

        protocol.request = request


def answered_for_previous_generation(connection, message, addr, protocol) -> bool:
    """Answer ``message`` if it is a check of the ICE generation a restart replaces, on the
    pair that still carries the media (make-before-break); returns whether it did. Called
    by the one wrapper of the connection's ``request_received`` (:func:`.ice.watch_incoming`)."""
    live = getattr(connection, "_videoroomd_live", None)
    if not (live is not None and live.active(connection)
            and message.message_class == stun.Class.REQUEST
            and message.message_method == stun.Method.BINDING
            and message.attributes.get("USERNAME") == f"{live.local_username}:{live.remote_username}"
            and message.check_message_integrity(live.local_password.encode("utf8"))):
        return False
    response = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE,
                            transaction_id=message.transaction_id)
    response.attributes["XOR-MAPPED-ADDRESS"] = addr
    response.add_message_integrity(live.local_password.encode("utf8"))
    protocol.send_stun(response, addr)
    return True


def handle_remote_ice_restart(pc, offer_sdp: str, restart_local: bool = True,
                              keep_previous: bool = True) -> bool:
    """Apply a remote ICE restart carried by ``offer_sdp``; return True if there was one.

    Call before ``pc.setRemoteDescription(offer)``: setRemoteDescription then adds the
    offer's candidates to the new generation, and createAnswer puts our (new, if
    ``restart_local``) ufrag/pwd into the answer. The nominated pair is kept, so media
    keeps flowing on the old path until the controlling peer nominates a pair of the
    new generation (its checks with USE-CANDIDATE replace aioice's nominated pair).
    """
    description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    ice_by_mid = {m.rtp.muxId: m.ice for m in description.media if m.ice is not None}
    restarted = False
    for mid, transport in _started_ice_transports(pc):
        remote = ice_by_mid.get(mid)
        connection = transport._connection
        if remote is None or not remote.usernameFragment or not remote.password:
            continue
        if (remote.usernameFragment, remote.password) == (connection.remote_username, connection.remote_password):
            continue
        nominated = connection._nominated.get(1)
        if nominated is None:
            # Still checking the first generation: resetting now would throw away the
            # checks that are about to succeed (and aioice would declare failure). Let
            # them finish; the browser stays on that path, and a later restart moves it.
            continue
        restarted = True
        if keep_previous and nominated is not None:
            live = getattr(connection, "_videoroomd_live", None)
            if live is None or not live.active(connection):
                # The pair carrying media was nominated under the current credentials.
                connection._videoroomd_live = _LiveGeneration(connection.local_username, connection.local_password,
                                                      connection.remote_username, connection.remote_password,
                                                      nominated)
            _install_previous_generation_support(connection)
        # New remote credentials: outgoing checks/consent use them, incoming checks are
        # accepted with them (aioice Connection._valid_username).
        connection.remote_username = remote.usernameFragment
        connection.remote_password = remote.password
        if restart_local:
            # RFC 8839 section 4.4.1.1.2 / RFC 8445 section 9: the answer to an ICE
            # restart carries new credentials too. Same sockets and candidates.
            connection._local_username = random_string(4)
            connection._local_password = random_string(22)
        # Forget the old generation's remote candidates and check list, stopping any
        # triggered check still running. _nominated stays: it carries media until the
        # new generation nominates a pair (aioice check_complete replaces it).
        for pair in connection._check_list:
            if pair.task is not None:
                pair.task.cancel()
                pair.task = None
        connection._check_list = []
        connection._remote_candidates = []
        connection._remote_candidates_end = False
        connection._nominating.clear()
        transport.iceGatherer._remote_candidates_end = False
    return restarted


def follow_valid_pairs(pc, changed: Callable[[], None]) -> None:
    """Call ``changed()`` at once whenever a check of one of ``pc``'s ICE connections succeeds or
    nominates a pair other than the one it had (the first nomination, or the new generation's after an
    ICE restart), from aioice's own bookkeeping of it (``check_complete``, which runs in the check's task
    after the answer was read), so that what reads and sends on the validated pairs moves with them before
    the next packet. Call after ``setRemoteDescription``; again is harmless. Only ``pc``'s own connections
    are touched (an instance attribute each)."""
    for connection in {id(c): c for c in _ice_connections(pc)}.values():
        if getattr(connection, "_videoroomd_follows_pairs", False):
            continue
        complete = connection.check_complete

        def check_complete(pair, _complete=complete, _connection=connection) -> None:
            before = _connection._nominated.get(pair.component)
            _complete(pair)
            if pair.state == CandidatePair.State.SUCCEEDED or _connection._nominated.get(pair.component) is not before:
                changed()

        connection.check_complete = check_complete
        connection._videoroomd_follows_pairs = True


def _ice_connections(pc) -> list:
    holders = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        holders.append(pc.sctp.transport)
    return [dtls.transport._connection for dtls in holders if dtls is not None]
