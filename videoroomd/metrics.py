"""Prometheus metrics of one daemon, on a registry of its own (never the global one)."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .process_memory import rss_bytes, tree_rss_bytes

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# The engine's forwarding counters (videoroomd.media.webrtc.forwarding.MediaCounters): name, help.
MEDIA_COUNTERS = {
    "packets_received": "RTP packets received from publishers",
    "packets_forwarded": "RTP packets forwarded to subscribers",
    "bytes_forwarded": "Payload bytes forwarded to subscribers",
    "packets_retransmitted": "RTP packets sent again on a subscriber's NACK",
    "packets_dropped": "RTP packets not sent because a subscriber's socket was full",
    "keyframe_requests": "Keyframes asked of publishers",
    "participants_failed": "Participants removed for an error the engine did not foresee (logged with its traceback)",
}

# What the compiled module's media sockets (``_native.Port``) counted, per media worker: metric name,
# help, and the Port counters summed into it.
PORT_COUNTERS = {
    "datagrams": ("Datagrams the compiled module read from media sockets", ("datagrams",)),
    "batches": ("Reads (recvmmsg calls that returned datagrams) of the compiled module's media sockets", ("batches",)),
    "unvalidated": ("RTP and RTCP datagrams dropped before SRTP: their source is no validated ICE pair",
                    ("unvalidated",)),
    "srtp_failures": ("RTP and RTCP datagrams the compiled module could not decrypt (failed authentication, replayed, "
                      "malformed, no keys yet)", ("auth", "replay", "malformed", "srtp_failed", "no_keys")),
    "sent": ("RTP datagrams sent from the media sockets' own queue (the Python plane's; the compiled plane sends "
             "itself, counted in videoroomd_media_packets_forwarded)", ("sent",)),
    "send_errors": ("RTP datagrams the media sockets' queue could not send (an error, or the socket's buffer full)",
                    ("send_errors", "send_dropped")),
    "rtcp_in_c": ("RTCP compounds of clients about the streams they receive done by the compiled module alone "
                  "(NACKs answered, PLI/FIR, REMB and loss summed up for the bandwidth policy)", ("rtcp_done",)),
    "rtcp_dropped": ("RTCP compounds of clients dropped unread: larger than a datagram of RTCP should be, or beyond "
                     "the RTCP a connection may have parsed each second", ("rtcp_oversized", "rtcp_over_budget")),
}


class _RoomCollector:
    def __init__(self, snapshot: Callable[[], list[dict]]):
        self.snapshot = snapshot

    def collect(self):
        rooms = GaugeMetricFamily("videoroomd_rooms", "Rooms running now")
        dynamic = GaugeMetricFamily("videoroomd_dynamic_rooms", "Rooms made on demand running now (capped by max_dynamic_rooms)")
        peers = GaugeMetricFamily("videoroomd_peers", "Participants per room", labels=["room", "kind"])
        tracks = GaugeMetricFamily("videoroomd_tracks", "Published tracks per room", labels=["room"])
        media = {key: CounterMetricFamily(f"videoroomd_media_{key}", f"{text}, per room, since its engine started",
                                          labels=["room"])
                 for key, text in MEDIA_COUNTERS.items()}
        rows = self.snapshot()
        rooms.add_metric([], len(rows))
        dynamic.add_metric([], sum(1 for row in rows if row.get("dynamic")))
        for row in rows:
            peers.add_metric([row["name"], "rtc"], row["peers"])
            peers.add_metric([row["name"], "relay"], row["relay_peers"])
            tracks.add_metric([row["name"]], row["tracks"])
            for key, value in row.get("media", {}).items():
                if key in media:
                    media[key].add_metric([row["name"]], value)
        yield rooms
        yield dynamic
        yield peers
        yield tracks
        yield from media.values()


class _TurnCollector:
    """The built-in TURN server's allocations, drops and refusals (``TurnService.stats``)."""

    def __init__(self, stats: Callable[[], dict]):
        self.stats = stats

    def collect(self):
        stats = self.stats()
        allocations = GaugeMetricFamily("videoroomd_turn_allocations", "TURN allocations open now")
        allocations.add_metric([], stats["allocations"])
        created = CounterMetricFamily("videoroomd_turn_allocations_created", "TURN allocations made since start")
        created.add_metric([], stats["created"])
        by_transport = CounterMetricFamily("videoroomd_turn_allocations_created_by_transport",
                                           "TURN allocations made since start, by the transport the client used",
                                           labels=["transport"])
        for transport, count in sorted(stats.get("created_by_transport", {}).items()):
            by_transport.add_metric([transport], count)
        dropped = CounterMetricFamily(
            "videoroomd_turn_dropped", "TURN messages and datagrams neither relayed nor answered, by reason", labels=["reason"])
        for reason, count in sorted(stats["dropped"].items()):
            dropped.add_metric([reason], count)
        refused = CounterMetricFamily("videoroomd_turn_refused", "TURN error responses sent, by STUN error code", labels=["code"])
        for code, count in sorted(stats["refused"].items()):
            refused.add_metric([str(code)], count)
        handed = CounterMetricFamily("videoroomd_turn_handed_off",
                                     "TURN clients whose transport was handed to the media worker they relay to, by transport",
                                     labels=["transport"])
        for transport, count in sorted(stats.get("handed_off", {}).items()):
            handed.add_metric([transport], count)
        relayed = CounterMetricFamily("videoroomd_turn_relayed_packets",
                                      "Datagrams relayed, by where (the daemon, or the media workers clients were handed to) "
                                      "and direction (to_peer: to a media socket, to_client)", labels=["where", "direction"])
        for where, counts in sorted(stats.get("relayed", {}).items()):
            for direction in ("to_peer", "to_client"):
                relayed.add_metric([where, direction], counts.get(direction, 0))
        yield from (allocations, created, by_transport, dropped, refused, handed, relayed)


class _WorkerCollector:
    """Each media worker, from its last heartbeat (videoroomd.media.workers.plane.MediaPlane.snapshot)."""

    def __init__(self, snapshot: Callable[[], list[dict]]):
        self.snapshot = snapshot

    def collect(self):
        up = GaugeMetricFamily("videoroomd_media_worker_up", "1 while the media worker runs", labels=["worker"])
        rooms = GaugeMetricFamily("videoroomd_media_worker_rooms", "Rooms the media worker carries", labels=["worker"])
        cpu = CounterMetricFamily("videoroomd_media_worker_cpu_seconds", "CPU time the media worker used since it started",
                                  labels=["worker"])
        forwarded = CounterMetricFamily("videoroomd_media_worker_packets_forwarded",
                                        "RTP packets the media worker forwarded for its rooms running now", labels=["worker"])
        restarts = CounterMetricFamily("videoroomd_media_worker_restarts", "Times the media worker was lost and restarted",
                                       labels=["worker"])
        resident = GaugeMetricFamily("videoroomd_media_worker_resident_bytes", "Resident memory of the media worker process",
                                     labels=["worker"])
        ports = {key: CounterMetricFamily(f"videoroomd_media_worker_port_{key}", f"{text}, since the worker started",
                                          labels=["worker"])
                 for key, (text, _) in PORT_COUNTERS.items()}
        rows = self.snapshot()
        waiting = [row for row in rows if not row.get("started", True)]
        for row in rows:
            if row in waiting:
                continue  # not started yet: no series of its own until a room is placed on it
            name = [row["worker"]]
            up.add_metric(name, 1 if row["running"] else 0)
            rooms.add_metric(name, row["rooms"])
            cpu.add_metric(name, row["cpu_seconds"])
            forwarded.add_metric(name, row["packets_forwarded"])
            restarts.add_metric(name, row["restarts"])
            rss = rss_bytes(row["pid"]) if row.get("pid") else None
            if rss is not None:
                resident.add_metric(name, rss)
            counted = row.get("ports", {})
            for key, (_, parts) in PORT_COUNTERS.items():
                ports[key].add_metric(name, sum(counted.get(part, 0) for part in parts))
        tree = tree_rss_bytes()
        yield from (up, rooms, cpu, forwarded, restarts, resident)
        yield GaugeMetricFamily("videoroomd_media_workers_waiting", "Media workers not started yet: each starts "
                                "when a room is first placed on it", value=len(waiting))
        yield from ports.values()
        if tree is not None:
            yield GaugeMetricFamily("videoroomd_process_tree_resident_bytes",
                                    "Resident memory of the daemon and every process below it (its media workers), summed",
                                    value=tree)


class _CheckCollector:
    """The connectivity check's peer connections (``MediaCheck.counts``)."""

    def __init__(self, counts: Callable[[], dict]):
        self.counts = counts

    def collect(self):
        counts = self.counts()
        done = CounterMetricFamily("videoroomd_media_checks", "Connectivity checks' offers to the media ports, by "
                                   "result (answered, refused: rate, limit or a bad offer, failed: no worker answer)",
                                   labels=["result"])
        for result in ("answered", "refused", "failed"):
            done.add_metric([result], counts.get(result, 0))
        yield done
        yield GaugeMetricFamily("videoroomd_media_checks_open", "Connectivity checks' connections open now",
                                value=counts.get("open", 0))


class Metrics:
    """Counters the daemon bumps, and gauges read from the rooms and media workers when scraped."""

    def __init__(self, snapshot: Callable[[], list[dict]], workers: Callable[[], list[dict]] = list):
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_RoomCollector(snapshot))
        self.registry.register(_WorkerCollector(workers))
        self.joins = Counter("videoroomd_joins", "Joins accepted", ["kind"], registry=self.registry)
        self.joins_refused = Counter("videoroomd_joins_refused", "Joins refused, by reason", ["reason"], registry=self.registry)
        self.messages_in = Counter("videoroomd_messages_received", "Signalling messages received", ["kind"], registry=self.registry)
        self.messages_out = Counter("videoroomd_messages_sent", "Signalling messages sent", ["kind"], registry=self.registry)
        self.errors = Counter("videoroomd_protocol_errors", "Bad frames and protocol errors, by kind", ["kind"], registry=self.registry)
        self.chat_messages = Counter("videoroomd_chat_messages", "Chat messages sent to a room", registry=self.registry)
        self.chat_refused = Counter("videoroomd_chat_refused", "Chat messages refused, by reason", ["reason"], registry=self.registry)
        self.connections_refused = Counter("videoroomd_connections_refused", "Connections refused, by reason", ["reason"], registry=self.registry)
        self.connections_evicted = Counter(
            "videoroomd_connections_evicted", "Connections pushed out for a newcomer when full, by what they had not "
            "done (no_request, idle, not_joined)", ["state"], registry=self.registry)
        self.connections_open = Gauge("videoroomd_connections_open", "Client connections open now", registry=self.registry)
        self.connection_errors = Counter(
            "videoroomd_connection_errors", "Connections ended by an unexpected error (each logged with its traceback)",
            registry=self.registry)

    def watch_turn(self, stats: Callable[[], dict]) -> None:
        """Show the built-in TURN server's numbers (``stats`` as :meth:`TurnService.stats` returns them)."""
        self.registry.register(_TurnCollector(stats))

    def watch_checks(self, counts: Callable[[], dict]) -> None:
        """Show the connectivity check's numbers (``counts`` as :class:`MediaCheck.counts` holds them)."""
        self.registry.register(_CheckCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)
