"""The page's pure modules (grid arithmetic, connection quality) checked by Node's own test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent  # tests/, whose js/ holds the scripts


@pytest.mark.parametrize("name", sorted(p.name for p in (HERE / "js").glob("*.test.mjs")))
def test_page_module(name):
    node = shutil.which("node")
    assert node, "node is needed: apt-get install nodejs (tests/run.sh does)"
    result = subprocess.run([node, "--test", str(HERE / "js" / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
