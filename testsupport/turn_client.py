"""A raw TURN client for tests, over UDP or TCP on 127.0.0.1, built with aioice's STUN codec."""

from __future__ import annotations

import struct

import trio
from aioice import stun

from videoroomd.turn.credentials import long_term_key, rest_password, rest_username
from videoroomd.turn.framing import StreamFramer

TIMEOUT = 5.0
UDP = 17 << 24  # REQUESTED-TRANSPORT: UDP


def credentials(secret: str, peer: str, now: float, lifetime: float = 3600) -> tuple[str, str]:
    username = rest_username(peer, now, lifetime)
    return username, rest_password(secret, username)


class TurnClient:
    """One client 5-tuple talking to a TURN server; ``frames`` holds what came that was not a response."""

    def __init__(self, transport: str, server: tuple[str, int]):
        self.transport = transport
        self.server = server
        self.sock = None
        self.stream = None
        self.framer = StreamFramer()
        self.pending: list[bytes] = []
        self.realm: str | None = None
        self.nonce: bytes | None = None
        self.key: bytes | None = None
        self.username: str | None = None

    async def __aenter__(self) -> "TurnClient":
        if self.transport == "udp":
            self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await self.sock.bind(("127.0.0.1", 0))
        else:
            self.stream = await trio.open_tcp_stream(*self.server)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.stream is not None:
            await trio.aclose_forcefully(self.stream)

    async def send_raw(self, data: bytes) -> None:
        if self.sock is not None:
            await self.sock.sendto(data, self.server)
        else:
            await self.stream.send_all(data)

    async def receive(self) -> bytes:
        """The next datagram or frame from the server (raises TooSlowError after TIMEOUT)."""
        with trio.fail_after(TIMEOUT):
            if self.sock is not None:
                data, _ = await self.sock.recvfrom(65536)
                return data
            while not self.pending:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("the server closed the connection")
                self.pending += self.framer.feed(data)
            return self.pending.pop(0)

    async def request(self, message: stun.Message, *, sign: bool = True) -> stun.Message:
        """Send ``message`` (signed with the current credentials if any) and return its response."""
        if sign and self.key is not None:
            message.attributes.update({"USERNAME": self.username, "REALM": self.realm, "NONCE": self.nonce})
            message.add_message_integrity(self.key)
        await self.send_raw(bytes(message))
        while True:
            data = await self.receive()
            if data[0] & 0xC0:
                continue
            reply = stun.parse_message(data)
            if reply.transaction_id == message.transaction_id:
                return reply

    async def login(self, username: str, password: str) -> stun.Message:
        """An unsigned Allocate (expecting 401 with realm and nonce); remembers the credentials; returns the 401."""
        challenge = await self.request(allocate_request(), sign=False)
        assert challenge.error_code == 401, challenge
        self.realm = challenge.attributes["REALM"]
        self.nonce = challenge.attributes["NONCE"]
        self.username = username
        self.key = long_term_key(username, self.realm, password)
        return challenge

    async def allocate(self, username: str, password: str) -> tuple[str, int]:
        """Log in and allocate; returns the relayed address."""
        await self.login(username, password)
        reply = await self.request(allocate_request())
        assert reply.message_class == stun.Class.RESPONSE, reply
        assert reply.check_message_integrity(self.key)
        return reply.attributes["XOR-RELAYED-ADDRESS"]

    async def create_permission(self, peer: tuple[str, int]) -> stun.Message:
        return await self.request(stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST,
                                               attributes={"XOR-PEER-ADDRESS": peer}))

    async def channel_bind(self, channel: int, peer: tuple[str, int]) -> stun.Message:
        return await self.request(stun.Message(stun.Method.CHANNEL_BIND, stun.Class.REQUEST,
                                               attributes={"CHANNEL-NUMBER": channel, "XOR-PEER-ADDRESS": peer}))

    async def send_indication(self, peer: tuple[str, int], data: bytes) -> None:
        await self.send_raw(bytes(stun.Message(stun.Method.SEND, stun.Class.INDICATION,
                                               attributes={"XOR-PEER-ADDRESS": peer, "DATA": data})))

    async def channel_data(self, channel: int, data: bytes) -> None:
        frame = struct.pack("!HH", channel, len(data)) + data
        if self.stream is not None:
            frame += bytes(-len(frame) % 4)
        await self.send_raw(frame)


def allocate_request() -> stun.Message:
    return stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST, attributes={"REQUESTED-TRANSPORT": UDP})
