"""The recording keys: [recording] and a room's recording / recording_password, checked with where and what."""

from __future__ import annotations

import pytest

from videoroomd.config import ConfigError, parse


def test_recording_is_off_unless_asked_and_a_room_takes_its_mode_from_defaults(tmp_path):
    config = parse(f'[recording]\ndirectory = "{tmp_path}"\nquota = 5\nkeep_days = 0\n'
                   '[defaults]\nrecording = "manual"\n[rooms.a]\nrecording_password = "rec"\n'
                   '[rooms.b]\nrecording = "always"\n', "t", tmp_path)
    assert config.recording.directory == tmp_path and config.recording.quota == 5 and config.recording.keep_days == 0
    assert config.rooms["a"].recording == "manual" and config.rooms["a"].recording_password == "rec"
    assert config.rooms["b"].recording == "always"
    assert parse("[rooms.c]\n", "t", tmp_path).rooms["c"].recording == "off"


def test_a_room_that_records_without_a_directory_is_refused_naming_the_room(tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse('[rooms.a]\nrecording = "always"\n', "t", tmp_path)
    assert "rooms.a.recording" in str(caught.value) and "[recording] directory" in str(caught.value)


@pytest.mark.parametrize("text, where", [
    ('[rooms.a]\nrecording = "sometimes"\n', "rooms.a.recording"),
    ('[rooms.a]\nrecording_password = ""\n', "rooms.a.recording_password"),
    ('[recording]\nquota = 0\n', "recording.quota"),
    ('[recording]\nkeep_day = 3\n', "recording.keep_day"),
])
def test_a_bad_recording_key_is_refused_saying_where(tmp_path, text, where):
    with pytest.raises(ConfigError) as caught:
        parse(text, "t", tmp_path)
    assert where in str(caught.value)
