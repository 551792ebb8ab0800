"""The SFU benchmark's own logic (bench/): the config it gives the daemon, and its figures for
several rooms at once. The benchmark itself is run by hand (docs/benchmarks.md), not here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.daemon import config_text, room_names
from bench.processes import cpu_list
from bench.relay import ice_servers, relayed, routes, turn_counters, turn_figures
from bench.sfu import parse
from bench.stats import Run, Sample, capacity, summarize, table
from videoroomd.config import Location, load
from videoroomd.metrics import Metrics


@pytest.mark.parametrize("workers", ["auto", 0, 1, 2])
def test_the_generated_config_gives_the_daemon_every_room_and_the_worker_count(tmp_path: Path, workers):
    path = tmp_path / "bench.toml"
    path.write_text(config_text(4321, 9, tmp_path / "log.json", room_names(3), workers))
    config = load(Location(path))
    assert sorted(config.rooms) == ["bench1", "bench2", "bench3"]
    assert all(room.max_peers == 9 for room in config.rooms.values())
    assert config.media.workers == workers


def test_the_generated_config_runs_the_turn_server_on_loopback_only_when_asked(tmp_path: Path):
    path = tmp_path / "bench.toml"
    path.write_text(config_text(4321, 3, tmp_path / "log.json", room_names(1), 1, turn_port=4322))
    turn = load(Location(path)).turn
    assert turn.enabled and (turn.host, turn.port) == ("127.0.0.1", 4322)
    path.write_text(config_text(4321, 3, tmp_path / "log.json", room_names(1), 1))
    assert not load(Location(path)).turn.enabled


def test_relay_share_picks_the_first_participants_of_a_room_rounded_up():
    assert [relayed(i, 4, 1.0) for i in range(5)] == [True] * 5  # the late joiner (index 4) too
    assert [relayed(i, 4, 0.5) for i in range(5)] == [True, True, False, False, False]
    assert [relayed(i, 3, 0.5) for i in range(4)] == [True, True, False, False]
    assert [relayed(i, 2, 0.1) for i in range(3)] == [True, False, False]
    assert not relayed(0, 2, 0.0)


def test_the_turn_entry_of_the_asked_transport_becomes_an_ice_server():
    entries = [{"serverAddr": "127.0.0.1", "serverPort": 3478, "transport": "udp", "username": "9:p", "password": "x"},
               {"serverAddr": "127.0.0.1", "serverPort": 3478, "transport": "tcp", "username": "9:p", "password": "x"},
               {"serverAddr": "::1", "serverPort": 5349, "transport": "tls", "username": "9:p", "password": "x"}]
    assert ice_servers(entries, "tcp") == [
        {"urls": "turn:127.0.0.1:3478?transport=tcp", "username": "9:p", "credential": "x"}]
    assert ice_servers(entries[:1], "tcp") == []
    assert ice_servers([dict(entries[2], transport="udp")], "udp")[0]["urls"] == "turn:[::1]:5349?transport=udp"


def test_the_turn_counters_are_read_from_the_daemons_metrics_page():
    stats = {"allocations": 2, "created": 3, "created_by_transport": {"udp": 2, "tcp": 1},
             "dropped": {"no_permission": 4}, "refused": {401: 3}}
    metrics = Metrics(list, list)
    metrics.watch_turn(lambda: stats)
    counters = turn_counters(metrics.render().decode())
    assert counters == {"allocations": 2, "created": 3, "created_by_transport": {"tcp": 1, "udp": 2},
                        "dropped": {"no_permission": 4}, "refused": {"401": 3}}
    assert turn_counters(Metrics(list, list).render().decode()) == {}  # TURN server off


def test_turn_figures_count_from_before_the_joins_and_over_the_window():
    before = {"allocations": 0, "created": 1, "created_by_transport": {"udp": 1}, "dropped": {}, "refused": {"401": 1}}
    start = {"allocations": 2, "created": 3, "created_by_transport": {"udp": 3}, "dropped": {"no_permission": 2},
             "refused": {"401": 3}}
    end = dict(start, dropped={"no_permission": 2, "rate": 5})
    figures = turn_figures(before, start, end)
    assert figures == {"allocations_open": 2, "allocations_created": 2, "allocations_created_by_transport": {"udp": 2},
                       "dropped_in_window": {"rate": 5}, "dropped_since_join": {"no_permission": 2, "rate": 5},
                       "refused_since_join": {"401": 2}}


def test_a_bot_meant_to_relay_but_on_a_direct_pair_is_named():
    snaps = {"a": {"route": {"local": "relay", "remote": "host"}}, "b": {"route": {"local": "host", "remote": "host"}},
             "c": {"route": None}, "d": {"route": {"local": "host", "remote": "host"}}}
    path = routes(snaps, {"a", "b", "c"})
    assert (path["relayed_bots"], path["relayed_on_relay_pair"]) == (3, 1)
    assert path["relayed_not_on_relay_pair"] == ["b (host)", "c (no pair)"]
    assert (path["direct_bots"], path["direct_on_relay_pair"]) == (1, [])


def test_relay_flags_are_checked():
    assert parse(["--relay", "tcp", "--relay-share", "0.5"]).relay_share == 0.5
    assert parse([]).relay == "none"
    for argv in (["--relay", "tls"], ["--relay", "udp", "--chromium"], ["--relay", "udp", "--relay-share", "0"]):
        with pytest.raises(SystemExit):
            parse(argv)


def test_cpu_lists_read_as_taskset_writes_them():
    assert cpu_list("0-1") == {0, 1}
    assert cpu_list("0,2-4") == {0, 2, 3, 4}


def _snap(received: dict[str, int], sent_frames: int, cpu: float) -> dict:
    """A bot's snap: ``received`` maps a publisher's video track to frames (and packets) received."""
    entries = {f"m{i}": {"track": track, "frames": frames, "packets": frames * 3, "lost": 0}
               for i, (track, frames) in enumerate(received.items())}
    video = {"frames": sent_frames, "packets": sent_frames * 3, "lost_at_server": 0, "nacked": 0,
             "keyframe_requests": 0}
    return {"received": entries, "sent": {"video": video, "audio": dict(video, frames=0)}, "cpu": cpu}


def _two_rooms(frames_in_room2: int) -> Run:
    """Rooms r1 (bots a, b) and r2 (bots c, d) over a 10 s window; every publisher sends 300
    frames; room 2's subscribers get ``frames_in_room2`` of them."""
    rooms = {"r1": ["a", "b"], "r2": ["c", "d"]}
    joined = {name: {"tracks": {"video": f"{name}-v", "audio": f"{name}-a"}, "t_join": 0.0}
              for names in rooms.values() for name in names}
    others = {name: [o for o in names if o != name] for names in rooms.values() for name in names}

    def sample(t: float, share: float, workers: dict) -> Sample:
        got = {name: round((300 if name in rooms["r1"] else frames_in_room2) * share) for name in joined}
        snaps = {name: _snap({f"{o}-v": got[name] for o in others[name]}, round(300 * share), share)
                 for name in joined}
        threads = {(1, 1): 0.1 * share, (2, 2): 1.0 * share, (3, 3): 2.0 * share}
        return Sample(t, 3.1 * share, 0.3 * share, threads, (0, 1), 0.0, snaps, daemon_cpu=0.1 * share,
                      workers=workers, placement={"r1": "1", "r2": "2"})

    start = sample(0.0, 0.0, {"1": {"pid": 2, "thread": False, "cpu": 0.0, "restarts": 0},
                              "2": {"pid": 3, "thread": False, "cpu": 0.0, "restarts": 0}})
    end = sample(10.0, 1.0, {"1": {"pid": 2, "thread": False, "cpu": 1.0, "restarts": 0},
                             "2": {"pid": 3, "thread": False, "cpu": 2.0, "restarts": 0}})
    return Run(2, joined, start, end, 1.5, rooms=rooms, settled_by_room={"r1": 1.0, "r2": 1.5},
               rss_mib={"before": 75.0, "steady": 76.0}, worker_rss_mib={"1": {"before": 68.0}, "2": {"before": 69.0}})


def test_two_rooms_are_measured_apart_and_together():
    figures = summarize(_two_rooms(frames_in_room2=150))
    # pairs are within a room only: 2 rooms x 2 pairs, each 300 (room 1) or 150 (room 2) frames x 3 packets
    assert figures["forwarded_pps"] == (2 * 900 + 2 * 450) / 10
    assert figures["rooms"] == 2 and figures["streams_out"] == 8
    room1, room2 = figures["per_room"]
    assert (room1["worker"], room1["forwarded_pps"], room1["full_frame_rate"]) == ("1", 180, True)
    assert (room2["worker"], room2["received_fps_min"], room2["full_frame_rate"]) == ("2", 15.0, False)
    assert figures["full_frame_rate"] is False
    assert figures["received_fps_min"] == 15.0  # a pair across rooms would have no frames: 0
    worker1, worker2 = figures["workers"]
    assert (worker1["rooms"], worker1["cpu_pct"], worker2["cpu_pct"]) == (["r1"], 10.0, 20.0)
    assert figures["server_cpu_pct"] == 31.0 and figures["daemon_cpu_pct"] == 1.0
    assert figures["rss_total_mib"]["before"] == 75.0 + 68.0 + 69.0


def test_capacity_is_the_busiest_run_at_full_frame_rate():
    full, half = summarize(_two_rooms(frames_in_room2=300)), summarize(_two_rooms(frames_in_room2=150))
    half["forwarded_pps"] = full["forwarded_pps"] + 1  # more packets, but not at full frame rate
    best = capacity([half, full, {"n": 8, "rooms": 3, "error": "a bot ended"}], fps=30)
    assert best is not None and best["forwarded_pps"] == full["forwarded_pps"]
    assert best["worker_cpu_pct"] == {"1": 10.0, "2": 20.0}
    assert capacity([half], fps=30) is None
    text = table([full, {"n": 8, "rooms": 3, "error": "a bot ended"}])
    assert "| N=2 ×2 rooms | N=8 ×3 rooms |" in text
    assert "| room r2: worker | 2 | — |" in text


def test_the_forwarder_bench_in_simulcast_mode_sends_each_subscriber_its_layer_only():
    import asyncio
    import contextlib
    import io
    from argparse import Namespace

    from bench import forwarder

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(forwarder.main(Namespace(subscribers=3, packets=600, size=1100, simulcast=True)))
    # One subscriber per layer, each sent its layer's 600 packets (the first one a keyframe) and no more.
    assert "3 subscribers on l/m/h, 3 x 600 packets: 1800 sent" in out.getvalue()
