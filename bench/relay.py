"""Relayed participants (``bench.sfu --relay``): who relays, over which TURN entry, and what the
daemon's TURN server and the bots say about it (pure code; the bots and the harness use it)."""

from __future__ import annotations

import math

from testsupport.metrics import families

TRANSPORTS = ("udp", "tcp")  # what aiortc's ICE agent speaks to a TURN server (no TLS)
# /metrics family -> our key (videoroomd/metrics.py, _TurnCollector)
FAMILIES = {"videoroomd_turn_allocations": "allocations", "videoroomd_turn_allocations_created": "created",
            "videoroomd_turn_allocations_created_by_transport": "created_by_transport",
            "videoroomd_turn_dropped": "dropped", "videoroomd_turn_refused": "refused",
            "videoroomd_turn_handed_off": "handed_off", "videoroomd_turn_relayed_packets": "relayed"}


def relayed(index: int, n: int, share: float) -> bool:
    """Whether participant ``index`` of a room of ``n`` goes through the relay: the first
    ⌈share × n⌉ of the room's steady participants; the late joiner (index ``n``) only when
    every steady one does (share 1), so that a mixed run's late joiner is a direct one."""
    if share <= 0:
        return False
    if index >= n:
        return share >= 1
    return index < math.ceil(share * n - 1e-9)


def ice_servers(entries: list[dict], transport: str) -> list[dict]:
    """``RTCIceServer`` arguments (urls, username, credential) for the entries of
    ``offerData.integratedTurnServers`` over ``transport`` ("udp" or "tcp"); others left out."""
    servers = []
    for entry in entries:
        if entry.get("transport") != transport:
            continue
        host = str(entry["serverAddr"])
        if ":" in host:  # an IPv6 literal, as RFC 7065 writes it
            host = f"[{host}]"
        servers.append({"urls": f"turn:{host}:{int(entry['serverPort'])}?transport={transport}",
                        "username": entry["username"], "credential": entry["password"]})
    return servers


def turn_counters(metrics: str) -> dict:
    """The built-in TURN server's figures from a /metrics page (Prometheus text): allocations
    open, created (in all and by transport), dropped by reason, refused by code. Empty when the
    page has none (the TURN server is off)."""
    result: dict = {}
    for family in families(metrics):
        key = FAMILIES.get(family.name)
        for sample in family.samples if key else ():
            if sample.name.endswith("_created") and family.type == "counter":
                continue  # a counter's creation time, not a count
            value = int(sample.value) if float(sample.value).is_integer() else sample.value
            if sample.labels:  # several labels: their values joined, by label name ("to_peer/workers")
                label = "/".join(v for _k, v in sorted(sample.labels.items()))
                result.setdefault(key, {})[label] = value
            else:
                result[key] = value
    return result


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """How much each labelled counter grew from ``before`` to ``after`` (those that did)."""
    return {label: after[label] - before.get(label, 0) for label in sorted(after)
            if after[label] - before.get(label, 0)}


def turn_figures(before_join: dict, window_start: dict, window_end: dict) -> dict:
    """The TURN server's figures for one run, from its counters before anyone joined and at
    the start and end of the measured window."""
    return {
        "allocations_open": window_end.get("allocations", 0),
        "allocations_created": window_end.get("created", 0) - before_join.get("created", 0),
        "allocations_created_by_transport": grown(before_join.get("created_by_transport", {}),
                                                  window_end.get("created_by_transport", {})),
        "dropped_in_window": grown(window_start.get("dropped", {}), window_end.get("dropped", {})),
        "dropped_since_join": grown(before_join.get("dropped", {}), window_end.get("dropped", {})),
        "refused_since_join": grown(before_join.get("refused", {}), window_end.get("refused", {})),
        # Clients handed to the media workers, and datagrams relayed in the window by the daemon
        # itself and by the workers ("to_peer/workers"...): where the relaying runs.
        "handed_off_by_transport": grown(before_join.get("handed_off", {}), window_end.get("handed_off", {})),
        "relayed_in_window": grown(window_start.get("relayed", {}), window_end.get("relayed", {})),
    }


def routes(snaps: dict[str, dict], relayed_names: set[str]) -> dict:
    """Which path each bot's media took, from the nominated ICE pair in its snap (``route``):
    how many of the bots meant to relay used a relay candidate, and which did not (a direct
    path, or no pair at all); and any bot meant to go direct that went through a relay."""
    wanted = sorted(name for name in snaps if name in relayed_names)
    direct = sorted(name for name in snaps if name not in relayed_names)

    def local(name: str) -> str | None:
        return (snaps[name].get("route") or {}).get("local")

    not_relayed = [f"{name} ({local(name) or 'no pair'})" for name in wanted if local(name) != "relay"]
    return {"relayed_bots": len(wanted), "relayed_on_relay_pair": len(wanted) - len(not_relayed),
            "relayed_not_on_relay_pair": not_relayed,
            "direct_bots": len(direct),
            "direct_on_relay_pair": [name for name in direct if local(name) == "relay"]}
