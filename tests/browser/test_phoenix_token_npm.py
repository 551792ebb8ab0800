"""The official `phoenix` npm client (1.8) joins a token room with the token in its socket params or join params."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from testsupport import npm_packages
from videoroomd.auth.tokens import mint

HERE = Path(__file__).resolve().parent.parent  # tests/, whose js/ holds the scripts
SECRET = "n" * 40


def test_official_phoenix_client_joins_with_a_token_in_its_socket_params(start_daemon):
    modules = npm_packages.install()
    daemon = start_daemon(rooms=f'[auth]\nkeys = {{ app = "{SECRET}" }}\n[rooms.class]\naccess = "token"\n')
    text = mint("app", SECRET, room="class", identity="node", name="Node", now=time.time(), ttl=60)
    node = shutil.which("node")
    assert node, "node is needed: apt-get install nodejs (tests/run.sh does)"
    result = subprocess.run(
        [node, "--experimental-websocket", str(HERE / "js" / "phoenix_token.mjs"),
         str(modules / "phoenix" / "priv" / "static" / "phoenix.mjs"), f"ws://127.0.0.1:{daemon.port}/socket", text],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    by_socket, without, by_join = (json.loads(line) for line in result.stdout.splitlines())
    assert by_socket["status"] == "ok" and len(by_socket["response"]["peer_id"]) == 36, by_socket
    assert without["status"] == "error" and without["response"]["code"] == "token_required"
    assert by_join["status"] == "ok", by_join
    assert text.split(".")[2] not in daemon.log()
