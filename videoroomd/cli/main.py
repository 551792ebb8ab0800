"""`videoroomd` and its subcommands.

User errors (bad config, port in use, unwritable file) are raised as
:class:`click.ClickException` subclasses here and printed as one line,
``videoroomd: message``, with exit status 1. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import click

from .. import __version__
from ..config import Config, ConfigError, load, locate
from ..config.load import ENV_VAR, SYSTEM_PATH
from ..config.webhook_url import shown
from .api_client import base_url, own_daemon_tls
from .api_commands import make_groups as make_api_groups
from .recordings import make_group as make_recordings


class UserError(click.ClickException):
    """A problem the user can fix; printed as one line, exit status 1."""

    def show(self, file=None) -> None:
        for line in self.format_message().splitlines():
            click.echo(f"videoroomd: {line}", err=True)


def load_config(path: str | None) -> Config:
    try:
        return load(locate(path))
    except ConfigError as error:
        raise UserError(str(error)) from None


def salvage_config(config_path: str | None, error: UserError) -> tuple[Path, dict[tuple[str, str], str]]:
    """For a config with ``error``: its path and what can still be read of it, the error told as a
    warning; raises ``error`` when there is no file to read (the built-in default)."""
    from ..config.salvage import salvage

    path = locate(config_path).path
    if path is None:
        raise error
    for line in error.format_message().splitlines():
        click.echo(f"videoroomd: warning: {line}", err=True)
    return path, salvage(path)


CONFIG_OPTION = click.option(
    "--config", "-c", "config_path", metavar="PATH",
    help=f"Config file. Default: ${ENV_VAR}, else {SYSTEM_PATH} if it exists, else the built-in default.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="videoroomd")
def cli() -> None:
    """Self-hosted video rooms: open the page, pick a room, type a name, and talk.

    Start with `videoroomd serve` and open http://127.0.0.1:8080/. Rooms live
    in a TOML file (see `man 5 videoroomd.toml`); edit it while the daemon
    runs and only the rooms you changed restart.
    """


@cli.command()
@CONFIG_OPTION
def serve(config_path: str | None) -> None:
    """Run the daemon: the web page, the signalling sockets and the media server.

    Stops gracefully on SIGTERM or Ctrl-C (calls may finish until
    [server] drain_timeout; a second signal stops at once). Reloads the
    config on SIGHUP and whenever the file changes; a file with errors is
    refused and the running configuration kept. Reopens its log file on SIGUSR1.
    """
    # Before anything imports aioice (the TURN server, the worker link): its mDNS module's
    # dnspython loads on first use, as in a worker process (about 2 MiB of the daemon's memory).
    from ..media.webrtc.compat import lazy_dns
    if "dns" not in sys.modules:  # imported already (by the program that runs this command): nothing to defer
        lazy_dns.install()
    from .serve import run_serve

    location = locate(config_path)
    try:
        config = load(location)
    except ConfigError as error:
        raise UserError(str(error)) from None
    sys.exit(run_serve(location, config, UserError))


@cli.command("check-config")
@click.argument("path", required=False, metavar="[PATH]")
def check_config(path: str | None) -> None:
    """Validate a config file; print a summary, or every problem found (exit 1)."""
    location = locate(path)
    try:
        config = load(location)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        count = len(error.problems)
        click.echo(f"videoroomd: {location.name}: {count} problem{'s' if count != 1 else ''}", err=True)
        sys.exit(1)
    rooms = ", ".join(f"{name} (max {room.max_peers})" for name, room in config.rooms.items()) or "none"
    dynamic = "; dynamic rooms on" if config.server.dynamic_rooms else ""
    tls = "https" if config.server.tls_cert else "http"
    proxies = f"; behind {', '.join(config.server.trusted_proxies)}" if config.server.trusted_proxies else ""
    cluster = ""
    if config.cluster.redis is not None:  # the URL holds the password: shown masked
        from ..cluster.redis_client import RedisMissing, client_module
        from ..config.redis_url import masked

        cluster = f"; cluster node {config.cluster.node_id or socket.gethostname()} on {masked(config.cluster.redis)}"
        try:
            client_module()
        except RedisMissing as missing:
            click.echo(f"warning: {missing}", err=True)
    turn = f"; {_turn_summary(config)}" if config.turn.enabled else ""
    keys = f"; token keys: {', '.join(sorted(config.auth.keys))}" if config.auth.keys else ""  # names only
    hooks = f"; webhooks to {', '.join(shown(url) for url in config.webhooks.urls)}" if config.webhooks.urls else ""
    count = f"{len(config.rooms)} room{'s' if len(config.rooms) != 1 else ''}"
    click.echo(f"{location.name}: OK: {tls}://{config.server.listen}, {count}: {rooms}{dynamic}{proxies}"
               f"{turn}{cluster}{keys}{hooks}")


def _turn_summary(config: Config) -> str:
    """Where the built-in TURN server listens and relays, as check-config prints it (never its secret)."""
    from .check_ice import turn_listeners

    turn = config.turn
    low, high = turn.relay_ports
    secret = "its secret set" if turn.secret else "a new secret each start"
    return (f"TURN on {', '.join(turn_listeners(config))}, relay ports {low}-{high}, {turn.max_allocations} allocations, "
            f"{secret}")


@cli.command()
@CONFIG_OPTION
@click.option("--room", required=True, help="The room the token admits to.")
@click.option("--identity", required=True, help="Who the person is in your app (the token's sub).")
@click.option("--name", "display", help="The name shown to the others. Default: the name typed on the page.")
@click.option("--moderator", is_flag=True, help="Grant moderation (mute, stop, remove others).")
@click.option("--admin", is_flag=True, help="Grant the server API (/api/v1); give --room '*'.")
@click.option("--ttl", default="1h", show_default=True, help="How long the token is good for: 90s, 15m, 1h, 2d.")
@click.option("--key", "key_name", help="The [auth] keys entry to sign with. Default: the only one.")
def token(config_path: str | None, room: str, identity: str, display: str | None, moderator: bool, admin: bool,
          ttl: str, key_name: str | None) -> None:
    """Print an access token for one person and one room, signed with a key of [auth] keys."""
    from ..auth.tokens import EVERYONE, MAX_IDENTITY, mint, parse_ttl
    from ..config.validate import ROOM_NAME_RULE, is_room_name

    config = load_config(config_path)
    keys = config.auth.keys
    if not keys:
        raise UserError(f"{config.source} has no [auth] keys to sign tokens with")
    if key_name is None and len(keys) > 1:
        raise UserError(f"[auth] keys has several keys ({', '.join(sorted(keys))}); pick one with --key")
    key_name = key_name if key_name is not None else next(iter(keys))
    if key_name not in keys:
        raise UserError(f"[auth] keys has no key {key_name!r} (it has {', '.join(sorted(keys))})")
    if admin != (room == "*"):
        raise UserError("--admin goes with --room '*' (a token for the server API, not for a room)")
    if not is_room_name(room) and not admin:
        raise UserError(f"--room {room!r}: {ROOM_NAME_RULE}")
    if not 0 < len(identity) <= MAX_IDENTITY:
        raise UserError(f"--identity: 1 to {MAX_IDENTITY} characters")
    try:
        seconds = parse_ttl(ttl)
    except ValueError as error:
        raise UserError(f"--ttl: {error}") from None
    grants = replace(EVERYONE, moderate=moderator, admin=admin)
    click.echo(mint(key_name, keys[key_name], room=room, identity=identity, now=time.time(), ttl=seconds,
                    name=display, grants=grants))


@cli.command("check-ice")
@CONFIG_OPTION
def check_ice(config_path: str | None) -> None:
    """Print where clients reach the media: addresses, UDP ports, the TURN server; warn about
    what would keep clients outside this network out (a private or missing [ice] announced_ip).

    Reads the config only; the daemon need not run. Open the ports it lists in the firewall
    (`man 5 videoroomd.toml`, FIREWALL), and try them from a browser at /check.
    """
    from aioice.ice import get_host_addresses

    from .check_ice import ice_report

    config = load_config(config_path)
    lines, warnings = ice_report(config, get_host_addresses(use_ipv4=True, use_ipv6=True))
    for line in lines:
        click.echo(line)
    for warning in warnings:
        click.echo(f"warning: {warning}")


@cli.command("gen-cert")
@click.option("--cert", "cert_path", default="videoroomd.crt", show_default=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the certificate (PEM).")
@click.option("--key", "key_path", default="videoroomd.key", show_default=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, mode 0600).")
@click.option("--cn", default=socket.gethostname(), show_default="this host's name", help="Common name of the certificate.")
@click.option("--san", "extra_names", multiple=True, metavar="NAME",
              help="Another DNS name or IP address the certificate is for (repeatable); localhost, 127.0.0.1 and ::1 are always in.")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 36500), help="Days of validity.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def gen_cert(cert_path: Path, key_path: Path, cn: str, extra_names: tuple[str, ...], days: int, force: bool) -> None:
    """Make a self-signed ECDSA P-256 certificate and key.

    Use the pair as the DTLS certificate of rooms ([defaults] dtls_cert and
    dtls_key) and, for https, as [server] tls_cert and tls_key. Prints the
    SHA-256 fingerprint as it appears in SDP (a=fingerprint).
    """
    from ..certs.generate import CertWriteError, generate

    try:
        made = generate(cert_path, key_path, cn=cn, days=days, force=force, extra_names=extra_names)
    except CertWriteError as error:
        raise UserError(str(error)) from None
    click.echo(f"certificate: {made.cert_path}")
    click.echo(f"key:         {made.key_path} (mode 0600)")
    click.echo(f"valid until: {made.not_after:%Y-%m-%d %H:%M} UTC")
    click.echo(f"fingerprint: {made.fingerprint}")


def _admin_url(config: Config) -> str:
    return base_url(config) + "/admin/rooms"


def _admin_url_of(host: str, port: int, tls: bool) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    scheme = "https" if tls else "http"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}/admin/rooms"


def fetch_live(config: Config) -> dict:
    """The running daemon's admin view; raises UserError when it cannot be had."""
    return fetch_live_at(_admin_url(config), config.server.admin_token)


def _salvaged_live(found: dict[tuple[str, str], str]) -> dict:
    """The running daemon's admin view, at the address a config with an error still gives."""
    from ..config.values import parse_listen

    try:
        host, port = parse_listen(found.get(("server", "listen"), "127.0.0.1:8080"))
    except ValueError as error:
        raise UserError(f"the config's [server] listen cannot be read either ({error})") from None
    return fetch_live_at(_admin_url_of(host, port, ("server", "tls_cert") in found), found.get(("server", "admin_token")))


def fetch_live_at(url: str, admin_token: str | None) -> dict:
    """The admin view at ``url``; raises UserError when it cannot be had."""
    request = urllib.request.Request(url)
    if admin_token:
        request.add_header("Authorization", f"Bearer {admin_token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=own_daemon_tls(url)) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise UserError(f"{url}: {error.code} {error.read().decode(errors='replace').strip()}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"no daemon answers at {url} ({reason}); is `videoroomd serve` running with this config?") from None


@cli.command()
@CONFIG_OPTION
@click.option("--live", is_flag=True, help="Add people and tracks per room, asked of the running daemon.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rooms(config_path: str | None, live: bool, as_json: bool) -> None:
    """List the configured rooms; --live adds what the running daemon has in them."""
    try:
        config = load_config(config_path)
    except UserError as error:
        if not live:
            raise
        # The daemon runs on with its last good config: its view is what there is.
        _, found = salvage_config(config_path, error)
        state = _salvaged_live(found)
        click.echo("videoroomd: warning: the rooms the running daemon has, without the config's", err=True)
        config = None
    rows = [] if config is None else [
        {
            "name": room.name,
            "max_peers": room.max_peers,
            "password": room.password is not None,
            "stun_servers": len(room.stun_servers),
            "turn_servers": len(room.turn_servers),
        }
        for room in config.rooms.values()
    ]
    if live:
        state = state if config is None else fetch_live(config)
        by_name = {r["name"]: r for r in state.get("rooms", [])}
        for row in rows:
            running = by_name.pop(row["name"], None)
            row.update(status=running["status"] if running else "not running",
                       peers=running["peers"] if running else 0,
                       tracks=running["tracks"] if running else 0,
                       worker=running.get("worker") if running else None, node=running.get("node") if running else None)
        for name, running in sorted(by_name.items()):  # dynamic rooms, or not yet reloaded
            rows.append({"name": name, "max_peers": running["max_peers"], "password": running["password"],
                         "stun_servers": None, "turn_servers": None, "status": running["status"],
                         "peers": running["peers"], "tracks": running["tracks"], "worker": running.get("worker"),
                         "node": running.get("node")})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ["name", "max_peers", "password", "stun_servers", "turn_servers"] + (["status", "peers", "tracks", "worker"] if live else [])
    if live and any(row.get("node") for row in rows):  # a cluster: every node's rooms, each with its node
        columns.insert(columns.index("worker"), "node")
    headers = {"node": "NODE", "name": "ROOM", "max_peers": "MAX", "password": "PASSWORD", "stun_servers": "STUN",
               "turn_servers": "TURN", "status": "STATUS", "peers": "PEOPLE", "tracks": "TRACKS", "worker": "WORKER"}

    def cell(value) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "-" if value is None else str(value)

    table = [[headers[c] for c in columns]] + [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for line in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    if not rows:
        click.echo("(no rooms)" if config is None else
                   "(no rooms configured" + ("; dynamic rooms are on)" if config.server.dynamic_rooms else ")"))


@cli.command()
@CONFIG_OPTION
@click.option("--rooms", "list_rooms", is_flag=True, help="List the rooms running, each with its node and worker, instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def nodes(config_path: str | None, list_rooms: bool, as_json: bool) -> None:
    """List the live nodes of the cluster ([cluster] redis) and their load: workers, rooms, people, CPU."""
    import trio

    from ..cluster.redis_client import RedisMissing
    from ..config.redis_url import masked
    from . import nodes as cluster_view

    config = load_config(config_path)
    if config.cluster.redis is None:
        raise UserError(f"{config.source} has no [cluster] table: this daemon runs alone")
    try:
        found = trio.run(cluster_view.read_rooms if list_rooms else cluster_view.read_nodes, config.cluster.redis)
    except RedisMissing as error:
        raise UserError(str(error)) from None
    except Exception as error:  # the client's own errors, or no answer in time
        why = "no answer in time" if isinstance(error, trio.TooSlowError) else str(error) or type(error).__name__
        what = "rooms" if list_rooms else "nodes"
        raise UserError(f"cannot read the {what} from Redis at {masked(config.cluster.redis)}: {why}") from None
    if as_json:
        now = time.time()
        rows = cluster_view.room_rows(found) if list_rooms else [cluster_view.as_row(load, now) for load in found]
        click.echo(json.dumps(rows, indent=2))
        return
    for line in cluster_view.rooms_table(found) if list_rooms else cluster_view.table(found):
        click.echo(line)
    if not found:
        click.echo("(no room runs)" if list_rooms else "(no node is alive)")


@cli.command()
@CONFIG_OPTION
@click.option("--file", "log_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Log file to read. Default: [log] file of the config.")
@click.option("-n", "--lines", "count", default=20, show_default=True, type=click.IntRange(0), help="Show the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines; survives log rotation.")
@click.option("--room", help="Only lines about this room.")
@click.option("--peer", help="Only lines about this peer id.")
@click.option("--level", type=click.Choice(["debug", "info", "warning", "error"]), help="Only this level and above.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON lines as they are.")
def logs(config_path, log_file, count, follow, room, peer, level, as_json) -> None:
    """Show the daemon's log ([log] file): the last lines, then new ones with -f."""
    from ..logs.tail import Filter, parse_line, render, tail

    if log_file is None:
        log_file = _log_file(config_path)
    keep = Filter(room=room, peer=peer, level=level)
    try:
        for line in tail(log_file, count, follow, keep=lambda line: keep.accepts(parse_line(line))):
            shown = render(line, keep, as_json)
            if shown is not None:
                click.echo(shown)
    except FileNotFoundError:
        raise UserError(f"{log_file}: no such log file (has the daemon written to it yet?)") from None
    except PermissionError:
        raise UserError(f"{log_file}: cannot be read (permission denied)") from None
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


for group in make_api_groups(load_config, UserError, CONFIG_OPTION):
    cli.add_command(group)
cli.add_command(make_recordings(load_config, UserError, CONFIG_OPTION))


def _log_file(config_path: str | None) -> Path:
    """The [log] file of the config; of a config with an error, the one it still names (warned)."""
    try:
        config = load_config(config_path)
    except UserError as error:
        path, found = salvage_config(config_path, error)
        if ("log", "file") not in found:
            raise UserError(f"{path} has an error and names no [log] file that can be read; give one with --file") from None
        named = Path(found[("log", "file")])
        log_file = named if named.is_absolute() else path.parent / named
        click.echo(f"videoroomd: warning: reading {log_file}, the [log] file the config names", err=True)
        return log_file
    if config.log.file is None:
        raise UserError(
            f"{config.source} sets no [log] file to read; set one, or under systemd read `journalctl -u videoroomd`"
        )
    return config.log.file


def main() -> None:
    cli(prog_name="videoroomd")
