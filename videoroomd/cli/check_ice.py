"""What `videoroomd check-ice` prints: where clients reach the daemon, and what looks wrong (pure code)."""

from __future__ import annotations

import ipaddress

from ..config.schema import Config
from ..turn.configure import WILDCARDS, relay_host

KERNEL_PORTS = "32768-60999"  # Linux's default ip_local_port_range, where unpinned sockets land


def _private(ip: str) -> bool:
    """Not reachable from the Internet: private, loopback, link-local, shared (CGNAT) or reserved."""
    return not ipaddress.ip_address(ip.split("%", 1)[0]).is_global


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def turn_listeners(config: Config) -> list[str]:
    """Where the built-in TURN server listens: "udp and tcp HOST:PORT", and "tls HOST:PORT" where set."""
    turn = config.turn
    listeners = [f"udp and tcp {_hostport(turn.host, turn.port)}"]
    if turn.tls_port is not None:
        tls_ready = config.server.tls_cert is not None
        listeners.append(f"tls {_hostport(turn.tls_host or turn.host, turn.tls_port)}"
                         + ("" if tls_ready else " (not served: [server] has no tls_cert)"))
    return listeners


def ice_report(config: Config, host_addresses: list[str]) -> tuple[list[str], list[str]]:
    """(lines, warnings) for ``config`` on a host whose own addresses (loopback left out) are
    ``host_addresses``."""
    ice, turn, server = config.ice, config.turn, config.server
    media = list(ice.addresses) or list(host_addresses)
    lines = []
    scheme = "https" if server.tls_cert else "http"
    lines.append(f"page and signalling: {scheme}://{server.listen} (TCP)")
    source = "[ice] addresses" if ice.addresses else "every address of this host; [ice] addresses is not set"
    lines.append(f"media addresses:     {', '.join(media) or 'none'} ({source})")
    if ice.announced_ip:
        lines.append(f"announced to clients: {ice.announced_ip} ([ice] announced_ip), instead of the media addresses")
    else:
        lines.append("announced to clients: the media addresses themselves ([ice] announced_ip is not set)")
    if ice.udp_ports:
        first, last = ice.udp_ports
        lines.append(f"media UDP ports:     {first}-{last} ([ice] udp_ports): at most {last - first + 1} "
                     "participants at once per media address")
    else:
        lines.append(f"media UDP ports:     any the kernel picks (usually {KERNEL_PORTS}); set [ice] udp_ports "
                     "for a range a firewall can open")
    if turn.enabled:
        lines.append(f"TURN server:         {', '.join(turn_listeners(config))}")
        public = ice.announced_ip or (turn.host if turn.host not in WILDCARDS else relay_host(config, frozenset(media)))
        offered = [f"turn:{_hostport(public, turn.port)}?transport=udp", f"turn:{_hostport(public, turn.port)}?transport=tcp"]
        if turn.tls_port is not None and server.tls_cert is not None:
            offered.append(f"turns:{_hostport(public, turn.tls_port)}?transport=tcp")
        lines.append(f"TURN offered to clients: {', '.join(offered)}")
        lines.append(f"TURN relay ports:    {turn.relay_ports[0]}-{turn.relay_ports[1]} "
                     "(on this host only: they relay to the daemon's own media sockets)")
    else:
        lines.append("TURN server:         off ([turn] enabled = false); clients that cannot send UDP to the media "
                     "ports cannot join")

    warnings = []
    if ice.announced_ip and _private(ice.announced_ip):
        warnings.append(f"[ice] announced_ip {ice.announced_ip} is not a public address: clients outside its network "
                        "cannot reach the media; set it to the address the Internet sees")
    listens_beyond_loopback = server.host in WILDCARDS or not ipaddress.ip_address(server.host).is_loopback
    if not ice.announced_ip and listens_beyond_loopback and media and all(_private(ip) for ip in media):
        warnings.append(f"[ice] announced_ip is not set and every media address is private ({', '.join(media)}) while "
                        f"the daemon listens on {server.host}: clients outside this network cannot reach the media; "
                        "set [ice] announced_ip to the public address of this host")
    if turn.enabled and ice.udp_ports and ice.udp_ports[0] <= turn.relay_ports[1] and turn.relay_ports[0] <= ice.udp_ports[1]:
        warnings.append(f"[ice] udp_ports {ice.udp_ports[0]}-{ice.udp_ports[1]} overlaps [turn] relay_ports "
                        f"{turn.relay_ports[0]}-{turn.relay_ports[1]}: relay sockets take ports the media needs")
    if not media:
        warnings.append("no media address: this host has none besides loopback; set [ice] addresses")
    return lines, warnings
