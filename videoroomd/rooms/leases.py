"""This daemon's hold on one room's lease: claimed once, renewed, given up.

The room directory may be another process (Redis, when several daemons
share the rooms) that answers slowly or not at all, so every call made here
has a deadline, and what goes wrong is logged here, once, and handed back as
a domain error (RoomTaken, ClaimFailed) or a LeaseLost. A release is also
shielded from cancellation, so that a room stopped by a shutdown still frees
its name when the directory answers in time. Imports only the directory.
"""

from __future__ import annotations

from typing import Callable

import structlog
import trio

from .directory import Lease, LeaseLost, RoomDirectory, RoomTaken

log = structlog.get_logger("videoroomd.rooms")

DIRECTORY_TIMEOUT = 2.0  # seconds a claim or a release may take; after that the directory counts as unreachable


class ClaimFailed(Exception):
    """The directory did not answer a claim: it raised, or said nothing within DIRECTORY_TIMEOUT."""


class LeaseHolder:
    """One room's lease as this daemon holds it (``lease``: None before the claim and once it ended)."""

    def __init__(self, directory: RoomDirectory, room: str, owner: str, ttl: float, *, ride_out: bool = False):
        """``ride_out``: keep the room while the directory does not answer, and claim it again when it
        answers that the lease is gone but nobody holds the room (a shared directory that restarted)."""
        self.ride_out = ride_out
        self.directory = directory
        self.room = room
        self.owner = owner
        self.ttl = ttl
        self.lease: Lease | None = None
        # Set once no lease is held here and none will be claimed: the next holder of the name may claim.
        self.let_go = trio.Event()
        self._claim_over = False
        self._releasing: trio.Event | None = None  # set once the release in flight has ended

    async def claim(self, after: LeaseHolder | None = None) -> Lease:
        """Returns the room's new lease, claimed once ``after`` (the name's previous holder here) let go.

        Raises RoomTaken while someone else holds the room, ClaimFailed when the
        directory did not answer; both are logged here.
        """
        try:
            if after is not None:  # bounded: its claim and its release each have a deadline
                with trio.move_on_after(2 * DIRECTORY_TIMEOUT):
                    await after.let_go.wait()
            try:
                with trio.fail_after(DIRECTORY_TIMEOUT):
                    self.lease = await self.directory.claim(self.room, self.owner, ttl=self.ttl)
            except RoomTaken as taken:
                log.warning("room not started here: another server runs it", room=self.room,
                            owner=taken.holder.owner, token=taken.holder.token)
                raise
            except Exception as error:  # the directory's own failure, whatever its client raises
                why = _failure(error, "claim")
                log.error("room not started: the room directory did not answer its claim", room=self.room, why=why)
                raise ClaimFailed(why) from error
            return self.lease
        finally:
            self._claim_over = True

    async def keep(self, worker: Callable[[], str | None]) -> LeaseLost | None:
        """Renew the lease a few times per ``ttl``, noting ``worker()`` where the room's media runs.

        Returns None once the lease was given up (:meth:`release`), or the
        LeaseLost that ended it: the directory said it is someone else's, or
        did not answer before it expired. Logs each renewal it did not get.
        With ``ride_out``, an unanswered directory ends nothing (logged once
        until it answers), and a lease found gone is claimed again (a new
        token) unless someone else holds the room now.
        """
        renewed_at = trio.current_time()  # when the last renewal that came back was sent
        unanswered = 0  # renewals in a row the directory did not answer
        while (lease := self.lease) is not None:
            await trio.sleep(self.ttl / 3)
            if self.lease is not lease:
                return None  # given up meanwhile
            sent = trio.current_time()
            try:
                with trio.fail_after(min(DIRECTORY_TIMEOUT, self.ttl / 3)):
                    renewed = await self.directory.renew(lease, ttl=self.ttl, worker=worker())
            except LeaseLost as lost:
                if not self.ride_out:
                    return self._lost(lease, lost)
                renewed = await self._claim_again(lease, lost)
                if isinstance(renewed, LeaseLost):
                    return self._lost(lease, renewed)
                if renewed is None:
                    unanswered += 1
                    continue
                if self.lease is not lease:  # given up while it was claimed again: give the new one up too
                    self.lease = renewed
                    await self.release()
                    return None
            except Exception as error:  # unreachable: the lease holds until it expires
                if self.lease is not lease:
                    return None
                why = _failure(error, "renewal")
                unanswered += 1
                if self.ride_out:
                    if unanswered == 1:
                        log.warning("room lease not renewed: the room directory does not answer; the room "
                                    "goes on, and its lease is renewed or claimed again once it answers",
                                    room=self.room, why=why)
                    continue
                if trio.current_time() + self.ttl / 3 < renewed_at + self.ttl:
                    log.warning("room lease not renewed; trying again", room=self.room, why=why)
                    continue
                return self._lost(lease, LeaseLost(lease, f"the room directory did not answer ({why}) before the "
                                                          f"lease of room {self.room!r} expired"))
            if unanswered and self.ride_out:
                log.info("room lease renewed again", room=self.room, token=renewed.token)
            unanswered = 0
            if self.lease is lease:
                self.lease, renewed_at = renewed, sent
        return None

    async def _claim_again(self, lease: Lease, lost: LeaseLost) -> Lease | LeaseLost | None:
        """After ``lost`` (``ride_out``): the room's new lease, claimed again when nobody holds it; ``lost``
        when someone else does; None when the directory did not answer (the room goes on meanwhile)."""
        try:
            with trio.fail_after(DIRECTORY_TIMEOUT):
                claimed = await self.directory.claim(self.room, self.owner, ttl=self.ttl)
        except RoomTaken:
            return lost
        except Exception:  # not answered: the room goes on, and the next renewal finds out
            return None
        log.warning("room lease claimed again: the room directory had lost it", room=self.room,
                    why=lost.why, token=claimed.token)
        return claimed

    def _lost(self, lease: Lease, lost: LeaseLost) -> LeaseLost | None:
        if self.lease is not lease:  # given up meanwhile: the release, not the directory, ended it
            return None
        self.lease = None
        return lost

    async def release(self) -> None:
        """Give the lease up, if one is held; returns once the directory took it back, refused it
        (it was no longer ours) or did not answer within DIRECTORY_TIMEOUT. Never raises; runs on
        when cancelled (within its deadline), so that a stopped room frees its name."""
        lease, self.lease = self.lease, None
        with trio.move_on_after(DIRECTORY_TIMEOUT, shield=True) as deadline:
            if lease is None:
                if self._releasing is not None:  # another release is under way: this one ends with it
                    await self._releasing.wait()
            else:
                self._releasing = done = trio.Event()
                try:
                    await self._give_back(lease)
                finally:
                    done.set()
        if deadline.cancelled_caught and lease is not None:
            log.warning("room lease not released: the room directory did not answer in time; it will expire",
                        room=self.room, token=lease.token, timeout_s=DIRECTORY_TIMEOUT)
        if self._claim_over and self.lease is None:
            self.let_go.set()

    async def close(self) -> None:
        """Claim nothing from now on and give the lease up (:meth:`release`); ``let_go`` is then set."""
        self._claim_over = True
        await self.release()

    async def _give_back(self, lease: Lease) -> None:
        try:
            await self.directory.release(lease)
        except LeaseLost as lost:  # it was no longer ours: nothing to give up
            log.info("room lease was already gone", room=self.room, why=lost.why)
        except Exception as error:  # unreachable: the lease will expire on its own
            log.warning("room lease not released; it will expire", room=self.room, token=lease.token,
                        why=_failure(error, "release"))


def _failure(error: Exception, call: str) -> str:
    """What went wrong with a directory call, in words for a log line."""
    if isinstance(error, trio.TooSlowError):
        return f"no answer to the {call} within its deadline"
    return f"{type(error).__name__}: {error}"
