/* SRTP and SRTCP: RFC 3711 with AES_CM_128_HMAC_SHA1_80 and _32, RFC 7714 with AEAD_AES_128_GCM and
 * AEAD_AES_256_GCM (what aiortc offers first), over crypto.h.
 *
 * One vr_srtp holds the session keys derived from one master key and salt,
 * and a state per SSRC for each direction: the highest index seen (ROC and
 * sequence number) with a 128-packet replay window, the SRTCP index sent and
 * received. A stream's state is created only once a packet of that SSRC has
 * authenticated, so unauthenticated traffic allocates nothing. */
#ifndef VR_SRTP_H
#define VR_SRTP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

enum vr_srtp_profile {
    VR_AES_CM_128_HMAC_SHA1_80 = 1,
    VR_AES_CM_128_HMAC_SHA1_32 = 2,
    VR_AEAD_AES_128_GCM = 7,  /* the numbers are those of RFC 5764's registry */
    VR_AEAD_AES_256_GCM = 8,
};

enum vr_srtp_status {
    VR_SRTP_OK = 0,
    VR_SRTP_MALFORMED = -1,   /* too short, or an RTP header past the end */
    VR_SRTP_AUTH = -2,        /* the tag does not match */
    VR_SRTP_REPLAY = -3,      /* this index was already accepted */
    VR_SRTP_TOO_OLD = -4,     /* the index is behind the replay window */
    VR_SRTP_CRYPTO = -5,      /* OpenSSL failed */
    VR_SRTP_LIMIT = -6,       /* too many SSRCs, or the SRTCP index is spent */
};

#define VR_SRTP_MAX_STREAMS 4096

typedef struct {
    uint64_t highest; /* ROC << 16 | highest sequence number (SRTCP: the highest index) */
    uint64_t window[2];
} vr_replay;

typedef struct {
    uint32_t ssrc;
    uint8_t used;
    vr_replay rtp_in, rtp_out, rtcp_in;
    uint32_t rtcp_out; /* the last SRTCP index sent */
} vr_stream;

typedef struct {
    vr_cipher *ctr, *seal, *open; /* AES-CM; or AES-GCM, one context each way */
    vr_hmac *hmac;
    uint8_t salt[14];
} vr_keys;

typedef struct {
    int profile, gcm;
    size_t rtp_tag;       /* bytes SRTP adds to RTP */
    size_t rtcp_trailer;  /* bytes SRTCP adds to RTCP: E flag and index, and the tag */
    vr_keys rtp, rtcp;
    vr_stream *streams;
    size_t capacity, count;
} vr_srtp;

const char *vr_srtp_status_name(int status);

/* The master key and salt lengths of a profile; 0 for an unknown profile. */
int vr_srtp_lengths(int profile, size_t *key_len, size_t *salt_len);

/* One session key of RFC 3711 4.3 (key derivation rate 0): master_salt is 14 bytes, a 12-byte
 * (AEAD) salt followed by two zero bytes as libsrtp pads it. key_len: 16 or 32. */
int vr_srtp_derive(const uint8_t *master_key, size_t key_len, const uint8_t master_salt[14], uint8_t label,
                   uint8_t *out, size_t len);

int vr_srtp_init(vr_srtp *s, int profile, const uint8_t *master_key, const uint8_t *master_salt);
void vr_srtp_free(vr_srtp *s);

/* protect: in (len) is RTP; out must hold len + rtp_tag bytes; *out_len gets the SRTP length. */
int vr_srtp_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
/* unprotect: out must hold len - rtp_tag bytes; *out_len gets the RTP length. */
int vr_srtp_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
/* protect_rtcp: out must hold len + rtcp_trailer bytes. */
int vr_srtcp_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
/* unprotect_rtcp: out must hold len - rtcp_trailer bytes. */
int vr_srtcp_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);

#endif
