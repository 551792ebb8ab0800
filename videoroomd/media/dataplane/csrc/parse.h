/* Pure parsing of untrusted datagrams: RFC 7983 demultiplexing, RTP headers
 * (RFC 3550) and their extensions (RFC 8285), RTCP compound packets.
 *
 * Every function takes a pointer and a length, reads nothing outside them,
 * and answers a negative vr_parse_status for any shape it cannot trust. */
#ifndef VR_PARSE_H
#define VR_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum vr_demux { VR_DROP = 0, VR_STUN, VR_ZRTP, VR_DTLS, VR_TURN_CHANNEL, VR_RTP, VR_RTCP };

enum vr_parse_status {
    VR_PARSE_OK = 0,
    VR_PARSE_TRUNCATED = -1,  /* a header or a length reaches past the end */
    VR_PARSE_VERSION = -2,    /* not RTP/RTCP version 2 */
    VR_PARSE_PADDING = -3,    /* the padding count is 0 or longer than the payload */
    VR_PARSE_EXTENSION = -4,  /* a header extension element runs past its block */
};

typedef struct {
    uint8_t payload_type, marker, csrc_count;
    uint16_t sequence;
    uint32_t timestamp, ssrc;
    size_t header_length;   /* fixed header, CSRCs and the extension block */
    size_t payload_length;  /* without padding */
    uint8_t padding;        /* padding bytes at the end, 0 when P is clear */
    int has_extension;
    uint16_t extension_profile;
    size_t extension_offset, extension_length; /* the elements, after the 4-byte block header */
} vr_rtp;

typedef struct {
    uint8_t packet_type, count, padding;
    uint32_t ssrc;          /* the sender's SSRC, 0 when the packet is only a header */
    size_t offset, length;  /* of the whole packet inside the compound */
} vr_rtcp;

const char *vr_parse_status_name(int status);

int vr_demux(const uint8_t *p, size_t n);

/* The length of the RTP header at p (fixed part, CSRCs and extension block). */
int vr_rtp_header_length(const uint8_t *p, size_t n, size_t *length);
int vr_rtp_parse(const uint8_t *p, size_t n, vr_rtp *out);

/* Find extension element id in a parsed packet: 1 and *offset, *length set when found,
 * 0 when absent, a negative status when the elements are malformed. */
int vr_rtp_extension(const uint8_t *p, const vr_rtp *rtp, unsigned id, size_t *offset, size_t *length);

/* Walk an RTCP compound packet: at most max packets into out; returns how many
 * there were, or a negative status (nothing after a bad length is trusted). */
int vr_rtcp_walk(const uint8_t *p, size_t n, vr_rtcp *out, size_t max);

#endif
