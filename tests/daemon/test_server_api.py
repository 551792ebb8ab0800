"""The server API (/api/v1) with real HTTP requests against a real daemon: credentials, bodies, rooms made
and ended, participants removed and muted; and `videoroomd room|participant` talking to a running daemon."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.wait import until
from videoroomd.auth.tokens import Grants, mint

SECRET = "a" * 40
ADMIN = "the-admin-token"
CONFIG = f'[auth]\nkeys = {{ app = "{SECRET}" }}\n[rooms.lobby]\n'
SERVER = f'admin_token = "{ADMIN}"'


def jwt(room: str = "*", **grants) -> str:
    return mint("app", SECRET, room=room, identity="app-server", now=time.time(), ttl=600, grants=Grants(**grants))


async def http(port: int, method: str, path: str, body=None, *, token: str | None = ADMIN, raw: bytes | None = None,
               headers: tuple[tuple[str, str], ...] = (), length: int | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: (status, headers, body). ``length``: the Content-Length to
    declare instead, with no body sent (the server answers from the head)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             f"Content-Length: {len(data) if length is None else length}"]
    if data and raw is None:
        lines.append("Content-Type: application/json")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{k}: {v}" for k, v in headers]
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + (data if length is None else b""))
        received = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                received += chunk
    head, _, payload = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), found, payload


async def api(port: int, method: str, path: str, body=None, **kwargs) -> tuple[int, dict]:
    status, _headers, payload = await http(port, method, path, body, **kwargs)
    return status, json.loads(payload)


async def test_without_a_good_credential_the_api_answers_401_and_nothing_else(tmp_path):
    async with running_daemon(tmp_path, CONFIG, server=SERVER) as daemon:
        port = daemon.port
        answers = set()
        for token in (None, "wrong", jwt(), jwt(room="lobby", admin=True), ADMIN + "x"):
            for method, path in (("GET", "/api/v1/rooms"), ("GET", "/api/v1/rooms/lobby"),
                                 ("GET", "/api/v1/rooms/nowhere"), ("POST", "/api/v1/rooms/lobby/end")):
                status, headers, payload = await http(port, method, path, token=token)
                assert status == 401 and headers["www-authenticate"].startswith("Bearer"), (token, path)
                answers.add(payload)
        assert len(answers) == 1 and b"lobby" not in answers.pop()  # the same answer, whatever exists
        assert daemon.rooms.get("lobby") is not None and not daemon.rooms.get("lobby").stopping
        for token in (ADMIN, jwt(admin=True)):
            status, body = await api(port, "GET", "/api/v1/rooms", token=token)
            assert status == 200 and [r["name"] for r in body["rooms"]] == ["lobby"]


async def test_bad_requests_say_what_and_where(tmp_path):
    async with running_daemon(tmp_path, CONFIG, server=SERVER) as daemon:
        port = daemon.port
        cases = [
            (dict(raw=b'{"name": "x",', headers=(("Content-Type", "application/json"),)), 400, "bad_json", "column"),
            (dict(raw=b'[1]', headers=(("Content-Type", "application/json"),)), 400, "bad_json", "object"),
            (dict(raw=b'{"name": "x"}'), 400, "bad_content_type", "Content-Type: application/json"),
            (dict(body={"name": "x", "colour": 1}), 400, "bad_field", "'colour'"),
            (dict(body={"name": "no way"}), 400, "bad_room_name", "'name'"),
            (dict(body={"name": "x", "settings": {"max_peers": 0}}), 400, "bad_settings", "settings.max_peers"),
            (dict(body={"name": "x", "settings": {"dtls_cert": "/etc/passwd"}}), 400, "bad_settings",
             "settings.dtls_cert: unknown key"),
            (dict(body={"name": "lobby"}), 409, "room_exists", "exists already"),
        ]
        for kwargs, status, code, words in cases:
            got, body = await api(port, "POST", "/api/v1/rooms", **kwargs)
            assert (got, body["error"]["code"]) == (status, code), (kwargs, body)
            assert words in body["error"]["message"], (kwargs, body)
        status, _, payload = await http(port, "POST", "/api/v1/rooms", length=70000)
        assert status == 413 and b"at most 65536" in payload
        status, _, payload = await http(port, "POST", "/admin/rooms", length=2)
        assert status == 400 and b"bodies are not accepted" in payload
        assert (await api(port, "GET", "/api/v1/rooms/nowhere"))[0] == 404
        assert (await api(port, "POST", "/api/v1/rooms/nowhere/end"))[0] == 404
        assert (await api(port, "GET", "/api/v1/elsewhere"))[0] == 404
        status, headers, _ = await http(port, "DELETE", "/api/v1/rooms/lobby")
        assert status == 405 and headers["allow"] == "GET, HEAD, POST"
        status, body = await api(port, "POST", "/api/v1/rooms/lobby/recording/start")
        assert status == 409 and body["error"]["message"] == "room 'lobby' does not record (recording = \"off\")"


async def test_an_app_makes_a_room_sees_who_is_in_it_mutes_removes_and_ends_it(tmp_path):
    async with running_daemon(tmp_path, CONFIG, server=SERVER) as daemon, AsyncExitStack() as stack:
        port = daemon.port
        status, body = await api(port, "POST", "/api/v1/rooms", {"name": "maths", "empty_timeout": 60, "settings": {
            "max_peers": 2, "password": "pi", "moderator_password": "tau", "self_unmute": False}})
        assert status == 201 and body["settings"]["max_peers"] == 2 and body["settings"]["access"] == "password"
        assert "pi" not in json.dumps(body) and "tau" not in json.dumps(body)
        ann = await stack.enter_async_context(phoenix_client(daemon))
        assert (await ann.join("maths", displayName="Ann", password="pi"))["status"] == "ok"
        bob = await stack.enter_async_context(phoenix_client(daemon))
        assert (await bob.join("maths", displayName="Bob", password="tau"))["status"] == "ok"
        async with phoenix_client(daemon) as third:
            assert (await third.join("maths", displayName="Cy", password="pi"))["response"]["code"] == "room_full"
        status, room = await api(port, "GET", "/api/v1/rooms/maths")
        people = {p["name"]: p for p in room["participants"]}
        assert status == 200 and set(people) == {"Ann", "Bob"} and people["Bob"]["moderator"]
        ann_id, bob_id = people["Ann"]["id"], people["Bob"]["id"]
        status, done = await api(port, "POST", f"/api/v1/rooms/maths/participants/{ann_id}/mute", {"source": "audio"})
        assert status == 200 and done["action"] == "mute", done
        told = await _pushed(ann, "moderated")
        assert (told["action"], told["by"], told["may_unmute"]) == ("mute", "the server", False)
        status, body = await api(port, "POST", f"/api/v1/rooms/maths/participants/{ann_id}/mute", {"source": "x"})
        assert status == 400 and "audio, video, screen" in body["error"]["message"]
        status, done = await api(port, "POST", f"/api/v1/rooms/maths/participants/{ann_id}/remove",
                                 {"reason": "lesson over"})
        assert status == 200 and (await _pushed(ann, "phx_close"))["reason"] == "removed by the server: lesson over"
        status, body = await api(port, "POST", f"/api/v1/rooms/maths/participants/{ann_id}/remove")
        assert status == 404 and body["error"]["code"] == "no_such_peer"
        status, done = await api(port, "POST", "/api/v1/rooms/maths/end", {"reason": "bye"})
        assert status == 200
        assert (await _pushed(bob, "phx_close"))["reason"] == "the meeting was ended by the server: bye"
        await until(lambda: daemon.rooms.get("maths") is None)
        assert bob_id not in json.dumps((await api(port, "GET", "/api/v1/rooms"))[1])


async def test_the_operator_starts_and_stops_a_rooms_recording_and_the_room_hears_who(tmp_path):
    store = tmp_path / "recordings"
    store.mkdir()
    rooms = (f'[auth]\nkeys = {{ app = "{SECRET}" }}\n[recording]\ndirectory = "{store}"\n'
             '[rooms.lobby]\nrecording = "manual"\n')
    async with running_daemon(tmp_path, rooms, server=SERVER) as daemon, phoenix_client(daemon) as ann:
        port = daemon.port
        assert (await ann.join("lobby", displayName="Ann"))["status"] == "ok"
        status, started = await api(port, "POST", "/api/v1/rooms/lobby/recording/start")
        assert status == 200 and started["recording"], started
        assert (await _pushed(ann, "chat"))["text"] == "the operator started recording this call."
        status, body = await api(port, "POST", "/api/v1/rooms/lobby/recording/start", token=jwt(admin=True))
        assert status == 409 and body["error"]["code"] == "recording_refused"
        assert "runs already" in body["error"]["message"]
        status, stopped = await api(port, "POST", "/api/v1/rooms/lobby/recording/stop")
        assert status == 200 and stopped == started
        status, body = await api(port, "POST", "/api/v1/rooms/lobby/recording/stop")
        assert status == 409 and body["error"]["message"] == "no recording runs in this room"
        status, body = await api(port, "POST", "/api/v1/rooms/nowhere/recording/start")
        assert status == 404 and body["error"]["code"] == "no_such_room"
        status, _body = await api(port, "POST", "/api/v1/rooms/lobby/recording/start", token="wrong")
        assert status == 401
    assert [path.name for path in store.glob("*/*")] == [started["recording"]]


async def _pushed(client, event: str) -> dict:
    with trio.fail_after(5):
        while True:
            _join_ref, _ref, _topic, got, payload = await client.receive()
            if got == event:
                return payload


@pytest.mark.slow
def test_the_command_line_lists_ends_and_acts_on_participants(start_daemon, tmp_path):
    daemon = start_daemon(server=SERVER, rooms=CONFIG + "[rooms.board]\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "videoroomd", *args, "--config", str(daemon.config)],
                              capture_output=True, text=True, timeout=30)

    listed = run("room", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1:] == ["board                running   -", "lobby                running   -"]
    assert json.loads(run("room", "list", "--json").stdout)[0]["name"] == "board"
    ended = run("room", "end", "board", "--reason", "done")
    assert ended.returncode == 0 and ended.stdout == "room board ended; 0 people were in it\n", ended.stderr
    for args, words in ((("participant", "remove", "lobby", "nobody"), "404: there is no participant 'nobody'"),
                        (("participant", "mute", "lobby", "nobody", "--source", "video"), "404: there is no"),
                        (("participant", "remove", "lobby", "x", "--ban", "soon"), "--ban: 'soon' is not a duration"),
                        (("room", "end", "nowhere"), "404: room 'nowhere' is not running here")):
        result = run(*args)
        assert result.returncode == 1 and result.stderr.startswith("videoroomd: ") and words in result.stderr, \
            (args, result.stderr)
