"""Sharp edges: bare-LF heads, the Bearer scheme in any case, refused handshakes ended at once, slow readers told why."""

from __future__ import annotations

import socket

import trio
from structlog.testing import capture_logs
from trio_websocket import ConnectionClosed, wrap_client_stream, wrap_server_stream

from testsupport.edge_helpers import connect, exchange, get, read_all, status_of
from testsupport.signalling_helpers import running_daemon
from test_edge_isolation import metric, still_serving

from videoroomd.metrics import Metrics


async def test_a_head_with_bare_lf_line_endings_gets_400_at_once(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        with trio.fail_after(1):  # not held until the head deadline (5 s)
            response = await exchange(daemon.port, b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n")
        assert status_of(response) == 400 and b"bare LF" in response
        stream = await connect(daemon.port)  # a bare LF in the middle of a head is refused as soon as it is in
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\nX-More: ")
        with trio.fail_after(1):
            assert status_of(await read_all(stream)) == 400
        await still_serving(daemon)


async def test_the_admin_token_is_taken_whatever_the_case_of_bearer(tmp_path):
    async with running_daemon(tmp_path, server='admin_token = "s3cret-token"') as daemon:
        for scheme in ("Bearer", "bearer", "BEARER"):
            request = get("/admin/rooms", headers=[("Authorization", f"{scheme} s3cret-token")])
            assert status_of(await exchange(daemon.port, request)) == 200
        for wrong in ("bearer s3cret-tokenX", "Basic s3cret-token", "bearers3cret-token", "s3cret-token"):
            request = get("/admin/rooms", headers=[("Authorization", wrong)])
            assert status_of(await exchange(daemon.port, request)) == 403


UPGRADE_WITHOUT_KEY = (b"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
UPGRADE_OLD_VERSION = UPGRADE_WITHOUT_KEY.replace(b"13\r\n", b"8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


async def test_a_refused_websocket_handshake_ends_at_once(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        with capture_logs() as logs:
            for head, status in ((UPGRADE_WITHOUT_KEY, 400), (UPGRADE_OLD_VERSION, 426)):
                with trio.fail_after(1):
                    assert status_of(await exchange(daemon.port, head)) == status
            await trio.sleep(0.3)
            assert metric(daemon, "videoroomd_connections_open") == 0  # the daemon let go too, not 10 s later
        dropped = [entry for entry in logs if entry["event"] == "socket dropped before it opened"]
        assert [entry["reason"] for entry in dropped] == ["WebSocket handshake failed: refused: not a valid "
                                                          "WebSocket handshake"] * 2
        await still_serving(daemon)


async def test_a_client_that_stops_reading_is_cut_off_with_a_close_frame(monkeypatch):
    from videoroomd.signalling import websocket as ws
    monkeypatch.setattr(ws, "SEND_TIMEOUT", 0.5)  # instead of 15 s
    server_socket, client_socket = trio.socket.socketpair()
    for sock in (server_socket, client_socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server_stream, client_stream = trio.SocketStream(server_socket), trio.SocketStream(client_socket)
    metrics = Metrics(list)
    closed_with = []
    async with trio.open_nursery() as nursery:
        server_ws = []
        async with trio.open_nursery() as handshake:
            async def server() -> None:
                server_ws.append(await (await wrap_server_stream(nursery, server_stream)).accept())
            handshake.start_soon(server)
            client_ws = await wrap_client_stream(nursery, client_stream, "localhost", "/", message_queue_size=1)

        async def read_later() -> None:
            await trio.sleep(1.0)  # past SEND_TIMEOUT, within the time the close frame is given
            try:
                while True:
                    await client_ws.get_message()
            except ConnectionClosed as closed:
                closed_with.append(closed.reason)

        nursery.start_soon(read_later)
        sent = 0
        with trio.fail_after(10):
            while await ws.send_or_drop(server_ws[0], server_stream, "x" * 1000, metrics):
                sent += 1
            while not closed_with:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert sent >= 1 and [(reason.code, reason.reason) for reason in closed_with] == [(1008, "reading too slowly")]
    assert 'videoroomd_protocol_errors_total{kind="slow_consumer"} 1.0' in metrics.render().decode()
