"""A fault of the daemon itself: logged as critical with its traceback, then exit 1."""

from __future__ import annotations

import json
import signal


def test_a_fatal_error_is_logged_as_critical_with_its_traceback_then_exit_1(start_daemon, tmp_path):
    log_file = tmp_path / "videoroomd.log"
    daemon = start_daemon(log=f'file = "{log_file}"')
    # A real fault: the log file replaced by a directory, then SIGUSR1 (reopen the log files) fails.
    log_file.unlink()
    log_file.mkdir()
    daemon.signal(signal.SIGUSR1)
    daemon.proc.wait(timeout=15)
    assert daemon.stop() == 1
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    fatal = [line for line in lines if line["event"] == "daemon failed; exiting"]
    assert len(fatal) == 1 and fatal[0]["level"] == "critical"
    assert "IsADirectoryError" in fatal[0]["exception"] and "Traceback" in fatal[0]["exception"]
    # (Here the file itself is what broke, so this line reaches stderr only; any other
    # fault reaches the file through the same handler.)
