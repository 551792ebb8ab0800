"""The [cluster] table, and the commands that read it: check-config and nodes (the password never shown)."""

from __future__ import annotations

import json

import pytest
import trio
from click.testing import CliRunner

from videoroomd.cli.main import cli
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_nodes import RedisNodeDirectory
from videoroomd.cluster.records import NodeLoad
from videoroomd.config import ConfigError, parse
from videoroomd.config.redis_url import masked
from videoroomd.config.schema import ClusterConfig

ROOMS = "[rooms.lobby]\n"


def cluster_config(tmp_path, body: str):
    return parse("[cluster]\n" + body + ROOMS, "test.toml", tmp_path)


def problems(tmp_path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        cluster_config(tmp_path, body)
    return [str(p) for p in error.value.problems]


def test_without_a_cluster_table_the_daemon_runs_alone(tmp_path):
    config = parse(ROOMS, "test.toml", tmp_path)
    assert config.cluster == ClusterConfig() and not config.cluster.enabled


def test_a_cluster_table_names_its_redis_and_takes_defaults_for_the_rest(tmp_path):
    config = cluster_config(tmp_path, 'redis = "rediss://:s3cret@redis.example.org:6380/2"\n')
    assert config.cluster.enabled and config.cluster.redis == "rediss://:s3cret@redis.example.org:6380/2"
    assert (config.cluster.node_id, config.cluster.lease_ttl, config.cluster.heartbeat) == (None, 6.0, 1.0)
    assert "s3cret" not in repr(config)  # nor in anything that prints the config


def test_a_node_is_named_after_its_host_and_reached_at_its_announced_or_listen_address_by_default(tmp_path):
    import socket

    from videoroomd.cluster.node import advertised_address, node_id

    plain = parse('[server]\nlisten = "10.0.0.7:8443"\n[cluster]\nredis = "redis://h"\n' + ROOMS, "test.toml", tmp_path)
    assert (node_id(plain), advertised_address(plain)) == (socket.gethostname(), "10.0.0.7:8443")
    announced = parse('[ice]\nannounced_ip = "203.0.113.9"\n[cluster]\nredis = "redis://h"\n' + ROOMS, "test.toml",
                      tmp_path)
    assert advertised_address(announced) == "203.0.113.9"
    named = cluster_config(tmp_path, 'redis = "redis://h"\nnode_id = "meet-2"\nadvertise = "meet-2.example.org"\n')
    assert (node_id(named), advertised_address(named)) == ("meet-2", "meet-2.example.org")


def test_cluster_mistakes_are_named_and_never_show_the_password(tmp_path):
    assert problems(tmp_path, 'node_id = "a"\n') == [
        "test.toml:1: cluster.redis: a [cluster] table needs redis, the URL of the Redis server the nodes share"]
    (found,) = problems(tmp_path, 'redis = "http://:hunter2@h"\n')
    assert "redis:// or rediss://" in found and "hunter2" not in found
    (found,) = problems(tmp_path, 'redis = "redis://:hunter2@h:99999"\n')
    assert "hunter2" not in found
    (found,) = problems(tmp_path, 'redis = "redis://h"\nnode_id = "a b"\n')
    assert "cluster.node_id" in found
    (found,) = problems(tmp_path, 'redis = "redis://h"\nlease_ttl = 0.5\n')
    assert "from 1 to 300" in found
    (found,) = problems(tmp_path, 'redis = "redis://h"\nheartbeet = 1\n')
    assert "did you mean 'heartbeat'" in found


def test_a_masked_url_keeps_everything_but_the_password():
    assert masked("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert masked("rediss://user:pw@h") == "rediss://user:***@h"
    assert masked("redis://h:6379") == "redis://h:6379"


def test_check_config_shows_the_node_and_its_redis_without_the_password(tmp_path):
    path = tmp_path / "videoroomd.toml"
    path.write_text('[cluster]\nredis = "redis://:hunter2@10.0.0.5:6379/0"\nnode_id = "meet-1"\n' + ROOMS)
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "cluster node meet-1 on redis://:***@10.0.0.5:6379/0" in result.output and "hunter2" not in result.output


def test_nodes_lists_the_live_nodes_and_their_load(tmp_path, redis_server):
    redis_server.command("FLUSHALL")

    async def publish():
        async with open_redis(redis_server.url) as client:
            nodes = RedisNodeDirectory(client)
            await nodes.publish(NodeLoad("meet-2", "192.0.2.2", workers=4, rooms=3, participants=12, cpu=1.25,
                                         draining=True, at=1.0), ttl=30)
            await nodes.publish(NodeLoad("meet-1", "192.0.2.1", workers=4, rooms=1, participants=2, at=1.0), ttl=30)

    trio.run(publish)
    path = tmp_path / "videoroomd.toml"
    path.write_text(f'[cluster]\nredis = "{redis_server.url}"\n' + ROOMS)
    result = CliRunner().invoke(cli, ["nodes", "-c", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NODE", "ADDRESS", "STATE", "WORKERS", "ROOMS", "PEOPLE", "CPU", "SEEN"]
    assert lines[1].split()[:7] == ["meet-1", "192.0.2.1", "serving", "4", "1", "2", "0.00"]
    assert lines[2].split()[:7] == ["meet-2", "192.0.2.2", "draining", "4", "3", "12", "1.25"]
    rows = json.loads(CliRunner().invoke(cli, ["nodes", "-c", str(path), "--json"]).output)
    assert [(r["node"], r["rooms"], r["draining"]) for r in rows] == [("meet-1", 1, False), ("meet-2", 3, True)]


def test_nodes_rooms_lists_each_running_room_with_its_node_and_worker(tmp_path, redis_server):
    from videoroomd.cluster.redis_directory import RedisRoomDirectory

    redis_server.command("FLUSHALL")

    async def claim():
        async with open_redis(redis_server.url) as client:
            rooms = RedisRoomDirectory(client)
            lobby = await rooms.claim("lobby", "meet-2", ttl=30)
            await rooms.renew(lobby, ttl=30, worker="3")
            await rooms.claim("standup", "meet-1", ttl=30)
            await client.set(rooms.key("broken"), b"not a lease")

    trio.run(claim)
    path = tmp_path / "videoroomd.toml"
    path.write_text(f'[cluster]\nredis = "{redis_server.url}"\n' + ROOMS)
    result = CliRunner().invoke(cli, ["nodes", "--rooms", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.output.splitlines()] == [
        ["ROOM", "NODE", "WORKER"], ["lobby", "meet-2", "3"], ["standup", "meet-1", "-"]]
    rows = json.loads(CliRunner().invoke(cli, ["nodes", "--rooms", "--json", "-c", str(path)]).output)
    assert [(r["room"], r["node"], r["worker"]) for r in rows] == [("lobby", "meet-2", "3"), ("standup", "meet-1", None)]


def test_nodes_says_when_redis_does_not_answer_without_the_password(tmp_path):
    path = tmp_path / "videoroomd.toml"
    path.write_text('[cluster]\nredis = "redis://:hunter2@127.0.0.1:1/0"\n' + ROOMS)
    result = CliRunner().invoke(cli, ["nodes", "-c", str(path)])
    assert result.exit_code == 1
    assert "cannot read the nodes from Redis at redis://:***@127.0.0.1:1/0" in result.output
    assert "hunter2" not in result.output
    path.write_text(ROOMS)
    result = CliRunner().invoke(cli, ["nodes", "-c", str(path)])
    assert result.exit_code == 1 and "no [cluster] table" in result.output


def test_serve_with_cluster_but_no_redis_client_says_what_to_install(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "videoroomd.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:0"\n[media]\nworkers = 0\n[cluster]\nredis = "redis://127.0.0.1:1/0"\n'
                    + ROOMS)
    program = ("import sys\nsys.modules['coredis'] = None  # as if not installed\n"
               "from videoroomd.cli.main import main\nsys.argv = ['videoroomd', *sys.argv[1:]]\nmain()\n")
    done = subprocess.run([sys.executable, "-c", program, "serve", "-c", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "pip install 'videoroomd[cluster]'" in done.stderr and "Traceback" not in done.stderr
    checked = subprocess.run([sys.executable, "-c", program, "check-config", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and "warning: [cluster] needs the Redis client" in checked.stderr
