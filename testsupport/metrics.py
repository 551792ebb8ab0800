"""Reading a daemon's /metrics: the one Prometheus-text reader of the tests and the benchmark.

Parsing is prometheus_client's own; a sample is picked by its full name
(``videoroomd_joins_refused_total``) and its exact label set.
"""

from __future__ import annotations

import re
import urllib.request
from typing import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

_SELECTOR = re.compile(r'^(\w+)(?:\{(.*)\})?$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def read(daemon) -> str:
    """The /metrics page of ``daemon``: an in-process one (its ``metrics`` registry) or a process
    serving at ``daemon.url``."""
    registry = getattr(daemon, "metrics", None)
    if registry is not None:
        return registry.render().decode()
    with urllib.request.urlopen(f"{daemon.url}/metrics", timeout=5) as response:
        return response.read().decode()


def families(text: str) -> Iterator[Metric]:
    """The metric families of a /metrics page."""
    return text_string_to_metric_families(text)


def sample(text: str, name: str, default: float | None = 0.0, **labels: str) -> float | None:
    """The value of sample ``name`` with exactly ``labels`` on a /metrics page; ``default`` when absent."""
    for family in families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return default


def metric(daemon, selector: str) -> float:
    """The value of the sample ``name{label="value",…}`` (a Prometheus selector) on ``daemon``'s
    /metrics; 0 when absent."""
    match = _SELECTOR.match(selector.strip())
    if match is None:
        raise ValueError(f"not a sample selector: {selector!r}")
    name, labels = match.group(1), dict(_LABEL.findall(match.group(2) or ""))
    return sample(read(daemon), name, **labels)
