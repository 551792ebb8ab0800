"""Which TOML keys each table has, the field each one sets and the check its value passes (pure code).

The defaults are the fields' own, in :mod:`.schema`: a key left out of the
file keeps its dataclass default (or, in ``[rooms.NAME]``, the value of
``[defaults]``). Nothing here writes a default down a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import values as v
from .ice_servers import stun_url, turn_servers
from .schema import (WEBHOOK_EVENTS, AuthConfig, ClusterConfig, IceConfig, LogConfig, MediaConfig, RecordingConfig,
                     RoomConfig, ServerConfig, TurnConfig, WebhooksConfig)

MAX_PEERS_RANGE = (1, 1000)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")
ACCESS_MODES = ("open", "password", "token")
DATA_PLANES = ("python", "native")
RECORDING_MODES = ("off", "manual", "always")


@dataclass(frozen=True)
class Key:
    """One TOML key: its name, its check, and the dataclass fields it sets (its own name when none given)."""

    name: str
    convert: v.Converter
    fields: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        return self.fields or (self.name,)

    def default(self, base: Any) -> Any:
        """The value ``base`` (a schema dataclass) has for this key; None when every field it sets is None."""
        values = tuple(getattr(base, name) for name in self.targets)
        if len(values) == 1:
            return values[0]
        return None if all(value is None for value in values) else values

    def set(self, out: dict[str, Any], value: Any) -> None:
        """Put ``value`` (as the converter returned it) into the dataclass arguments ``out``."""
        if len(self.targets) == 1:
            out[self.targets[0]] = value
        else:
            out.update(zip(self.targets, value if value is not None else (None,) * len(self.targets)))


SERVER = (
    Key("listen", v.listen, ("host", "port")),
    Key("tls_cert", v.file_path),
    Key("tls_key", v.file_path),
    Key("drain_timeout", v.seconds(0, 3600)),
    Key("dynamic_rooms", v.boolean),
    Key("max_dynamic_rooms", v.integer(1, 100000)),
    Key("max_frame_size", v.integer(1024, 16 * 1024 * 1024)),
    Key("allowed_origins", v.array_of(v.origin)),
    Key("connections_per_second", v.integer(1, 100000)),
    Key("max_connections", v.integer(1, 1000000)),
    Key("max_connections_per_address", v.integer(1, 1000000)),
    Key("hostnames", v.array_of(v.hostname)),
    Key("admin_token", v.nonempty_string),
    Key("trusted_proxies", v.array_of(v.network)),
)
ICE = (
    Key("addresses", v.array_of(v.ip_address)),
    Key("announced_ip", v.ip_address),
    Key("udp_ports", v.udp_ports),
)
MEDIA = (Key("workers", v.workers), Key("data_plane", v.choice(DATA_PLANES)))
TURN = (
    Key("listen", v.listen, ("host", "port")),
    Key("tls_listen", v.listen, ("tls_host", "tls_port")),
    Key("enabled", v.boolean),
    Key("relay_ports", v.port_range),
    Key("realm", v.realm),
    Key("secret", v.secret),
    Key("credential_lifetime", v.seconds(60, 7 * 86400)),
    Key("max_lifetime", v.seconds(60, 3600)),
    Key("max_allocations", v.integer(1, 100000)),
    Key("max_allocations_per_user", v.integer(1, 1000)),
    Key("max_allocations_per_address", v.integer(1, 100000)),
    Key("bandwidth_per_user", v.integer(0, 10000000)),
)
LOG = (
    Key("level", v.choice(LOG_LEVELS)),
    Key("format", v.choice(LOG_FORMATS)),
    Key("file", v.file_path),
)
CLUSTER = (
    Key("redis", v.redis_url),
    Key("node_id", v.node_id),
    Key("advertise", v.hostname),
    Key("lease_ttl", v.seconds(1, 300)),
    Key("heartbeat", v.seconds(0.1, 60)),
)
AUTH = (Key("keys", v.signing_keys),)
WEBHOOKS = (
    Key("urls", v.webhook_urls),
    Key("key", v.webhook_key),
    Key("events", v.event_names(WEBHOOK_EVENTS)),
    Key("timeout", v.seconds(0.5, 60)),
    Key("retry_for", v.seconds(0, 3600)),
    Key("queue_size", v.integer(1, 100000)),
)
RECORDING = (
    Key("directory", v.file_path),
    Key("quota", v.integer(1, 100_000_000)),
    Key("keep_days", v.integer(0, 36500)),
)
ROOM = (
    Key("max_peers", v.integer(*MAX_PEERS_RANGE)),
    Key("password", v.nonempty_string),
    Key("access", v.choice(ACCESS_MODES)),
    Key("stun_servers", v.array_of(stun_url)),
    Key("turn_servers", turn_servers),
    Key("simulcast", v.boolean),
    Key("max_video_bitrate", v.video_bitrate),
    Key("dtls_cert", v.file_path),
    Key("dtls_key", v.file_path),
    Key("moderator_password", v.nonempty_string),
    Key("self_unmute", v.boolean),
    Key("lobby", v.boolean),
    Key("recording", v.choice(RECORDING_MODES)),
    Key("recording_password", v.nonempty_string),
)
ROOM_KEYS = tuple(key.name for key in ROOM)

# Each table of the file but [rooms]: its keys and the dataclass that holds its defaults.
TABLES: dict[str, tuple[tuple[Key, ...], Any]] = {
    "server": (SERVER, ServerConfig()),
    "ice": (ICE, IceConfig()),
    "media": (MEDIA, MediaConfig()),
    "turn": (TURN, TurnConfig()),
    "log": (LOG, LogConfig()),
    "cluster": (CLUSTER, ClusterConfig()),
    "auth": (AUTH, AuthConfig()),
    "webhooks": (WEBHOOKS, WebhooksConfig()),
    "recording": (RECORDING, RecordingConfig()),
    "defaults": (ROOM, RoomConfig(name="")),
}
