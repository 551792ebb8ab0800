"""The HTTP edge against a real daemon on 127.0.0.1: connection caps, Host names, the admin view, bodies, odd heads."""

from __future__ import annotations

import ssl
import subprocess
import sys

import pytest
import trio
from structlog.testing import capture_logs

from testsupport.edge_helpers import connect, exchange, get, read_all, reset, status_of, upgrade_head
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.metrics import metric
from test_edge_isolation import still_serving


async def idle_connections(port: int, count: int) -> list[trio.SocketStream]:
    streams = [await connect(port) for _ in range(count)]
    await trio.sleep(0.1)  # let the daemon accept them
    return streams


# -- connection caps ----------------------------------------------------------------------
async def test_connections_over_the_per_address_cap_get_429_and_are_counted(tmp_path):
    async with running_daemon(tmp_path, server="max_connections_per_address = 3") as daemon:
        held = await idle_connections(daemon.port, 3)
        assert metric(daemon, "videoroomd_connections_open") == 3
        response = await exchange(daemon.port, get("/healthz"))
        assert status_of(response) == 429 and b"too many connections open from your address (at most 3)" in response
        assert metric(daemon, 'videoroomd_connections_refused_total{reason="max_connections_per_address"}') == 1
        for stream in held:
            await stream.aclose()
        await trio.sleep(0.1)
        assert metric(daemon, "videoroomd_connections_open") == 0
        await still_serving(daemon)


async def test_connections_over_the_total_cap_get_503(tmp_path):
    async with running_daemon(tmp_path, server="max_connections = 2") as daemon:
        held = await idle_connections(daemon.port, 2)
        response = await exchange(daemon.port, get("/healthz"))
        assert status_of(response) == 503 and b"too many connections open" in response
        assert metric(daemon, 'videoroomd_connections_refused_total{reason="max_connections"}') == 1
        for stream in held:
            await stream.aclose()
        await trio.sleep(0.1)
        await still_serving(daemon)


# -- Host names ---------------------------------------------------------------------------
async def test_a_rebinding_page_reads_nothing_and_opens_no_socket(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        evil = f"evil.example:{daemon.port}"
        for path in ("/admin/rooms", "/healthz", "/api/rooms"):
            response = await exchange(daemon.port, get(path, host=evil))
            assert status_of(response) == 421
            assert f"does not answer to the name '{evil}'".encode() in response
        upgrade = upgrade_head("/socket/websocket?vsn=2.0.0", host=evil, headers=[("Origin", f"http://{evil}")])
        response = await exchange(daemon.port, upgrade)
        assert status_of(response) == 421 and b" 101 " not in response
        upgrade = upgrade_head("/signaling/lobby", host=evil, headers=[("Origin", f"http://{evil}")])
        response = await exchange(daemon.port, upgrade)
        assert status_of(response) == 421
        assert metric(daemon, 'videoroomd_connections_refused_total{reason="host"}') == 5
        # by its own names it answers
        for host in (f"127.0.0.1:{daemon.port}", f"localhost:{daemon.port}", "[::1]"):
            assert status_of(await exchange(daemon.port, get("/healthz", host=host))) == 200


async def test_hostnames_are_the_names_answered(tmp_path):
    server = 'hostnames = ["meet.example.org", "other.example.org:8443"]'
    async with running_daemon(tmp_path, server=server) as daemon:
        assert status_of(await exchange(daemon.port, get("/healthz", host="meet.example.org:8443"))) == 200
        assert status_of(await exchange(daemon.port, get("/healthz", host="other.example.org:8443"))) == 200
        assert status_of(await exchange(daemon.port, get("/healthz", host="other.example.org:9999"))) == 421
        assert status_of(await exchange(daemon.port, get("/healthz", host="evil.example"))) == 421
        # the daemon's own user on this machine still reaches it by a loopback name
        assert status_of(await exchange(daemon.port, get("/admin/rooms", host=f"localhost:{daemon.port}"))) == 200
        async with phoenix_client(daemon, extra_headers=[("Origin", f"http://127.0.0.1:{daemon.port}")]) as client:
            assert (await client.join("lobby"))["status"] == "ok"


@pytest.mark.parametrize("header", [
    ("X-Real-IP", "203.0.113.9"), ("X-Forwarded-Host", "example.org"), ("X-Forwarded-For", "203.0.113.9"),
    ("Forwarded", "for=203.0.113.9"), ("Via", "1.1 proxy"), ("CF-Connecting-IP", "203.0.113.9"),
    ("True-Client-IP", "203.0.113.9"), ("X-Client-IP", "203.0.113.9"), ("X-Originating-IP", "203.0.113.9"),
])
async def test_the_admin_view_is_refused_through_any_proxy(tmp_path, header):
    async with running_daemon(tmp_path) as daemon:
        host = f"127.0.0.1:{daemon.port}"
        assert status_of(await exchange(daemon.port, get("/admin/rooms", host=host))) == 200
        response = await exchange(daemon.port, get("/admin/rooms", host=host, headers=[header]))
        assert status_of(response) == 403 and b"not through a proxy" in response


def test_rooms_live_still_reaches_the_admin_view(start_daemon):
    daemon = start_daemon()
    done = subprocess.run([sys.executable, "-m", "videoroomd", "rooms", "--live", "--json", "--config", str(daemon.config)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "lobby" in done.stdout


def test_a_wildcard_listen_without_hostnames_warns_at_start(tmp_path):
    from videoroomd.config import Location, load
    from videoroomd.daemon.daemon import Daemon
    path = tmp_path / "videoroomd.toml"
    path.write_text('[server]\nlisten = "0.0.0.0:0"\n[rooms.lobby]\n')  # never bound: the daemon is made, not run
    with capture_logs() as logs:
        Daemon(Location(path), load(Location(path)), watch_interval=0)
    assert any("set [server] hostnames" in line["event"] and line["log_level"] == "warning" for line in logs)
    path.write_text('[server]\nlisten = "0.0.0.0:0"\nhostnames = ["meet.example.org"]\n[rooms.lobby]\n')
    with capture_logs() as logs:
        Daemon(Location(path), load(Location(path)), watch_interval=0)
    assert not any("hostnames" in line["event"] for line in logs)


# -- request bodies and odd heads -------------------------------------------------------------
async def test_a_request_smuggled_in_a_chunked_body_is_never_answered(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        hidden = b"GET /admin/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        request = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + f"{len(hidden):x}\r\n".encode() + hidden + b"\r\n0\r\n\r\n")
        response = await exchange(daemon.port, request)
        assert response.count(b"HTTP/1.1 ") == 1
        assert status_of(response) == 400 and b"Transfer-Encoding is not accepted" in response
        assert b"rooms" not in response


@pytest.mark.parametrize("target", ["http://[/", "//[x/", "http://evil.example/admin/rooms", "*", "/static/a%00b",
                                    "/static/" + "x" * 3000, "/%ff%fe%00?%ff=%fe&&&=", "/room/%00"])
async def test_odd_request_targets_get_an_answer_and_the_daemon_lives_on(tmp_path, target):
    async with running_daemon(tmp_path) as daemon:
        response = await exchange(daemon.port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        assert status_of(response) in (400, 404)
        await still_serving(daemon)
        assert metric(daemon, "videoroomd_connection_errors_total") == 0


async def test_odd_bytes_in_cookies_and_queries_get_an_answer(tmp_path):
    async with running_daemon(tmp_path, "[rooms.lobby]\n[rooms.locked]\npassword = 'pw'\n") as daemon:
        for path, cookie in [("/signaling/locked?username=%ff&password=%fe%00", "x"),
                             ("/signaling/locked", 'credentials="\\377\\376"; a=\xff\xfe'),
                             ("/signaling/locked", "credentials=" + "{" * 2000),
                             ("/signaling/locked", "\x7f\x01=;;;=credentials")]:
            head = upgrade_head(path, headers=[("Cookie", cookie)])
            response = await exchange(daemon.port, head.decode().encode("latin-1"))
            assert status_of(response) in (400, 401)
        await still_serving(daemon)
        assert metric(daemon, "videoroomd_connection_errors_total") == 0


async def test_a_websocket_upgrade_with_bytes_beyond_ascii_gets_400(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        for path in ("/socket/websocket?vsn=2.0.0", "/signaling/lobby"):
            head = upgrade_head(path).replace(b"Connection: Upgrade", b"Connection: Upgrade\xa2")
            response = await exchange(daemon.port, head)
            assert status_of(response) == 400 and b"must be ASCII" in response
        await still_serving(daemon)
        assert metric(daemon, "videoroomd_connection_errors_total") == 0


async def test_a_head_trickled_byte_by_byte_is_cut_off(tmp_path, monkeypatch):
    from videoroomd.http import server
    monkeypatch.setattr(server, "HEAD_TIMEOUT", 0.5)  # instead of 10 s; the idle wait stays 60 s
    async with running_daemon(tmp_path) as daemon:
        stream = await connect(daemon.port)
        closed = False
        with trio.fail_after(5):
            try:
                for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000:
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.05)
            except trio.BrokenResourceError:
                closed = True
        assert closed or await read_all(stream) == b""
        await still_serving(daemon)


async def test_a_client_that_never_reads_its_answers_is_dropped(tmp_path, monkeypatch):
    from videoroomd.http import server
    monkeypatch.setattr(server, "SEND_TIMEOUT", 0.5)  # instead of 15 s
    async with running_daemon(tmp_path) as daemon:
        stream = await connect(daemon.port)
        request = b"GET /static/js/main.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        dropped = False
        with trio.move_on_after(3):
            try:
                for _ in range(3000):  # pipelined, never read: the answers pile up in the socket buffers
                    await stream.send_all(request)
            except trio.BrokenResourceError:
                dropped = True  # reset by the daemon while still sending: dropped
        if not dropped:
            await trio.sleep(1)
            answers = await read_all(stream, timeout=10)  # the daemon closed the connection
            assert answers.count(b"HTTP/1.1 200") < 3000
        await still_serving(daemon)


async def test_failed_tls_handshakes_end_only_their_connection(tmp_path):
    from videoroomd.certs.generate import generate
    generate(tmp_path / "tls.crt", tmp_path / "tls.key", cn="localhost", days=1)
    server = f'tls_cert = "{tmp_path}/tls.crt"\ntls_key = "{tmp_path}/tls.key"'
    async with running_daemon(tmp_path, server=server) as daemon:
        # plain HTTP to the TLS port; garbage; a ClientHello, then a reset; a client that distrusts the certificate
        assert await exchange(daemon.port, get("/healthz")) == b""
        assert await exchange(daemon.port, b"\x16\x03\x01\x00\x05hello" + bytes(range(256))) == b""
        stream = await connect(daemon.port)
        hello = trio.SSLStream(stream, ssl.create_default_context(), server_hostname="localhost")
        with pytest.raises(trio.BrokenResourceError):
            await hello.do_handshake()  # the certificate is not trusted: the client gives up
        await trio.aclose_forcefully(hello)
        stream = await connect(daemon.port)
        await stream.send_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)
        reset(stream)
        await trio.sleep(0.2)
        context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
        tls = trio.SSLStream(await connect(daemon.port), context, server_hostname="localhost")
        await tls.send_all(get("/healthz", host=f"localhost:{daemon.port}"))
        assert status_of(await read_all(tls)) == 200
        assert metric(daemon, "videoroomd_connection_errors_total") == 0
