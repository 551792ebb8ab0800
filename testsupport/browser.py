"""Headless Chromium from Debian, driven by Playwright for Python (never a downloaded browser)."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "tests" / "artifacts"


def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is needed: apt-get install chromium (tests/run.sh does)")
    return CHROMIUM


def launch(playwright, *, deny_media: bool = False, devices: int = 1, extra_flags: tuple[str, ...] = (),
           executable: str | None = None):
    """Chromium with fake media; ``devices`` fake cameras and microphones each. ``executable`` runs
    instead of Debian's chromium (a wrapper that starts it in a test host's namespace); there it
    offers no candidate on loopback, which would be this machine's, not the test host's."""
    flags = [*FLAGS, *extra_flags]
    if executable:
        flags.remove("--allow-loopback-in-peer-connection")
    if devices > 1:
        flags[flags.index("--use-fake-device-for-media-stream")] = f"--use-fake-device-for-media-stream=device-count={devices}"
    if deny_media:
        flags.remove("--use-fake-ui-for-media-stream")
        flags.append("--deny-permission-prompts")
    return playwright.chromium.launch(executable_path=executable or chromium_path(), args=flags, headless=True)


def frames(page, tile_selector: str) -> int:
    """Frames the `<video>` of a tile has shown so far (what a person would see move);
    0 while the tile has no video yet, or no tile matches."""
    return page.eval_on_selector_all(
        f"{tile_selector} video", "vs => vs.length ? vs[0].getVideoPlaybackQuality().totalVideoFrames : 0")


def save_artifact(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path
