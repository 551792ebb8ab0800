"""Headless Chromium from Debian, driven by Playwright for Python (never a downloaded browser)."""

from __future__ import annotations

import contextlib
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# The fake camera at 15 frames a second, not 30: every page of a call encodes and decodes half
# the frames (the browser tests' CPU on two cores); sizes are what each page asks.
FAKE_DEVICES = "--use-fake-device-for-media-stream=fps=15"
FLAGS = [
    "--use-fake-ui-for-media-stream",
    FAKE_DEVICES,
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
        flags[flags.index(FAKE_DEVICES)] = f"{FAKE_DEVICES},device-count={devices}"
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


class SharedChromiums:
    """The browser phase's Chromium processes, one per set of launch flags, started on first use
    and kept for the session: a launch costs one to two seconds, too many to pay per module or test.
    What a test opens in one (its contexts) is closed when its ``lend`` ends, so none reaches the
    next test; a process found disconnected (crashed, or closed by a test) is launched again."""

    def __init__(self, playwright) -> None:
        self._playwright = playwright
        self._open: dict[tuple, object] = {}

    def get(self, **flags):
        """The connected Chromium launched with ``flags`` (``launch``'s keywords), launched now if
        there is none."""
        key = tuple(sorted(flags.items()))
        browser = self._open.get(key)
        if browser is None or not browser.is_connected():
            browser = self._open[key] = launch(self._playwright, **flags)
        return browser

    @contextlib.contextmanager
    def lend(self, **flags):
        """Yields the shared Chromium with ``flags``; on leaving, closes every context opened in it
        meanwhile (pages from ``browser.new_page()`` included)."""
        browser = self.get(**flags)
        before = set(browser.contexts)
        try:
            yield browser
        finally:
            if browser.is_connected():
                for context in browser.contexts:
                    if context not in before:
                        context.close()

    def close(self) -> None:
        for browser in self._open.values():
            if browser.is_connected():
                browser.close()
        self._open.clear()
