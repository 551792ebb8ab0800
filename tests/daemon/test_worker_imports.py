"""A media worker process forwards a call without PyAV's codec libraries mapped (it decodes nothing),
loads none of the daemon's modules, loads pylibsrtp only when a call needs SRTP, and loads dnspython (in the
daemon too) only when an mDNS name needs it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from contextlib import AsyncExitStack

import pytest

from testsupport.media_bot import bot, media_thread

ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 4\n'
# What PyAV brings in: ffmpeg's libraries and the codecs built into them (the wheel's av.libs/).
CODEC_LIBRARIES = ("libavcodec", "libavformat", "libavutil", "libswscale", "libvpx", "libopus", "libx264", "av.libs/")
# pylibsrtp's binding: libsrtp and its own OpenSSL (compat.lazy_srtp).
SRTP_BINDING = ("pylibsrtp/_binding",)


def mapped_codec_libraries(pid: int, names=CODEC_LIBRARIES) -> set[str]:
    """The files of ``names`` (default ``CODEC_LIBRARIES``) mapped in process ``pid``, read from /proc/PID/maps."""
    with open(f"/proc/{pid}/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/" in line}
    return {path for path in paths if any(name in path for name in names)}


def worker_pid(daemon) -> int:
    with urllib.request.urlopen(f"{daemon.url}/admin/rooms", timeout=5) as response:
        (worker,) = json.load(response)["media_workers"]
    return worker["pid"]


@pytest.mark.slow
@pytest.mark.parametrize("plane", ["native", "python"])
async def test_a_worker_carries_audio_and_video_with_no_codec_library_mapped(start_daemon, plane):
    """Either data plane; pylibsrtp's binding (libsrtp with its own OpenSSL, 4.4 MiB) comes in with the call."""
    daemon = start_daemon(rooms=ROOMS, media=f'workers = 1\ndata_plane = "{plane}"')
    pid = worker_pid(daemon)
    assert mapped_codec_libraries(pid) == set()  # idle
    assert mapped_codec_libraries(pid, SRTP_BINDING) == set()
    async with media_thread() as media, AsyncExitStack() as stack:
        a = await stack.enter_async_context(bot(daemon, "a", media=media))
        b = await stack.enter_async_context(bot(daemon, "b", media=media))
        a_tracks = await a.publish()
        b_tracks = await b.publish()
        for viewer, tracks in ((b, a_tracks), (a, b_tracks)):
            for track in tracks:  # audio and video, both ways
                await viewer.frames_from(track, at_least=10)
        assert worker_pid(daemon) == pid  # the same worker carried it, without a restart
        assert mapped_codec_libraries(pid) == set()
        assert mapped_codec_libraries(pid, SRTP_BINDING) != set()  # aiortc's DTLS made its SRTP sessions


def test_a_running_daemon_maps_no_codec_library_either(start_daemon):
    """The daemon's own process loads neither aiortc nor PyAV (the media is its workers'; an export
    runs in a process of its own): one import of a worker-side module pulled in 25 MiB of ffmpeg."""
    daemon = start_daemon(rooms=ROOMS, media="workers = 1")
    worker_pid(daemon)  # its workers answer: every module of the running daemon is in
    assert mapped_codec_libraries(daemon.proc.pid) == set()


@pytest.mark.slow
def test_the_stand_in_refuses_codec_use_and_must_come_before_aiortc():
    script = """
import sys
from videoroomd.media.webrtc.compat import codec_free
codec_free.install()
import aiortc, av
from aiortc.codecs import get_decoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from tests.daemon.test_worker_imports import mapped_codec_libraries
assert mapped_codec_libraries(0 or __import__("os").getpid()) == set()
for make in (lambda: av.VideoFrame(width=2, height=2),
             lambda: get_decoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96))):
    try:
        make()
    except codec_free.CodecsNotLoaded as error:
        assert "loads no codecs" in str(error), error
    else:
        raise AssertionError("a codec was made")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
    late = "import aiortc\nfrom videoroomd.media.webrtc.compat import codec_free\ncodec_free.install()\n"
    done = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "must come before importing av and aiortc" in done.stderr


@pytest.mark.slow
def test_pylibsrtp_stands_in_until_srtp_is_needed_then_is_the_real_one():
    script = """
import sys
from videoroomd.media.webrtc.compat import codec_free, lazy_dns, lazy_srtp
def binding_mapped():
    return "pylibsrtp/_binding" in open("/proc/self/maps").read()
codec_free.install(); lazy_dns.install(); lazy_srtp.install()
import aiortc, pylibsrtp
from aiortc.rtcdtlstransport import SRTP_PROFILES
assert not lazy_srtp.loaded() and not binding_mapped()
print(sorted(profile.openssl_profile.decode() for profile in SRTP_PROFILES))
key = bytes(range(30))
P = pylibsrtp.Policy
tx = pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=P.SRTP_PROFILE_AES128_CM_SHA1_80))
rx = pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_INBOUND, srtp_profile=P.SRTP_PROFILE_AES128_CM_SHA1_80))
rtp = bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]) + b"payload"
assert rx.unprotect(tx.protect(rtp)) == rtp
try:
    rx.unprotect(rtp + bytes(10))  # not authentic
except pylibsrtp.Error as error:  # the real module's error class
    assert type(error).__module__ == "pylibsrtp", type(error)
else:
    raise AssertionError("a forged packet was accepted")
assert lazy_srtp.loaded() and binding_mapped()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    real = "from aiortc.rtcdtlstransport import SRTP_PROFILES\nprint(sorted(p.openssl_profile.decode() for p in SRTP_PROFILES))"
    probed = subprocess.run([sys.executable, "-c", real], capture_output=True, text=True, timeout=60)
    assert done.stdout == probed.stdout != ""  # the profiles aiortc offers are those the real probe finds
    late = "import aiortc\nfrom videoroomd.media.webrtc.compat import lazy_srtp\nlazy_srtp.install()\n"
    done = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "must come before importing pylibsrtp or aiortc" in done.stderr


@pytest.mark.slow
def test_with_dnspython_loaded_lazily_a_worker_still_answers_and_resolves_mdns_names():
    script = """
import asyncio, sys
from videoroomd.media.webrtc.compat import codec_free, lazy_dns
lazy_dns.install()
codec_free.install()
import aiortc
from aioice import mdns
assert "dns.zone" not in sys.modules or type(sys.modules["dns.zone"]).__name__ == "_LazyModule"
import dns.message, dns.name, dns.rdata, dns.rdataset, dns.rdatatype

class Sent:
    def __init__(self):
        self.datagrams = []
    def sendto(self, data, address):
        self.datagrams.append(data)
    def is_closing(self):
        return False

async def main():
    answering, asking = mdns.MDnsProtocol(), mdns.MDnsProtocol()
    answering.connection_made(Sent())
    name = dns.name.from_text("peer.local")  # what publish() puts in the zone, without joining the group
    rdata = dns.rdata.GenericRdata(rdclass=mdns.MDNS_RDCLASS, rdtype=dns.rdatatype.A, data=bytes([127, 0, 0, 1]))
    answering.zone.replace_rdataset(name, dns.rdataset.from_rdata(120, rdata))
    answering.datagram_received(dns.message.make_query("peer.local", "A").to_wire(), ("127.0.0.1", 5353))
    (answer,) = answering.transport.datagrams
    future = asyncio.get_running_loop().create_future()
    asking.queries[name] = {future}
    asking.datagram_received(answer, ("127.0.0.1", 5353))
    print(await asyncio.wait_for(future, 1))

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "127.0.0.1", done.stderr
    late = "import dns.name\nfrom videoroomd.media.webrtc.compat import lazy_dns\nlazy_dns.install()\n"
    done = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "must come before importing dns" in done.stderr


# Modules a worker process must not load, each with why: what it would cost, and that the worker never uses it.
NOT_IN_A_WORKER = {
    "trio": "the daemon's event loop; a worker runs asyncio (uvloop)",
    "videoroomd.config": "the daemon reads the config; a worker gets what it needs in commands",
    "videoroomd.rooms": "rooms live in the daemon",
    "videoroomd.daemon": "the daemon's wiring",
    "videoroomd.http": "the daemon's port",
    "prometheus_client": "the daemon's /metrics (with http.server, wsgiref, gzip)",
    "click": "the command line",
    "importlib.abc": "its base classes import importlib.resources (tempfile, shutil, bz2, lzma)",
    "importlib.resources": "as importlib.abc",
    "importlib.metadata": "dnspython's feature checks and compat.installed: read only when asked",
}


@pytest.mark.slow
def test_a_worker_process_imports_none_of_the_daemons_modules_and_no_eager_dnspython():
    script = f"""
import json, sys
from videoroomd.media.workers import process
process.load_media_server()
process.configure("info", "json", None)
assert "aiortc.rtcpeerconnection" in sys.modules  # the server was imported for real
print(json.dumps({{"loaded": [name for name in {sorted(NOT_IN_A_WORKER)!r} if name in sys.modules],
                  "dns.zone": type(sys.modules["dns.zone"]).__name__}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {name: NOT_IN_A_WORKER[name] for name in found["loaded"]} == {}
    assert found["dns.zone"] == "_LazyModule"  # loaded when an mDNS name first needs it


@pytest.mark.slow
def test_the_daemon_imports_dnspython_lazily_too(tmp_path):
    config = tmp_path / "videoroomd.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:0"\n[rooms.lobby]\n')
    # `videoroomd serve` up to its start-up checks (every module of the daemon imported), stopped there
    # by a version pin nothing installed meets
    script = f"""
import json, sys
from click.testing import CliRunner
from videoroomd.cli.main import cli
from videoroomd.media.webrtc import compat
assert "dns" not in sys.modules
compat.REQUIRED["aiortc"] = "9.9"
result = CliRunner().invoke(cli, ["serve", "--config", {str(config)!r}])
assert result.exit_code == 1 and "aiortc 9.9.x" in result.output, result.output
assert "videoroomd.daemon.daemon" in sys.modules and "aioice.mdns" in sys.modules
print(json.dumps({{"dns.zone": type(sys.modules["dns.zone"]).__name__,
                  "eager": sorted(name for name, module in sys.modules.items()
                                  if name.startswith("dns.rdtypes") and type(module).__name__ != "_LazyModule")}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"dns.zone": "_LazyModule", "eager": []}
