/* SRTP and SRTCP with AES-GCM (RFC 7714): the header is the AAD, the payload is encrypted, and a 16-byte
 * tag follows it; SRTCP adds E || index after the tag and authenticates it with the header. */
#include <string.h>

#include "bytes.h"
#include "parse.h"
#include "srtp_internal.h"

#define TAG 16

/* 8.1 and 9.1: (00 00 || SSRC || word || low) XOR salt; word is the ROC for RTP, 0 for RTCP. */
static void gcm_iv(uint8_t iv[12], const uint8_t salt[14], uint32_t ssrc, uint32_t word, uint32_t low, int rtp) {
    iv[0] = iv[1] = 0;
    vr_put_be32(iv + 2, ssrc);
    if (rtp) {
        vr_put_be32(iv + 6, word);
        iv[10] = (uint8_t)(low >> 8);
        iv[11] = (uint8_t)low;
    } else {
        iv[6] = iv[7] = 0;
        vr_put_be32(iv + 8, low);
    }
    for (int i = 0; i < 12; i++)
        iv[i] ^= salt[i];
}

int vr_gcm_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    size_t hlen;
    if (vr_rtp_header_length(in, len, &hlen))
        return VR_SRTP_MALFORMED;
    uint32_t ssrc = vr_be32(in + 8);
    uint16_t seq = vr_be16(in + 2);
    vr_stream *st = vr_stream_add(s, ssrc, NULL);
    if (!st)
        return VR_SRTP_LIMIT;
    int64_t delta;
    uint64_t index = vr_estimate_index(&st->rtp_out, seq, &delta);
    int rc = vr_replay_check(&st->rtp_out, delta); /* an IV used twice would give the key away */
    if (rc)
        return rc;
    uint8_t iv[12];
    gcm_iv(iv, s->rtp.salt, ssrc, (uint32_t)(index >> 16), seq, 1);
    if (out != in)
        memcpy(out, in, hlen);
    if (vr_aes_gcm_seal(s->rtp.seal, iv, in, hlen, NULL, 0, in + hlen, out + hlen, len - hlen, out + len))
        return VR_SRTP_CRYPTO;
    vr_replay_add(&st->rtp_out, index, delta);
    *out_len = len + TAG;
    return VR_SRTP_OK;
}

int vr_gcm_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    size_t hlen;
    if (len < TAG)
        return VR_SRTP_MALFORMED;
    size_t clen = len - TAG;
    if (vr_rtp_header_length(in, clen, &hlen))
        return VR_SRTP_MALFORMED;
    uint32_t ssrc = vr_be32(in + 8);
    uint16_t seq = vr_be16(in + 2);
    vr_stream *st = vr_stream_find(s, ssrc), fresh;
    if (!st) {
        memset(&fresh, 0, sizeof fresh);
        st = &fresh;
    }
    int64_t delta;
    uint64_t index = vr_estimate_index(&st->rtp_in, seq, &delta);
    int rc = vr_replay_check(&st->rtp_in, delta);
    if (rc)
        return rc;
    uint8_t iv[12];
    gcm_iv(iv, s->rtp.salt, ssrc, (uint32_t)(index >> 16), seq, 1);
    if (out != in)
        memcpy(out, in, hlen);
    rc = vr_aes_gcm_open(s->rtp.open, iv, in, hlen, NULL, 0, in + hlen, out + hlen, clen - hlen, in + clen);
    if (rc)
        return rc > 0 ? VR_SRTP_AUTH : VR_SRTP_CRYPTO;
    if (st == &fresh && !(st = vr_stream_add(s, ssrc, &fresh)))
        return VR_SRTP_LIMIT;
    vr_replay_add(&st->rtp_in, index, delta);
    *out_len = clen;
    return VR_SRTP_OK;
}

int vr_gcm_protect_rtcp(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    uint32_t ssrc, index;
    int rc = vr_next_rtcp_index(s, in, len, &ssrc, &index);
    if (rc != VR_SRTP_OK)
        return rc;
    uint8_t iv[12], trailer[4];
    vr_put_be32(trailer, 0x80000000u | index);
    gcm_iv(iv, s->rtcp.salt, ssrc, 0, index, 0);
    if (out != in)
        memcpy(out, in, 8);
    if (vr_aes_gcm_seal(s->rtcp.seal, iv, in, 8, trailer, 4, in + 8, out + 8, len - 8, out + len))
        return VR_SRTP_CRYPTO;
    memcpy(out + len + TAG, trailer, 4);
    *out_len = len + TAG + 4;
    return VR_SRTP_OK;
}

int vr_gcm_unprotect_rtcp(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    if (len < 8 + TAG + 4)
        return VR_SRTP_MALFORMED;
    size_t plen = len - TAG - 4;
    const uint8_t *trailer = in + len - 4, *tag = in + plen;
    uint32_t e_index = vr_be32(trailer), index = e_index & 0x7fffffffu;
    uint32_t ssrc = vr_be32(in + 4);
    vr_stream *st = vr_stream_find(s, ssrc), fresh;
    if (!st) {
        memset(&fresh, 0, sizeof fresh);
        st = &fresh;
    }
    int64_t delta = (int64_t)index - (int64_t)st->rtcp_in.highest;
    int rc = vr_replay_check(&st->rtcp_in, delta);
    if (rc)
        return rc;
    uint8_t iv[12];
    gcm_iv(iv, s->rtcp.salt, ssrc, 0, index, 0);
    if (out != in)
        memcpy(out, in, 8);
    if (e_index >> 31) {
        rc = vr_aes_gcm_open(s->rtcp.open, iv, in, 8, trailer, 4, in + 8, out + 8, plen - 8, tag);
    } else { /* not encrypted: all of it is authenticated data */
        rc = vr_aes_gcm_open(s->rtcp.open, iv, in, plen, trailer, 4, NULL, NULL, 0, tag);
        if (out != in)
            memmove(out + 8, in + 8, plen - 8);
    }
    if (rc)
        return rc > 0 ? VR_SRTP_AUTH : VR_SRTP_CRYPTO;
    if (st == &fresh && !(st = vr_stream_add(s, ssrc, &fresh)))
        return VR_SRTP_LIMIT;
    vr_replay_add(&st->rtcp_in, index, delta);
    *out_len = plen;
    return VR_SRTP_OK;
}
