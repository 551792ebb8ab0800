"""`videoroomd recordings list|show|delete` on the files in [recording] directory."""

from __future__ import annotations

import json

from click.testing import CliRunner

from videoroomd.cli.main import cli
from videoroomd.recording.trackfile import TrackEncoder, TrackHeader, encode_header


def _setup(tmp_path):
    store = tmp_path / "recordings"
    path = store / "rabc" / "20261206T100000Z-abcd"
    path.mkdir(parents=True)
    (path / "recording.json").write_text(json.dumps({"room": "lobby", "by": "Ann", "started": 1_790_000_000}))
    header = TrackHeader("audio", "opus", 48000, "peer1", "mic", 1_790_000_000.0)
    encoder = TrackEncoder(header.start)
    data = encode_header(header) + b"".join(encoder.rtp(header.start + i * 0.02, False, 111, i, 960 * i, 1, b"x" * 50)
                                            for i in range(100))
    (path / "peer1.mic.vrtrack").write_bytes(data[:-7])  # cut by a kill inside its last record
    config = tmp_path / "videoroomd.toml"
    config.write_text(f'[recording]\ndirectory = "{store}"\n[rooms.lobby]\n')
    return config, path


def run(*args):
    return CliRunner().invoke(cli, ["recordings", *args])


def test_list_show_and_delete_a_recording(tmp_path):
    config, path = _setup(tmp_path)
    listed = run("list", "-c", str(config), "--json")
    assert listed.exit_code == 0
    (row,) = json.loads(listed.output)
    assert (row["id"], row["room"], row["by"], row["participants"]) == ("20261206T100000Z-abcd", "lobby", "Ann", ["peer1"])
    assert run("list", "-c", str(config), "--room", "other", "--json").output.strip() == "[]"
    shown = run("show", "-c", str(config), row["id"])
    assert shown.exit_code == 0 and "peer1.mic.vrtrack: audio 99 packets, 2.0 s; cut: record cut at offset" in shown.output
    assert run("delete", "-c", str(config), "--yes", row["id"]).exit_code == 0
    assert not path.exists()


def test_an_unknown_recording_or_no_directory_is_a_one_line_error(tmp_path):
    config, _ = _setup(tmp_path)
    for recording_id in ("nope", "../rabc"):
        result = run("show", "-c", str(config), recording_id)
        assert result.exit_code == 1 and f"no recording {recording_id!r}" in result.output
    bare = tmp_path / "bare.toml"
    bare.write_text("[rooms.lobby]\n")
    result = run("list", "-c", str(bare))
    assert result.exit_code == 1 and "sets no [recording] directory" in result.output
