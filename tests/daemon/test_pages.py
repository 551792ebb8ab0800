"""The web client's files as the daemon serves them: types, caching, the public room list, no way out of static/."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_pages_modules_and_styles_have_their_types_and_cache_headers(start_daemon):
    daemon = start_daemon(rooms="[rooms.lobby]\nmax_peers = 4\n[rooms.board]\npassword = 'pw'\n")
    for path, content_type in [("/", "text/html; charset=utf-8"), ("/room/lobby", "text/html; charset=utf-8"),
                               ("/static/js/main.js", "text/javascript; charset=utf-8"),
                               ("/static/app.css", "text/css; charset=utf-8"), ("/favicon.ico", "image/svg+xml")]:
        status, headers, _ = fetch(daemon.url + path)
        assert (status, headers["content-type"], headers["cache-control"]) == (200, content_type, "no-cache"), path
    status, headers, body = fetch(daemon.url + "/")
    assert "default-src 'self'" in headers["content-security-policy"]
    # revalidation costs no body
    request = urllib.request.Request(daemon.url + "/static/js/main.js", headers={"If-None-Match": fetch(daemon.url + "/static/js/main.js")[1]["etag"]})
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("an unchanged module was sent again")
    except urllib.error.HTTPError as error:
        assert error.code == 304 and error.read() == b""
    status, headers, body = fetch(daemon.url + "/api/rooms")
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {"rooms": [
        {"name": "lobby", "people": 0, "max_peers": 4, "password": False, "recording": "off"},
        {"name": "board", "people": 0, "max_peers": 16, "password": True, "recording": "off"}], "dynamic_rooms": False}
    assert b"pw" not in body


def test_nothing_outside_the_static_folder_is_served(start_daemon):
    daemon = start_daemon()
    for path in ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/.hidden", "/static/js/", "/room/../../etc",
                 "/static/js/missing.js"]:
        status, _, body = fetch(daemon.url + path)
        assert status == 404, path
    status, headers, _ = fetch(daemon.url + "/room/bad%20name")
    assert status == 404


def test_the_log_file_is_reopened_after_rotation(start_daemon, tmp_path):
    import os
    import signal

    log = tmp_path / "d.log"
    daemon = start_daemon(log=f'file = "{log}"')
    os.rename(log, tmp_path / "d.log.1")  # what logrotate does
    daemon.signal(signal.SIGHUP)  # anything that logs
    daemon.wait_log("configuration reloaded")
    daemon.stop()
    assert "configuration reloaded" in log.read_text()
    assert "configuration reloaded" not in (tmp_path / "d.log.1").read_text()
