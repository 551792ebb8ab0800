"""Prometheus metrics of one daemon, on a registry of its own (never the global one)."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _RoomCollector:
    def __init__(self, snapshot: Callable[[], list[dict]]):
        self.snapshot = snapshot

    def collect(self):
        rooms = GaugeMetricFamily("videoroomd_rooms", "Rooms running now")
        peers = GaugeMetricFamily("videoroomd_peers", "Participants per room", labels=["room", "kind"])
        tracks = GaugeMetricFamily("videoroomd_tracks", "Published tracks per room", labels=["room"])
        rows = self.snapshot()
        rooms.add_metric([], len(rows))
        for row in rows:
            peers.add_metric([row["name"], "rtc"], row["peers"])
            peers.add_metric([row["name"], "relay"], row["relay_peers"])
            tracks.add_metric([row["name"]], row["tracks"])
        yield rooms
        yield peers
        yield tracks


class Metrics:
    """Counters the daemon bumps, and gauges read from the rooms when scraped."""

    def __init__(self, snapshot: Callable[[], list[dict]]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_RoomCollector(snapshot))
        self.joins = Counter("videoroomd_joins", "Joins accepted", ["kind"], registry=self.registry)
        self.joins_refused = Counter("videoroomd_joins_refused", "Joins refused, by reason", ["reason"], registry=self.registry)
        self.messages_in = Counter("videoroomd_messages_received", "Signalling messages received", ["kind"], registry=self.registry)
        self.messages_out = Counter("videoroomd_messages_sent", "Signalling messages sent", ["kind"], registry=self.registry)
        self.errors = Counter("videoroomd_protocol_errors", "Bad frames and protocol errors, by kind", ["kind"], registry=self.registry)
        self.connections_refused = Counter("videoroomd_connections_refused", "Connections refused, by reason", ["reason"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
