"""The command line as a person uses it: check-config, gen-cert, rooms, logs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from videoroomd.cli.main import cli

from testsupport.daemon import config_text


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_teaches_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "check-config", "check-ice", "gen-cert", "rooms", "logs"):
        assert command in result.output
    assert "--follow" in run("logs", "--help").output


def test_check_config_summarises_a_good_file(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(config_text("[rooms.lobby]\nmax_peers = 4\n[rooms.board]\npassword = 'x'\n", port=8443))
    result = run("check-config", str(path))
    assert result.exit_code == 0
    assert result.output == f"{path}: OK: http://127.0.0.1:8443, 2 rooms: lobby (max 4), board (max 16)\n"


def test_check_config_says_where_the_turn_server_listens_and_never_its_secret(tmp_path):
    path = tmp_path / "turn.toml"
    path.write_text(config_text('[turn]\nenabled = true\nlisten = "127.0.0.1:3479"\nrelay_ports = [50000, 50999]\n'
                                'secret = "a-long-shared-secret-0123456789"\n[rooms.lobby]\n', port=8443))
    result = run("check-config", str(path))
    assert result.exit_code == 0
    assert result.output == (f"{path}: OK: http://127.0.0.1:8443, 1 room: lobby (max 16); TURN on udp and tcp "
                             "127.0.0.1:3479, relay ports 50000-50999, 1000 allocations, its secret set\n")
    path.write_text(path.read_text().replace('secret = "a-long-shared-secret-0123456789"\n', ""))
    assert run("check-config", str(path)).output.endswith("allocations, a new secret each start\n")


def test_check_config_lists_every_problem_and_exits_1(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nlisten = "nowhere"\n[rooms.a]\nmax_peers = -1\ncolour = "red"\n')
    result = run("check-config", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f'{path}:2: server.listen: expected HOST:PORT (e.g. "127.0.0.1:8080" or "[::1]:8080"), got \'nowhere\'',
        f"{path}:4: rooms.a.max_peers: expected an integer from 1 to 1000, got the number -1",
        f"{path}:5: rooms.a.colour: unknown key (known keys here: max_peers, password, access, stun_servers, turn_servers, simulcast, max_video_bitrate, dtls_cert, dtls_key, moderator_password, self_unmute, lobby, recording, recording_password)",
        f"videoroomd: {path}: 3 problems",
    ]


def test_check_config_uses_the_environment_variable(tmp_path):
    path = tmp_path / "env.toml"
    path.write_text(config_text())
    result = run("check-config", env={"VIDEOROOMD_CONFIG": str(path)})
    assert result.exit_code == 0 and result.output.startswith(f"{path}: OK")


def test_gen_cert_writes_a_p256_pair_with_a_private_key_and_prints_its_fingerprint(tmp_path):
    cert, key = tmp_path / "dtls.crt", tmp_path / "dtls.key"
    result = run("gen-cert", "--cert", str(cert), "--key", str(key), "--cn", "meet.example.org", "--days", "30",
                 "--san", "192.0.2.1")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    assert isinstance(private.curve, ec.SECP256R1)
    assert certificate.public_key().public_numbers() == private.public_key().public_numbers()
    assert certificate.subject.rfc4514_string() == "CN=meet.example.org"
    days = (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days
    assert days == 30  # valid from an hour ago, for 30 days and an hour
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n.value) for n in names} == {"meet.example.org", "localhost", "127.0.0.1", "::1", "192.0.2.1"}
    digest = certificate.fingerprint(hashes.SHA256())
    expected = "sha-256 " + ":".join(f"{b:02X}" for b in digest)
    assert f"fingerprint: {expected}\n" in result.output
    # the pair is usable as a room's DTLS certificate
    conf = tmp_path / "with-cert.toml"
    conf.write_text(config_text(f'[defaults]\ndtls_cert = "{cert}"\ndtls_key = "{key}"\n[rooms.a]\n'))
    assert run("check-config", str(conf)).exit_code == 0


def test_gen_cert_refuses_to_overwrite_without_force(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    assert run("gen-cert", "--cert", str(cert), "--key", str(key)).exit_code == 0
    before = cert.read_bytes()
    result = run("gen-cert", "--cert", str(cert), "--key", str(key))
    assert result.exit_code == 1
    assert result.stderr == f"videoroomd: {cert} already exists; use --force to overwrite it\n"
    assert cert.read_bytes() == before
    key.chmod(0o644)
    assert run("gen-cert", "--cert", str(cert), "--key", str(key), "--force").exit_code == 0
    assert cert.read_bytes() != before and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_rooms_lists_the_configured_rooms(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(config_text(
        "[defaults]\nstun_servers = ['stun:a.example', 'stun:b.example']\n"
        "[rooms.lobby]\nmax_peers = 8\n[rooms.board]\nmax_peers = 3\npassword = 'pw'\n"
        "turn_servers = [{ urls = 'turn:t.example', username = 'u', credential = 'c' }]\n"))
    result = run("rooms", "--config", str(path))
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "ROOM   MAX  PASSWORD  STUN  TURN",
        "lobby  8    no        2     0",
        "board  3    yes       2     1",
    ]
    rows = json.loads(run("rooms", "--config", str(path), "--json").output)
    assert rows[1] == {"name": "board", "max_peers": 3, "password": True, "stun_servers": 2, "turn_servers": 1}
    assert "pw" not in result.output


def test_rooms_live_asks_the_running_daemon(start_daemon):
    daemon = start_daemon(media="workers = 2")
    result = subprocess.run([sys.executable, "-m", "videoroomd", "rooms", "--live", "--config", str(daemon.config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ROOM   MAX  PASSWORD  STUN  TURN  STATUS   PEOPLE  TRACKS  WORKER",
        "lobby  4    no        0     0     running  0       0       1",
    ]


def test_rooms_live_says_when_no_daemon_answers(tmp_path):
    path = tmp_path / "r.toml"
    from testsupport.daemon import free_port
    port = free_port()
    path.write_text(config_text(port=port))
    result = run("rooms", "--live", "--config", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"videoroomd: no daemon answers at http://127.0.0.1:{port}/admin/rooms")


def test_admin_view_is_closed_to_proxied_requests_and_open_with_the_token(start_daemon):
    import urllib.request
    import urllib.error
    daemon = start_daemon()
    request = urllib.request.Request(daemon.url + "/admin/rooms", headers={"X-Forwarded-For": "198.51.100.7"})
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("a proxied request reached the admin view")
    except urllib.error.HTTPError as error:
        assert error.code == 403
    daemon.stop()
    with_token = start_daemon(server='admin_token = "t0ken"', name="token.toml")
    try:
        urllib.request.urlopen(with_token.url + "/admin/rooms", timeout=5)
        raise AssertionError("the admin view answered without its token")
    except urllib.error.HTTPError as error:
        assert error.code == 403
    result = run("rooms", "--live", "--config", str(with_token.config))
    assert result.exit_code == 0 and "running" in result.output


LOG_LINES = [
    {"timestamp": "2026-11-23T10:00:00.000Z", "level": "info", "event": "room open", "room": "lobby"},
    {"timestamp": "2026-11-23T10:00:01.000Z", "level": "info", "event": "peer joined", "room": "lobby", "peer": "p1"},
    {"timestamp": "2026-11-23T10:00:02.000Z", "level": "warning", "event": "too slow", "room": "board", "peer": "p2"},
    {"timestamp": "2026-11-23T10:00:03.000Z", "level": "error", "event": "crashed", "room": "lobby", "error": "boom"},
]


def write_log(path: Path, records: list[dict], mode: str = "w") -> None:
    with open(path, mode) as file:
        for record in records:
            file.write(json.dumps(record) + "\n")


def test_logs_shows_the_last_lines_pretty_and_filters(tmp_path):
    log = tmp_path / "videoroomd.log"
    write_log(log, LOG_LINES)
    out = run("logs", "--file", str(log), "-n", "2").output.splitlines()
    assert out == [
        "2026-11-23 10:00:02.000 WARNING too slow room=board peer=p2",
        "2026-11-23 10:00:03.000 ERROR   crashed room=lobby error=boom",
    ]
    assert len(run("logs", "--file", str(log), "--room", "lobby").output.splitlines()) == 3
    assert run("logs", "--file", str(log), "--peer", "p2").output.count("\n") == 1
    assert [json.loads(l)["event"] for l in run("logs", "--file", str(log), "--level", "warning", "--json").output.splitlines()] == [
        "too slow", "crashed"]


def test_logs_gives_the_last_lines_about_a_room_not_those_among_the_last_lines(tmp_path):
    log = tmp_path / "videoroomd.log"
    write_log(log, LOG_LINES)
    out = run("logs", "--file", str(log), "--room", "lobby", "-n", "2", "--json").output.splitlines()
    assert [json.loads(line)["event"] for line in out] == ["peer joined", "crashed"]


def test_logs_and_rooms_live_go_on_when_the_config_has_an_error(start_daemon, tmp_path):
    daemon = start_daemon(rooms="[rooms.lobby]\nmax_peers = 4\n")
    log = tmp_path / "d.log"
    write_log(log, LOG_LINES)
    broken = tmp_path / "broken.toml"
    broken.write_text(daemon.config.read_text() + f'[log]\nfile = "{log.name}"\n[rooms.more]\nmax_peers = four\n')
    result = run("logs", "--config", str(broken), "-n", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2026-11-23 10:00:03.000 ERROR   crashed room=lobby error=boom\n"
    assert "warning: " in result.stderr and "invalid TOML" in result.stderr and str(log) in result.stderr
    result = run("rooms", "--live", "--json", "--config", str(broken))
    assert result.exit_code == 0, result.output
    assert [(row["name"], row["status"]) for row in json.loads(result.stdout)] == [("lobby", "running")]
    assert "the rooms the running daemon has" in result.stderr
    assert run("rooms", "--config", str(broken)).exit_code == 1  # without --live there is nothing to show


def test_logs_reads_the_file_the_config_names(tmp_path):
    log = tmp_path / "d.log"
    write_log(log, LOG_LINES[:1])
    conf = tmp_path / "c.toml"
    conf.write_text(config_text(log=f'file = "{log}"'))
    assert run("logs", "--config", str(conf)).output.startswith("2026-11-23 10:00:00.000 INFO    room open")
    conf.write_text(config_text())
    result = run("logs", "--config", str(conf))
    assert result.exit_code == 1 and "sets no [log] file to read" in result.stderr


def test_logs_follow_survives_rotation(tmp_path):
    log = tmp_path / "videoroomd.log"
    write_log(log, LOG_LINES[:1])
    follower = subprocess.Popen([sys.executable, "-m", "videoroomd", "logs", "--file", str(log), "-f", "--json"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(follower.stdout.readline())["event"] == "room open"
        write_log(log, LOG_LINES[1:2], "a")
        assert json.loads(follower.stdout.readline())["event"] == "peer joined"
        os.rename(log, tmp_path / "videoroomd.log.1")  # what logrotate does
        time.sleep(0.5)
        write_log(log, LOG_LINES[2:3])
        assert json.loads(follower.stdout.readline())["event"] == "too slow"
        write_log(log, LOG_LINES[3:4], "a")
        assert json.loads(follower.stdout.readline())["event"] == "crashed"
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_daemon_writes_json_lines_that_logs_reads_back(start_daemon, tmp_path):
    log = tmp_path / "daemon.log"
    daemon = start_daemon(log=f'file = "{log}"')
    daemon.stop()
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "starting" and "ready" in events and events[-1] == "stopped"
    out = run("logs", "--config", str(daemon.config), "--room", "lobby").output
    assert "room open" in out and "room=lobby" in out


def test_serve_refuses_to_start_on_aiortc_or_aioice_versions_it_was_not_made_for(tmp_path, monkeypatch):
    from videoroomd.media.webrtc import compat as aiortc_compat

    assert aiortc_compat.check_versions() is None  # what is installed here is what the pins say
    monkeypatch.setitem(aiortc_compat.REQUIRED, "aiortc", "9.9")
    path = tmp_path / "videoroomd.toml"
    path.write_text(config_text())
    result = CliRunner().invoke(cli, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    installed = aiortc_compat.installed("aiortc")
    assert result.stderr.strip().splitlines()[-1] == (f"videoroomd: the media engine needs aiortc 9.9.x and aioice 0.13.x; installed: "
                                     f"aiortc {installed} (reinstall videoroomd to get the versions it pins)")


def test_check_ice_prints_what_clients_are_offered_and_warns_of_a_private_announced_ip(tmp_path):
    path = tmp_path / "ice.toml"
    path.write_text(config_text('[ice]\naddresses = ["127.0.0.1"]\nannounced_ip = "10.1.2.3"\nudp_ports = "50000-50099"\n'
                                '[turn]\nenabled = true\nlisten = "127.0.0.1:3478"\nrelay_ports = [49152, 49999]\n'
                                "[rooms.lobby]\n", port=8443))
    result = run("check-ice", "--config", str(path))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "page and signalling: http://127.0.0.1:8443 (TCP)" in out
    assert "media addresses:     127.0.0.1 ([ice] addresses)" in out
    assert "media UDP ports:     50000-50099 ([ice] udp_ports)" in out
    assert "TURN server:         udp and tcp 127.0.0.1:3478" in out
    assert "turn:10.1.2.3:3478?transport=udp, turn:10.1.2.3:3478?transport=tcp" in out
    assert "TURN relay ports:    49152-49999" in out
    assert "warning: [ice] announced_ip 10.1.2.3 is not a public address" in out


def test_check_ice_warns_when_a_daemon_on_every_interface_has_only_private_media_addresses(tmp_path):
    from videoroomd.cli.check_ice import ice_report
    from videoroomd.config.load import parse

    text = '[server]\nlisten = "0.0.0.0:8443"\n[rooms.lobby]\n'
    lines, warnings = ice_report(parse(text, "t.toml", tmp_path), ["192.168.1.20", "fd00::5"])
    assert "media UDP ports:     any the kernel picks (usually 32768-60999); set [ice] udp_ports" in "\n".join(lines)
    assert any(w.startswith("[ice] announced_ip is not set and every media address is private (192.168.1.20, fd00::5) "
                            "while the daemon listens on 0.0.0.0") for w in warnings), warnings
    # a public address among them, or an announced public one: nothing to warn of
    assert ice_report(parse(text, "t.toml", tmp_path), ["192.168.1.20", "93.184.216.34"])[1] == []
    announced = '[server]\nlisten = "0.0.0.0:8443"\n[ice]\nannounced_ip = "93.184.216.34"\n[rooms.lobby]\n'
    assert ice_report(parse(announced, "t.toml", tmp_path), ["192.168.1.20"])[1] == []
    overlapping = ('[server]\nlisten = "127.0.0.1:8443"\n[ice]\nudp_ports = "49000-49200"\n'
                   "[turn]\nenabled = true\nrelay_ports = [49152, 65535]\n[rooms.lobby]\n")
    assert ice_report(parse(overlapping, "t.toml", tmp_path), ["127.0.0.1"])[1] == [
        "[ice] udp_ports 49000-49200 overlaps [turn] relay_ports 49152-65535: relay sockets take ports the media needs"]
    # on loopback only, a private address is no surprise
    local = '[server]\nlisten = "127.0.0.1:8443"\n[rooms.lobby]\n'
    assert ice_report(parse(local, "t.toml", tmp_path), ["192.168.1.20"])[1] == []
