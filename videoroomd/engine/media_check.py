"""The connectivity check's media: a browser's peer connection to the daemon's media ports, as a call makes one.

``/check`` posts an offer (one receive-only audio m-line, its candidates in it)
and gets the worker's answer: ICE and DTLS to the media ports run exactly as
in a call, so the page sees whether its network reaches them. Nothing is ever
forwarded: every m-line is answered ``inactive``. A check is no participant
and takes no room slot; it is bounded on its own: MAX_CHECKS at once on the
daemon, CHECK_BURST per client address then CHECK_RATE a second, and each
connection closed HOLD seconds after its answer, whatever the browser does.
The checks share one hidden media room on a worker, opened at the first
check and again after its worker was lost.

May import: videoroomd.media.workers (commands, plane), sdp, config, context.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import structlog
import trio

from ..config import IceConfig
from ..context import MediaCheckRefused
from ..media.workers.client import MediaError, WorkerLost
from ..media.workers.commands import Answer, Answered, CloseEndpoint
from ..media.workers.events import RoomEvent, RoomLost
from ..media.workers.offer_errors import NOT_APPLIED
from ..media.workers.plane import MediaPlane, RoomLink
from ..sdp.candidates import announce_address
from ..sdp.offer import SdpError
from ..sdp.offer import parse as parse_sdp
from ..sdp.offer_checks import check_offer
from ..token_buckets import TokenBuckets
from ..turn.clients import TurnCredentials
from ..turn.peers import MediaAddresses

log = structlog.get_logger("videoroomd.check")

ROOM = "~check"           # the hidden media room's name on its worker (no room name may start with ~)
MAX_OFFER_BYTES = 16 * 1024  # a browser's offer with one m-line and its candidates is about 2 KiB
MAX_MEDIA_LINES = 2       # the page offers one; a second leaves room for a browser's own habits
MAX_CHECKS = 16           # check connections open at once on the daemon
HOLD = 20.0               # seconds a check's connection stays open (the page gives up after 10)
ANSWER_TIMEOUT = 10.0     # seconds the worker may take to answer
CLOSE_TIMEOUT = 5.0       # seconds to close one check's connection on its worker
CHECK_RATE = 0.4          # peer connections per second per client address, after the burst
CHECK_BURST = 8           # a page's run makes one direct and up to three through the relay


@dataclass
class CheckCounts:
    """What the checks did since the daemon started, for /metrics."""

    answered: int = 0
    refused: int = 0
    failed: int = 0
    open: int = 0


class MediaCheck:
    """The daemon's connectivity-check connections; :meth:`run` owns them, :meth:`offer` makes one."""

    def __init__(self, plane: MediaPlane, ice: IceConfig, *, turn: TurnCredentials | None = None,
                 media_addresses: MediaAddresses | None = None, max_checks: int = MAX_CHECKS, hold: float = HOLD):
        self.plane = plane
        self.ice = ice
        self.turn = turn                        # the built-in TURN server's users (None: no [turn])
        self.media_addresses = media_addresses  # where that server may relay
        self.max_checks = max_checks
        self.hold = hold
        self.counts = CheckCounts()
        self.buckets = TokenBuckets(CHECK_RATE, CHECK_BURST)
        self._link: RoomLink | None = None
        self._opening = trio.Lock()
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        # endpoint -> (its check's TURN user, the media sockets that user may relay to for it)
        self._relayed: dict[str, tuple[str, list[tuple[str, int]]]] = {}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Hold the checks' connections until cancelled (then their room is closed); never returns."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            link, self._link = self._link, None
            if link is not None:
                with trio.CancelScope(shield=True):
                    await link.close(CLOSE_TIMEOUT)

    async def offer(self, sdp: str, address: str, relay_user: str | None = None) -> str:
        """The answer to a check's ``sdp`` offer from client ``address``; with ``relay_user`` (a
        check's TURN user), that user may relay to the answer's media sockets while it is open.

        Raises MediaCheckRefused: 429 past the address's rate, 503 when MAX_CHECKS are open or
        no worker answers, 400 or 413 for an offer a check does not make (the reason says what).
        """
        try:
            self._admit(address)
            _check_offer(sdp)
            if relay_user is not None and (self.turn is None or self.media_addresses is None):
                raise MediaCheckRefused(400, "this server runs no TURN server: a check cannot come through it")
        except MediaCheckRefused:
            self.counts.refused += 1
            raise
        # Without a camera's permission a browser offers only mDNS names, which the server may not
        # resolve or may leave out: an end-of-candidates then leaves aioice with no component to
        # gather for, and the answer with no candidate. Without it, the server answers with its
        # candidates and learns the browser's address from the browser's own checks, as a call's does.
        sdp = "\r\n".join(line for line in sdp.split("\r\n") if line.strip() != "a=end-of-candidates")
        self.counts.open += 1
        endpoint, link = f"check-{next(self._ids)}", None
        try:
            link = await self._room()
            answered = await link.call(Answer(link.key, endpoint, sdp, {}, ()), timeout=ANSWER_TIMEOUT)
            assert isinstance(answered, Answered)
        except (MediaError, WorkerLost, trio.TooSlowError) as error:
            self.counts.failed += 1
            self._close_later(0.0, link, endpoint)
            log.warning("connectivity check not answered", error=f"{type(error).__name__}: {error}")
            raise _refusal(error) from None
        except BaseException:
            self._close_later(0.0, link, endpoint)
            raise
        self.counts.answered += 1
        log.debug("connectivity check answered", endpoint=endpoint, address=address, relay=relay_user,
                  offered=sdp.count("a=candidate:"), answered=answered.sdp.count("a=candidate:"))
        if relay_user is not None:
            self._relay_to(relay_user, link, endpoint, answered)
        self._close_later(self.hold, link, endpoint)
        return announce_address(answered.sdp, self.ice.announced_ip)

    def _relay_to(self, user: str, link: RoomLink, endpoint: str, answered: Answered) -> None:
        """Let check ``user``'s allocations relay to ``endpoint``'s media sockets, and hand them to the
        worker that carries the check, as a participant's are."""
        assert self.turn is not None and self.media_addresses is not None
        self.turn.hold_check(user, ROOM)
        sockets = [(s.host, s.port) for s in answered.sockets]
        self._relayed[endpoint] = (user, sockets)
        for host, port in sockets:
            self.media_addresses.add(host, port, link.worker_name, (ROOM, user))

    def _unrelay(self, endpoint: str) -> None:
        """``endpoint``'s check is over: its sockets are no relay's peer any more; once no check of
        its TURN user is open (a page's run uses one user for each transport), that user's allocations end."""
        user, sockets = self._relayed.pop(endpoint, (None, []))
        if user is None or self.turn is None or self.media_addresses is None:
            return
        for host, port in sockets:
            self.media_addresses.remove(host, port)
        if all(other != user for other, _ in self._relayed.values()):
            self.turn.revoke(user)

    def _close_later(self, delay: float, link: RoomLink | None, endpoint: str) -> None:
        """Close ``endpoint``'s connection in ``delay`` seconds (with the room, when the daemon stops first)."""
        nursery = self._nursery
        try:
            if nursery is None:
                raise RuntimeError("the checks have stopped")
            nursery.start_soon(self._close_after, delay, link, endpoint)
        except RuntimeError:  # the checks have stopped: their room closes (or closed) with them
            self.counts.open -= 1
            self._unrelay(endpoint)

    def _admit(self, address: str) -> None:
        """Raise MediaCheckRefused unless a check from ``address`` may start now."""
        if self._nursery is None:
            raise MediaCheckRefused(503, "the connectivity check is not running (the server is stopping)")
        now = trio.current_time()
        if not self.buckets.take(address, now):
            wait = max(self.buckets.wait(address, now), 0.1)
            raise MediaCheckRefused(429, f"too many connectivity checks from {address}; try again in {math.ceil(wait)} s")
        if self.counts.open >= self.max_checks:
            raise MediaCheckRefused(503, f"{self.max_checks} connectivity checks are running; try again in a minute")

    async def _room(self) -> RoomLink:
        """The checks' media room, opened on a worker if none carries it; raises WorkerLost or MediaError."""
        async with self._opening:
            if self._link is None:
                self._link = await self.plane.open_room(
                    ROOM, self._event, ice_servers=[], certificate=None, addresses=list(self.ice.addresses),
                    udp_ports=list(self.ice.udp_ports) if self.ice.udp_ports else None,
                    may_start=False)  # checks are brief and light: no worker process is started for them
            return self._link

    def _event(self, event: RoomEvent | RoomLost) -> None:
        """The worker's news of the checks' room: only its loss matters (the next check opens it again)."""
        if isinstance(event, RoomLost):
            self._link = None

    async def _close_after(self, delay: float, link: RoomLink | None, endpoint: str) -> None:
        """Close ``endpoint``'s connection after ``delay`` seconds (at once when cancelled); never raises."""
        try:
            await trio.sleep(delay)
        finally:
            self.counts.open -= 1
            self._unrelay(endpoint)
            if link is not None and link is self._link:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                    try:
                        await link.call(CloseEndpoint(link.key, endpoint), timeout=CLOSE_TIMEOUT)
                    except (MediaError, WorkerLost, trio.TooSlowError):
                        pass  # its worker is gone or busy: the connection went, or goes, with the room


def _refusal(error: MediaError | WorkerLost | trio.TooSlowError) -> MediaCheckRefused:
    """What the client is told when the worker did not answer its check."""
    said = str(error).removeprefix("OfferRefused: ")  # the worker's words, meant for a person
    if isinstance(error, MediaError) and NOT_APPLIED in said:  # aiortc could not take this offer
        return MediaCheckRefused(400, f"the server could not accept this offer: {said}")
    if isinstance(error, MediaError):  # the server's own trouble, such as no free port in [ice] udp_ports
        return MediaCheckRefused(503, f"the server could not open its media for the check: {said}")
    return MediaCheckRefused(503, f"the server's media did not answer the check ({type(error).__name__})")


def _check_offer(sdp: str) -> None:
    """Raise MediaCheckRefused(400) for an offer a check does not make, saying what is wrong."""
    if len(sdp.encode()) > MAX_OFFER_BYTES:
        raise MediaCheckRefused(413, f"the offer is {len(sdp.encode())} bytes; a check's is at most {MAX_OFFER_BYTES}")
    try:
        offered = parse_sdp(sdp)
        check_offer(sdp)
    except SdpError as error:
        raise MediaCheckRefused(400, f"the offer cannot be read: {error}") from None
    if not offered.media:
        raise MediaCheckRefused(400, "the offer has no m-line: a check offers one receive-only audio m-line")
    if len(offered.media) > MAX_MEDIA_LINES:
        raise MediaCheckRefused(400, f"the offer has {len(offered.media)} m-lines; a check offers at most {MAX_MEDIA_LINES}")
    for line in offered.media:
        if line.kind not in ("audio", "video"):
            raise MediaCheckRefused(400, f"m-line {line.index} is {line.kind[:16]!r}; a check offers audio or video")
