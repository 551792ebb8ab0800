"""The built-in TURN server hands a relayed client to the media worker process that carries its room.

Against a real daemon with two media worker processes: once a raw TURN
client (UDP or TCP) has a permission for a media socket, its data is relayed
by that worker (the daemon's counters say so) and still reaches that media
socket and comes back; anything but the daemon's media sockets stays
refused; killing a worker ends its relayed clients only; aiortc participants
relayed over UDP and over TCP see each other's video.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import struct
import time
import urllib.request
from contextlib import AsyncExitStack

import pytest
import trio
from aioice import stun
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection

from testsupport.daemon import free_port
from videoroomd.media.webrtc.compat.ice import ice_connections
from testsupport.media_bot import Bot, bot, media_thread
from testsupport.metrics import read, sample
from testsupport.wait import until
from testsupport.turn_client import TurnClient, credentials

SECRET = "worker-turn-secret-0123456789"
SERVER = "connections_per_second = 1000\ndrain_timeout = 1\n"
CHANNEL = 0x4001
NOTHING_ARRIVES = 0.5


def rooms(turn_port: int) -> str:
    return f'''
[ice]
addresses = ["127.0.0.1"]

[turn]
enabled = true
listen = "127.0.0.1:{turn_port}"
relay_ports = [45000, 45999]
secret = "{SECRET}"

[rooms.red]
max_peers = 4
[rooms.blue]
max_peers = 4
'''


def admin(daemon) -> dict:
    with urllib.request.urlopen(f"{daemon.url}/admin/rooms", timeout=5) as response:
        return json.load(response)


def media_socket(participant: Bot) -> tuple[str, int]:
    """The server's media socket a participant's answer offers (its host candidate)."""
    sdp = participant.pc.remoteDescription.sdp
    match = re.search(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", sdp)
    assert match, sdp
    return match.group(1), int(match.group(2))


async def media_participant(stack: AsyncExitStack, daemon, media, room: str) -> tuple[Bot, tuple[str, int]]:
    """A direct participant publishing video in ``room``, connected; with its media socket on the server."""
    participant = await stack.enter_async_context(bot(daemon, f"{room}-direct", room=room, media=media))
    await participant.publish(audio=False)
    await participant.wait_for(lambda e: e["type"] == "sdpAnswer")
    await until(lambda: participant.pc.connectionState == "connected")
    return participant, media_socket(participant)


def ice_check() -> stun.Message:
    """An ICE connectivity check with credentials the media socket does not know: aioice answers 401."""
    check = stun.Message(stun.Method.BINDING, stun.Class.REQUEST,
                         attributes={"USERNAME": "nobody:here", "PRIORITY": 1, "ICE-CONTROLLED": 1})
    check.add_message_integrity(b"not the password")
    return check


async def check_through_channel(client: TurnClient) -> None:
    """An ICE check over the channel reaches the media socket, and its answer comes back on the channel."""
    check = ice_check()
    await client.channel_data(CHANNEL, bytes(check))
    with trio.fail_after(5):
        while True:
            frame = await client.receive()
            if frame[0] & 0xC0 != 0x40:
                continue
            channel, length = struct.unpack("!HH", frame[:4])
            answer = stun.parse_message(frame[4:4 + length])
            if answer.transaction_id == check.transaction_id:
                break
    assert channel == CHANNEL and answer.message_class == stun.Class.ERROR and answer.attributes["ERROR-CODE"][0] == 401


async def relayed_client(stack: AsyncExitStack, transport: str, turn_port: int, peer_id: str,
                         media: tuple[str, int]) -> TurnClient:
    """A raw TURN client with credentials for participant ``peer_id``, an allocation, a permission
    and a channel for ``media``."""
    client = await stack.enter_async_context(TurnClient(transport, ("127.0.0.1", turn_port)))
    await client.allocate(*credentials(SECRET, peer_id, time.time()))
    reply = await client.create_permission(media)
    assert reply.message_class == stun.Class.RESPONSE, reply
    reply = await client.channel_bind(CHANNEL, media)
    assert reply.message_class == stun.Class.RESPONSE, reply
    return client


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_client_with_a_permission_is_relayed_by_the_media_worker_and_nowhere_else(start_daemon, transport):
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port), server=SERVER, media="workers = 2")
    bystander = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await bystander.bind(("127.0.0.1", 0))
    async with media_thread() as media, AsyncExitStack() as stack:
        participant, socket_address = await media_participant(stack, daemon, media, "red")
        client = await relayed_client(stack, transport, turn_port, participant.id, socket_address)
        await until(lambda: sample(read(daemon), "videoroomd_turn_handed_off_total", transport=transport) == 1)
        await check_through_channel(client)
        await check_through_channel(client)
        # A Send indication works as well as the channel.
        await client.send_indication(socket_address, bytes(ice_check()))

        def relayed_by_workers() -> bool:
            page = read(daemon)
            return (sample(page, "videoroomd_turn_relayed_packets_total", where="workers", direction="to_peer") >= 3
                    and sample(page, "videoroomd_turn_relayed_packets_total", where="workers", direction="to_client") >= 3)

        await until(relayed_by_workers)
        page = read(daemon)
        assert sample(page, "videoroomd_turn_relayed_packets_total", where="daemon", direction="to_peer") == 0
        assert sample(page, "videoroomd_turn_relayed_packets_total", where="daemon", direction="to_client") == 0

        # After the handoff: still no permission for anything but the media sockets ...
        assert (await client.create_permission(bystander.getsockname())).error_code == 403
        assert (await client.create_permission(("127.0.0.2", socket_address[1]))).error_code == 403
        assert (await client.channel_bind(0x4002, bystander.getsockname())).error_code == 403
        # ... and data for another port of the permitted address goes nowhere.
        await client.send_indication(bystander.getsockname(), b"anyone there?")
        await client.send_indication(("127.0.0.1", daemon.port), b"GET / HTTP/1.0\r\n\r\n")
        with trio.move_on_after(NOTHING_ARRIVES):
            await bystander.recvfrom(65536)
            pytest.fail("relayed data reached a socket that is not a media socket")
        await until(lambda: sample(read(daemon), "videoroomd_turn_dropped_total", reason="forbidden_peer") >= 2)
        # Refresh is answered (by the daemon) as before, and the channel still relays after it.
        reply = await client.request(stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 300}))
        assert reply.message_class == stun.Class.RESPONSE and reply.attributes["LIFETIME"] == 300
        await check_through_channel(client)
        # Refresh with lifetime 0 ends the allocation, here and in the worker.
        reply = await client.request(stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 0}))
        assert reply.message_class == stun.Class.RESPONSE
        await until(lambda: sample(read(daemon), "videoroomd_turn_allocations") == 0)
    bystander.close()
    assert "Traceback" not in daemon.log()


async def test_killing_a_worker_ends_only_the_relayed_clients_it_carried(start_daemon):
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port), server=SERVER, media="workers = 2")
    async with media_thread() as media, AsyncExitStack() as stack:
        red, red_socket = await media_participant(stack, daemon, media, "red")
        blue, blue_socket = await media_participant(stack, daemon, media, "blue")
        state = admin(daemon)
        worker_of = {row["name"]: row["worker"] for row in state["rooms"]}
        assert worker_of["red"] != worker_of["blue"]
        pids = {row["worker"]: row["pid"] for row in state["media_workers"]}
        red_tcp = await relayed_client(stack, "tcp", turn_port, red.id, red_socket)
        red_udp = await relayed_client(stack, "udp", turn_port, red.id, red_socket)
        blue_tcp = await relayed_client(stack, "tcp", turn_port, blue.id, blue_socket)
        blue_udp = await relayed_client(stack, "udp", turn_port, blue.id, blue_socket)
        await until(lambda: sum(sample(read(daemon), "videoroomd_turn_handed_off_total", transport=t)
                                for t in ("udp", "tcp")) == 4)
        for client in (red_tcp, red_udp, blue_tcp, blue_udp):
            await check_through_channel(client)

        os.kill(pids[worker_of["red"]], signal.SIGKILL)
        with trio.fail_after(10):  # red's TCP client's connection ends with its worker ...
            while True:
                try:
                    await red_tcp.receive()
                except (EOFError, OSError, trio.BrokenResourceError):
                    break
        # ... and its UDP client's allocation is gone: the daemon answers it again, with 437.
        await until(lambda: sample(read(daemon), "videoroomd_turn_allocations") == 2)
        reply = await red_udp.request(stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 300}))
        assert reply.error_code == 437
        for client in (blue_tcp, blue_udp):  # blue's never notice
            await check_through_channel(client)
    daemon.wait_healthy()


class RelayedBot(Bot):
    """A participant whose media goes through the daemon's TURN server only (relay ICE policy)."""

    transport = "udp"
    turn_port = 0
    host_addresses = ()  # the relay policy offers none; limiting them to 127.0.0.1 would add one

    def _make_pc(self) -> None:
        username, password = credentials(SECRET, self.id, time.time())
        self.pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[RTCIceServer(urls=f"turn:127.0.0.1:{self.turn_port}?transport={self.transport}",
                                     username=username, credential=password)],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        pc = self.pc

        @pc.on("track")
        def on_track(track):
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            self._readers.add(asyncio.ensure_future(self._read(transceiver.mid, track)))


@pytest.mark.parametrize("plane", ["python", "native"])
async def test_aiortc_participants_relayed_over_udp_and_tcp_are_relayed_by_the_worker(start_daemon, monkeypatch, plane):
    """(With ``data_plane = "native"`` the direct participant's socket is read by the compiled module, the
    relayed ones keep aiortc's reading: their datagrams never arrive on the socket; the compiled plane forwards
    to all three, to the relayed ones through a socket pair the worker's loop hands to their relay.)"""
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port), server=SERVER, media=f'workers = 2\ndata_plane = "{plane}"')
    async with media_thread() as media, AsyncExitStack() as stack:
        participants = []
        for name, transport in (("direct", None), ("over-udp", "udp"), ("over-tcp", "tcp")):
            if transport is None:
                participant = await stack.enter_async_context(bot(daemon, name, room="red", media=media))
            else:
                relayed = type(f"RelayedBot{transport}", (RelayedBot,), {"transport": transport, "turn_port": turn_port})
                monkeypatch.setattr("testsupport.media_bot.Bot", relayed)
                participant = await stack.enter_async_context(bot(daemon, name, room="red", media=media))
                monkeypatch.undo()
                assert isinstance(participant, RelayedBot)
            participants.append(participant)
        videos = {}
        for participant in participants:
            (videos[participant.name],) = await participant.publish(audio=False)
        for viewer in participants:
            for name, track in videos.items():
                if name != viewer.name:
                    await viewer.frames_from(track, at_least=20)
        page = read(daemon)
        assert sample(page, "videoroomd_turn_handed_off_total", transport="udp") == 1
        assert sample(page, "videoroomd_turn_handed_off_total", transport="tcp") == 1
        for participant in participants[1:]:  # their connections are on relay candidates
            (connection,) = ice_connections(participant.pc)
            assert connection._nominated[1].local_candidate.type == "relay"
        await until(lambda: sample(read(daemon), "videoroomd_turn_relayed_packets_total",
                                   where="workers", direction="to_client") > 200)
        page = read(daemon)
        in_workers = sum(sample(page, "videoroomd_turn_relayed_packets_total", where="workers", direction=d)
                         for d in ("to_peer", "to_client"))
        in_daemon = sum(sample(page, "videoroomd_turn_relayed_packets_total", where="daemon", direction=d)
                        for d in ("to_peer", "to_client"))
        assert in_daemon * 10 < in_workers, page  # only what came before the handoff went through the daemon
        if plane == "native":  # the worker says once per connection which path it runs
            def paths() -> list[str]:
                return [line for line in daemon.log().splitlines() if '"media socket path"' in line]

            await until(lambda: len(paths()) >= 3)
            assert len(paths()) == 3, paths()
            assert sum('"0": "native"' in line for line in paths()) == 1, paths()
            assert sum("relayed on its socket" in line for line in paths()) == 2, paths()
            # The compiled plane forwards to all three: to the relayed ones through the loop, on their relay.
            routes = [line for line in daemon.log().splitlines() if '"compiled plane route"' in line]
            assert sum('"relayed": true' in line for line in routes) == 2, routes
            assert sum('"relayed": false' in line for line in routes) >= 1, routes


# -- the worker's side alone -------------------------------------------------------------------
def test_a_handed_client_is_relayed_by_the_permissions_and_channels_the_daemon_sent_until_they_expire():
    """WorkerRelays on real sockets, a stand-in for a media socket's aioice protocol, and a clock
    moved by hand: the permission's 300 s end relaying both ways until the daemon's next state."""
    import socket

    from dataclasses import replace

    from videoroomd.media.workers.commands import HandedAllocation, TurnHandoff, TurnState, TurnUpdate
    from videoroomd.media.workers.events import TurnControl
    from videoroomd.turn.worker_relay import WorkerRelays

    relay = ("127.0.0.1", 45001)
    media = ("127.0.0.1", 5000)

    class Transport:
        def __init__(self):
            self.sent = []

        def sendto(self, data, addr):
            self.sent.append((data, addr))

        def is_closing(self):
            return False

    class MediaProtocol:
        def __init__(self):
            self.transport = Transport()
            self.got = []

        def datagram_received(self, data, addr):
            self.got.append((data, addr))

    async def scenario():
        now = [1000.0]
        events = []
        protocol = MediaProtocol()
        relays = WorkerRelays(lambda peer: protocol if peer == media else None, events.append, clock=lambda: now[0])
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        handed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        handed.bind(("127.0.0.1", 0))
        handed.connect(client.getsockname())
        client.connect(handed.getsockname())
        client.settimeout(2)
        relays.fd_received("t1", os.dup(handed.fileno()))
        handed.close()
        state = TurnState(600.0, {"127.0.0.1": 300.0}, {"16385": ("127.0.0.1", 5000, 600.0)})
        await relays.take(TurnHandoff("t1", HandedAllocation(relay="7", transport="udp", client=client.getsockname(),
                                                             relay_address=relay, user="peer", bandwidth=0.0, state=state,
                                                             peers=(media,))))

        async def settle():
            await asyncio.sleep(0.05)

        client.send(struct.pack("!HH", CHANNEL, 5) + b"hello")
        client.send(bytes(stun.Message(stun.Method.SEND, stun.Class.INDICATION,
                                       attributes={"XOR-PEER-ADDRESS": ("127.0.0.1", 6000), "DATA": b"elsewhere"})))
        client.send(bytes(stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 0})))
        await settle()
        assert protocol.got == [(b"hello", relay)]
        assert relays.dropped["forbidden_peer"] == 1  # not a media socket of this worker: nowhere
        assert [type(e) for e in events] == [TurnControl]  # requests are the daemon's to answer
        for _ in range(50):  # a flood of requests is cut at the burst, not passed on to the daemon
            client.send(bytes(stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 0})))
        await settle()
        assert len(events) == 40 and relays.dropped["control_rate"] == 11
        protocol.transport.sendto(b"back", relay)  # what the media socket sends to the relayed address
        assert client.recv(100) == struct.pack("!HH", CHANNEL, 4) + b"back"
        protocol.transport.sendto(b"direct", ("127.0.0.1", 7000))  # anything else goes to the socket
        assert protocol.transport._transport.sent == [(b"direct", ("127.0.0.1", 7000))]

        now[0] += 301  # the permission is over; the channel is not, but needs it
        client.send(struct.pack("!HH", CHANNEL, 5) + b"again")
        await settle()
        protocol.transport.sendto(b"late", relay)
        assert len(protocol.got) == 1 and relays.dropped["no_permission"] == 2
        relays.update(TurnUpdate("7", replace(state, permissions={"127.0.0.1": 300.0}), ()))
        client.send(struct.pack("!HH", CHANNEL, 5) + b"fresh")
        await settle()
        assert protocol.got[-1] == (b"fresh", relay)
        assert relays.stats()["relayed"] == {"to_peer": 2, "to_client": 1}

        relays.release("7")
        protocol.transport.sendto(b"after", relay)  # no longer diverted: to the kernel, as before
        assert protocol.transport._transport.sent[-1] == (b"after", relay)
        client.send(b"x")
        with pytest.raises(OSError):  # nothing listens on the handed socket's port any more
            client.send(b"y")
            await asyncio.sleep(0.05)
            client.recv(100)
        client.close()

    asyncio.run(scenario())


async def test_a_socket_bound_to_the_turn_port_with_reuseport_gets_no_clients_datagrams():
    """The UDP listener shares its address (for handed clients' connected sockets), but an
    unconnected socket bound there too, another process's or a handoff's before its connect,
    is given nothing: every new client is still answered by the server."""
    import socket

    from videoroomd.config.schema import TurnConfig
    from videoroomd.turn.peers import MediaAddresses
    from videoroomd.turn.server import TurnService
    from testsupport.turn_client import allocate_request

    service = TurnService(TurnConfig(enabled=True, host="127.0.0.1", port=0, relay_ports=(46000, 46999), secret=SECRET),
                          MediaAddresses(["127.0.0.1"]).contains, relay_host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        intruder.bind(service.addresses["udp"])
        intruder.setblocking(False)
        for n in range(20):  # each from an address of its own: one would be refused what it did not pay for
            async with TurnClient("udp", service.addresses["udp"], source=f"127.0.0.{n + 2}") as client:
                assert (await client.request(allocate_request(), sign=False)).error_code == 401
        with pytest.raises(BlockingIOError):
            intruder.recv(100)
        intruder.close()
        nursery.cancel_scope.cancel()
