"""The official client libraries from npm, installed at test time into tests/.cache (never committed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent / "tests" / ".cache" / "npm"
PACKAGES = {
    "phoenix": "1.8.16",
    "@jellyfish-dev/membrane-webrtc-js": "0.7.1",
    "esbuild": "0.24.2",
    "puppeteer-core": "24.43.1",  # drives Debian's Firefox ESR over WebDriver BiDi; downloads no browser
}


def install() -> Path:
    """``node_modules`` holding PACKAGES at their pinned versions; installs what is missing."""
    modules = CACHE / "node_modules"
    wanted = {name: version for name, version in PACKAGES.items() if _installed(modules, name) != version}
    if wanted:
        if shutil.which("npm") is None:
            raise RuntimeError("npm is needed for the client-library tests: apt-get install npm (tests/run.sh does)")
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text(json.dumps({"name": "videoroomd-test-clients", "private": True}))
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(CACHE),
             *(f"{name}@{version}" for name, version in PACKAGES.items())],
            check=True, timeout=600,
        )
    return modules


def _installed(modules: Path, name: str) -> str | None:
    try:
        return json.loads((modules / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
