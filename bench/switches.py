"""Simulcast layer switches of one run (``bench.sfu --simulcast``), from what the pages saw: pure code.

Each Chromium participant's snap carries ``switches``, every ``encodingSwitched`` its page
received as ``(t, trackId, encoding, reason)``, and, per received video, ``widths``: each
change of its decoded frame width as ``(t, width)``; times are monotonic seconds, the
harness's clock. Some subscribers' links were limited at ``drop`` and freed at ``recover``
(each limited subscriber its own moments). For every pair of a limited subscriber and a
publisher this works out the layer it had when the limit came, how long until the server
switched it down (``encodingSwitched`` to a lower layer) and until the picture it decoded
got narrower, the layer it had when the limit went, and how long until it was switched up
again and back to where it started. The unlimited subscribers are watched over the same
time: they should not have moved.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

LAYERS = ("l", "m", "h")  # the page's layers, low to high


def rank(layer: str | None) -> int:
    """A layer's place, low to high; -1 for none (no switch seen yet) or one not known."""
    return LAYERS.index(layer) if layer in LAYERS else -1


def limited(index: int, n: int, share: float) -> bool:
    """Whether participant ``index`` of a room of ``n`` has its link limited: the first
    ⌈share × n⌉ steady participants; never the late joiner (index ``n``)."""
    return 0 <= index < n and index < math.ceil(share * n - 1e-9)


@dataclass(frozen=True)
class Limit:
    """When one subscriber's link was limited and when it was freed (monotonic seconds)."""

    drop: float
    recover: float


def _track_switches(snap: dict, track: str) -> list[tuple[float, str]]:
    return sorted((t, encoding) for t, track_id, encoding, *_reason in snap.get("switches", []) if track_id == track)


def _reason(snap: dict, track: str, at: float | None) -> str | None:
    """The reason the server gave for the switch of ``track`` at ``at``."""
    if at is None:
        return None
    return next((str(rest[0]) if rest else None for t, track_id, _encoding, *rest in snap.get("switches", [])
                 if track_id == track and t == at), None)


def layer_at(switches: list[tuple[float, str]], t: float) -> str | None:
    """The layer the last switch at or before ``t`` went to (None: none yet)."""
    layer = None
    for when, encoding in switches:
        if when > t:
            break
        layer = encoding
    return layer


def _first_after(changes: list[tuple[float, object]], t: float, until: float, good) -> float | None:
    """When the first change in (t, until] for which ``good(value)`` came; None: none did."""
    for when, value in changes:
        if t < when <= until and good(value):
            return when
    return None


def _width_at(widths: list[tuple[float, int]], t: float) -> int | None:
    width = None
    for when, value in widths:
        if when > t:
            break
        width = value
    return width


def pair_switches(snap: dict, track: str, limit: Limit, until: float) -> dict:
    """One subscriber (``snap``, its last) and one publisher's video ``track``: its layers and
    switch times (ms) around ``limit``, watched until ``until``."""
    switches = _track_switches(snap, track)
    entry = next((e for e in snap.get("received", {}).values() if e.get("track") == track), {})
    widths = sorted(tuple(w) for w in entry.get("widths", []))
    before = layer_at(switches, limit.drop)
    limited_end = layer_at(switches, limit.recover)
    down = _first_after(switches, limit.drop, limit.recover, lambda layer: rank(layer) < rank(before))
    up = _first_after(switches, limit.recover, until, lambda layer: rank(layer) > rank(limited_end))
    back = _first_after(switches, limit.recover, until, lambda layer: rank(layer) >= rank(before))
    width_before = _width_at(widths, limit.drop)
    width_limited = _width_at(widths, limit.recover)
    picture_down = (_first_after(widths, limit.drop, limit.recover, lambda w: w < width_before)
                    if width_before else None)
    picture_up = (_first_after(widths, limit.recover, until, lambda w: w > width_limited)
                  if width_limited else None)
    def ms(when: float | None, since: float) -> int | None:
        return None if when is None else round((when - since) * 1000)

    return {
        "track": track,
        "before": before, "limited_end": limited_end, "after": layer_at(switches, until),
        "ended_lower": before is not None and rank(limited_end) < rank(before),
        "down_ms": ms(down, limit.drop), "down_reason": _reason(snap, track, down),
        "picture_down_ms": ms(picture_down, limit.drop),
        "up_ms": ms(up, limit.recover), "back_ms": ms(back, limit.recover), "picture_up_ms": ms(picture_up, limit.recover),
        "width_before": width_before, "width_limited": width_limited,
        "switches_while_limited": sum(1 for t, _ in switches if limit.drop < t <= limit.recover),
    }


def switch_figures(snaps: dict[str, dict], joined: dict[str, dict], limits: dict[str, Limit],
                   until: float, limit_kbps: int) -> dict:
    """The figures of one run's limit: ``snaps``, each participant's last snap (taken at
    ``until``); ``joined``: the steady participants' "joined" messages (one room); ``limits``:
    the limited subscribers and when. Unlimited subscribers are watched from the earliest drop
    to the latest recovery."""
    pairs = {}
    for sub in joined:
        for pub in joined:
            if sub == pub:
                continue
            track = joined[pub]["tracks"]["video"]
            window = limits.get(sub) or Limit(min(x.drop for x in limits.values()),
                                               max(x.recover for x in limits.values()))
            pairs[(sub, pub)] = pair_switches(snaps[sub], track, window, until)
    mine = [p for (sub, _), p in pairs.items() if sub in limits]
    others = [p for (sub, _), p in pairs.items() if sub not in limits]

    def summary(key: str) -> dict:
        values = [p[key] for p in mine if p[key] is not None]
        return {f"{key}_median": _median(values), f"{key}_max": max(values) if values else None,
                f"{key}_missing": len(mine) - len(values)}

    return {
        "limit_kbps": limit_kbps,
        "limited": sorted(limits),
        "limited_pairs": len(mine),
        **summary("down_ms"), **summary("picture_down_ms"), **summary("up_ms"), **summary("back_ms"),
        **summary("picture_up_ms"),
        "limited_layers_before": dict(Counter(str(p["before"]) for p in mine)),
        "limited_layers_at_end_of_limit": dict(Counter(str(p["limited_end"]) for p in mine)),
        "limited_ended_lower": sum(p["ended_lower"] for p in mine),
        "unlimited_pairs": len(others),
        "unlimited_layers_at_end_of_limit": dict(Counter(str(p["limited_end"]) for p in others)),
        "unlimited_switched_down": sum(1 for p in others if p["down_ms"] is not None),
        "pairs": [{"subscriber": sub, "publisher": pub, **p} for (sub, pub), p in pairs.items()],
    }


def layers_now(snaps: dict[str, dict], joined: dict[str, dict], t: float) -> dict[tuple[str, str], str | None]:
    """(subscriber, publisher) -> the layer the subscriber receives of the publisher's video at ``t``."""
    return {(sub, pub): layer_at(_track_switches(snaps[sub], joined[pub]["tracks"]["video"]), t)
            for sub in joined for pub in joined if sub != pub}


def _median(values: list[int]) -> int | None:
    return round(statistics.median(values)) if values else None
