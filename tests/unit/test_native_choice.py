"""``[media] data_plane``: the compiled plane by default, the Python one on request, and a native one that
cannot load refused at start with the reason, before any call could reach it."""

from __future__ import annotations

import sys

import pytest

from videoroomd.config.load import parse
from videoroomd.media.dataplane import native_module

NATIVE = "videoroomd.media.dataplane._native"


def config(tmp_path, plane: str | None):
    text = '[server]\ndynamic_rooms = true\n' + (f'[media]\ndata_plane = "{plane}"\n' if plane else "")
    return parse(text, "test.toml", tmp_path)


def test_the_native_plane_is_the_default_and_python_may_be_chosen(tmp_path):
    assert config(tmp_path, None).media.data_plane == "native"
    assert config(tmp_path, "python").media.data_plane == "python"
    assert native_module.choose("python") == native_module.PlaneChoice("python", "python")


def test_an_unknown_plane_is_a_config_error(tmp_path):
    with pytest.raises(Exception, match="data_plane.*'python', 'native'"):
        config(tmp_path, "rust")


def test_the_native_module_loads_here_and_says_what_runs():
    choice = native_module.choose("native")
    assert choice.requested == "native" and choice.runs == "native" and "forwards" in choice.note


def test_a_missing_module_is_named_with_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, NATIVE, None)  # what an install without a compiler leaves: no module
    monkeypatch.delattr(sys.modules["videoroomd.media.dataplane"], "_native", raising=False)
    with pytest.raises(native_module.NativeUnavailable, match="not built.*pip install"):
        native_module.choose("native")
    assert native_module.choose("python").runs == "python"  # the Python plane needs nothing of it
