"""A room's text chat: cleaning, limits and the history (pure code, no I/O).

Messages go to everyone in the room over the room's Phoenix channel; the
server stamps each with an id, the sender's name and the time. Text is plain
text: it is stored and sent as the person typed it, less control characters,
and clients must render it as text. A person may send ``RATE_BURST`` messages
at once and one more every ``1 / RATE_PER_S`` seconds after that.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Hashable

from ..token_buckets import TokenBuckets

MAX_TEXT = 2000        # characters of a message, after cleaning
HISTORY = 100          # messages of a room shown to someone who joins late
RATE_BURST = 5         # messages a person may send in a row
RATE_PER_S = 0.5       # and then one every 2 s
MAX_BLANK_LINES = 2    # longer runs of empty lines are shortened to this

# Bidirectional embeddings, overrides and isolates: they would reorder the text
# that follows them on screen (a name or a link read backwards); marks (LRM, RLM) stay.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_BLANK_RUN = re.compile(r"\n[ \t]*(?:\n[ \t]*){%d,}" % MAX_BLANK_LINES)


class ChatRefused(Exception):
    """A message the room will not take; ``reason`` is shown to its sender."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code       # empty, too_long, too_fast
        self.reason = reason


@dataclass(frozen=True)
class ChatMessage:
    """One message as everyone sees it; ``at`` is the server's time, ISO 8601 UTC."""

    id: str
    sender: str   # the sender's peer id
    name: str
    text: str
    at: str

    def payload(self) -> dict:
        """The message as it goes on the wire (the ``chat`` push)."""
        return {"id": self.id, "from": self.sender, "name": self.name, "text": self.text, "at": self.at}


def clean_text(text: str) -> str:
    """``text`` as it will be shown: no control characters but newlines (tabs become
    spaces, CR LF and CR become LF), no bidi overrides, long runs of blank lines
    shortened, and no whitespace at either end."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    kept = "".join(c for c in text if c == "\n" or (c >= " " and not "\x7f" <= c <= "\x9f" and c not in _BIDI_CONTROLS))
    return _BLANK_RUN.sub("\n" * MAX_BLANK_LINES, kept).strip()


def utc_now() -> str:
    """The time now as ISO 8601 UTC with milliseconds, e.g. ``2026-11-30T01:04:05.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ChatLog:
    """One room's chat: who may send now, and the last ``history`` messages."""

    def __init__(self, *, history: int = HISTORY, max_text: int = MAX_TEXT,
                 burst: float = RATE_BURST, rate: float = RATE_PER_S):
        self.max_text = max_text
        self.messages: deque[ChatMessage] = deque(maxlen=history)
        self.buckets = TokenBuckets(rate, burst)
        self.on_post: Callable[[ChatMessage], None] | None = None  # told of each message kept (a shared history)

    def post(self, sender: Hashable, name: str, text: str, *, now: float, at: str | None = None) -> ChatMessage:
        """Take a message from ``sender`` (shown as ``name``) at monotonic time ``now``.

        Returns the message to send to everyone, now in the history; raises
        ChatRefused (and keeps nothing) when it is too fast, empty or too long.
        Every attempt counts against the rate, so refused messages cannot flood either.
        """
        if not self.buckets.take(sender, now):
            wait = max(1, math.ceil(self.buckets.wait(sender, now)))
            raise ChatRefused("too_fast", f"you are sending messages too fast; wait {wait} s")
        cleaned = clean_text(text)
        if not cleaned:
            raise ChatRefused("empty", "the message is empty")
        if len(cleaned) > self.max_text:
            raise ChatRefused("too_long", f"the message is too long: {len(cleaned)} characters, at most {self.max_text}")
        message = ChatMessage(str(uuid.uuid4()), str(sender), name, cleaned, at or utc_now())
        self.messages.append(message)
        if self.on_post is not None:
            self.on_post(message)
        return message

    def forget(self, sender: Hashable) -> None:
        """Drop what is remembered of ``sender``'s rate (it left); its messages stay in the history."""
        self.buckets.forget(sender)

    def history(self) -> list[dict]:
        """The remembered messages, oldest first, as they go on the wire."""
        return [message.payload() for message in self.messages]
