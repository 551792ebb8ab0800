"""What a reload does to the rooms: which it adds, removes, changes and leaves alone (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RoomConfig


@dataclass(frozen=True)
class ReloadSummary:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    untouched: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()  # unchanged, but out of order: a reload gives them another chance


def diff_rooms(old: dict[str, RoomConfig], new: dict[str, RoomConfig]) -> ReloadSummary:
    """Which rooms a reload adds, removes, changes, and leaves alone (pure)."""
    return ReloadSummary(
        added=tuple(sorted(n for n in new if n not in old)),
        removed=tuple(sorted(n for n in old if n not in new)),
        changed=tuple(sorted(n for n in new if n in old and new[n] != old[n])),
        untouched=tuple(sorted(n for n in new if n in old and new[n] == old[n])),
    )
