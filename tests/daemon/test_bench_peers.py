"""``bench.peers``, videoroomd and Janus side by side: its figures, and one short sitting for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import procfs
from bench.janus import binary, config_files
from bench.peer_figures import PeerSample, ratios, run_figures, table
from testsupport.wait import wait_for

REPO = Path(__file__).resolve().parents[2]


def snap(packets: dict[str, int], video_frames: int, sent_frames: int, cpu: float) -> dict:
    received = {mid: {"kind": "video" if mid == "v" else "audio", "packets": count,
                      "frames": video_frames if mid == "v" else count} for mid, count in packets.items()}
    return {"received": received, "sent": {"video": {"frames": sent_frames}}, "cpu": cpu}


def test_cpu_per_packet_counts_every_receivers_packets_and_keeps_user_and_kernel_apart():
    start = PeerSample(10.0, 1.0, 0.5, (100, 200), {"a": snap({"v": 100, "a": 50}, 30, 60, 1.0),
                                                    "b": snap({"v": 80}, 20, 60, 2.0)})
    # b got a new receiver during the window: all its packets count
    end = PeerSample(20.0, 3.0, 1.5, (250, 400), {"a": snap({"v": 600, "a": 300}, 330, 360, 2.0),
                                                  "b": snap({"v": 580, "a": 250}, 320, 360, 3.5)})
    figures = run_figures("janus", 2, start, end, 30.0, 20.0)
    packets = 500 + 250 + 500 + 250
    assert figures["packets"] == packets and figures["packets_per_s"] == packets / 10
    assert figures["user_us"] == round(2.0 / packets * 1e6, 1)
    assert figures["kernel_us"] == round(1.0 / packets * 1e6, 1)
    assert figures["us_per_packet"] == round(3.0 / packets * 1e6, 1)
    assert figures["video_delivered"] == 1.0  # 600 frames arrived of 600 sent to one other each
    assert figures["publisher_fps_min"] == 30.0 and figures["machine_busy"] == 0.75
    assert figures["bot_cores"] == 0.25 and figures["rss_mib"] == 30.0 and figures["pss_mib"] == 20.0


def test_a_trees_pss_counts_the_pages_its_processes_share_once():
    # a Python process with a Python child: both map libpython and libc
    parent = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import sys; sys.stdin.read()'])"
    root = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE)
    try:
        pids = wait_for(lambda: tree if len(tree := procfs.tree_pids(root.pid)) == 2 else None, 10, "the child")
        time.sleep(0.5)  # the child's interpreter has started
        rss, pss = procfs.tree_memory_mib(root.pid)
        assert rss == pytest.approx(sum(procfs.rss_mib(pid) for pid in pids), rel=0.05)
        assert 0 < pss < rss  # what both map counts once in the PSS sum, twice in the RSS sum
    finally:
        root.communicate(b"")


def test_the_ratio_pairs_each_videoroomd_run_with_the_janus_run_of_its_round_and_skips_failed_rounds():
    results = [{"server": "videoroomd", "n": 4, "us_per_packet": 30.0, "user_us": 20.0, "kernel_us": 10.0,
                "rss_mib": 100.0, "round": 1},
               {"server": "janus", "n": 4, "us_per_packet": 60.0, "user_us": 30.0, "kernel_us": 30.0, "rss_mib": 25.0,
                "round": 1},
               {"server": "videoroomd", "n": 4, "error": "a participant failed", "round": 2},
               {"server": "janus", "n": 4, "us_per_packet": 10.0, "user_us": 5.0, "kernel_us": 5.0, "rss_mib": 25.0,
                "round": 2},
               {"server": "videoroomd", "n": 4, "us_per_packet": 45.0, "user_us": 30.0, "kernel_us": 15.0,
                "rss_mib": 100.0, "round": 3},
               {"server": "janus", "n": 4, "us_per_packet": 50.0, "user_us": 25.0, "kernel_us": 25.0, "rss_mib": 25.0,
                "round": 3}]
    by_n = ratios(results)
    assert [r["us_per_packet"] for r in by_n[4]["rounds"]] == [0.5, 0.9]
    assert (by_n[4]["low"], by_n[4]["high"]) == (0.5, 0.9) and by_n[4]["rounds"][0]["rss_mib"] == 4.0
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in table(results).splitlines()}
    assert rows["ratio videoroomd ÷ Janus, CPU/packet"][0] == "0.7 (0.5–0.9)"


def test_janus_loads_only_the_videoroom_plugin_and_websocket_transport_and_listens_on_loopback(tmp_path: Path):
    config = config_files(tmp_path, 8188, 9, tmp_path / "janus.log", "10.213.78.1")
    assert [p.name for p in (tmp_path / "plugins").iterdir()] == ["libjanus_videoroom.so"]
    assert [p.name for p in (tmp_path / "transports").iterdir()] == ["libjanus_websockets.so"]
    assert not list((tmp_path / "events").iterdir()) and not list((tmp_path / "loggers").iterdir())
    assert 'ice_enforce_list = "10.213.78.1"' in config.read_text() and "stun" not in config.read_text()
    assert 'ws_ip = "127.0.0.1"' in (tmp_path / "janus.transport.websockets.jcfg").read_text()


@pytest.mark.slow
@pytest.mark.skipif(binary() is None, reason="Janus is not installed (apt-get install janus; tests/run.sh does)")
@pytest.mark.skipif(os.geteuid() != 0, reason="bench.peers makes a veth pair for Janus's media: needs root")
def test_a_short_sitting_measures_both_servers_forwarding_to_every_participant(tmp_path: Path):
    out = tmp_path / "peers.json"
    argv = [sys.executable, "-m", "bench.peers", "--n", "2", "--rounds", "1", "--duration", "3", "--warmup", "1",
            "--workers", "1", "--workdir", str(tmp_path / "work"), "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert sorted(run["server"] for run in runs) == ["janus", "videoroomd"]
    for run in runs:  # how much arrived depends on the machine's load: that media flowed and was counted does not
        assert run["flowing_after_s"] is not None, run
        assert run["packets"] > 0 and run["video_delivered"] > 0, run
        assert run["us_per_packet"] == pytest.approx(run["user_us"] + run["kernel_us"], abs=0.2), run
        assert 0 < run["pss_mib"] <= run["rss_mib"], run
    assert "ratio videoroomd ÷ Janus, CPU/packet" in done.stdout
