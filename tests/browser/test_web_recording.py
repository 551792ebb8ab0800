"""Recording a three-person call from the page in headless Chromium, and the files it leaves.

One page session checks much: the join screen says the room may be recorded;
a wrong password is refused to its sender alone; the right one starts the
recording and all three pages show the red mark and the chat line with who;
stopping hides the mark everywhere; then the daemon's export makes one WebM
per participant that PyAV opens, with the right duration, decoding frames and
audio.
"""

from __future__ import annotations

import time

import av
import pytest
from playwright.sync_api import expect

from testsupport.web_page import ICE, browser, participant, playwright, wait_for_moving_video  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORDED_S = 10


def rooms(directory) -> str:
    return (ICE + f'[recording]\ndirectory = "{directory}"\n'
            '[rooms.lobby]\nmax_peers = 8\nrecording = "manual"\nrecording_password = "tape"\n')


def record_button(page, password: str):
    page.once("dialog", lambda dialog: dialog.accept(password))
    page.locator("#record-button").click()


def chat_texts(page):
    return page.locator("#chat-messages .chat-text")


def played(path) -> tuple[float, int, int, int]:
    with av.open(str(path)) as container:
        duration = container.duration / 1e6
        packets = sum(1 for p in container.demux(video=0) if p.size)
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio = sum(1 for _ in container.decode(audio=0))
    return duration, packets, decoded, audio


def test_a_call_recorded_from_the_page_is_known_to_everyone_and_leaves_playable_files(browser, start_daemon,
                                                                                      tmp_path):
    store = tmp_path / "recordings"
    store.mkdir()
    daemon = start_daemon(rooms=rooms(store), media="workers = 2")
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    ann = context.new_page()
    ann.goto(f"{daemon.url}/room/lobby?name=Ann")
    expect(ann.locator("#join-recording")).to_contain_text("may be recorded", timeout=10000)
    ann.goto(f"{daemon.url}/room/lobby?name=Ann&autojoin=1")
    bob, cleo = participant(browser, daemon, "Bob"), participant(browser, daemon, "Cleo")
    pages = (ann, bob, cleo)
    for page in pages:
        expect(page.locator("#call")).to_be_visible(timeout=15000)
    wait_for_moving_video(ann, "Cleo")
    record_button(bob, "wrong")
    expect(bob.locator("#notice")).to_contain_text("wrong recording password", timeout=10000)
    expect(ann.locator("#recording-mark")).to_be_hidden()
    record_button(ann, "tape")
    for page in pages:
        expect(page.locator("#recording-mark")).to_be_visible(timeout=10000)
        expect(chat_texts(page)).to_contain_text(["Ann started recording this call."], timeout=10000)
    started = time.monotonic()
    ann.wait_for_timeout(RECORDED_S * 1000)
    record_button(ann, "tape")
    for page in pages:
        expect(page.locator("#recording-mark")).to_be_hidden(timeout=10000)
        expect(chat_texts(page)).to_contain_text(["Ann stopped the recording."], timeout=10000)
    recorded = time.monotonic() - started
    deadline = time.monotonic() + 60
    while len(list(store.rglob("*.webm"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)  # the daemon's export job, at the lowest priority
    made = sorted(store.rglob("*.webm"))
    assert len(made) == 3, made
    for path in made:
        duration, packets, decoded, audio = played(path)
        assert abs(duration - recorded) < 1.5, (path.name, duration, recorded)
        assert packets > 5 * RECORDED_S and decoded >= 0.9 * packets and audio > 25 * RECORDED_S
    for page in pages:
        page.context.close()
