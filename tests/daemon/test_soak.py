"""Churn against a real daemon: joins and leaves without goodbye, resets, relay sockets,
wrong passwords and many dynamic room names; afterwards the daemon is back at its level.

The clients here are raw sockets speaking just enough WebSocket, so that a test can
drop a connection the rude ways real networks do (no close frame; a TCP reset).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.request

import pytest

from testsupport.wait import wait_for

pytestmark = pytest.mark.slow

ROUNDS = 300
ROOMS = """\
[defaults]
max_peers = 50
[rooms.lobby]
[rooms.board]
password = "secret"
"""
SERVER = "dynamic_rooms = true\nconnections_per_second = 100000\nmax_dynamic_rooms = 100\ndrain_timeout = 1"
RSS_TOLERANCE_KB = 12 * 1024  # what one more round of churn may add (allocator slack, caches)


class RawWebSocket:
    """A client WebSocket on a plain socket; ``drop`` ends it without a close frame."""

    def __init__(self, port: int, path: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self.buffer = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""

    def send(self, value) -> None:
        payload = json.dumps(value).encode()
        mask = os.urandom(4)
        length = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + struct.pack("!H", length))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self):
        """The next text message, parsed; raises ConnectionError on a close frame."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError(f"closed: {payload[2:].decode(errors='replace')}")
            if opcode == 0x1:
                return json.loads(payload)

    def join(self, room: str, **params) -> dict:
        self.send(["1", "1", f"room:{room}", "phx_join", params])
        while True:
            join_ref, ref, topic, event, payload = self.receive()
            if event == "phx_reply" and ref == "1":
                return payload

    def drop(self, reset: bool = False) -> None:
        if reset:  # SO_LINGER 0: close() sends a TCP RST instead of a FIN
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def admin_rooms(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/admin/rooms", timeout=5) as response:
        return json.loads(response.read())["rooms"]


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def churn(port: int, rounds: int, tag: str) -> dict[str, int]:
    """One round of abuse; returns how often each outcome was seen (for the test to check it happened)."""
    seen: dict[str, int] = {}

    def count(what: str) -> None:
        seen[what] = seen.get(what, 0) + 1

    for i in range(rounds):
        batch: list[RawWebSocket] = []
        # people in the lobby, in a dynamic room of their own, and in a shared dynamic room
        for room in ("lobby", f"{tag}-{i}", f"{tag}-shared-{i % 7}"):
            ws = RawWebSocket(port, "/socket/websocket?vsn=2.0.0")
            reply = ws.join(room, displayName=f"churn {i}")
            count(f"join_{reply['status']}")
            connect = {"type": "connect", "data": {"metadata": {"displayName": f"churn {i}"}}}
            ws.send(["1", "3", f"room:{room}", "mediaEvent", {"data": json.dumps(connect)}])
            batch.append(ws)
        # a wrong password, then (throttled soon enough) the right one
        ws = RawWebSocket(port, "/socket/websocket?vsn=2.0.0")
        count(ws.join("board", password="guess")["response"].get("code", "ok"))
        count(ws.join("board", password="secret")["response"].get("code", "ok"))
        batch.append(ws)
        # relay sockets: one in, one refused before the upgrade
        relay = RawWebSocket(port, f"/signaling/{tag}-relay-{i % 5}?username=r{i}")
        count(f"relay_{relay.status}")
        if relay.status == 101:
            count(relay.receive()["event"])
        batch.append(relay)
        refused = RawWebSocket(port, "/signaling/board?password=nope")
        count(f"relay_{refused.status}")
        batch.append(refused)
        # a join to a bad name, on a socket then dropped
        ws = RawWebSocket(port, "/socket/websocket?vsn=2.0.0")
        count(ws.join("../" + "x" * 200)["response"].get("code", "ok"))
        batch.append(ws)
        for n, ws in enumerate(batch):
            if n % 3 == 2:  # some leave properly, the rest vanish
                ws.send(["1", "2", "room:lobby", "phx_leave", {}])
            ws.drop(reset=(i + n) % 2 == 0)
    return seen


def settled(url: str) -> bool:
    rooms = admin_rooms(url)
    return sorted(r["name"] for r in rooms) == ["board", "lobby"] and all(
        r["peers"] == 0 and r["relay_peers"] == 0 for r in rooms)


def test_churn_leaves_the_daemon_at_its_level(start_daemon):
    daemon = start_daemon(rooms=ROOMS, server=SERVER)
    pid = daemon.proc.pid
    churn(daemon.port, 40, "warm")  # imports, caches and allocator pools reach their size
    wait_for(lambda: settled(daemon.url), 15, "rooms and peers back")
    time.sleep(0.5)
    fds, rss = fd_count(pid), rss_kb(pid)

    seen = churn(daemon.port, ROUNDS, "soak")
    assert seen["join_ok"] >= 3 * ROUNDS and seen["too_many_attempts"]  # the guesser stays throttled
    assert seen["relay_101"] == ROUNDS and seen["authenticated"] == ROUNDS and seen.get("relay_401", 0) + seen.get("relay_429", 0) == ROUNDS
    assert seen["bad_room_name"] == ROUNDS

    wait_for(lambda: settled(daemon.url), 15, "rooms and peers back")
    wait_for(lambda: fd_count(pid) <= fds + 2, 15, f"open fds back ({fds} before)")
    time.sleep(0.5)
    grown = rss_kb(pid) - rss
    assert grown < RSS_TOLERANCE_KB, f"RSS grew by {grown} kB over one round of churn"

    # and it still serves a join
    ws = RawWebSocket(daemon.port, "/socket/websocket?vsn=2.0.0")
    assert ws.join("lobby", displayName="after")["status"] == "ok"
    ws.drop()
    assert daemon.proc.poll() is None
