"""The recordings page over HTTP: who sees which recordings, files in ranges, and 403 telling nothing."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

ADMIN = "admin-token-for-the-test"
FORBIDDEN_TEXT = b"no recordings for this credential"


def fetch(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def cookie(**value) -> dict:
    encoded = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return {"Cookie": f"videoroomd_recordings={encoded}"}


def make_recording(directory, room_id: str, recording_id: str, room: str, data: bytes) -> None:
    path = directory / room_id / recording_id
    path.mkdir(parents=True)
    (path / "recording.json").write_text(json.dumps({"room": room, "by": "Ann", "started": 1_790_000_000}))
    (path / "p1.cam.vrtrack").write_bytes(b"VRTRACK\n")
    (path / "p1.webm").write_bytes(data)


def test_each_credential_sees_its_recordings_only_and_gets_the_files_in_ranges(start_daemon, tmp_path):
    store = tmp_path / "recordings"
    movie = bytes(range(256)) * 400
    make_recording(store, "rlobby", "20261206T100000Z-aaaa", "lobby", movie)
    make_recording(store, "rboard", "20261206T110000Z-bbbb", "board", b"secret board meeting")
    daemon = start_daemon(rooms=f'[recording]\ndirectory = "{store}"\n'
                                '[rooms.lobby]\nrecording = "manual"\nrecording_password = "tape"\n'
                                '[rooms.board]\nrecording = "manual"\nrecording_password = "other"\n',
                          server=f'admin_token = "{ADMIN}"')
    api = daemon.url + "/api/recordings"
    for headers in ({}, cookie(room="lobby", password="nope"), cookie(room="nowhere", password="tape"),
                    cookie(admin="wrong"), {"Authorization": "Bearer wrong"}, {"Cookie": "videoroomd_recordings=%%%"}):
        status, _, body = fetch(api, headers)
        assert status == 403 and body.startswith(FORBIDDEN_TEXT) and b"board" not in body and b"lobby" not in body
    status, headers, body = fetch(api, cookie(room="lobby", password="tape"))
    assert status == 200 and headers["cache-control"] == "no-store"
    (only,) = json.loads(body)["recordings"]
    assert only["room"] == "lobby" and only["participants"] == ["p1"]
    assert only["files"] == [{"name": "p1.webm", "bytes": len(movie), "url": "/recordings/files/20261206T100000Z-aaaa/p1.webm"}]
    status, _, body = fetch(api, {"Authorization": f"Bearer {ADMIN}"})
    assert [r["room"] for r in json.loads(body)["recordings"]] == ["board", "lobby"]  # newest first
    assert fetch(api, cookie(admin=ADMIN))[0] == 200

    lobby = cookie(room="lobby", password="tape")
    url = daemon.url + only["files"][0]["url"]
    status, headers, body = fetch(url, lobby)
    assert (status, headers["content-type"], body) == (200, "video/webm", movie) and headers["accept-ranges"] == "bytes"
    status, headers, body = fetch(url, {**lobby, "Range": "bytes=100-199"})
    assert (status, headers["content-range"], body) == (206, f"bytes 100-199/{len(movie)}", movie[100:200])
    status, headers, body = fetch(url, {**lobby, "Range": "bytes=-10"})
    assert (status, body) == (206, movie[-10:])
    status, headers, _ = fetch(url, {**lobby, "Range": f"bytes={len(movie)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(movie)}"
    # another room's file, a track file, a made-up one, a way out: all the same 403
    for path in ("/recordings/files/20261206T110000Z-bbbb/p1.webm", "/recordings/files/20261206T100000Z-aaaa/p1.cam.vrtrack",
                 "/recordings/files/20261206T100000Z-aaaa/nobody.webm", "/recordings/files/../rboard/p1.webm",
                 "/recordings/files/20261206T100000Z-aaaa/../../rboard/20261206T110000Z-bbbb/p1.webm"):
        status, _, body = fetch(daemon.url + path, lobby)
        assert status == 403 and body.startswith(FORBIDDEN_TEXT), path
    status, headers, body = fetch(daemon.url + "/recordings")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"recordings.js" in body
