/* What srtp.c shares with srtp_gcm.c: the stream table, index estimation and replay window. */
#ifndef VR_SRTP_INTERNAL_H
#define VR_SRTP_INTERNAL_H

#include "srtp.h"

vr_stream *vr_stream_find(vr_srtp *s, uint32_t ssrc);
/* The stream of ssrc, created (from *initial when given) if new; NULL at the limit. */
vr_stream *vr_stream_add(vr_srtp *s, uint32_t ssrc, const vr_stream *initial);
/* The SSRC of the RTCP packet in (len bytes) and the next SRTCP index of its stream, for protecting it;
   VR_SRTP_OK, VR_SRTP_MALFORMED (shorter than a header) or VR_SRTP_LIMIT (no stream, or its index spent). */
int vr_next_rtcp_index(vr_srtp *s, const uint8_t *in, size_t len, uint32_t *ssrc, uint32_t *index);

/* The 48-bit index of seq nearest the highest one seen; *delta is index - highest. */
uint64_t vr_estimate_index(const vr_replay *r, uint16_t seq, int64_t *delta);
int vr_replay_check(const vr_replay *r, int64_t delta);
void vr_replay_add(vr_replay *r, uint64_t index, int64_t delta);
int vr_tags_equal(const uint8_t *a, const uint8_t *b, size_t n);

int vr_gcm_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
int vr_gcm_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
int vr_gcm_protect_rtcp(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
int vr_gcm_unprotect_rtcp(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);

#endif
