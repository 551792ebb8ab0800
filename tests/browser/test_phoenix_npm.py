"""The official `phoenix` npm client (1.8) against a running `videoroomd serve`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from testsupport import npm_packages

HERE = Path(__file__).resolve().parent.parent  # tests/, whose js/ holds the scripts


@pytest.fixture(scope="session")
def node_modules() -> Path:
    return npm_packages.install()


def test_official_phoenix_client_joins_is_refused_heartbeats_and_leaves(start_daemon, node_modules):
    daemon = start_daemon(rooms="[rooms.lobby]\n[rooms.board]\npassword = 'right'\n")
    node = shutil.which("node")
    assert node, "node is needed: apt-get install nodejs (tests/run.sh does)"
    result = subprocess.run(
        [node, "--experimental-websocket", str(HERE / "js" / "phoenix_client.mjs"),
         str(node_modules / "phoenix" / "priv" / "static" / "phoenix.mjs"), f"ws://127.0.0.1:{daemon.port}/socket"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = [json.loads(line) for line in result.stdout.splitlines()]
    joined, refused, media, heartbeats, left = seen
    assert joined["status"] == "ok" and len(joined["response"]["peer_id"]) == 36
    assert refused == {"event": "join", "room": "board", "status": "error",
                       "response": {"reason": "wrong password", "code": "wrong_password"}}
    # a mediaEvent pushed through the channel reaches the room's engine, and its answer comes back
    assert media["data"] == {"type": "connected", "data": {"id": joined["response"]["peer_id"], "otherEndpoints": []}}
    assert heartbeats["count"] >= 2
    assert left == {"event": "left", "state": "closed"}
