"""The TOML configuration: good files load into typed objects, bad ones say exactly what and where."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from videoroomd.certs.generate import generate
from videoroomd.config import ConfigError, Location, load, locate
from videoroomd.config.load import builtin_text

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
REPO = Path(__file__).parents[2]
BAD = sorted((FIXTURES / "bad").glob("*.toml"))


def expected_messages(path: Path) -> list[str]:
    """The ``# expect: <message>`` lines that open a bad fixture, one per problem."""
    text = path.read_text()
    if not text.strip():
        return [f"{path.name}: is empty; a config needs at least one [rooms.NAME] table or [server] dynamic_rooms = true"]
    expected = [line[len("# expect: "):] for line in text.splitlines() if line.startswith("# expect: ")]
    assert expected, f"{path} must start with '# expect: <message>' lines"
    return expected


@pytest.mark.parametrize("fixture", BAD, ids=[p.stem for p in BAD])
def test_bad_config_is_refused_with_file_line_and_key(fixture: Path, tmp_path: Path):
    copy = tmp_path / fixture.name
    shutil.copy(fixture, copy)
    with pytest.raises(ConfigError) as caught:
        load(Location(copy))
    messages = [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]
    assert messages == expected_messages(fixture)


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path):
    path = tmp_path / "many.toml"
    path.write_text('[server]\nlisten = "x"\nlisen = 1\n[rooms.a]\nmax_peers = 0\npasword = "p"\n')
    with pytest.raises(ConfigError) as caught:
        load(Location(path))
    keys = [(p.key, p.line) for p in caught.value.problems]
    assert keys == [("server.listen", 2), ("server.lisen", 3), ("rooms.a.max_peers", 5), ("rooms.a.pasword", 6)]
    assert "did you mean 'password'?" in str(caught.value)


def test_full_config_loads_into_typed_values(tmp_path: Path):
    path = tmp_path / "full.toml"
    shutil.copy(FIXTURES / "good" / "full.toml", path)
    config = load(Location(path))
    assert (config.server.host, config.server.port) == ("::1", 0)
    assert config.server.drain_timeout == 2.5 and config.server.dynamic_rooms is True
    assert config.server.max_dynamic_rooms == 50
    assert config.server.allowed_origins == ("https://meet.example.org", "http://localhost:3000")
    assert (config.server.max_connections, config.server.max_connections_per_address) == (200, 32)
    assert config.server.hostnames == ("meet.example.org", "[::1]:8443")
    assert config.ice.addresses == ("127.0.0.1", "::1") and config.ice.announced_ip == "203.0.113.7"
    assert config.ice.udp_ports == (50000, 50100)
    assert config.media.workers == 2
    turn_config = config.turn
    assert turn_config.enabled and (turn_config.host, turn_config.port) == ("127.0.0.1", 0) and turn_config.tls_port is None
    assert turn_config.relay_ports == (40000, 40100) and turn_config.realm == "example.org"
    assert turn_config.secret == "a-secret-of-at-least-16"
    assert (turn_config.credential_lifetime, turn_config.max_lifetime) == (3600, 600)
    assert (turn_config.max_allocations, turn_config.max_allocations_per_user, turn_config.bandwidth_per_user) == (50, 2, 2000)
    assert "a-secret-of-at-least-16" not in repr(config)
    partner = config.rooms["partners"].turn_servers[0]
    assert partner.secret == "the-coturn-auth-secret" and partner.username == "" and "coturn" not in repr(partner)
    assert config.log.level == "debug" and config.log.format == "json"
    lobby = config.rooms["lobby"]
    assert lobby.max_peers == 3 and lobby.password == "door"
    assert lobby.simulcast is False and lobby.max_video_bitrate == 2_500_000
    # rooms inherit [defaults] where they are silent, and override where they speak
    assert [str(u) for u in lobby.stun_servers] == ["stun:stun.example.org:3478", "stuns:[2001:db8::1]:5350"]
    standup = config.rooms["team.standup"]
    assert standup.max_peers == 10 and standup.stun_servers == ()
    assert standup.simulcast is True and standup.max_video_bitrate == 4_000_000  # from [defaults]
    turn = standup.turn_servers[0]
    assert [(u.scheme, u.host, u.port, u.transport) for u in turn.urls] == [
        ("turn", "turn.example.org", 3478, "tcp"), ("turns", "turn.example.org", 5349, "tcp"),
    ]
    # secrets stay out of reprs, and so out of any log line that prints a config
    assert "door" not in repr(config) and "s3cret" not in repr(config) and "'p'" not in repr(turn)


def test_certificate_pair_is_checked(tmp_path: Path):
    generate(tmp_path / "a.crt", tmp_path / "a.key", cn="a", days=1)
    generate(tmp_path / "b.crt", tmp_path / "b.key", cn="b", days=1)
    good = tmp_path / "good.toml"
    good.write_text('[defaults]\ndtls_cert = "a.crt"\ndtls_key = "a.key"\n[rooms.x]\n')
    assert load(Location(good)).rooms["x"].dtls_cert == tmp_path / "a.crt"

    mismatched = tmp_path / "mismatched.toml"
    mismatched.write_text('[defaults]\ndtls_cert = "a.crt"\ndtls_key = "b.key"\n[rooms.x]\n')
    with pytest.raises(ConfigError, match=r"mismatched.toml:3: defaults.dtls_key: the key in .*b.key does not belong to the certificate in .*a.crt"):
        load(Location(mismatched))

    not_pem = tmp_path / "not_pem.toml"
    (tmp_path / "junk.crt").write_text("hello")
    not_pem.write_text('[server]\ntls_cert = "junk.crt"\ntls_key = "a.key"\n[rooms.x]\n')
    with pytest.raises(ConfigError, match=r"not_pem.toml:2: server.tls_cert: .*junk.crt holds no PEM certificate"):
        load(Location(not_pem))


def test_config_path_that_is_a_directory(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"conf.d: is a directory, not a config file"):
        load(Location(tmp_path / "conf.d" if (tmp_path / "conf.d").mkdir() is None else tmp_path))


def test_config_that_is_not_utf8(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[rooms.caf\xe9]\n")
    with pytest.raises(ConfigError, match=r"latin1.toml: is not UTF-8 text \(byte 10\)"):
        load(Location(path))


def test_missing_config_file_names_it(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope.toml: no such file"):
        load(Location(tmp_path / "nope.toml"))


def test_discovery_order(tmp_path: Path):
    assert locate("given.toml", {"VIDEOROOMD_CONFIG": "env.toml"}).path == Path("given.toml")
    assert locate(None, {"VIDEOROOMD_CONFIG": "env.toml"}).path == Path("env.toml")
    found = locate(None, {})
    assert found.path == (Path("/etc/videoroomd/videoroomd.toml") if Path("/etc/videoroomd/videoroomd.toml").exists() else None)


def test_builtin_default_is_the_shipped_example_and_valid():
    assert builtin_text() == (REPO / "config" / "videoroomd.toml").read_text()
    config = load(Location(None))
    assert config.server.listen == "127.0.0.1:8080"
    assert list(config.rooms) == ["lobby", "standup"]
    # nothing in the default may send traffic beyond this machine
    assert all(not r.stun_servers and not r.turn_servers for r in config.rooms.values())


@pytest.mark.parametrize("value, message", [
    ('hostnames = ["http://meet.example.org"]', "expected a host name or address with an optional port"),
    ('hostnames = ["meet.example.org:0"]', "expected a host name or address with an optional port"),
    ('hostnames = "meet.example.org"', "expected an array"),
    ("max_connections = 0", "expected an integer from 1 to 1000000"),
    ("max_connections_per_address = -1", "expected an integer from 1 to 1000000"),
])
def test_edge_settings_are_checked(tmp_path, value, message):
    path = tmp_path / "edge.toml"
    path.write_text(f"[server]\n{value}\n[rooms.x]\n")
    with pytest.raises(ConfigError) as caught:
        load(Location(path))
    assert message in str(caught.value) and "server." in str(caught.value)


@pytest.mark.parametrize("value, expected", [
    ('"2500k"', 2_500_000), ('"2M"', 2_000_000), ("300000", 300_000), ('"100k"', 100_000), ('"100M"', 100_000_000),
])
def test_max_video_bitrate_takes_bits_per_second_or_k_and_m(tmp_path, value, expected):
    path = tmp_path / "v.toml"
    path.write_text(f"[rooms.x]\nmax_video_bitrate = {value}\n")
    room = load(Location(path)).rooms["x"]
    assert room.max_video_bitrate == expected and room.simulcast is True


@pytest.mark.parametrize("line, message", [
    ('max_video_bitrate = "2.5M"', 'expected bits per second: an integer, or a string such as "2500k" or "2M", got the string \'2.5M\''),
    ('max_video_bitrate = "2500 k"', "expected bits per second"),
    ('max_video_bitrate = "2500kbps"', "expected bits per second"),
    ("max_video_bitrate = 2.5", "expected bits per second"),
    ("max_video_bitrate = true", "expected bits per second: an integer, or a string such as \"2500k\" or \"2M\", got the boolean true"),
    ("max_video_bitrate = 99999", "expected from 100000 (100k) to 100000000 (100M) bits per second, got the number 99999"),
    ('max_video_bitrate = "101M"', "expected from 100000 (100k) to 100000000 (100M) bits per second"),
    ("max_video_bitrate = -1", "expected from 100000"),
    ('simulcast = "yes"', "expected true or false, got the string 'yes'"),
    ("simulcast = 1", "expected true or false, got the number 1"),
])
def test_room_media_settings_are_checked(tmp_path, line, message):
    path = tmp_path / "m.toml"
    path.write_text(f"[rooms.x]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load(Location(path))
    assert f"m.toml:2: rooms.x.{line.split()[0]}: {message}" in str(caught.value)


def test_edge_settings_default_to_room_for_a_school_behind_one_address(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text("[rooms.x]\n")
    server = load(Location(path)).server
    assert (server.max_connections, server.max_connections_per_address, server.hostnames) == (1024, 64, None)


def test_allowed_origins_compare_as_browsers_send_them(tmp_path):
    path = tmp_path / "o.toml"
    path.write_text('[server]\nallowed_origins = ["HTTPS://Meet.Example.org:443", "http://a.example:80", "http://b.example:8080"]\n[rooms.x]\n')
    assert load(Location(path)).server.allowed_origins == ("https://meet.example.org", "http://a.example", "http://b.example:8080")
