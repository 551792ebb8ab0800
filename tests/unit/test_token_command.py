"""`videoroomd token` mints what the daemon accepts; `check-config` names the keys, never their secrets."""

from __future__ import annotations

import time

from click.testing import CliRunner

from videoroomd.auth.tokens import verify
from videoroomd.cli.main import cli

SECRET, OLD = "a" * 40, "b" * 40
CONFIG = f'[auth]\nkeys = {{ app = "{SECRET}", old = "{OLD}" }}\n[rooms.class]\naccess = "token"\n'


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_token_mints_one_the_room_accepts(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(CONFIG)
    result = run("token", "-c", str(path), "--room", "class", "--identity", "ann@example.org", "--name", "Ann",
                 "--moderator", "--ttl", "2h", "--key", "old")
    assert result.exit_code == 0, result.output
    checked = verify(result.output.strip(), {"old": OLD}, room="class", now=time.time())
    assert (checked.identity, checked.name, checked.key, checked.grants.moderate) == ("ann@example.org", "Ann", "old", True)
    assert 7100 < checked.expires - time.time() <= 7200
    plain = run("token", "-c", str(path), "--room", "class", "--identity", "bob", "--key", "app").output.strip()
    assert not verify(plain, {"app": SECRET}, room="class", now=time.time()).grants.moderate


def test_token_says_what_is_wrong(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(CONFIG)
    for args, words in ((("--room", "class", "--identity", "a"), "pick one with --key"),
                        (("--room", "class", "--identity", "a", "--key", "nope"), "no key 'nope'"),
                        (("--room", "bad room", "--identity", "a", "--key", "app"), "--room"),
                        (("--room", "class", "--identity", "a", "--key", "app", "--ttl", "soon"), "--ttl")):
        result = CliRunner().invoke(cli, ["token", "-c", str(path), *args])
        assert result.exit_code == 1 and words in result.output, result.output
    bare = tmp_path / "bare.toml"
    bare.write_text("[rooms.a]\n")
    result = CliRunner().invoke(cli, ["token", "-c", str(bare), "--room", "a", "--identity", "x"])
    assert result.exit_code == 1 and "no [auth] keys" in result.output


def test_check_config_shows_key_names_only(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(CONFIG)
    result = run("check-config", str(path))
    assert result.exit_code == 0 and "token keys: app, old" in result.output
    assert SECRET not in result.output and OLD not in result.output
