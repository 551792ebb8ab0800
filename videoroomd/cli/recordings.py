"""`videoroomd recordings list|show|export|delete`: the recordings in [recording] directory, read from disk.

Needs no running daemon: the files are the truth (docs/recording.md). An
export runs in this process, at the lowest CPU priority, with a progress bar.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import click


class _Helpers:
    """What every recordings command needs: the configured directory, a recording by its id."""

    def __init__(self, load_config: Callable, user_error: type):
        self.load_config = load_config
        self.user_error = user_error

    def directory_of(self, config_path: str | None):
        config = self.load_config(config_path)
        if config.recording.directory is None:
            raise self.user_error(f"{config.source} sets no [recording] directory: nothing is recorded")
        return config.recording.directory

    def found(self, config_path: str | None, recording_id: str):
        from ..recording.store import find

        info = find(self.directory_of(config_path), recording_id)
        if info is None:
            raise self.user_error(f"no recording {recording_id!r} (see `videoroomd recordings list`)")
        return info


def make_group(load_config: Callable, user_error: type, config_option: Callable) -> click.Group:
    """The ``recordings`` command group (made here so that this module needs nothing of main's)."""
    helpers = _Helpers(load_config, user_error)

    @click.group()
    def recordings() -> None:
        """The recorded calls: list them, show one, export it to WebM, delete it."""

    for make in (_list_command, _show_command, _export_command, _delete_command):
        recordings.add_command(make(helpers, config_option))
    return recordings


def _list_command(helpers: _Helpers, config_option: Callable) -> click.Command:
    @click.command("list")
    @config_option
    @click.option("--room", help="Only this room's recordings.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def list_(config_path: str | None, room: str | None, as_json: bool) -> None:
        """List the recordings, oldest first."""
        from ..recording.store import recordings as all_recordings

        rows = [info.as_dict() for info in all_recordings(helpers.directory_of(config_path), room)]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            started = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["started"]))
            click.echo(f"{row['id']}  {row['room'] or '-'}  {started} UTC  {row['bytes'] / 1e6:.1f} MB  "
                       f"{len(row['participants'])} people  {len(row['files'])} WebM"
                       + ("  (export unfinished)" if row["export_unfinished"] else ""))
        if not rows:
            click.echo("(no recordings)")

    return list_


def _show_command(helpers: _Helpers, config_option: Callable) -> click.Command:
    @click.command()
    @config_option
    @click.argument("recording_id")
    def show(config_path: str | None, recording_id: str) -> None:
        """Show one recording: room, who started it, its tracks and files."""
        from ..recording.trackfile import TrackFileError, read_track

        info = helpers.found(config_path, recording_id)
        click.echo(json.dumps(info.as_dict(), indent=2))
        for name in info.tracks:
            try:
                track = read_track((info.path / name).read_bytes())
            except TrackFileError as error:
                click.echo(f"{name}: unreadable ({error})")
                continue
            packets = track.packets
            span = (packets[-1].arrival_us - packets[0].arrival_us) / 1e6 if packets else 0.0
            whole = "" if track.complete else f"; cut: {track.problem}"
            click.echo(f"{name}: {track.header.kind} {len(packets)} packets, {span:.1f} s{whole}")

    return show


def _export_command(helpers: _Helpers, config_option: Callable) -> click.Command:
    @click.command()
    @config_option
    @click.argument("recording_id")
    @click.option("--no-meeting", "meeting", flag_value=False, default=True,
                  help="Make the participants' files only, not the meeting's (which is encoded: slower).")
    def export(config_path: str | None, recording_id: str, meeting: bool) -> None:
        """Make one WebM per participant (VP8 + Opus, not re-encoded) and one of the meeting beside the tracks."""
        from ..recording.export import ExportError, export_recording
        from ..recording.export_job import compose_meeting, finished, lowest_priority

        info = helpers.found(config_path, recording_id)
        lowest_priority()
        with click.progressbar(length=max(1, len(info.participants)), label="exporting") as bar:
            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(1)
            try:
                made = export_recording(info.path, progress)
            except ExportError as error:
                raise helpers.user_error(str(error)) from None
        for done in made:
            click.echo(f"{done.path}  {done.duration:.1f} s  {done.video_frames} video / {done.audio_frames} audio frames")
        if meeting:
            with click.progressbar(length=100, label="the meeting") as bar:
                def composed(done: float, total: float) -> None:
                    bar.update(int(100 * done / max(total, 0.001)) - bar.pos)
                click.echo(f"\n{compose_meeting(made, composed)}")
        finished(info.path)  # no longer an unfinished export (the daemon would run it again)

    return export


def _delete_command(helpers: _Helpers, config_option: Callable) -> click.Command:
    @click.command()
    @config_option
    @click.argument("recording_id")
    @click.option("--yes", is_flag=True, help="Do not ask.")
    def delete(config_path: str | None, recording_id: str, yes: bool) -> None:
        """Delete a recording: its tracks and its WebM files."""
        from ..recording.store import delete as delete_recording

        info = helpers.found(config_path, recording_id)
        if not yes:
            click.confirm(f"delete {info.id} of room {info.room or '?'} ({info.bytes / 1e6:.1f} MB)?", abort=True)
        delete_recording(info.path.parent.parent, info.id)
        click.echo(f"deleted {info.id}")

    return delete
