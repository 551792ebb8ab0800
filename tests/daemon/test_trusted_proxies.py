"""Behind a reverse proxy: its clients counted, limited and logged by the address it forwards, never by its own.

Run through a real nginx when one is installed (tests/run.sh installs it), and
always through a small proxy written here that appends X-Forwarded-For as nginx does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from testsupport.daemon import free_port
from testsupport.edge_helpers import get, read_all, status_of
from testsupport.phoenix import PhoenixClient
from testsupport.signalling_helpers import running_daemon
from trio_websocket import open_websocket_url

from videoroomd.config import ConfigError
from videoroomd.http.forwarded import client_address, networks, scheme

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
CADDY = shutil.which("caddy")
TRUSTED = networks(["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"])


# -- which hop is the client (pure) ---------------------------------------------------------
@pytest.mark.parametrize("peer, headers, expected", [
    ("192.0.2.9", {"x-forwarded-for": "198.51.100.1"}, "192.0.2.9"),                 # not a proxy: ignored
    ("127.0.0.1", {}, "127.0.0.1"),                                                   # a proxy that said nothing
    ("127.0.0.1", {"x-forwarded-for": "198.51.100.1"}, "198.51.100.1"),
    ("127.0.0.1", {"x-forwarded-for": "6.6.6.6, 198.51.100.1"}, "198.51.100.1"),      # what the client wrote: left
    ("127.0.0.1", {"x-forwarded-for": "198.51.100.1, 10.1.2.3"}, "198.51.100.1"),     # through two trusted proxies
    ("127.0.0.1", {"x-forwarded-for": "10.1.2.3, 10.4.5.6"}, "10.1.2.3"),             # all trusted: the leftmost
    ("127.0.0.1", {"x-forwarded-for": "junk, 10.4.5.6"}, "10.4.5.6"),                 # unreadable: the nearest hop
    ("127.0.0.1", {"x-forwarded-for": "198.51.100.1:4711"}, "198.51.100.1"),
    ("127.0.0.1", {"forwarded": 'for=6.6.6.6, for="[2001:db9::1]:4711";proto=https'}, "2001:db9::1"),
    ("127.0.0.1", {"forwarded": "for=unknown"}, "127.0.0.1"),
    ("127.0.0.1", {"forwarded": "for=6.6.6.6", "x-forwarded-for": "198.51.100.1"}, "198.51.100.1"),
    ("::ffff:127.0.0.1", {"x-forwarded-for": "198.51.100.1"}, "198.51.100.1"),
])
def test_the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy(peer, headers, expected):
    assert client_address(peer, headers, TRUSTED) == expected


@pytest.mark.parametrize("headers, expected", [
    ({"x-forwarded-proto": "https"}, "https"),
    ({"x-forwarded-proto": "http, HTTPS"}, "https"),                 # the nearest proxy's, on the right
    ({"forwarded": "for=1.2.3.4;proto=https"}, "https"),
    ({"x-forwarded-proto": "gopher"}, None),
    ({}, None),
])
def test_the_scheme_is_the_nearest_proxys_word(headers, expected):
    assert scheme(headers) == expected


def test_no_trusted_proxies_believes_no_header():
    assert client_address("127.0.0.1", {"x-forwarded-for": "198.51.100.1"}, ()) == "127.0.0.1"


def test_trusted_proxies_are_addresses_or_cidr_blocks(tmp_path):
    from videoroomd.config.load import parse
    config = parse('[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "2001:db8::1"]\n[rooms.a]\n', "t.toml", tmp_path)
    assert config.server.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "2001:db8::1/128")
    with pytest.raises(ConfigError, match=r"server.trusted_proxies.*item 2.*expected an IPv4 or IPv6 address or CIDR"):
        parse('[server]\ntrusted_proxies = ["127.0.0.1", "proxy.local"]\n[rooms.a]\n', "t.toml", tmp_path)


def test_check_config_says_which_proxies_are_trusted(tmp_path):
    from click.testing import CliRunner
    from videoroomd.cli.main import cli
    path = tmp_path / "proxied.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:8080"\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n[rooms.a]\n')
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0 and result.output.endswith("; behind 127.0.0.1/32, 10.0.0.0/8\n")
    path.write_text('[server]\ntrusted_proxies = ["proxy.example"]\n[rooms.a]\n')
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 1 and "server.trusted_proxies: item 1: expected an IPv4 or IPv6 address" in result.output


# -- proxies ----------------------------------------------------------------------------------
async def _pipe(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(sink)


@asynccontextmanager
async def small_proxy(target_port: int):
    """A reverse proxy on 127.0.0.1 that appends the client's address to X-Forwarded-For, one request per connection."""
    async def handle(client: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await client.receive_some(65536)
            if not chunk:
                return
            head += chunk
        peer = client.socket.getpeername()[0]
        top, rest = head.split(b"\r\n", 1)
        lines = rest.split(b"\r\n")
        xff = [line for line in lines if line.lower().startswith(b"x-forwarded-for:")]
        lines = [line for line in lines if line not in xff and not line.lower().startswith(b"x-forwarded-proto:")]
        chain = b", ".join([line.split(b":", 1)[1].strip() for line in xff] + [peer.encode()])
        # As a proxy that ends TLS: the browser spoke https to it.
        head = b"\r\n".join([top, b"X-Forwarded-For: " + chain, b"X-Forwarded-Proto: https", *lines])
        upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
        await upstream.send_all(head)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pipe, client, upstream)
            nursery.start_soon(_pipe, upstream, client)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
{site}
}}
"""


def nginx_site(port: int, upstream: int) -> str:
    """The README's nginx example, with its ports and without TLS."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```nginx\n", 1)[1].split("```", 1)[0]
    site = block.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};").replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    return "\n".join(line for line in site.splitlines() if not line.strip().startswith("ssl_certificate"))


@asynccontextmanager
async def nginx(target_port: int, tmp_path: Path):
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp_path, site=nginx_site(port, target_port)))
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.STDOUT,
                               stdout=open(tmp_path / "nginx.out", "wb"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "nginx.out").read_text() + (tmp_path / "error.log").read_text()
                assert time.monotonic() < deadline
                await trio.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)


def caddy_site(port: int, upstream: int) -> str:
    """The README's Caddy example, on a loopback port and without TLS (an http:// site address)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```caddyfile\n", 1)[1].split("```", 1)[0]
    site = block.replace("meet.example.org", f"http://127.0.0.1:{port}").replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    return "{\n    admin off\n    auto_https off\n}\n" + site


@asynccontextmanager
async def caddy(target_port: int, tmp_path: Path):
    port = free_port()
    conf = tmp_path / "Caddyfile"
    conf.write_text(caddy_site(port, target_port))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "HOME": str(tmp_path)}
    process = subprocess.Popen([CADDY, "run", "--config", str(conf), "--adapter", "caddyfile"], env=env,
                               stderr=subprocess.STDOUT, stdout=open(tmp_path / "caddy.out", "wb"))
    try:
        await _listening(port, process, tmp_path / "caddy.out")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _listening(port: int, process: subprocess.Popen, output: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
            return
        except OSError:
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            await trio.sleep(0.1)


PROXIES = ["small", pytest.param("nginx", marks=pytest.mark.skipif(NGINX is None, reason="nginx is not installed")),
           pytest.param("caddy", marks=pytest.mark.skipif(CADDY is None, reason="caddy is not installed"))]
# Proxies that open a connection to the daemon for each request they pass on (Caddy keeps its connections
# to the daemon open and reuses them, so the daemon sees fewer new connections than the clients made).
PER_REQUEST = PROXIES[:2]


@asynccontextmanager
async def proxy(kind: str, target_port: int, tmp_path: Path):
    if kind == "nginx":
        async with nginx(target_port, tmp_path) as port:
            yield port
    elif kind == "caddy":
        async with caddy(target_port, tmp_path) as port:
            yield port
    else:
        async with small_proxy(target_port) as port:
            yield port


async def through(port: int, request: bytes, source: str) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    async with stream:
        await stream.send_all(request)
        return await read_all(stream)


@pytest.mark.parametrize("kind", PER_REQUEST)
async def test_behind_a_trusted_proxy_each_client_has_its_own_rate_limit(tmp_path, kind):
    server = 'connections_per_second = 1\ntrusted_proxies = ["127.0.0.1"]'  # one a second, in bursts of two
    async with running_daemon(tmp_path, server=server) as daemon, proxy(kind, daemon.port, tmp_path) as port:
        with capture_logs() as logs:
            spoofed = [("X-Forwarded-For", f"203.0.113.{n}") for n in range(3)]  # what a client writes is not believed
            answers = [status_of(await through(port, get("/healthz", headers=[header]), "127.0.0.2"))
                       for header in spoofed]
            assert answers == [200, 200, 429]
            assert status_of(await through(port, get("/healthz"), "127.0.0.3")) == 200  # another client is not slowed
        refused = [entry for entry in logs if entry["event"] == "connection refused"]
        assert [(entry["reason"], entry["remote"]) for entry in refused] == [("rate_limit", "127.0.0.2")]


@pytest.mark.parametrize("kind", PER_REQUEST)
async def test_without_trusted_proxies_every_client_shares_the_proxys_address(tmp_path, kind):
    async with running_daemon(tmp_path, server="connections_per_second = 1") as daemon, \
            proxy(kind, daemon.port, tmp_path) as port:
        answers = [status_of(await through(port, get("/healthz"), f"127.0.0.{n}")) for n in (2, 3, 4)]
        assert answers == [200, 200, 429]


@pytest.mark.parametrize("kind", PROXIES)
async def test_a_person_joins_through_the_proxy_and_the_admin_view_stays_closed_to_it(tmp_path, kind):
    async with running_daemon(tmp_path, server='trusted_proxies = ["127.0.0.1"]') as daemon, \
            proxy(kind, daemon.port, tmp_path) as port:
        # The browser's Origin has the scheme it used with the proxy: https with the small proxy, as one that ends TLS.
        origin = f"{'https' if kind == 'small' else 'http'}://127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
        async with open_websocket_url(url, extra_headers=[("Origin", origin)]) as websocket:
            assert (await PhoenixClient(websocket).join("lobby"))["status"] == "ok"
        assert status_of(await through(port, get("/admin/rooms"), "127.0.0.1")) == 403  # from loopback, but proxied
        assert status_of(await through(daemon.port, get("/admin/rooms"), "127.0.0.1")) == 200  # this machine's user


@pytest.mark.parametrize("kind", PROXIES)
async def test_the_admin_view_opens_to_a_proxied_request_with_the_token(tmp_path, kind):
    server = 'trusted_proxies = ["127.0.0.1"]\nadmin_token = "t0ken-for-admins"'
    async with running_daemon(tmp_path, server=server) as daemon, proxy(kind, daemon.port, tmp_path) as port:
        with_token = get("/admin/rooms", headers=[("Authorization", "Bearer t0ken-for-admins")])
        assert status_of(await through(port, with_token, "127.0.0.2")) == 200
        assert status_of(await through(port, get("/admin/rooms"), "127.0.0.2")) == 403
