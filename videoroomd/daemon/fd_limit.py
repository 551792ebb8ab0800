"""The process's file-descriptor limit: raised at start as far as allowed, and checked against what the config needs.

Every client connection, TURN allocation and media socket is a descriptor.
A soft limit at or below the connection cap means the accept loop runs out
before the cap is reached, so the soft limit is raised toward the hard one
(which needs no privilege), and a line says when even that is too low.
"""

from __future__ import annotations

import resource

from ..config import Config

RESERVE = 128          # descriptors the daemon needs besides its clients': logs, listeners, pipes, files it serves
CEILING = 1 << 20      # what "unlimited" is taken to mean (Linux refuses more than nr_open, 1048576 by default)


def needed(config: Config) -> int:
    """Descriptors that the configured caps may take together: connections, TURN relays, media ports."""
    count = RESERVE + config.server.max_connections
    if config.turn.enabled:
        count += config.turn.max_allocations
    if config.ice.udp_ports is not None:
        first, last = config.ice.udp_ports
        count += last - first + 1
    return count


def raise_soft_limit() -> tuple[int, int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one (at most CEILING); returns (before, now, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = CEILING if hard == resource.RLIM_INFINITY else min(hard, CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft, hard  # not allowed here (a container's own cap): keep what there is
        return soft, target, hard
    return soft, soft, hard


def check(config: Config, log) -> int:
    """Raise the limit, log what was done and warn when it is still below :func:`needed`; returns the limit now."""
    before, now, hard = raise_soft_limit()
    if now != before:
        log.info("file descriptor limit raised", soft_before=before, soft=now, hard=hard)
    want = needed(config)
    if now != resource.RLIM_INFINITY and now < want:
        log.warning("the file descriptor limit is below what the configured caps may need; raise it "
                    "(LimitNOFILE= in the systemd unit, ulimit -Hn) or lower [server] max_connections "
                    "(past the limit new connections wait, those open are served)", limit=now, needed=want)
    return now
