"""The media-event and SDP readers on any input: a result or their own error, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videoroomd.engine import media_events
from videoroomd.sdp import offer as sdp
from videoroomd.engine.media_events import MediaEventError
from videoroomd.sdp.offer import SdpError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
event_types = st.sampled_from(sorted(media_events.CLIENT_EVENTS) + ["custom", "nope", ""])
events = st.fixed_dictionaries({"type": event_types}, optional={"data": json_values | st.fixed_dictionaries(
    {"type": event_types}, optional={"data": json_values})})


def parse_event(text):
    try:
        return media_events.parse(text)
    except MediaEventError as error:
        assert str(error)
        return None


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_is_an_event_or_a_media_event_error(text):
    parse_event(text)


@SETTINGS
@given(events)
def test_any_event_shape_is_an_event_or_a_media_event_error(value):
    event = parse_event(json.dumps(value))
    if event is not None:
        assert event.type in media_events.CLIENT_EVENTS and isinstance(event.data, dict)
        for name in ("metadata", "candidate", "sdpMLineIndex", "trackId"):
            try:
                media_events.field(event, name, (str, int), required=False)
                media_events.metadata(event, name)
            except MediaEventError as error:
                assert str(error).startswith(event.type + ": " + name)


@pytest.mark.parametrize("text", ["[" * 100000, "{" * 5000, '"\\ud800"', "1e999", "-" * 10, b"\xff".decode("latin-1")])
def test_hostile_texts_are_media_event_errors(text):
    with pytest.raises(MediaEventError):
        media_events.parse(text)


def test_a_non_string_is_a_media_event_error():
    with pytest.raises(MediaEventError):
        media_events.parse(b"{}")  # type: ignore[arg-type]


def parse_sdp(text):
    try:
        return sdp.parse(text)
    except SdpError as error:
        assert str(error)
        return None


sdp_lines = st.one_of(
    st.text(max_size=60),
    st.builds(lambda kind, port, rest: f"m={kind} {port} {rest}",
              st.sampled_from(["audio", "video", "application", "x", ""]),
              st.one_of(st.integers(-5, 10**12).map(str), st.text(max_size=6)), st.text(max_size=20)),
    st.builds("a=mid:{}".format, st.text(max_size=40)),
    st.builds("a=group:BUNDLE {}".format, st.text(max_size=20)),
    st.sampled_from(["a=sendonly", "a=recvonly", "a=sendrecv", "a=inactive", "a=ice-ufrag:x", "v=0", ""]),
)


@SETTINGS
@given(st.text(max_size=500))
def test_any_text_is_an_sdp_or_an_sdp_error(text):
    parse_sdp(text)


@SETTINGS
@given(st.lists(sdp_lines, max_size=30), st.sampled_from(["\r\n", "\n", "\r"]))
def test_sdp_like_text_is_read_within_its_rules(lines, newline):
    description = parse_sdp(newline.join(lines))
    if description is not None:
        mids = [m.mid for m in description.media if m.mid is not None]
        assert len(mids) == len(set(mids))
        assert 0 < len(description.media) <= sdp.MAX_MEDIA_LINES
        assert all(0 <= m.port <= 65535 and m.direction in sdp.DIRECTIONS for m in description.media)


@pytest.mark.parametrize("text, message", [
    ("m=video 9 UDP 96\r\n" * 65, "more than 64 m-lines"),
    ("m=video 9 UDP 96\r\na=" + "x" * 5000, "line 2 is 5002 characters long"),
    ("a=" + "x" * 4000 + "\r\n" * 200000, "bytes; at most"),
    ("m=video 99999999999999 UDP 96\r\n", "line 1: malformed m-line"),
    ("m=video ٣ UDP 96\r\n", "malformed m-line"),
    ("m=video 9 UDP 96\r\na=mid:0\r\nm=audio 9 UDP 111\r\na=mid:0\r\n", "line 4: mid '0' is used by two m-lines"),
    ("m=video 9 UDP 96\r\na=mid:0\r\na=mid:1\r\n", "a second a=mid"),
    ("m=video 9 UDP 96\r\na=mid:a b\r\n", "a mid is 1 to 32 printable ASCII characters"),
    ("a=group:BUNDLE 0 1\r\nm=video 9 UDP 96\r\na=mid:0\r\n", "line 1: a=group:BUNDLE names mid '1'"),
    ("v=0\r\n", "no m-lines"),
    ("m=video 9 UDP 96\r\n" + "".join(f"a=candidate:1 1 udp 1 192.0.2.1 {p} typ host\r\n" for p in range(65)),
     "line 66: more than 64 distinct a=candidate lines"),
])
def test_sdp_refusals_say_what_and_where(text, message):
    with pytest.raises(SdpError, match=None) as refused:
        sdp.parse(text)
    assert message in str(refused.value)


# -- the session rules under any sequence of what clients may say --------------------------------

from videoroomd.sdp.offer import MediaLine, SessionDescription  # noqa: E402
from videoroomd.engine.session import KINDS, Session, SessionError  # noqa: E402

ENDPOINTS = ("a", "b", "c")
media_lines = st.lists(st.tuples(st.sampled_from(["0", "1", "2", "3", None]), st.sampled_from(["audio", "video", "application"]),
                                 st.sampled_from(sdp.DIRECTIONS)), max_size=5)
steps = st.lists(st.tuples(st.sampled_from(["connect", "offer", "remove", "up", "renegotiate", "metadata", "vad"]),
                           st.sampled_from(ENDPOINTS), media_lines,
                           st.dictionaries(st.sampled_from(["0", "1", "2", "3", "9"]),
                                           st.sampled_from(["a:t0", "a:t1", "b:t0", "c:t0", "b:t1", 7]), max_size=3)),
                 max_size=25)


@SETTINGS
@given(steps)
def test_any_sequence_of_client_actions_keeps_the_session_rules(actions):
    session = Session()
    for action, endpoint_id, lines, mids in actions:
        try:
            if action == "connect":
                out = session.connect(endpoint_id, {"n": endpoint_id})
            elif action == "offer":
                seen, unique = set(), []
                for mid, kind, direction in lines:
                    if mid is None or mid not in seen:
                        unique.append((mid, kind, direction))
                        seen.add(mid)
                description = SessionDescription(tuple(MediaLine(i, kind, mid, direction, 9)
                                                       for i, (mid, kind, direction) in enumerate(unique)), "u")
                plan = session.plan(endpoint_id, description, mids, {})
                out = session.answered(plan)
            elif action == "remove":
                out = session.remove(endpoint_id)
            elif action == "up":
                out = session.media_connected(endpoint_id)
            elif action == "renegotiate":
                out = session.renegotiate_tracks(endpoint_id)
            elif action == "metadata":
                out = session.update_endpoint_metadata(endpoint_id, [endpoint_id])
            else:
                out = session.voice_activity(f"{endpoint_id}:t0", True)
        except SessionError as error:
            assert str(error)
            continue
        removed_order: dict[str, list[str]] = {}
        for target, text in out:
            assert target in session.endpoints  # nothing goes to an endpoint that is not there
            event = json.loads(text)
            if event["type"] == "custom":
                event = event["data"]
            removed_order.setdefault(target, []).append(event["type"])
            if event["type"] == "offerData":
                # tracksTypes never below the receive slots the client already has
                endpoint = session.endpoints[target]
                for kind in KINDS:
                    slots = sum(1 for s in endpoint.slots.values() if s.kind == kind)
                    assert event["data"]["tracksTypes"][kind] >= slots
        for kinds_seen in removed_order.values():
            if "tracksRemoved" in kinds_seen and "endpointRemoved" in kinds_seen:
                assert kinds_seen.index("tracksRemoved") < kinds_seen.index("endpointRemoved")
        for endpoint in session.endpoints.values():
            # a track is published by its own endpoint only, under one mid each
            assert all(t.endpoint_id == endpoint.id and t.id.startswith(endpoint.id + ":") for t in endpoint.tracks.values())
            assert len({t.mid for t in endpoint.tracks.values()}) == len(endpoint.tracks)


# -- the media thread's own bookkeeping -----------------------------------------------------------

import asyncio  # noqa: E402

import trio  # noqa: E402

from testsupport import asyncio_thread as bridge  # noqa: E402


async def test_errors_of_media_tasks_are_kept_and_logged_within_bounds():
    thread = bridge.AsyncioThread("test")
    thread.start()
    try:
        async def fail_many():
            async def fail():
                raise ConnectionError("a client's odd packet")

            tasks = [asyncio.ensure_future(fail()) for _ in range(5000)]
            await asyncio.wait(tasks)
            del tasks  # unretrieved: each goes to the loop's exception handler
            import gc
            gc.collect()

        await thread.call(fail_many)
        assert thread.error_count == 5000
        assert len(thread.errors) == bridge.MAX_ERRORS
        assert 1 <= thread.errors_logged <= 2
    finally:
        thread.stop()


async def test_a_failing_callback_from_the_media_thread_does_not_end_trio():
    thread = bridge.AsyncioThread("test")
    thread.start()
    try:
        called = trio.Event()

        def broken():
            called.set()
            raise RuntimeError("a bug in a callback")

        async def notify():
            thread.notify(broken)

        await thread.call(notify)
        with trio.fail_after(5):
            await called.wait()
        await trio.sleep(0.1)  # trio goes on
    finally:
        thread.stop()
