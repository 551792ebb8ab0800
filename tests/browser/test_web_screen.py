"""Screen sharing on the page in headless Chromium: the others get the screen on their stage, cameras beside it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from testsupport.browser import frames, save_artifact
from testsupport.web_page import ICE, module_daemon, participant, rooms_of, tile_of, wait_for_moving_video

pytestmark = pytest.mark.browser

# One daemon for the module; each test has a room of its own.
daemon = module_daemon(ICE + rooms_of("shared", "two-videos"))

# Chromium's fake capture answers getDisplayMedia with a fake 1280x720 screen and no picker.
SCREEN_FLAGS = ("--auto-select-desktop-capture-source=Entire screen",)


@pytest.fixture
def browser(chromiums):
    """The session's Chromium with a fake screen to share (shared with test_web_incall.py), in
    place of the default one."""
    with chromiums.lend(extra_flags=SCREEN_FLAGS) as shared:
        yield shared


def screen_of(name: str) -> str:
    return f"#stage figure:has(figcaption:text-is(\"{name}'s screen\"))"


def wait_for_moving_screen(page, name: str, timeout: float = 20.0) -> None:
    selector = screen_of(name)
    expect(page.locator(selector)).to_be_visible(timeout=timeout * 1000)
    first = None
    deadline = page.evaluate("() => Date.now()") + timeout * 1000
    while page.evaluate("() => Date.now()") < deadline:
        count = frames(page, selector)
        if count > 0 and first is None:
            first = count
        elif first is not None and count >= first + 10:
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"{name}'s screen did not advance on this page (frames: {first} -> {frames(page, selector)})")


def test_a_shared_screen_is_on_the_others_stage_and_stopping_from_the_browser_ends_it(browser, daemon):
    ann, bob, cleo = (participant(browser, daemon, name, room="shared") for name in ("Ann", "Bob", "Cleo"))
    wait_for_moving_video(bob, "Ann")
    share = ann.get_by_role("button", name="Share screen")
    share.click()
    expect(ann.get_by_role("button", name="Stop sharing")).to_have_attribute("aria-pressed", "true")
    for page in (bob, cleo):
        wait_for_moving_screen(page, "Ann")
        # the screen (16:9), not a second copy of the camera (4:3), and larger than any camera tile
        width, height = page.eval_on_selector(f"{screen_of('Ann')} video", "v => [v.videoWidth, v.videoHeight]")
        assert width / height > 1.6, (width, height)
        stage = page.locator("#stage").bounding_box()
        tile = page.locator(tile_of(page, "Ann")).bounding_box()
        assert stage["width"] > 2 * tile["width"]
        wait_for_moving_video(page, "Ann")  # her camera goes on beside it
    expect(ann.locator("#stage figcaption")).to_have_text(["Your screen"])
    save_artifact(bob, "screen-share.png")
    # "Stop sharing" in the browser's own bar ends the capture track
    ann.evaluate("() => document.querySelector('#stage video').srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended'))")
    expect(ann.get_by_role("button", name="Share screen")).to_have_attribute("aria-pressed", "false")
    for page in (bob, cleo):
        expect(page.locator("#stage")).to_be_hidden(timeout=15000)
        wait_for_moving_video(page, "Ann")
    # and sharing again works (a new track, a new negotiation)
    share.click()
    wait_for_moving_screen(bob, "Ann")
    # a newcomer, on a phone, gets the screen already being shared, above the cameras
    dan = participant(browser, daemon, "Dan", room="shared", viewport={"width": 390, "height": 844})
    wait_for_moving_screen(dan, "Ann")
    expect(dan.get_by_role("button", name="Leave")).to_be_in_viewport()
    assert dan.locator("#stage").bounding_box()["y"] < dan.locator("#grid").bounding_box()["y"]
    save_artifact(dan, "screen-share-phone.png")
    for page in (ann, bob, cleo, dan):
        page.context.close()


def test_a_second_video_that_names_no_type_is_shown_on_the_stage_and_the_camera_stays(browser, daemon):
    """An app on the official client may share a screen as a second video track with no
    metadata: the page shows it on the stage instead of hiding it behind the first."""
    import threading

    import trio

    from testsupport.media_bot import bot, media_thread

    published = threading.Event()
    done = threading.Event()

    async def two_videos():
        async with media_thread() as media, bot(daemon, "Bot", room="two-videos", media=media) as participant:
            await participant.publish(audio=False)
            await participant.publish(audio=False)  # the second video: its metadata says no type
            published.set()
            while not done.is_set():
                await trio.sleep(0.1)

    thread = threading.Thread(target=trio.run, args=(two_videos,), daemon=True)
    thread.start()
    try:
        assert published.wait(30)
        ann = participant(browser, daemon, "Ann", room="two-videos")
        wait_for_moving_video(ann, "Bot")  # the first video, on the bot's tile
        wait_for_moving_screen(ann, "Bot")  # the second, on the stage
    finally:
        done.set()
        thread.join(15)
