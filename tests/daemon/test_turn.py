"""The built-in TURN server against a raw client on real sockets (127.0.0.1): it relays to the daemon's media and nowhere else."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time
from contextlib import asynccontextmanager

import pytest
import trio
from aioice import stun

from videoroomd.certs.generate import generate
from videoroomd.config.load import parse
from videoroomd.config.schema import TurnConfig
from videoroomd.turn.clients import TurnCredentials
from videoroomd.turn.credentials import long_term_key
from videoroomd.turn.peers import MediaAddresses
from videoroomd.turn.server import TurnService
from videoroomd.turn.configure import issued_servers, turn_service

from testsupport.daemon import free_port
from testsupport.metrics import read
from testsupport.turn_client import TurnClient, allocate_request, credentials

SECRET = "a-test-secret-long-enough"
RELAY_PORTS = (42000, 42999)
NOTHING_ARRIVES = 0.3  # seconds to wait for a datagram that must not come


@asynccontextmanager
async def turn_server(**overrides):
    """A TurnService on 127.0.0.1 whose only media socket is a real UDP socket; yields (service, media socket)."""
    config = TurnConfig(enabled=True, host="127.0.0.1", port=0, relay_ports=RELAY_PORTS, secret=SECRET, **overrides)
    media = MediaAddresses(["127.0.0.1"])
    media_sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await media_sock.bind(("127.0.0.1", 0))
    media.add(*media_sock.getsockname())
    service = TurnService(config, media.contains, relay_host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        try:
            yield service, media_sock
        finally:
            nursery.cancel_scope.cancel()
            media_sock.close()


async def udp_socket():
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    return sock


async def nothing_arrives(sock) -> bool:
    with trio.move_on_after(NOTHING_ARRIVES):
        await sock.recvfrom(65536)
        return False
    return True


async def still_answers(service: TurnService, transport: str = "udp") -> None:
    """A new client still gets its 401 challenge: the server lives."""
    async with TurnClient(transport, service.addresses[transport]) as other:
        reply = await other.request(allocate_request(), sign=False)
        assert reply.error_code == 401


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_send_indication_and_channel_data_reach_the_media_socket_and_back(transport):
    async with turn_server() as (service, media):
        media_address = media.getsockname()
        async with TurnClient(transport, service.addresses[transport]) as client:
            challenge = await client.login(*credentials(SECRET, "peer-1", time.time()))
            assert challenge.attributes["REALM"] == "videoroomd" and challenge.attributes["NONCE"]
            reply = await client.request(allocate_request())
            assert reply.message_class == stun.Class.RESPONSE and reply.check_message_integrity(client.key)
            relay = reply.attributes["XOR-RELAYED-ADDRESS"]
            assert relay[0] == "127.0.0.1" and RELAY_PORTS[0] <= relay[1] <= RELAY_PORTS[1]
            assert reply.attributes["XOR-MAPPED-ADDRESS"][0] == "127.0.0.1"

            reply = await client.create_permission(media_address)
            assert reply.message_class == stun.Class.RESPONSE, reply
            await client.send_indication(media_address, b"hello media")
            with trio.fail_after(5):
                data, source = await media.recvfrom(65536)
            assert data == b"hello media" and source == relay

            await media.sendto(b"hello client", relay)
            indication = stun.parse_message(await client.receive())
            assert indication.message_method == stun.Method.DATA
            assert indication.attributes["DATA"] == b"hello client"
            assert indication.attributes["XOR-PEER-ADDRESS"] == media_address

            reply = await client.channel_bind(0x4001, media_address)
            assert reply.message_class == stun.Class.RESPONSE, reply
            await client.channel_data(0x4001, b"over the channel")
            with trio.fail_after(5):
                data, source = await media.recvfrom(65536)
            assert data == b"over the channel" and source == relay
            await media.sendto(b"back on the channel", relay)
            frame = await client.receive()
            assert struct.unpack("!HH", frame[:4]) == (0x4001, len(b"back on the channel"))
            assert frame[4:4 + 19] == b"back on the channel"
        assert service.stats()["created"] == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_no_permission_for_other_hosts_or_ports_and_nothing_relayed_there(transport):
    async with turn_server() as (service, media):
        media_address = media.getsockname()
        bystander = await udp_socket()  # a real socket on 127.0.0.1 that is not a media socket
        try:
            async with TurnClient(transport, service.addresses[transport]) as client:
                await client.allocate(*credentials(SECRET, "peer-1", time.time()))
                for peer in (("127.0.0.2", media_address[1]), bystander.getsockname()):
                    reply = await client.create_permission(peer)
                    assert reply.error_code == 403, reply
                    assert "not allowed" in reply.attributes["ERROR-CODE"][1]
                    reply = await client.channel_bind(0x4002, peer)
                    assert reply.error_code == 403, reply

                # A permission is for an address: one for the media socket opens that IP, and
                # data to another port on it must still go nowhere.
                assert (await client.create_permission(media_address)).message_class == stun.Class.RESPONSE
                await client.send_indication(bystander.getsockname(), b"to a bystander")
                await client.send_indication(("127.0.0.2", media_address[1]), b"to another host")
                assert await nothing_arrives(bystander)
                # The bystander cannot talk to the client through the relay either.
                relay = service.table.get(next(iter(service._relays))).relay
                await bystander.sendto(b"from a bystander", relay)
                await client.send_indication(media_address, b"still works")
                assert (await media.recvfrom(65536))[0] == b"still works"
                with trio.move_on_after(NOTHING_ARRIVES):
                    data = await client.receive()
                    assert b"from a bystander" not in data
        finally:
            bystander.close()
        dropped = service.stats()["dropped"]
        assert dropped["forbidden_peer"] >= 5 and dropped["no_permission"] >= 1
        assert service.stats()["refused"][403] == 4


async def test_expired_forged_and_tampered_credentials_get_401():
    async with turn_server() as (service, _media):
        address = service.addresses["udp"]
        cases = {
            "expired": credentials(SECRET, "peer-1", time.time() - 7200, lifetime=3600),
            "forged": credentials("another-secret-of-someone", "peer-1", time.time()),
            "not a REST username": ("alice", "password"),
        }
        for why, (username, password) in cases.items():
            async with TurnClient("udp", address) as client:
                await client.login(username, password)
                reply = await client.request(allocate_request())
                assert reply.error_code == 401, why
                assert reply.attributes["NONCE"], why
        assert service.stats()["allocations"] == 0
        assert service.stats()["dropped"]["credentials_refused"] >= 3


async def test_tampered_message_integrity_is_refused():
    async with turn_server() as (service, _media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            username, password = credentials(SECRET, "peer-1", time.time())
            await client.login(username, password)
            request = allocate_request()
            request.attributes.update({"USERNAME": username, "REALM": client.realm, "NONCE": client.nonce})
            request.attributes["MESSAGE-INTEGRITY"] = stun.message_integrity(bytes(request), client.key)
            data = bytearray(bytes(request))
            data[-1] ^= 0x01  # the last byte of MESSAGE-INTEGRITY
            await client.send_raw(bytes(data))
            reply = stun.parse_message(await client.receive())
            assert reply.error_code == 401
            assert "MESSAGE-INTEGRITY" in reply.attributes["ERROR-CODE"][1]
        assert service.stats()["allocations"] == 0


async def test_malformed_messages_and_unbound_channels_are_dropped_and_counted():
    async with turn_server() as (service, media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.allocate(*credentials(SECRET, "peer-1", time.time()))
            good = bytes(allocate_request())
            for junk in (b"", b"\x00", b"\xff" * 40, good[:-4], good[:2] + b"\x00\x40" + good[4:],
                         good + b"\x00\x06\xff\xff", bytes(20) + b"\x00\x06\x00\x04abcd", b"\x40\x01\xff\xff12"):
                await client.send_raw(junk)
            await client.channel_data(0x4005, b"no such channel")
            assert await nothing_arrives(media)
        await still_answers(service)
        dropped = service.stats()["dropped"]
        assert dropped["malformed"] >= 7
        assert dropped["unbound_channel"] == 1


async def test_a_malformed_tcp_stream_ends_only_that_connection():
    async with turn_server() as (service, _media):
        async with TurnClient("tcp", service.addresses["tcp"]) as client:
            await client.send_raw(b"\xc0GET / HTTP/1.1\r\n\r\n")
            with pytest.raises((EOFError, trio.BrokenResourceError)):
                await client.receive()
        await still_answers(service, "tcp")
        assert service.stats()["dropped"]["malformed_stream"] == 1


async def test_allocations_per_user_and_in_total_are_capped():
    async with turn_server(max_allocations_per_user=2, max_allocations=3) as (service, _media):
        alice = credentials(SECRET, "alice", time.time())
        async with TurnClient("udp", service.addresses["udp"]) as a1, \
                TurnClient("udp", service.addresses["udp"]) as a2, \
                TurnClient("udp", service.addresses["udp"]) as a3, \
                TurnClient("udp", service.addresses["udp"]) as b1, \
                TurnClient("udp", service.addresses["udp"]) as c1:
            await a1.allocate(*alice)
            await a2.allocate(*alice)
            # Fresh credentials for the same participant (as each renegotiation brings) count as the same user.
            await a3.login(*credentials(SECRET, "alice", time.time() + 100))
            reply = await a3.request(allocate_request())
            assert reply.error_code == 486 and "per user" in reply.attributes["ERROR-CODE"][1]
            await b1.allocate(*credentials(SECRET, "bob", time.time()))
            await c1.login(*credentials(SECRET, "carol", time.time()))
            reply = await c1.request(allocate_request())
            assert reply.error_code == 486
        assert service.stats()["refused"][486] == 2


async def test_refresh_with_lifetime_zero_frees_the_allocation_and_its_port():
    async with turn_server() as (service, media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            relay = await client.allocate(*credentials(SECRET, "peer-1", time.time()))
            reply = await client.request(stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 0}))
            assert reply.message_class == stun.Class.RESPONSE and reply.attributes["LIFETIME"] == 0
            assert service.stats()["allocations"] == 0
            reply = await client.create_permission(media.getsockname())
            assert reply.error_code == 437
            await trio.sleep(0.05)  # the relay's reader closes its socket
            probe = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await probe.bind(relay)  # the port is free again
            probe.close()


async def test_an_allocation_from_another_user_cannot_be_used():
    async with turn_server() as (service, media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.allocate(*credentials(SECRET, "peer-1", time.time()))
            client.username, password = credentials(SECRET, "peer-2", time.time())
            client.key = long_term_key(client.username, client.realm, password)
            reply = await client.create_permission(media.getsockname())
            assert reply.error_code == 441


async def test_unknown_comprehension_required_attribute_gets_420():
    async with turn_server() as (service, _media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.login(*credentials(SECRET, "peer-1", time.time()))
            request = allocate_request()
            request.attributes.update({"USERNAME": client.username, "REALM": client.realm, "NONCE": client.nonce})
            body = bytes(request) + struct.pack("!HH", 0x0077, 1) + b"\x80\x00\x00\x00"  # a type nobody here knows
            body += struct.pack("!HH", 0x0008, 20) + stun.message_integrity(body, client.key)
            await client.send_raw(stun.set_body_length(body, len(body) - 20))
            data = await client.receive()
            assert stun.parse_message(data).error_code == 420
            assert b"\x00\x0a\x00\x02\x00\x77" in data  # UNKNOWN-ATTRIBUTES names it


# -- in the daemon -----------------------------------------------------------------------------
async def test_the_daemons_turn_server_refuses_other_hosts_and_expired_credentials(start_daemon):
    turn_port = free_port()
    secret = "daemon-turn-secret-0123456789"
    daemon = start_daemon(rooms=f'''
[ice]
addresses = ["127.0.0.1"]

[turn]
enabled = true
listen = "127.0.0.1:{turn_port}"
relay_ports = [44000, 44999]
secret = "{secret}"

[rooms.lobby]
''')
    server = ("127.0.0.1", turn_port)
    bystander = await udp_socket()
    try:
        async with TurnClient("udp", server) as client:
            await client.login(*credentials(secret, "peer-1", time.time() - 100, lifetime=50))
            assert (await client.request(allocate_request())).error_code == 401
        async with TurnClient("tcp", server) as client:
            await client.login(*credentials(secret, "peer-1", time.time()))
            reply = await client.request(allocate_request())
            assert reply.message_class == stun.Class.RESPONSE
            assert (await client.create_permission(("127.0.0.2", 5000))).error_code == 403
            # No media socket is registered in this daemon yet: its own address is refused too.
            assert (await client.create_permission(bystander.getsockname())).error_code == 403
            await client.send_indication(bystander.getsockname(), b"anyone there?")
            assert await nothing_arrives(bystander)
            metrics = read(daemon)
            assert 'videoroomd_turn_refused_total{code="403"} 2.0' in metrics
            assert "videoroomd_turn_allocations 1.0" in metrics
            assert 'videoroomd_turn_dropped_total{reason="no_permission"} 1.0' in metrics
    finally:
        bystander.close()
    daemon.wait_healthy()
    assert "turn server listening" in daemon.log()
    assert secret not in daemon.log()


async def test_turn_over_tls_relays_while_a_client_without_tls_waits_on_the_same_port(tmp_path):
    generate(tmp_path / "tls.crt", tmp_path / "tls.key", cn="localhost", days=1)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client_context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
    client_context.check_hostname = False
    config = TurnConfig(enabled=True, host="127.0.0.1", port=0, tls_host="127.0.0.1", tls_port=0,
                        relay_ports=RELAY_PORTS, secret=SECRET)
    media = MediaAddresses(["127.0.0.1"])
    media_sock = await udp_socket()
    media.add(*media_sock.getsockname())
    service = TurnService(config, media.contains, relay_host="127.0.0.1", ssl_context=server_context)
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(service.run)
        plain = await trio.open_tcp_stream(*addresses["tls"])
        await plain.send_all(bytes(allocate_request()))  # STUN where a TLS hello belongs: it waits, alone
        async with TurnClient("tcp", addresses["tls"]) as client:
            client.stream = trio.SSLStream(client.stream, client_context, server_hostname="localhost")
            await client.allocate(*credentials(SECRET, "peer-1", time.time()))
            assert (await client.create_permission(media_sock.getsockname())).message_class == stun.Class.RESPONSE
            await client.send_indication(media_sock.getsockname(), b"over tls")
            with trio.fail_after(5):
                assert (await media_sock.recvfrom(100))[0] == b"over tls"
        await plain.aclose()
        nursery.cancel_scope.cancel()
    media_sock.close()


async def test_the_credentials_handed_to_a_join_work_on_the_builtin_server_until_they_expire(tmp_path):
    config = parse(f'''
[ice]
addresses = ["127.0.0.1"]
[turn]
enabled = true
listen = "127.0.0.1:0"
relay_ports = [{RELAY_PORTS[0]}, {RELAY_PORTS[1]}]
credential_lifetime = 60
[defaults]
turn_servers = [{{ urls = "turn:turn.example.org", username = "fixed", credential = "pass" }}]
[rooms.lobby]
''', "test", tmp_path)
    media = MediaAddresses.for_ice(config.ice.addresses)
    service = turn_service(config, media.contains, media.hosts)
    now = [time.time()]
    service.wall_clock = lambda: now[0]
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        handed = TurnCredentials(issued_servers(service, config), config.turn.credential_lifetime, clock=lambda: now[0])
        entries = handed.for_peer(config.rooms["lobby"], "peer-9")
        assert [(e["serverAddr"], e["transport"]) for e in entries] == [
            ("127.0.0.1", "udp"), ("127.0.0.1", "tcp"), ("turn.example.org", "udp")]
        assert entries[0]["username"].endswith(":peer-9") and entries[2]["username"] == "fixed"
        for entry in entries[:2]:
            async with TurnClient(entry["transport"], (entry["serverAddr"], entry["serverPort"])) as client:
                await client.allocate(entry["username"], entry["password"])
        now[0] += 61  # the join's credentials have expired: a new allocation with them is refused
        async with TurnClient("udp", (entries[0]["serverAddr"], entries[0]["serverPort"])) as client:
            await client.login(entries[0]["username"], entries[0]["password"])
            assert (await client.request(allocate_request())).error_code == 401
        nursery.cancel_scope.cancel()


async def test_an_ipv6_relay_asked_of_an_ipv4_server_gets_440_and_a_binding_request_its_address():
    async with turn_server() as (service, _media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.login(*credentials(SECRET, "peer-1", time.time()))
            request = allocate_request()
            request.attributes.update({"USERNAME": client.username, "REALM": client.realm, "NONCE": client.nonce})
            body = bytes(request) + struct.pack("!HH", 0x0017, 4) + b"\x02\x00\x00\x00"  # REQUESTED-ADDRESS-FAMILY: IPv6
            body += struct.pack("!HH", 0x0008, 20) + stun.message_integrity(body, client.key)
            await client.send_raw(stun.set_body_length(body, len(body) - 20))
            assert stun.parse_message(await client.receive()).error_code == 440
            reply = await client.request(stun.Message(stun.Method.BINDING, stun.Class.REQUEST), sign=False)
            assert reply.attributes["XOR-MAPPED-ADDRESS"] == client.sock.getsockname()
        assert service.stats()["allocations"] == 0


def resign(data: bytes, key: bytes) -> bytes:
    """``data`` with its length field fixed, then MESSAGE-INTEGRITY and FINGERPRINT that match it."""
    body = stun.set_body_length(data, len(data) - 20)
    body += struct.pack("!HH", 0x0008, 20) + stun.message_integrity(body, key)
    body = stun.set_body_length(body, len(body) - 20)
    body += struct.pack("!HHI", 0x8028, 4, stun.message_fingerprint(body))
    return stun.set_body_length(body, len(body) - 20)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_mutated_requests_never_reach_an_internal_error(transport):
    """Valid signed requests with bytes flipped, cut or grown: each is answered or dropped, none breaks the server."""
    rng = random.Random(8656)
    async with turn_server() as (service, media):
        media_address = media.getsockname()
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.allocate(*credentials(SECRET, "peer-1", time.time()))
            samples = []
            for message in (allocate_request(),
                            stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST, attributes={"XOR-PEER-ADDRESS": media_address}),
                            stun.Message(stun.Method.CHANNEL_BIND, stun.Class.REQUEST,
                                         attributes={"CHANNEL-NUMBER": 0x4001, "XOR-PEER-ADDRESS": media_address}),
                            stun.Message(stun.Method.REFRESH, stun.Class.REQUEST, attributes={"LIFETIME": 600})):
                message.attributes.update({"USERNAME": client.username, "REALM": client.realm, "NONCE": client.nonce})
                samples.append(bytes(message))  # unsigned: resigned after mutation, or refused
                message.add_message_integrity(client.key)
                samples.append(bytes(message))
            samples.append(bytes(stun.Message(stun.Method.SEND, stun.Class.INDICATION,
                                              attributes={"XOR-PEER-ADDRESS": media_address, "DATA": b"x" * 33})))
            samples.append(struct.pack("!HH", 0x4001, 5) + b"hello")
            sent = 0
            while sent < 1000:
                # A stream the server closes for being out of step is its answer; the next one goes on.
                async with TurnClient(transport, service.addresses[transport]) as fuzzer:
                    while sent < 1000:
                        sent += 1
                        data = bytearray(rng.choice(samples))
                        for _ in range(rng.randint(1, 4)):
                            kind = rng.random() if data else 1.0
                            if kind < 0.6:
                                data[rng.randrange(len(data))] = rng.randrange(256)
                            elif kind < 0.8:
                                del data[rng.randrange(len(data)):]
                            else:
                                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
                        if rng.random() < 0.5 and len(data) >= 20 and not data[0] & 0xC0:
                            data = resign(bytes(data), client.key)  # past FINGERPRINT and MESSAGE-INTEGRITY
                        try:
                            await fuzzer.send_raw(bytes(data))
                        except (trio.BrokenResourceError, OSError):
                            break
                        if transport == "tcp" and rng.random() < 0.1:
                            break  # now and then a fresh connection, so that one stall does not hide the rest
        await still_answers(service, transport)
        assert "internal_error" not in service.stats()["dropped"], service.stats()


async def test_dont_fragment_is_honoured_on_the_relay_socket():
    async with turn_server() as (service, media):
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.login(*credentials(SECRET, "peer-1", time.time()))
            request = allocate_request()
            request.attributes.update({"USERNAME": client.username, "REALM": client.realm, "NONCE": client.nonce})
            body = bytes(request) + struct.pack("!HH", 0x001A, 0)  # DONT-FRAGMENT
            body += struct.pack("!HH", 0x0008, 20) + stun.message_integrity(body, client.key)
            await client.send_raw(stun.set_body_length(body, len(body) - 20))
            reply = stun.parse_message(await client.receive())
            assert reply.message_class == stun.Class.RESPONSE, reply
            relay = next(iter(service._relays.values())).sock
            assert relay.getsockopt(socket.IPPROTO_IP, 10) == 2  # IP_MTU_DISCOVER: IP_PMTUDISC_DO


async def test_a_credential_over_its_bandwidth_has_its_datagrams_dropped_and_counted():
    async with turn_server(bandwidth_per_user=8) as (service, media):  # 8 kbit/s: 1000 bytes a second
        media_address = media.getsockname()
        async with TurnClient("udp", service.addresses["udp"]) as client:
            await client.allocate(*credentials(SECRET, "peer-1", time.time()))
            await client.create_permission(media_address)
            for _ in range(20):
                await client.send_indication(media_address, b"x" * 600)
            received = 0
            while not await nothing_arrives(media):
                received += 1
            assert 1 <= received < 20
        assert service.stats()["dropped"]["bandwidth"] == 20 - received

