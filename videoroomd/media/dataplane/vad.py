"""Voice activity from RFC 6464 audio levels, with hysteresis (pure code).

The level is in -dBov, 0 (loudest) to 127 (silence). A track turns to
speech when most of the recent packets are loud, and back to silence only
after it stayed quiet for HOLD seconds, so the indicator does not flicker
between words.
"""

from __future__ import annotations

from collections import deque

SPEECH_LEVEL = 50   # -dBov; louder than -50 dBov counts as voice
WINDOW = 10         # packets (200 ms of 20 ms frames)
ONSET = 6           # loud packets within WINDOW to turn to speech
HOLD = 1.0          # seconds of quiet before silence


class VoiceActivity:
    def __init__(self) -> None:
        self.speaking = False
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._last_loud = float("-inf")

    def feed(self, level: int, now: float) -> bool | None:
        """Take one packet's level; returns the new state when it changes, else None."""
        loud = level <= SPEECH_LEVEL
        self._recent.append(loud)
        if loud:
            self._last_loud = now
        if not self.speaking and sum(self._recent) >= ONSET:
            self.speaking = True
            return True
        if self.speaking and now - self._last_loud >= HOLD:
            self.speaking = False
            return False
        return None
