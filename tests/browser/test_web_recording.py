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

from videoroomd.recording.trackfile import read_track
from testsupport.web_page import ICE, participant

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORDED_S = 6  # seconds: every check below scales with it or holds its tolerance in seconds


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
    record_button(bob, "wrong")
    expect(bob.locator("#notice")).to_contain_text("wrong recording password", timeout=10000)
    expect(ann.locator("#recording-mark")).to_be_hidden()
    started = time.monotonic()
    record_button(ann, "tape")
    for page in pages:
        expect(page.locator("#recording-mark")).to_be_visible(timeout=10000)
        expect(chat_texts(page)).to_contain_text(["Ann started recording this call."], timeout=10000)
    ann.wait_for_timeout(max(0, RECORDED_S - (time.monotonic() - started)) * 1000)
    stopping = time.monotonic()
    record_button(ann, "tape")
    for page in pages:
        expect(page.locator("#recording-mark")).to_be_hidden(timeout=10000)
        expect(chat_texts(page)).to_contain_text(["Ann stopped the recording."], timeout=10000)
    recorded = stopping - started
    deadline = time.monotonic() + 120
    while len([p for p in store.rglob("*.webm") if p.name != "meeting.webm"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)  # the daemon's export job, at the lowest priority
    made = sorted(p for p in store.rglob("*.webm") if p.name != "meeting.webm")
    assert len(made) == 3, made
    for path in made:
        duration, packets, decoded, audio = played(path)
        tracks = [read_track(p.read_bytes()) for p in path.parent.glob(path.name.removesuffix(".webm") + ".*.vrtrack")]
        first = min(t.header.start + t.packets[0].arrival_us / 1e6 for t in tracks)
        last = max(t.header.start + t.packets[-1].arrival_us / 1e6 for t in tracks)
        assert abs(duration - (last - first)) < 1, (path.name, duration, last - first)  # the file is what was recorded
        assert abs(duration - recorded) < 2, (path.name, duration, recorded)  # ...which is what the page asked for
        assert packets > 5 * RECORDED_S and decoded >= 0.9 * packets and audio > 25 * RECORDED_S
    while not list(store.rglob("meeting.webm")) and time.monotonic() < deadline:
        time.sleep(0.5)  # then the meeting's, encoded once
    (meeting,) = store.rglob("meeting.webm")
    duration, packets, decoded, audio = played(meeting)
    assert abs(duration - recorded) < 2 and decoded == packets > 10 * RECORDED_S and audio > 25 * RECORDED_S
    for page in pages:
        page.context.close()
