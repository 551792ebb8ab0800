"""The SRTP keys derived again from a DTLS handshake aiortc completed (media/webrtc/compat/srtp_keys.py)
are aiortc's own: on a real aiortc-to-aiortc connection on 127.0.0.1, what the other side's libsrtp
session (pylibsrtp) protects, the compiled SRTP unprotects with them, and the other way round, for
the profile aiortc negotiates first (AES-256-GCM) and for AES-CM."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_AEAD_AES_128_GCM, SRTP_AEAD_AES_256_GCM, SRTP_AES128_CM_SHA1_80

from bench.receive import Idle
from testsupport.rtp_datagrams import receiver_report, rtp
from videoroomd.media.dataplane.native_module import load
from videoroomd.media.webrtc.compat.ice import limit_host_addresses
from videoroomd.media.webrtc.compat.srtp_keys import NoSrtpKeys, srtp_keys
from videoroomd.media.workers import event_loop

native = load()


async def connected_pair(profile) -> tuple[RTCPeerConnection, RTCPeerConnection]:
    """An offerer and an answerer connected on 127.0.0.1, both offering only ``profile``."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    offerer.addTransceiver(Idle(), direction="sendonly")
    offerer.getTransceivers()[0].receiver.transport._srtp_profiles = [profile]
    limit_host_addresses(offerer, ("127.0.0.1",))
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    answerer.getTransceivers()[0].receiver.transport._srtp_profiles = [profile]
    limit_host_addresses(answerer, ("127.0.0.1",))
    with pytest.raises(NoSrtpKeys, match="not connected"):
        srtp_keys(answerer.getTransceivers()[0].receiver.transport)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    for _ in range(200):
        if offerer.connectionState == answerer.connectionState == "connected":
            return offerer, answerer
        await asyncio.sleep(0.05)
    raise AssertionError("the two peer connections did not connect on 127.0.0.1")


@pytest.mark.parametrize("profile, number", [(SRTP_AEAD_AES_256_GCM, 8), (SRTP_AEAD_AES_128_GCM, 7),
                                             (SRTP_AES128_CM_SHA1_80, 1)],
                         ids=["aes256gcm", "aes128gcm", "aes_cm_sha1_80"])
def test_our_srtp_with_the_derived_keys_reads_and_writes_what_aiortc_does(profile, number):
    async def main():
        offerer, answerer = await connected_pair(profile)
        try:
            for ours, theirs in ((answerer, offerer), (offerer, answerer)):  # DTLS server and client roles
                dtls = ours.getTransceivers()[0].receiver.transport
                peer = theirs.getTransceivers()[0].receiver.transport
                keys = srtp_keys(dtls)
                assert keys.profile == number and repr(keys) == f"SrtpKeys(profile={number})"  # no key in logs
                receiving = native.SrtpSession(keys.profile, keys.rx_key, keys.rx_salt)
                sending = native.SrtpSession(keys.profile, keys.tx_key, keys.tx_salt)
                for seq in range(3):
                    packet = rtp(seq, ssrc=0xA0 + seq)
                    assert receiving.unprotect(peer._tx_srtp.protect(packet)) == packet
                    assert peer._rx_srtp.unprotect(sending.protect(packet)) == packet
                    # The same bytes aiortc's own sending session makes for a new stream.
                    other = rtp(seq, ssrc=0xB0 + seq)
                    assert sending.protect(other) == dtls._tx_srtp.protect(other)
                report = receiver_report(ssrc=0xC0)
                assert receiving.unprotect_rtcp(peer._tx_srtp.protect_rtcp(report)) == report
                assert peer._rx_srtp.unprotect_rtcp(sending.protect_rtcp(report)) == report
        finally:
            await offerer.close()
            await answerer.close()

    event_loop.run(main())
