"""The commands that act on the running daemon through its server API (docs/api.md):
``videoroomd room list|end|record`` and ``videoroomd participant remove|mute``."""

from __future__ import annotations

import json
from typing import Callable

import click

from .api_client import ApiFailed, call, path_of


def make_groups(load_config: Callable, user_error: type, config_option: Callable) -> list[click.Group]:
    """The ``room`` and ``participant`` command groups (made here so that this module needs nothing of main's)."""

    def api(config_path: str | None, method: str, path: str, body: dict | None = None) -> dict:
        """The running daemon's answer through its server API; raises ``user_error``."""
        try:
            return call(load_config(config_path), method, path, body)
        except ApiFailed as failed:
            raise user_error(str(failed)) from None

    return [_room_group(api, config_option), _participant_group(api, user_error, config_option)]


def _room_group(api: Callable, config_option: Callable) -> click.Group:
    @click.group()
    def room() -> None:
        """The rooms of the running daemon, through its server API (docs/api.md)."""


    @room.command("list")
    @config_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def room_list(config_path: str | None, as_json: bool) -> None:
        """List the rooms running, with the people in each."""
        answer = api(config_path, "GET", path_of("rooms"))
        rows = answer["rooms"]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        nodes = any("node" in row for row in rows)  # a cluster: each room's node
        click.echo(f"{'ROOM':<20} {'STATUS':<9} " + (f"{'NODE':<16} " if nodes else "") + "PEOPLE")
        for row in rows:
            listed = row["participants"]  # None: its node did not answer
            people = "?" if listed is None else ", ".join(f"{p['name']} ({p['id']})" for p in listed
                                                          if p["kind"] == "rtc")
            node = f"{row.get('node', ''):<16} " if nodes else ""
            click.echo(f"{row['name']:<20} {row['status']:<9} {node}{people or '-'}")
        for node in answer.get("unreachable", []):  # the rooms listed of such a node are as it last shared them
            click.echo(f"node {node['node']} did not answer: {node['reason']}", err=True)


    @room.command("end")
    @config_option
    @click.argument("name")
    @click.option("--reason", default="", help="What everyone in the room is told.")
    def room_end(config_path: str | None, name: str, reason: str) -> None:
        """End the meeting in room NAME for everyone in it."""
        done = api(config_path, "POST", path_of("rooms", name, "end"), {"reason": reason})
        click.echo(f"room {name} ended; {done.get('peers', 0)} people were in it")


    @room.command("record")
    @config_option
    @click.argument("name")
    @click.argument("action", type=click.Choice(["start", "stop"]))
    def room_record(config_path: str | None, name: str, action: str) -> None:
        """Start or stop the recording of room NAME (its room needs `recording` other than "off")."""
        done = api(config_path, "POST", path_of("rooms", name, "recording", action))
        click.echo(f"room {name}: recording {done['recording']} {'started' if action == 'start' else 'stopped'}")

    return room


def _participant_group(api: Callable, user_error: type, config_option: Callable) -> click.Group:
    @click.group()
    def participant() -> None:
        """Act on one person in a room of the running daemon (see `videoroomd room list` for their ids)."""


    @participant.command("remove")
    @config_option
    @click.argument("room_name", metavar="ROOM")
    @click.argument("peer")
    @click.option("--reason", default="", help="What the person is told.")
    @click.option("--ban", help="Refuse their access token again for this long: 90s, 15m, 1h, 2d.")
    def participant_remove(config_path: str | None, room_name: str, peer: str, reason: str, ban: str | None) -> None:
        """Remove participant PEER from ROOM."""
        from ..auth.tokens import parse_ttl

        body: dict = {"reason": reason}
        if ban is not None:
            try:
                body["ban_seconds"] = int(parse_ttl(ban))
            except ValueError as error:
                raise user_error(f"--ban: {error}") from None
        api(config_path, "POST", path_of("rooms", room_name, "participants", peer, "remove"), body)
        click.echo(f"{peer} removed from {room_name}")


    @participant.command("mute")
    @config_option
    @click.argument("room_name", metavar="ROOM")
    @click.argument("peer")
    @click.option("--source", type=click.Choice(["audio", "video", "screen"]), default="audio", show_default=True,
                  help="Mute the microphone, or stop the camera or the screen share.")
    def participant_mute(config_path: str | None, room_name: str, peer: str, source: str) -> None:
        """Mute participant PEER of ROOM (the server stops forwarding it; they are told)."""
        done = api(config_path, "POST", path_of("rooms", room_name, "participants", peer, "mute"), {"source": source})
        click.echo(f"{peer} in {room_name}: {source} held ({done.get('tracks', 0)} tracks)")

    return participant
