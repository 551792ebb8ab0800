"""The node's cluster numbers on /metrics: whether Redis answers, and what went wrong with it."""

from __future__ import annotations

from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class ClusterCollector:
    """Reads ``stats()`` (as :meth:`~.node.ClusterNode.stats` returns it) at each scrape."""

    def __init__(self, stats: Callable[[], dict]):
        self.stats = stats

    def collect(self):
        stats = self.stats()
        up = GaugeMetricFamily("videoroomd_cluster_redis_up",
                               "1 while this node's last load publication reached Redis, else 0")
        up.add_metric([], 1 if stats["redis_up"] else 0)
        failures = CounterMetricFamily("videoroomd_cluster_heartbeat_failures",
                                       "Publications of this node's load that Redis did not take (down or slow)")
        failures.add_metric([], stats["heartbeat_failures"])
        malformed = CounterMetricFamily("videoroomd_cluster_malformed_records",
                                        "Records read from Redis that were not ours (dropped), by kind",
                                        labels=["kind"])
        for kind, count in sorted(stats["malformed"].items()):
            malformed.add_metric([kind], count)
        chat = CounterMetricFamily("videoroomd_cluster_chat_not_stored",
                                   "Chat messages not written to the room's history in Redis (queue full or Redis away)")
        chat.add_metric([], stats["chat_dropped"])
        refused = CounterMetricFamily("videoroomd_cluster_joins_refused_no_directory",
                                      "Joins refused because the room directory (Redis) did not answer")
        refused.add_metric([], stats["joins_refused"])
        overrun = CounterMetricFamily("videoroomd_cluster_link_messages_overrun",
                                      "Link messages dropped because this node read them too slowly (their links ended)")
        overrun.add_metric([], stats["link_overrun"])
        calls = CounterMetricFamily("videoroomd_cluster_api_calls_failed",
                                    "Server API requests between nodes that failed: this node's not answered in "
                                    "time (timeout), other nodes' refused as too many at once (busy)", labels=["why"])
        calls.add_metric(["timeout"], stats["api_calls"]["timeout"])
        calls.add_metric(["busy"], stats["api_calls"]["busy"])
        yield from (up, failures, malformed, chat, refused, overrun, calls)
