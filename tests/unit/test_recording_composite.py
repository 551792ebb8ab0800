"""The meeting's one file: cameras in a grid, the speaker marked, a screen on the stage, the audio mixed."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy
import pytest

from videoroomd.recording.composite import BORDER, HEIGHT, MARK, WIDTH, compose, compose_frame

RED, BLUE, YELLOW, GREY = (255, 0, 0), (0, 0, 255), (255, 255, 0), (128, 128, 128)


def picture(color, size=(320, 240)):
    image = numpy.zeros((size[1], size[0], 3), numpy.uint8)
    image[:] = color
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def near(pixel, color) -> bool:
    return all(abs(int(a) - b) < 12 for a, b in zip(pixel, color))


def test_three_cameras_make_three_distinct_tiles_and_the_speaker_is_marked():
    canvas = compose_frame([picture(RED), picture(BLUE), picture(YELLOW)], None, speaker=1)
    assert canvas.shape == (HEIGHT, WIDTH, 3)
    # a 2x2 grid: red top left, blue top right, yellow bottom left
    assert near(canvas[180, 320], RED) and near(canvas[180, 960], BLUE) and near(canvas[540, 320], YELLOW)
    assert near(canvas[540, 960], (0, 0, 0))
    # drawn in YUV 4:2:0, so seen in RGB within the conversion's rounding
    mark = tuple(MARK.tolist())
    assert near(canvas[BORDER // 2, 960], mark) and not near(canvas[BORDER // 2, 320], mark)
    assert near(canvas[360 - BORDER // 2, 960], mark) and not near(canvas[360 + BORDER, 960], mark)


def test_a_shared_screen_takes_the_stage_and_the_cameras_a_column():
    canvas = compose_frame([picture(RED), None], picture(GREY, (640, 360)), speaker=None)
    assert near(canvas[360, 480], GREY)          # the stage
    assert near(canvas[180, 1120], RED)          # the first camera, top right
    assert near(canvas[540, 1120], (0, 0, 0))    # the second has no picture (its camera is off)


def webm(path, color, tone: bool, seconds: float = 1.5):
    with av.open(str(path), "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("libopus", rate=48000, layout="mono")
        for i in range(int(seconds * 15)):
            frame = picture(color, (160, 120)).reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 15)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        t = numpy.arange(int(seconds * 48000)) / 48000
        pcm = ((0.5 if tone else 0.0) * numpy.sin(2 * numpy.pi * 440 * t) * 32767).astype(numpy.int16)
        for start in range(0, len(pcm) - 959, 960):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + 960].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


@pytest.mark.slow
def test_the_meeting_file_has_every_camera_and_the_audio_mixed(tmp_path):
    for name, color, tone in (("a", RED, True), ("b", BLUE, False), ("c", YELLOW, False)):
        webm(tmp_path / f"{name}.webm", color, tone)
    output = tmp_path / "meeting.webm"
    duration = compose([(tmp_path / "a.webm", 0.0, False), (tmp_path / "b.webm", 0.5, False),
                        (tmp_path / "c.webm", 0.0, False)], output)
    assert 1.9 < duration < 2.3  # b joined half a second later
    with av.open(str(output)) as container:
        assert [s.codec_context.name for s in container.streams] == ["vp8", "opus"]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    middle = frames[len(frames) // 2]
    assert (middle.shape[1], middle.shape[0]) == (WIDTH, HEIGHT)
    assert near(middle[180, 320], RED) and near(middle[180, 960], BLUE) and near(middle[540, 320], YELLOW)
    assert not near(frames[0][180, 960], BLUE)  # not there yet at the start
    with av.open(str(output)) as container:
        samples = numpy.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert numpy.sqrt(numpy.mean(samples.astype(numpy.float64) ** 2)) > 0.05 * (1 if samples.dtype.kind == "f" else 32767)
