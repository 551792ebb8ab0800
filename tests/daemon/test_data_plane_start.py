"""`videoroomd serve` with ``[media] data_plane = "native"`` (the default) and no compiled module: it refuses
to start, saying why and what to do, before it listens anywhere (not a crash in the middle of a call)."""

from __future__ import annotations

import subprocess
import sys

import pytest

WITHOUT_MODULE = """
import sys
sys.modules["videoroomd.media.dataplane._native"] = None  # as an install without a compiler leaves it
from videoroomd.cli.main import cli
cli(["serve", "-c", sys.argv[1]])
"""


@pytest.mark.parametrize("media", ['[media]\ndata_plane = "native"\n', ""], ids=["named", "default"])
def test_serve_refuses_a_native_plane_it_cannot_load(tmp_path, media):
    config = tmp_path / "videoroomd.toml"
    config.write_text('[server]\ndynamic_rooms = true\n' + media)
    done = subprocess.run([sys.executable, "-c", WITHOUT_MODULE, str(config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "media.data_plane: the compiled data plane is not built" in done.stderr
    assert "pip install" in done.stderr and 'data_plane = "python"' in done.stderr
