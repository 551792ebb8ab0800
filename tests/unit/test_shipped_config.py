"""The shipped TOML against the schema: every key known, every value valid, every value set the schema's default.

The shipped file documents the defaults: a value written in any table but a
room's is the schema's own default (so the two cannot drift apart), while
``[rooms.NAME]`` tables are examples and may set what they like. A key left
commented out (``# key = ...``) must still be a key of its table.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from videoroomd.config.keys import ROOM, TABLES
from videoroomd.config.load import parse
from videoroomd.config.schema import RoomConfig

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "videoroomd" / "config" / "default.toml", REPO / "config" / "videoroomd.toml"]
_TABLE_LINE = re.compile(r"^#?\s*\[([A-Za-z0-9_.]+)\]")
_COMMENTED_KEY = re.compile(r"^#\s*([a-z_]+)\s*=")


def _keys_of(table: str) -> tuple:
    return ROOM if table.startswith("rooms.") else TABLES[table][0]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_the_shipped_file_is_a_valid_config(path, tmp_path):
    config = parse(path.read_text(), str(path), tmp_path)
    assert set(config.rooms) == {"lobby", "standup"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_value_the_shipped_file_sets_is_the_schema_default(path):
    document = tomllib.loads(path.read_text())
    checked = 0
    for table, values in document.items():
        if table == "rooms":
            continue
        keys, base = TABLES[table]
        by_name = {key.name: key for key in keys}
        for name, raw in values.items():
            key = by_name[name]
            assert key.convert(raw, (table, name)) == key.default(base), f"[{table}] {name} differs from the schema"
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_key_the_shipped_file_mentions_in_a_comment_is_a_key(path):
    table, mentioned = None, 0
    for line in path.read_text().splitlines():
        header = _TABLE_LINE.match(line)
        if header:
            table = header.group(1)
            continue
        commented = _COMMENTED_KEY.match(line)
        if commented and table is not None:
            assert commented.group(1) in {key.name for key in _keys_of(table)}, f"[{table}] {commented.group(1)}"
            mentioned += 1
    assert mentioned >= 10


def test_a_room_inherits_the_schema_defaults_it_does_not_set(tmp_path):
    config = parse("[rooms.a]\nmax_peers = 3\n", "test", tmp_path)
    assert config.rooms["a"] == RoomConfig(name="a", max_peers=3)
    assert config.server == TABLES["server"][1] and config.turn == TABLES["turn"][1]
