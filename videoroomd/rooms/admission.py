"""The admission gate: every rule a join must pass, each written once (pure, synchronous).

A join meets the rules at three moments, because what they read exists at
different times:

1. :meth:`AdmissionGate.admit`, before any room is made for it (the relay
   calls it before the WebSocket upgrade, to answer 400/401/429/503): the
   room name rule, the daemon draining, an unknown room, the access token
   (checked here and only here: its signature, expiry, room and join
   grant), the wrong-password throttle and the password.
2. :meth:`AdmissionGate.may_open`, when the room is looked up or started:
   the room running elsewhere, the cap on dynamic rooms, a room that kept
   failing.
3. :func:`check_entry`, in the same step as the peer is added to the open
   room: a room closing or draining, still starting, full, and the password
   (or the token the join was admitted with) of the room actually entered
   (a reload may have changed it while the join waited for the room to open).

Every refusal is a :class:`JoinRefused` with a code and a reason a person
can read; a refused token's never holds the token. This module imports only
config, auth and the throttle.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, replace
from typing import Callable

from ..auth.tokens import AccessToken, TokenRefused, verify
from ..config import Config, RoomConfig
from ..config.validate import ROOM_NAME_RULE, is_room_name
from .throttle import PasswordThrottle

# The throttle's room for dynamic rooms: they all share the [defaults] password, so
# a guesser must not get a fresh set of attempts by asking for another name.
DYNAMIC = "*dynamic*"


class JoinRefused(Exception):
    """A join that the room will not take; ``reason`` is shown to the person joining.

    Raise a new one for each join: an instance raised again keeps the frames
    of every join it was raised in alive through its traceback.
    """

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code      # room_full, wrong_password, unknown_room, shutting_down, ...
        self.reason = reason


@dataclass(frozen=True)
class Admission:
    """What a join was admitted to: the room's settings, whether it is made on demand, and the
    access token it was admitted with (None: it came by password, or to an open room)."""

    config: RoomConfig
    dynamic: bool
    ticket: AccessToken | None = None


def shown_name(name: str) -> str:
    """``name`` quoted for a message or a log line: control characters escaped, at most 64 characters."""
    return repr(name[:64] + "…" if len(name) > 64 else name)


def password_matches(given: str | None, password: str | None) -> bool:
    """Whether ``given`` opens a room with ``password`` (None: the room has none); constant time."""
    if password is None:
        return True
    return hmac.compare_digest((given or "").encode(), password.encode())


def check_name(name: str) -> None:
    """Raises JoinRefused (bad_room_name) unless ``name`` follows the room name rule."""
    if not is_room_name(name):
        raise JoinRefused("bad_room_name", f"{shown_name(name)} is not a room name: {ROOM_NAME_RULE}")


def runs_elsewhere(name: str) -> JoinRefused:
    """The refusal of a join to room ``name`` while another owner holds its lease."""
    return JoinRefused("room_unavailable", f"room '{name}' runs elsewhere now; try again in a moment")


def opens(config: RoomConfig, password: str | None) -> bool:
    """Whether ``password`` opens the room: its password, or its moderator password (constant time)."""
    moderator = config.moderator_password is not None and password_matches(password, config.moderator_password)
    return password_matches(password, config.password) or moderator


def _check_password(config: RoomConfig, password: str | None) -> None:
    if not opens(config, password):
        raise JoinRefused("wrong_password", "wrong password" if password else "this room needs a password")


def _check_untokened(config: RoomConfig, password: str | None) -> None:
    """A join without a token: refused by a token room, else the password decides."""
    if config.access_mode == "token":
        raise JoinRefused("token_required", f"room '{config.name}' admits only people with an access token")
    if config.access_mode == "password":
        _check_password(config, password)


def check_token(config: Config, room: str, token: str, now: float) -> AccessToken:
    """The access ``token`` for ``room`` at Unix time ``now``, checked against ``config``'s keys.
    Raises JoinRefused (the token's refusal code, or no_join_grant)."""
    try:
        ticket = verify(token, config.auth.keys, room=room, now=now)
    except TokenRefused as refused:
        raise JoinRefused(refused.code, refused.reason) from None
    if not ticket.grants.join:
        raise JoinRefused("no_join_grant", f"the access token does not allow joining room '{room}'")
    return ticket


def check_entry(config: RoomConfig, password: str | None, *, peers: int, accepting: bool,
                refusal: tuple[str, str] | None, ticket: AccessToken | None = None) -> None:
    """Whether one more peer may enter the open room with ``config`` now.

    ``peers``: the room's peers of the joining kind; ``refusal``: (code, reason) while
    the room drains or closes; ``ticket``: the token the join was admitted with. Raises
    JoinRefused (the refusal's code, starting, token_required, wrong_password, room_full).
    """
    if refusal is not None:
        raise JoinRefused(*refusal)
    if not accepting:
        raise JoinRefused("starting", f"room '{config.name}' is starting; try again in a moment")
    if ticket is None or ticket.room != config.name:
        _check_untokened(config, password)
    if peers >= config.max_peers:
        raise JoinRefused("room_full", f"room '{config.name}' is full ({config.max_peers} people)")


class AdmissionGate:
    """The daemon-wide rules: names, draining, which rooms exist, passwords and their throttle, the cap."""

    def __init__(self, config: Config, throttle: PasswordThrottle | None = None,
                 wall_clock: Callable[[], float] = time.time):
        """``wall_clock``: Unix time now, what access tokens' expiry is read against."""
        self.config = config
        self.throttle = throttle if throttle is not None else PasswordThrottle()
        self.wall_clock = wall_clock
        # (code, reason) while draining: a fresh JoinRefused is raised from it each time.
        self.refusal: tuple[str, str] | None = None

    def refuse_all(self, code: str, reason: str) -> None:
        """Refuse every join from now on with ``code`` and ``reason`` (the daemon is draining)."""
        self.refusal = (code, reason)

    def admit(self, name: str, password: str | None, address: str, *, running: Admission | None,
              now: float, token: str | None = None) -> Admission:
        """The settings room ``name`` gives a join from ``address`` with ``password`` or ``token``.

        ``running``: the room's admission when it runs here now. A token, when given, is
        checked in any room and admits without the password; its ticket is in the
        returned admission. Counts a wrong password against the address. Raises
        JoinRefused (bad_room_name, the drain's code, unknown_room, a token's refusal,
        no_join_grant, token_required, too_many_attempts, wrong_password).
        """
        check_name(name)
        self._check_open()
        admission = running or self._settings(name)
        config = admission.config
        if token is not None:
            return replace(admission, ticket=check_token(self.config, name, token, self.wall_clock()))
        if config.access_mode != "password":
            _check_untokened(config, password)
            return admission
        key = DYNAMIC if admission.dynamic else name
        wait = self.throttle.wait(address, key, now)
        if wait:
            raise JoinRefused("too_many_attempts",
                              f"too many wrong passwords for room '{name}' from your address; try again in {wait} s")
        if not opens(config, password):
            if password:  # a join without a password is asking whether one is needed, not guessing
                self.throttle.wrong(address, key, now)
            _check_password(config, password)
        return admission

    def may_open(self, name: str, *, running: Admission | None, failed: bool = False, dynamic_count: int = 0,
                 elsewhere: str | None = None) -> Admission:
        """The settings to open (or start) room ``name`` with.

        ``running``: its admission when it runs here now, ``failed`` when it kept crashing;
        ``dynamic_count``: the dynamic rooms running here; ``elsewhere``: who else runs it.
        Raises JoinRefused (bad_room_name, the drain's code, room_unavailable,
        unknown_room, too_many_rooms, room_failed).
        """
        check_name(name)
        self._check_open()
        if running is None:
            if elsewhere is not None:
                raise runs_elsewhere(name)
            running = self._settings(name)
            cap = self.config.server.max_dynamic_rooms
            if running.dynamic and dynamic_count >= cap:
                raise JoinRefused("too_many_rooms", f"the server already runs its limit of {cap} rooms made on "
                                                    "demand; join a room that is open, or try again later")
        if failed:
            raise JoinRefused("room_failed", f"room '{name}' is out of order (it kept failing); the operator has been told")
        return running

    def _check_open(self) -> None:
        if self.refusal is not None:
            raise JoinRefused(*self.refusal)

    def _settings(self, name: str) -> Admission:
        """The settings of a room that does not run here now: configured, or made on demand."""
        configured = self.config.rooms.get(name)
        if configured is not None:
            return Admission(configured, False)
        if self.config.server.dynamic_rooms:
            return Admission(self.config.room_from_defaults(name), True)
        raise JoinRefused("unknown_room", f"there is no room called '{name}'")
