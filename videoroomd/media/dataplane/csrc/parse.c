/* RFC 7983 demultiplexing, RTP header and extension parsing, RTCP compound walk (see parse.h). */
#include "parse.h"

#include "bytes.h"

const char *vr_parse_status_name(int status) {
    switch (status) {
    case VR_PARSE_OK: return "ok";
    case VR_PARSE_TRUNCATED: return "truncated";
    case VR_PARSE_VERSION: return "not version 2";
    case VR_PARSE_PADDING: return "bad padding";
    case VR_PARSE_EXTENSION: return "bad header extension";
    default: return "unknown";
    }
}

int vr_demux(const uint8_t *p, size_t n) {
    if (n == 0)
        return VR_DROP;
    uint8_t b = p[0];
    if (b <= 3)
        return VR_STUN;
    if (b >= 16 && b <= 19)
        return VR_ZRTP;
    if (b >= 20 && b <= 63)
        return VR_DTLS;
    if (b >= 64 && b <= 79)
        return VR_TURN_CHANNEL;
    if (b >= 128 && b <= 191) {
        if (n < 2)
            return VR_DROP;
        /* RFC 5761: RTCP packet types 192-223 sit where RTP's marker bit and types 64-95 would. */
        return p[1] >= 192 && p[1] <= 223 ? VR_RTCP : VR_RTP;
    }
    return VR_DROP;
}

int vr_rtp_header_length(const uint8_t *p, size_t n, size_t *length) {
    if (n < 12)
        return VR_PARSE_TRUNCATED;
    if (p[0] >> 6 != 2)
        return VR_PARSE_VERSION;
    size_t h = 12 + 4 * (size_t)(p[0] & 0x0f);
    if (h > n)
        return VR_PARSE_TRUNCATED;
    if (p[0] & 0x10) {
        if (h + 4 > n)
            return VR_PARSE_TRUNCATED;
        size_t words = vr_be16(p + h + 2);
        h += 4 + 4 * words;
        if (h > n)
            return VR_PARSE_TRUNCATED;
    }
    *length = h;
    return VR_PARSE_OK;
}

int vr_rtp_parse(const uint8_t *p, size_t n, vr_rtp *out) {
    size_t h;
    int rc = vr_rtp_header_length(p, n, &h);
    if (rc)
        return rc;
    out->payload_type = p[1] & 0x7f;
    out->marker = p[1] >> 7;
    out->csrc_count = p[0] & 0x0f;
    out->sequence = vr_be16(p + 2);
    out->timestamp = vr_be32(p + 4);
    out->ssrc = vr_be32(p + 8);
    out->header_length = h;
    out->has_extension = (p[0] & 0x10) != 0;
    out->extension_profile = 0;
    out->extension_offset = out->extension_length = 0;
    if (out->has_extension) {
        size_t block = 12 + 4 * (size_t)out->csrc_count;
        out->extension_profile = vr_be16(p + block);
        out->extension_offset = block + 4;
        out->extension_length = h - block - 4;
    }
    out->padding = 0;
    if (p[0] & 0x20) {
        /* The count is the last byte and counts itself: 0 or more than the payload is a lie. */
        if (n == h)
            return VR_PARSE_PADDING;
        uint8_t pad = p[n - 1];
        if (pad == 0 || pad > n - h)
            return VR_PARSE_PADDING;
        out->padding = pad;
    }
    out->payload_length = n - h - out->padding;
    return VR_PARSE_OK;
}

int vr_rtp_extension(const uint8_t *p, const vr_rtp *rtp, unsigned id, size_t *offset, size_t *length) {
    if (!rtp->has_extension)
        return 0;
    const uint8_t *e = p + rtp->extension_offset;
    size_t n = rtp->extension_length, i = 0;
    int one_byte = rtp->extension_profile == 0xBEDE;
    if (!one_byte && (rtp->extension_profile & 0xfff0) != 0x1000)
        return 0; /* a profile of RFC 3550 alone: no elements to look into */
    while (i < n) {
        unsigned element, size;
        if (e[i] == 0) { /* padding between elements */
            i++;
            continue;
        }
        if (one_byte) {
            element = e[i] >> 4;
            if (element == 15)
                return 0; /* reserved: stop reading (RFC 8285 4.2) */
            size = (e[i] & 0x0f) + 1u;
            i += 1;
        } else {
            if (i + 2 > n)
                return VR_PARSE_EXTENSION;
            element = e[i];
            size = e[i + 1];
            i += 2;
        }
        if (size > n - i)
            return VR_PARSE_EXTENSION;
        if (element == id) {
            *offset = rtp->extension_offset + i;
            *length = size;
            return 1;
        }
        i += size;
    }
    return 0;
}

int vr_rtcp_walk(const uint8_t *p, size_t n, vr_rtcp *out, size_t max) {
    size_t at = 0;
    int count = 0;
    if (n < 4)
        return VR_PARSE_TRUNCATED;
    while (at < n) {
        if (n - at < 4)
            return VR_PARSE_TRUNCATED;
        const uint8_t *h = p + at;
        if (h[0] >> 6 != 2)
            return VR_PARSE_VERSION;
        size_t length = 4 * ((size_t)vr_be16(h + 2) + 1);
        if (length > n - at)
            return VR_PARSE_TRUNCATED;
        uint8_t padding = 0;
        if (h[0] & 0x20) {
            padding = h[length - 1];
            if (padding == 0 || padding > length - 4)
                return VR_PARSE_PADDING;
        }
        if ((size_t)count < max) {
            vr_rtcp *r = &out[count];
            r->packet_type = h[1];
            r->count = h[0] & 0x1f;
            r->padding = padding;
            r->ssrc = length >= 8 ? vr_be32(h + 4) : 0;
            r->offset = at;
            r->length = length;
        }
        count++;
        at += length;
    }
    return count;
}
