"""The application on the one port: who may connect, and which route answers a request."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import structlog
import trio

from ..context import Context
from ..logs.ratelimit import ThrottledLog
from .hosts import WILDCARDS, HostPolicy, is_loopback_address
from . import forwarded
from .limits import PER_ADDRESS, TOTAL, OpenConnections, Slot
from .ratelimit import ConnectionRateLimit
from .request import Request, Response
from .routes import Routes
from .server import BODY_PATHS, send_error

log = structlog.get_logger("videoroomd.http")
throttled = ThrottledLog(log)


class DaemonApp:
    """Answers HTTP requests and hands WebSocket upgrades to their endpoint."""

    def __init__(self, context: Context, routes: Routes):
        self.context = context
        self.metrics = context.metrics
        self.routes = routes
        self.rate_limit = ConnectionRateLimit(context.config().server.connections_per_second)
        self.open = OpenConnections()
        self._hosts: tuple[object, HostPolicy] | None = None
        self._proxies: tuple[object, tuple[forwarded.Network, ...]] = (None, ())
        server = context.config().server
        if server.hostnames is None and server.host in WILDCARDS:
            log.warning("listening on every address and answering any Host; set [server] hostnames to the names "
                        "this server is reached by, so that other sites' pages cannot reach it by DNS rebinding",
                        listen=server.listen)

    # -- connections ---------------------------------------------------------------------
    def admit(self, remote: tuple[str, int], evict: Callable[[], None]) -> Slot | Response:
        server = self.context.config().server
        # A trusted proxy brings everyone's connections: its clients are counted once their requests name them.
        proxy = forwarded.trusted(remote[0], self._trusted_proxies())
        if not proxy and not self.rate_limit.allow(remote[0], trio.current_time()):
            return self._refuse(remote, "rate_limit", 429, "too many new connections from your address; slow down")
        per_address = server.max_connections if proxy else server.max_connections_per_address
        slot = self.open.open(remote[0], server.max_connections, per_address, evict)
        if slot == TOTAL:
            # Full: the connection that has proven nothing for longest makes room. Only when every
            # place is held by a call or a request being answered is the newcomer refused.
            pushed = self.open.evict_oldest_unproven()
            if pushed is not None:
                self.metrics.connections_evicted.labels(pushed.state).inc()
                throttled.info("connection pushed out for a newcomer: the server is full", state=pushed.state,
                               remote=pushed.address)
                slot = self.open.open(remote[0], server.max_connections, per_address, evict)
        if slot == TOTAL:
            return self._refuse(remote, TOTAL, 503, "the server has too many connections open; try again later")
        if isinstance(slot, str):
            return self._refuse(remote, slot, 429, f"too many connections open from your address "
                                                   f"(at most {server.max_connections_per_address})")
        self.metrics.connections_open.inc()
        return slot

    def out_of_descriptors(self) -> None:
        """Out of file descriptors: the oldest connection that has proven nothing gives its own back."""
        self.metrics.connections_refused.labels("out_of_descriptors").inc()
        pushed = self.open.evict_oldest_unproven()
        if pushed is not None:
            self.metrics.connections_evicted.labels(pushed.state).inc()

    def client(self, request: Request, slot: Slot) -> Request | Response:
        """``request`` as sent by its client: through a trusted proxy, from the address the proxy names
        (which the per-address cap and rate limit then count) by the scheme it names; or the refusal to send."""
        proxies = self._trusted_proxies()
        if not forwarded.trusted(request.remote[0], proxies):
            return request
        address = forwarded.client_address(request.remote[0], request.headers, proxies)
        scheme = forwarded.scheme(request.headers) or request.scheme
        server = self.context.config().server
        remote = (address, 0)
        if address != slot.address:  # a new client on this connection (a proxy may reuse one for several)
            if not self.rate_limit.allow(address, trio.current_time()):
                return self._refuse(remote, "rate_limit", 429, "too many new connections from your address; slow down")
            if not self.open.move(slot, address, server.max_connections_per_address):
                return self._refuse(remote, PER_ADDRESS, 429, f"too many connections open from your address "
                                                              f"(at most {server.max_connections_per_address})")
        return replace(request, remote=remote, scheme=scheme)

    def _trusted_proxies(self) -> tuple[forwarded.Network, ...]:
        server = self.context.config().server
        if self._proxies[0] is not server:  # made again after a reload
            self._proxies = (server, forwarded.networks(server.trusted_proxies))
        return self._proxies[1]

    def _refuse(self, remote: tuple[str, int], reason: str, status: int, text: str) -> Response:
        self.metrics.connections_refused.labels(reason).inc()
        throttled.warning("connection refused", reason=reason, remote=remote[0])
        return Response.text(status, text)

    def release(self, slot: Slot) -> None:
        self.open.close(slot)
        self.metrics.connections_open.dec()

    def failed(self, remote: tuple[str, int], error: BaseException) -> None:
        self.metrics.connection_errors.inc()
        # Throttled too: a client that found a way to cause this must not fill the disk with tracebacks.
        throttled.error("connection ended by an unexpected error", remote=remote[0], error=repr(error), exc_info=error)

    def bad_request(self, remote: tuple[str, int], reason: str) -> None:
        self.metrics.connections_refused.labels("bad_request").inc()
        throttled.info("bad request", remote=remote[0], error=reason)

    def refusal(self, request: Request) -> Response | None:
        """421 for a Host this server does not answer to (HTTP and WebSocket alike)."""
        host = request.headers.get("host")
        if self._host_policy().accepts(host, loopback_peer=is_loopback_address(request.remote[0])):
            return None
        self.metrics.connections_refused.labels("host").inc()
        throttled.warning("request refused: Host not accepted", host=host, remote=request.remote[0])
        if host is None:
            return Response.text(421, "a Host header is required here")
        return Response.text(421, f"this server does not answer to the name {host!r}; see [server] hostnames")

    def _host_policy(self) -> HostPolicy:
        server = self.context.config().server
        if self._hosts is None or self._hosts[0] is not server:  # made again after a reload
            self._hosts = (server, HostPolicy(server.hostnames, server.host))
        return self._hosts[1]

    # -- requests ------------------------------------------------------------------------
    async def http(self, request: Request) -> Response:
        # The server API also takes POST (with a body); everything else is read only.
        allowed = ("GET", "HEAD", "POST") if request.path.startswith(BODY_PATHS) else ("GET", "HEAD")
        if request.method not in allowed:
            listed = ", ".join(allowed)
            return Response(405, f"only {listed} are served here\n".encode(), headers=[("allow", listed)])
        handler = self.routes.http_handler(request.path)
        response = await handler(request) if handler is not None else None
        return response if response is not None else Response.text(404, f"nothing at {request.path}")

    async def websocket(self, request: Request, stream: trio.abc.Stream) -> None:
        handler = self.routes.websocket_handler(request.path)
        if handler is None:
            await send_error(stream, 404, f"no WebSocket endpoint at {request.path}")
            return
        await handler(request, stream)
