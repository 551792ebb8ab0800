"""What reaches the log file: a connection ended by an error, and a fault of the daemon itself (then exit 1)."""

from __future__ import annotations

import json
import signal
import urllib.request

import trio

from testsupport.edge_helpers import connect, exchange, frame, get, read_all, read_until, status_of, upgrade_head


def test_a_log_file_that_cannot_be_reopened_is_reported_and_the_daemon_goes_on(start_daemon, tmp_path):
    log_file = tmp_path / "videoroomd.log"
    daemon = start_daemon(log=f'file = "{log_file}"')
    log_file.unlink()  # a log rotation gone wrong: a directory where the file was
    log_file.mkdir()
    daemon.signal(signal.SIGUSR1)
    daemon.wait_log("log file cannot be reopened")
    assert daemon.proc.poll() is None
    assert urllib.request.urlopen(daemon.url + "/healthz", timeout=5).status == 200
    assert daemon.stop() == 0


def test_a_fatal_error_reaches_the_log_file_with_its_traceback_then_exit_1(start_daemon, tmp_path):
    # A real fault the daemon cannot go on with: its media worker program cannot start at
    # all (here a broken installation: the interpreter of every worker exits at once).
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os, sys\nif '--fd' in sys.argv:\n    os._exit(3)\n")
    log_file = tmp_path / "videoroomd.log"
    daemon = start_daemon(log=f'file = "{log_file}"', media="workers = 1", wait=False, env={"PYTHONPATH": str(site)})
    daemon.proc.wait(timeout=60)
    assert daemon.stop() == 1
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    fatal = [line for line in lines if line["event"] == "daemon failed; exiting"]
    assert len(fatal) == 1 and fatal[0]["level"] == "critical"
    assert "media worker 1 could not start" in fatal[0]["exception"] and "Traceback" in fatal[0]["exception"]


async def test_a_connection_ended_by_an_error_is_in_the_log_file_with_its_traceback(start_daemon, tmp_path):
    log_file = tmp_path / "videoroomd.log"
    daemon = start_daemon(server="max_frame_size = 2048", log=f'file = "{log_file}"')
    # the case trio-websocket cannot handle: a frame over the limit after the server's close frame
    stream = await connect(daemon.port)
    await stream.send_all(upgrade_head("/socket/websocket?vsn=2.0.0"))
    assert b" 101 " in await read_until(stream, b"\r\n\r\n")
    await stream.send_all(frame("nope") * 25)
    await read_until(stream, b"too many")
    try:
        await stream.send_all(frame("x" * 4096))
        await read_all(stream)
    except trio.BrokenResourceError:
        pass
    await stream.aclose()
    with trio.fail_after(10):
        while "connection ended by an unexpected error" not in log_file.read_text():
            await trio.sleep(0.05)
    line = next(json.loads(text) for text in log_file.read_text().splitlines()
                if "connection ended by an unexpected error" in text)
    assert line["level"] == "error" and "Traceback" in line["exception"] and "LocalProtocolError" in line["exception"]
    assert status_of(await exchange(daemon.port, get("/healthz"))) == 200
    assert "videoroomd_connection_errors_total 1.0" in (await exchange(daemon.port, get("/metrics"))).decode()
    assert daemon.stop() == 0
