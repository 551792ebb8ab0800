"""A real `videoroomd serve` process: start, reload on SIGHUP, systemd notifications, exits."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from testsupport.daemon import config_text, free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def serve_once(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videoroomd", "serve", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def test_sigterm_with_no_calls_exits_cleanly(start_daemon):
    daemon = start_daemon()
    assert get(daemon.url + "/healthz") == (200, "ok\n")
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=15) == 0
    log = daemon.log()
    assert '"event": "draining"' in log and '"event": "stopped"' in log


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "videoroomd.toml"
        path.write_text(config_text(port=port))
        result = serve_once(["--config", str(path)], tmp_path)
    assert result.returncode == 1
    assert f"videoroomd: {path}: server.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_refuses_to_start_without_traceback(tmp_path):
    path = tmp_path / "videoroomd.toml"
    path.write_text('[rooms.lobby]\nmax_peers = 0\n')
    result = serve_once(["--config", str(path)], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"videoroomd: {path}:2: rooms.lobby.max_peers: expected an integer from 1 to 1000, got the number 0"


def test_log_file_that_cannot_be_written_is_one_clear_line(tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    path = tmp_path / "videoroomd.toml"
    path.write_text(config_text(log='file = "not-a-dir/videoroomd.log"'))
    result = serve_once(["--config", str(path)], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"videoroomd: {path}: log.file: cannot open log file {tmp_path}/not-a-dir/videoroomd.log: Not a directory")


def test_sighup_reloads_and_a_bad_file_is_kept_out(start_daemon):
    daemon = start_daemon()
    port = daemon.port
    daemon.config.write_text(config_text("[rooms.lobby]\nmax_peers = 4\n[rooms.extra]\n", port=port))
    daemon.signal(signal.SIGHUP)
    daemon.wait_log('"added": ["extra"]')
    rooms = json.loads(get(daemon.url + "/admin/rooms")[1])["rooms"]
    assert [r["name"] for r in rooms] == ["extra", "lobby"]

    daemon.config.write_text(config_text("[rooms.lobby]\nmax_peers = 4000\n", port=port))
    daemon.signal(signal.SIGHUP)
    text = daemon.wait_log("reload refused")
    assert "rooms.lobby.max_peers: expected an integer from 1 to 1000, got the number 4000" in text
    rooms = json.loads(get(daemon.url + "/admin/rooms")[1])["rooms"]
    assert [r["name"] for r in rooms] == ["extra", "lobby"] and rooms[1]["max_peers"] == 4
    assert get(daemon.url + "/healthz")[0] == 200


def test_systemd_notifications_reach_the_notify_socket(start_daemon, tmp_path):
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        notify.settimeout(10)

        def next_message() -> str:
            return notify.recv(4096).decode()

        daemon = start_daemon(env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}, wait=False)
        seen: list[str] = []

        def wait_for(field: str) -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = next_message()
                seen.append(message)
                if field in message.split("\n"):
                    return
            raise AssertionError(f"{field} never came; got {seen}")

        wait_for("READY=1")
        assert get(daemon.url + "/healthz")[0] == 200  # READY is sent only once it is listening
        wait_for("WATCHDOG=1")
        daemon.signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        wait_for("READY=1")
        daemon.signal(signal.SIGTERM)
        wait_for("STOPPING=1")
        assert daemon.proc.wait(timeout=15) == 0
    reloading = next(m for m in seen if m.startswith("RELOADING=1"))
    assert "MONOTONIC_USEC=" in reloading


@pytest.mark.slow
async def test_sigterm_drains_calls_then_exits_zero(start_daemon):
    """A call in progress may finish until drain_timeout; meanwhile /healthz says 503 and joins are refused."""
    import trio
    from trio_websocket import ConnectionClosed
    from testsupport.phoenix import phoenix_client

    daemon = start_daemon(server="drain_timeout = 3")
    async with phoenix_client(daemon) as client:
        assert (await client.join("lobby", displayName="Ann"))["status"] == "ok"
        daemon.signal(signal.SIGTERM)
        with trio.fail_after(5):
            while (await trio.to_thread.run_sync(get, daemon.url + "/healthz"))[0] != 503:
                await trio.sleep(0.05)
        assert (await trio.to_thread.run_sync(get, daemon.url + "/healthz")) == (503, "draining\n")
        async with phoenix_client(daemon) as late:
            assert await late.join("lobby") == {"status": "error", "response": {
                "reason": "the server is shutting down", "code": "shutting_down"}}
        # the call goes on until the drain timeout, then the client is told to come back later
        told = []
        with trio.fail_after(10):
            while True:
                try:
                    _join_ref, _ref, topic, event, payload = await client.receive(timeout=10)
                except ConnectionClosed as closed:
                    assert closed.reason.code == 1001
                    break
                if event == "phx_error":
                    told.append((topic, payload))
        assert told == [("room:lobby", {"reason": "the server is shutting down"})]
    assert await trio.to_thread.run_sync(lambda: daemon.proc.wait(timeout=15)) == 0


@pytest.mark.slow
async def test_a_second_stop_signal_exits_at_once(start_daemon):
    import trio
    from testsupport.phoenix import phoenix_client

    daemon = start_daemon(server="drain_timeout = 600")
    async with phoenix_client(daemon) as client:
        assert (await client.join("lobby"))["status"] == "ok"
        daemon.signal(signal.SIGTERM)
        daemon.wait_log('"event": "draining"')
        daemon.signal(signal.SIGTERM)  # not waiting ten minutes for the call to end
        code = await trio.to_thread.run_sync(lambda: daemon.proc.wait(timeout=15))
    assert code == 1
    assert "second stop signal: exiting now" in daemon.log()


def test_secrets_never_reach_the_log(start_daemon, tmp_path):
    log = tmp_path / "d.log"
    daemon = start_daemon(
        rooms="[rooms.board]\npassword = 'hunter2-room'\n"
              "turn_servers = [{ urls = 'turn:127.0.0.1:3478', username = 'u', credential = 'hunter2-turn' }]\n",
        server='admin_token = "hunter2-admin"', log=f'file = "{log}"')
    # a wrong password, a reload, and a refused reload all get logged
    daemon.config.write_text(daemon.config.read_text() + "\n[rooms.extra]\nmax_peers = 0\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_log("reload refused")
    daemon.stop()
    text = log.read_text() + daemon.log()
    assert "reload refused" in text and "hunter2" not in text


def test_redaction_of_secret_fields():
    from videoroomd.logs.setup import REDACTED, redact_secrets

    event = {"event": "x", "password": "p", "nested": {"credential": "c", "ok": 1}, "room": "r"}
    assert redact_secrets(None, "info", event) == {
        "event": "x", "password": REDACTED, "nested": {"credential": REDACTED, "ok": 1}, "room": "r"}


def test_turn_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        path = tmp_path / "videoroomd.toml"
        path.write_text(config_text(rooms=f'[turn]\nenabled = true\nlisten = "127.0.0.1:{port}"\n[rooms.lobby]\n'))
        result = serve_once(["--config", str(path)], tmp_path)
    assert result.returncode == 1
    assert f"videoroomd: {path}: turn.listen: cannot listen on UDP 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
