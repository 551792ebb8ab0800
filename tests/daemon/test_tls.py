"""With [server] tls_cert/tls_key the one port speaks https and wss."""

from __future__ import annotations

import json
import ssl
import urllib.request

import trio
from trio_websocket import open_websocket_url

from videoroomd.certs.generate import generate


async def test_https_page_and_wss_join(start_daemon, tmp_path):
    generate(tmp_path / "tls.crt", tmp_path / "tls.key", cn="localhost", days=1)
    daemon = start_daemon(server=f'tls_cert = "{tmp_path}/tls.crt"\ntls_key = "{tmp_path}/tls.key"', wait=False)
    context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
    url = f"https://localhost:{daemon.port}"

    def fetch(path):
        with urllib.request.urlopen(url + path, context=context, timeout=5) as response:
            return response.status, response.read()

    with trio.fail_after(20):
        while True:
            try:
                status, body = await trio.to_thread.run_sync(fetch, "/healthz")
                break
            except OSError:
                await trio.sleep(0.1)
    assert (status, body) == (200, b"ok\n")
    status, page = await trio.to_thread.run_sync(fetch, "/room/lobby")
    assert status == 200 and b"<title>videoroomd</title>" in page
    # plain http on the TLS port gets nowhere
    try:
        await trio.to_thread.run_sync(lambda: urllib.request.urlopen(f"http://localhost:{daemon.port}/healthz", timeout=5))
        raise AssertionError("plain http was answered on the TLS port")
    except OSError:
        pass
    async with open_websocket_url(f"wss://localhost:{daemon.port}/socket/websocket?vsn=2.0.0", ssl_context=context) as ws:
        await ws.send_message(json.dumps(["1", "1", "room:lobby", "phx_join", {"displayName": "Sec"}]))
        reply = json.loads(await ws.get_message())
        assert reply[3] == "phx_reply" and reply[4]["status"] == "ok"
