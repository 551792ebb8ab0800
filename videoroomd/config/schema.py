"""The configuration as frozen, typed objects: what the rest of the daemon reads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

BUILTIN_SOURCE = "<built-in default>"


@dataclass(frozen=True)
class IceServerUrl:
    """One parsed STUN/TURN URL (RFC 7064 / RFC 7065)."""

    scheme: str  # stun, stuns, turn, turns
    host: str
    port: int
    transport: str  # udp or tcp

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.scheme}:{host}:{self.port}"
        if self.scheme.startswith("turn"):
            text += f"?transport={self.transport}"
        return text


@dataclass(frozen=True)
class TurnServer:
    """A TURN server with the long-term credentials clients use on it."""

    urls: tuple[IceServerUrl, ...]
    username: str  # "" when ``secret`` is set: each join gets its own
    credential: str = field(repr=False)
    # The server's shared secret (coturn's use-auth-secret): each join then gets its own
    # credentials that expire (the TURN REST API scheme) instead of the fixed pair.
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RoomConfig:
    """Everything one room needs; ``[defaults]`` filled in where the room is silent."""

    name: str
    max_peers: int = 16
    password: str | None = field(default=None, repr=False)
    stun_servers: tuple[IceServerUrl, ...] = ()
    turn_servers: tuple[TurnServer, ...] = ()
    dtls_cert: Path | None = None
    dtls_key: Path | None = None
    simulcast: bool = True                # publishers may send several layers of their camera
    max_video_bitrate: int | None = None  # bits/s of one publisher's video, all layers together; None: no cap
    # Who may join: "open", "password" or "token"; None: "password" when a password is set, else "open".
    access: str | None = None
    # Given at join instead of the password, it makes the person a moderator (rooms/moderation.py).
    moderator_password: str | None = field(default=None, repr=False)
    self_unmute: bool = True              # someone a moderator muted may unmute by themselves
    lobby: bool = False                   # joiners wait until a moderator admits them (rooms/waiting_room.py)
    # Whether the room's calls are recorded: "off", "manual" (started and stopped by the holders
    # of recording_password on the page, or the operator) or "always" (from its first track on).
    recording: str = "off"
    recording_password: str | None = field(default=None, repr=False)

    @property
    def access_mode(self) -> str:
        """How a join is admitted: "open", "password" (the room's password) or "token" (an access token)."""
        if self.access is not None:
            return self.access
        return "password" if self.password is not None else "open"

    def named(self, name: str) -> "RoomConfig":
        return replace(self, name=name)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    drain_timeout: float = 10.0
    dynamic_rooms: bool = False
    max_dynamic_rooms: int = 100  # rooms made on demand that may run at once
    max_frame_size: int = 65536
    allowed_origins: tuple[str, ...] = ()
    connections_per_second: int = 20
    max_connections: int = 1024
    max_connections_per_address: int = 64
    hostnames: tuple[str, ...] | None = None  # None: the listen address and the loopback names
    admin_token: str | None = field(default=None, repr=False)
    trusted_proxies: tuple[str, ...] = ()  # reverse proxies whose Forwarded / X-Forwarded-For is believed

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class IceConfig:
    addresses: tuple[str, ...] = ()
    announced_ip: str | None = None
    udp_ports: tuple[int, int] | None = None  # (FIRST, LAST) media host candidates bind in; None: any


@dataclass(frozen=True)
class MediaConfig:
    # Media worker processes: "auto" (one per core) or a number; 0 runs the media on a
    # thread of the daemon's own process (embedding, tests).
    workers: int | str = "auto"
    # Which data plane forwards the packets: "native" (the compiled one, media/dataplane/csrc/,
    # which also reads the media sockets) or "python" (media/dataplane/python_plane.py, the
    # reference the contract tests hold both to; it needs no compiled module).
    data_plane: str = "native"


@dataclass(frozen=True)
class TurnConfig:
    """The TURN server built into the daemon; it relays only to the daemon's own media sockets."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = 3478                       # UDP and TCP
    tls_host: str | None = None            # TURN over TLS, with [server] tls_cert / tls_key
    tls_port: int | None = None
    relay_ports: tuple[int, int] = (49152, 65535)
    realm: str = "videoroomd"
    secret: str | None = field(default=None, repr=False)  # None: a random one each start
    credential_lifetime: float = 43200.0   # seconds a join's credentials stay valid
    max_lifetime: float = 3600.0           # seconds an allocation may live between refreshes
    max_allocations: int = 1000
    max_allocations_per_user: int = 30     # a browser asks one per network interface and TURN URL
    max_allocations_per_address: int = 100  # held by one client IP address, whoever it claims to be (a class behind NAT)
    bandwidth_per_user: int = 10000        # kbit/s relayed per participant, both ways together; 0: no limit


@dataclass(frozen=True)
class ClusterConfig:
    """Several daemons serving one set of rooms through Redis; ``redis`` None: this daemon alone."""

    redis: str | None = field(default=None, repr=False)  # redis:// or rediss:// URL; it holds the password
    node_id: str | None = None     # None: the host name
    advertise: str | None = None   # HOST or HOST:PORT others reach this node at; None: [ice] announced_ip, else listen
    lease_ttl: float = 6.0         # seconds a room's lease lives without a renewal (renewed every third of it)
    heartbeat: float = 1.0         # seconds between two publications of this node's load (each lives 3 heartbeats)

    @property
    def enabled(self) -> bool:
        return self.redis is not None


@dataclass(frozen=True)
class AuthConfig:
    """The keys that sign access tokens: name (a token's ``iss``) -> secret; several at once for rotation."""

    keys: dict[str, str] = field(default_factory=dict, repr=False)


# What a webhook can tell; the recording events are sent once recording exists.
WEBHOOK_EVENTS = (
    "room.started", "room.ended", "participant.joined", "participant.left", "track.published", "track.unpublished",
    "chat.message", "recording.started", "recording.stopped", "recording.ready",
)
# Chat messages only when asked for: they carry what people wrote, not only who came and went.
DEFAULT_WEBHOOK_EVENTS = tuple(event for event in WEBHOOK_EVENTS if event != "chat.message")


@dataclass(frozen=True)
class WebhooksConfig:
    """Where the daemon POSTs what happens in its rooms, signed with ``key``; no ``urls``: nowhere."""

    urls: tuple[str, ...] = field(default=(), repr=False)  # a URL may carry the receiver's secret
    key: str | None = field(default=None, repr=False)  # the HMAC-SHA256 secret of the signature header
    events: tuple[str, ...] = DEFAULT_WEBHOOK_EVENTS
    timeout: float = 5.0     # seconds one attempt may take: connect, send, the answer's head
    retry_for: float = 60.0  # seconds an event is tried again after its first failure, then dropped
    queue_size: int = 1000   # events waiting for one URL; more are dropped (and counted)

    @property
    def enabled(self) -> bool:
        return bool(self.urls)


@dataclass(frozen=True)
class RecordingConfig:
    """Where recordings go and how much they may take (docs/recording.md)."""

    directory: Path | None = None  # None: no room may record
    quota: int = 10240             # MiB all recordings in the directory may take together
    keep_days: int = 30            # days a recording is kept before it is deleted; 0: for ever


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    format: str = "auto"  # auto: console on a terminal, json otherwise
    file: Path | None = None


@dataclass(frozen=True)
class Config:
    """A whole, validated configuration file."""

    source: str = BUILTIN_SOURCE
    server: ServerConfig = ServerConfig()
    ice: IceConfig = IceConfig()
    media: MediaConfig = MediaConfig()
    turn: TurnConfig = TurnConfig()
    log: LogConfig = LogConfig()
    cluster: ClusterConfig = ClusterConfig()
    auth: AuthConfig = AuthConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    recording: RecordingConfig = RecordingConfig()
    defaults: RoomConfig = RoomConfig(name="")
    rooms: dict[str, RoomConfig] = field(default_factory=dict)

    def room_from_defaults(self, name: str) -> RoomConfig:
        """A room that the file does not name, made from ``[defaults]`` (dynamic rooms)."""
        return self.defaults.named(name)
