"""What the TURN server may answer a UDP source that has not authenticated (pure code).

A UDP source address can be forged: an unauthenticated request (a Binding,
an Allocate without credentials, one with stale or wrong ones) could make
the server send its larger answers (a 401 carries REALM and NONCE, 3-5
times a bare request) at someone else. So each UDP source has a byte credit:
what it sent is added, what it is answered unsigned is spent, and an answer
the credit does not cover is not sent. The credit starts at ALLOWANCE (the
first answers of a real client, so that it needs no retransmission), and
what a busy address banks is capped at MAX_CREDIT: an address is never sent
more than ALLOWANCE bytes beyond what it sent, however long it floods. Answers signed
with a key went to a client whose request carried a nonce sent to that very
address (:mod:`.auth`), so they are not counted; nor is anything over TCP or
TLS, whose handshake proved the address.
"""

from __future__ import annotations

from ..token_buckets import TokenBuckets

ALLOWANCE = 256     # bytes: a 401 and a Binding response; answers beyond what a source sent
MAX_CREDIT = 4096   # bytes a source may bank: the answers to a few clients behind one address


class ReflectionGuard:
    """Byte credit per UDP source IP address (the least recently seen forgotten first)."""

    def __init__(self, allowance: float = ALLOWANCE, max_credit: float = MAX_CREDIT):
        self._credit = TokenBuckets(0.0, max_credit, initial=allowance)  # no refill with time: only what arrives

    def received(self, source: str, size: int, now: float) -> None:
        """``source`` sent ``size`` bytes."""
        self._credit.give(source, now, size)

    def may_answer(self, source: str, size: int, now: float) -> bool:
        """Whether an unsigned answer of ``size`` bytes may go to ``source`` (spends its credit if so)."""
        return self._credit.take(source, now, size)
