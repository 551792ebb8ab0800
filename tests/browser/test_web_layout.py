"""The call's layout in headless Chromium: tiles as large as fit, re-flowing as people come and go;
a pinned tile and the speaker in speaker view shown large."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from testsupport.browser import save_artifact
from testsupport.web_page import ICE, module_daemon, participant, rooms_of, tile_of, wait_for_moving_video

pytestmark = pytest.mark.browser

# One daemon for the module; each test has a room of its own.
daemon = module_daemon(ICE + rooms_of("grid", "pinned"))


def tile_boxes(page) -> list[dict]:
    return [page.locator(f"figure.tile >> nth={i}").bounding_box() for i in range(page.locator("figure.tile").count())]


def wait_for_tiles(page, count: int) -> list[dict]:
    """The tile boxes once there are ``count`` tiles and the layout has settled on one size for all."""
    expect(page.locator("figure.tile")).to_have_count(count, timeout=15000)
    last = None
    for _ in range(50):
        page.wait_for_timeout(100)
        boxes = tile_boxes(page)
        widths = {round(box["width"]) for box in boxes}
        if len(widths) == 1 and boxes == last:
            return boxes
        last = boxes
    raise AssertionError(f"the tiles never settled: {last}")


def assert_all_visible(page, boxes: list[dict]) -> None:
    grid = page.locator("#grid").bounding_box()
    for box in boxes:
        assert grid["x"] <= box["x"] and box["x"] + box["width"] <= grid["x"] + grid["width"] + 1, (box, grid)
        assert grid["y"] <= box["y"] and box["y"] + box["height"] <= grid["y"] + grid["height"] + 1, (box, grid)


def assert_fills(page, boxes: list[dict]) -> None:
    """The tiles, together, span (nearly) the grid's whole width or whole height: none could be larger."""
    grid = page.locator("#grid").bounding_box()
    width = max(b["x"] + b["width"] for b in boxes) - min(b["x"] for b in boxes)
    height = max(b["y"] + b["height"] for b in boxes) - min(b["y"] for b in boxes)
    assert width > 0.9 * grid["width"] or height > 0.9 * grid["height"], (boxes, grid)


def test_tiles_are_as_large_as_fit_and_grow_when_people_leave(browser, daemon):
    ann = participant(browser, daemon, "Ann", room="grid", viewport={"width": 1280, "height": 720})
    bob = participant(browser, daemon, "Bob", room="grid")
    cleo = participant(browser, daemon, "Cleo", room="grid")
    wait_for_moving_video(ann, "Cleo")
    three = wait_for_tiles(ann, 3)
    assert_all_visible(ann, three)
    assert_fills(ann, three)
    bob.get_by_role("button", name="Leave").click()
    two = wait_for_tiles(ann, 2)
    assert_all_visible(ann, two)
    # (16:9 tiles beside the people list: three fill two columns, two one column of larger tiles)
    assert two[0]["width"] > three[0]["width"] * 1.1, (three[0], two[0])
    cleo.get_by_role("button", name="Leave").click()
    one = wait_for_tiles(ann, 1)
    assert_all_visible(ann, one)
    assert_fills(ann, one)
    assert one[0]["width"] > two[0]["width"] * 1.2, (two[0], one[0])
    # a new arrival makes room for itself: both fit again
    dan = participant(browser, daemon, "Dan", room="grid")
    wait_for_moving_video(ann, "Dan")
    assert_all_visible(ann, wait_for_tiles(ann, 2))
    # the window shrinks to a phone's: the tiles stack and still all fit
    ann.set_viewport_size({"width": 390, "height": 844})
    phone = wait_for_tiles(ann, 2)
    assert_all_visible(ann, phone)
    assert_fills(ann, phone)
    assert phone[0]["x"] == phone[1]["x"] and phone[0]["y"] != phone[1]["y"]
    expect(ann.get_by_role("button", name="Leave")).to_be_in_viewport()
    save_artifact(ann, "phone-two-people.png")
    for page in (ann, bob, cleo, dan):
        page.context.close()


def test_a_pinned_tile_and_the_speaker_in_speaker_view_are_shown_large(browser, daemon):
    ann = participant(browser, daemon, "Ann", room="pinned", viewport={"width": 1280, "height": 720})
    bob = participant(browser, daemon, "Bob", room="pinned")
    cleo = participant(browser, daemon, "Cleo", room="pinned")
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(ann, "Cleo")
    wait_for_tiles(ann, 3)
    ann.get_by_role("button", name="Pin Bob").click()
    expect(ann.get_by_role("button", name="Pin Bob")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator(f"{tile_of(ann, 'Bob')}.focused")).to_have_count(1)
    ann.wait_for_timeout(300)
    large = ann.locator(tile_of(ann, "Bob")).bounding_box()
    small = ann.locator(tile_of(ann, "Cleo")).bounding_box()
    assert large["width"] > 2 * small["width"], (large, small)
    wait_for_moving_video(ann, "Bob")  # the large tile still plays
    # unpinning (here by the keyboard) gives the plain grid back
    ann.get_by_role("button", name="Pin Bob").focus()
    ann.keyboard.press("Enter")
    expect(ann.locator("figure.tile.focused")).to_have_count(0)
    wait_for_tiles(ann, 3)
    # speaker view: with Bob muted, Cleo's (fake, beeping) microphone makes her the speaker
    bob.get_by_role("button", name="Mute").click()
    expect(ann.locator(f"{tile_of(ann, 'Bob')} .badge")).to_have_text("Muted", timeout=10000)
    ann.get_by_role("button", name="Speaker view").click()
    expect(ann.get_by_role("button", name="Speaker view")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator(f"{tile_of(ann, 'Cleo')}.focused")).to_have_count(1, timeout=15000)
    wait_for_moving_video(ann, "Cleo")
    # the one who spoke leaving does not leave the spotlight empty
    cleo.get_by_role("button", name="Leave").click()
    expect(ann.locator(f"{tile_of(ann, 'Bob')}.focused")).to_have_count(1, timeout=15000)
    # on a phone the large tile sits above the others, all on screen with the controls
    ann.set_viewport_size({"width": 390, "height": 844})
    ann.wait_for_timeout(300)
    large = ann.locator(tile_of(ann, "Bob")).bounding_box()
    small = ann.locator("figure.tile[data-endpoint='me']").bounding_box()
    assert large["width"] > small["width"] and large["y"] + large["height"] <= small["y"] + 1, (large, small)
    expect(ann.locator(tile_of(ann, "Bob"))).to_be_in_viewport(ratio=1)
    expect(ann.get_by_role("button", name="Leave")).to_be_in_viewport()
    save_artifact(ann, "phone-speaker-view.png")
    for page in (ann, bob, cleo):
        page.context.close()
