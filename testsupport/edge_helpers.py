"""Raw-socket clients for edge tests: HTTP heads, WebSocket handshakes and frames by hand."""

from __future__ import annotations

import base64
import os
import socket
import struct

import trio

UPGRADE_KEY = base64.b64encode(b"0123456789abcdef").decode()


def upgrade_head(path: str, host: str = "127.0.0.1", headers: list[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {UPGRADE_KEY}", "Sec-WebSocket-Version: 13", *[f"{k}: {v}" for k, v in headers]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes | str, opcode: int = 0x1) -> bytes:
    """One masked client frame (FIN set)."""
    data = payload.encode() if isinstance(payload, str) else payload
    mask = os.urandom(4)
    size = len(data)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def reset(stream: trio.SocketStream) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP reset, not a FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def read_until(stream: trio.abc.Stream, marker: bytes, timeout: float = 5.0) -> bytes:
    """Bytes received until ``marker`` (included), or all of them when the server closed first."""
    data = b""
    with trio.fail_after(timeout):
        while marker not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def read_all(stream: trio.abc.Stream, timeout: float = 5.0) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    with trio.fail_after(timeout):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            data += chunk
    return data


async def exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` on a fresh connection; everything the server said until it closed."""
    stream = await connect(port)
    async with stream:
        await stream.send_all(request)
        return await read_all(stream, timeout)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def get(path: str, host: str = "127.0.0.1", headers: list[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close", *[f"{k}: {v}" for k, v in headers]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
