"""The TURN server is no amplifier: an address that never authenticates is sent no more than it sent.

A flood of unauthenticated requests (Allocates without credentials or with
wrong ones, Binding requests) from one UDP address is answered with at most
as many bytes as it brought, plus the first answers any real client needs
(reflection.ALLOWANCE); another address, and a real client, are answered as
ever; a nonce is good only from the address it was sent to.
"""

from __future__ import annotations

import time

import trio
from aioice import stun

from test_turn import turn_server
from testsupport.turn_client import TurnClient, allocate_request, credentials
from videoroomd.turn.reflection import ALLOWANCE

SECRET = "a-test-secret-long-enough"  # test_turn's


def flood() -> list[bytes]:
    """Unauthenticated requests of the kinds a forged source address would send."""
    wrong = allocate_request()
    wrong.attributes.update({"USERNAME": "9999999999:nobody", "REALM": "videoroomd", "NONCE": b"0-0"})
    wrong.add_message_integrity(b"not the key")
    return [bytes(allocate_request()), bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST)), bytes(wrong)]


async def test_a_401_flood_is_answered_with_no_more_bytes_than_it_brought():
    async with turn_server() as (service, _media):
        server = service.addresses["udp"]
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.bind(("127.0.0.2", 0))
        sent = received = answers = 0
        kinds = flood()

        async def read() -> None:
            nonlocal received, answers
            while True:
                data, _ = await sock.recvfrom(65536)
                received += len(data)
                answers += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for n in range(3000):
                request = kinds[n % len(kinds)]
                sent += await sock.sendto(request, server)
                if n % 50 == 0:
                    await trio.sleep(0.001)  # no more than the loopback's buffers hold
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
        sock.close()
        assert answers > 0  # the first ones, as a real client needs them
        assert received <= sent + ALLOWANCE, (received, sent)
        assert received / sent < 1.01
        assert service.stats()["dropped"]["reflection"] > 500  # the answers the flood did not pay for

        # Another address is answered as ever, and a real client gets its allocation.
        async with TurnClient("udp", server, source="127.0.0.3") as client:
            await client.allocate(*credentials(SECRET, "peer-1", time.time()))


async def test_a_nonce_is_good_only_from_the_address_it_was_sent_to():
    async with turn_server() as (service, _media):
        server = service.addresses["udp"]
        async with TurnClient("udp", server, source="127.0.0.4") as here, \
                TurnClient("udp", server, source="127.0.0.5") as there:
            await here.login(*credentials(SECRET, "peer-1", time.time()))
            there.realm, there.nonce, there.username, there.key = here.realm, here.nonce, here.username, here.key
            reply = await there.request(allocate_request())  # signed, with a nonce sent to another address
            assert reply.error_code == 438, reply
            assert reply.attributes["NONCE"] != here.nonce
            assert (await here.request(allocate_request())).message_class == stun.Class.RESPONSE
        assert service.stats()["allocations"] == 1
