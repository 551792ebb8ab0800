/* SRTP and SRTCP framing over crypto.h: RFC 3711's key derivation (4.3), AES-CM IV (4.1.1), index
 * estimation (3.3.1, Appendix A), replay window (3.3.2) and HMAC-SHA1 tag (4.2); RFC 7714's AES-GCM
 * IVs, AAD and trailers (8, 9). The AES-GCM part is in srtp_gcm.c. */
#include "srtp.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "parse.h"
#include "srtp_internal.h"

#define WINDOW 128
#define SEQ_MEDIAN 32768
#define CM_TRAILER (4 + 10) /* E || SRTCP index, then an 80-bit tag in both AES-CM profiles */

const char *vr_srtp_status_name(int status) {
    switch (status) {
    case VR_SRTP_OK: return "ok";
    case VR_SRTP_MALFORMED: return "malformed";
    case VR_SRTP_AUTH: return "authentication failed";
    case VR_SRTP_REPLAY: return "replayed";
    case VR_SRTP_TOO_OLD: return "behind the replay window";
    case VR_SRTP_CRYPTO: return "crypto library failure";
    case VR_SRTP_LIMIT: return "stream limit reached";
    default: return "unknown";
    }
}

int vr_srtp_lengths(int profile, size_t *key_len, size_t *salt_len) {
    switch (profile) {
    case VR_AES_CM_128_HMAC_SHA1_80:
    case VR_AES_CM_128_HMAC_SHA1_32: *key_len = 16, *salt_len = 14; return 1;
    case VR_AEAD_AES_128_GCM: *key_len = 16, *salt_len = 12; return 1;
    case VR_AEAD_AES_256_GCM: *key_len = 32, *salt_len = 12; return 1;
    default: return 0;
    }
}

int vr_srtp_derive(const uint8_t *master_key, size_t key_len, const uint8_t master_salt[14], uint8_t label,
                   uint8_t *out, size_t len) {
    /* x = key_id XOR master_salt, right-aligned: key_id = label || r (48 bits, 0 at rate 0). */
    uint8_t iv[16] = {0};
    memcpy(iv, master_salt, 14);
    iv[7] ^= label;
    vr_cipher *c = vr_aes_ctr_new(master_key, key_len);
    if (!c)
        return VR_SRTP_CRYPTO;
    memset(out, 0, len);
    int rc = vr_aes_ctr_xor(c, iv, out, out, len);
    vr_cipher_free(c);
    return rc ? VR_SRTP_CRYPTO : VR_SRTP_OK;
}

static void keys_free(vr_keys *k) {
    vr_cipher_free(k->ctr);
    vr_cipher_free(k->seal);
    vr_cipher_free(k->open);
    vr_hmac_free(k->hmac);
    memset(k, 0, sizeof *k);
}

/* The session keys of one kind (labels first_label..+2: cipher key, auth key, salt). */
static int keys_init(vr_keys *k, int gcm, const uint8_t *key, size_t key_len, const uint8_t salt[14],
                     uint8_t first_label) {
    uint8_t enc[32], auth[20];
    int rc = VR_SRTP_CRYPTO;
    if (vr_srtp_derive(key, key_len, salt, first_label, enc, key_len) ||
        vr_srtp_derive(key, key_len, salt, first_label + 2, k->salt, gcm ? 12 : 14))
        goto done;
    if (gcm) {
        k->seal = vr_aes_gcm_new(enc, key_len, 1);
        k->open = vr_aes_gcm_new(enc, key_len, 0);
        rc = k->seal && k->open ? VR_SRTP_OK : VR_SRTP_CRYPTO;
    } else if (!vr_srtp_derive(key, key_len, salt, first_label + 1, auth, sizeof auth)) {
        k->ctr = vr_aes_ctr_new(enc, key_len);
        k->hmac = vr_hmac_sha1_new(auth, sizeof auth);
        rc = k->ctr && k->hmac ? VR_SRTP_OK : VR_SRTP_CRYPTO;
    }
done:
    memset(enc, 0, sizeof enc);
    memset(auth, 0, sizeof auth);
    return rc;
}

int vr_srtp_init(vr_srtp *s, int profile, const uint8_t *master_key, const uint8_t *master_salt) {
    size_t key_len, salt_len;
    uint8_t salt[14] = {0}; /* a 12-byte salt is padded with zeros, as libsrtp does */
    memset(s, 0, sizeof *s);
    if (!vr_srtp_lengths(profile, &key_len, &salt_len))
        return VR_SRTP_MALFORMED;
    memcpy(salt, master_salt, salt_len);
    s->profile = profile;
    s->gcm = profile == VR_AEAD_AES_128_GCM || profile == VR_AEAD_AES_256_GCM;
    s->rtp_tag = s->gcm ? 16 : profile == VR_AES_CM_128_HMAC_SHA1_80 ? 10 : 4;
    s->rtcp_trailer = s->gcm ? 16 + 4 : CM_TRAILER;
    int rc = keys_init(&s->rtp, s->gcm, master_key, key_len, salt, 0);
    if (!rc)
        rc = keys_init(&s->rtcp, s->gcm, master_key, key_len, salt, 3);
    if (rc)
        vr_srtp_free(s);
    return rc;
}

void vr_srtp_free(vr_srtp *s) {
    keys_free(&s->rtp);
    keys_free(&s->rtcp);
    free(s->streams);
    s->streams = NULL;
    s->capacity = s->count = 0;
}

/* --- the streams, an open-addressing table by SSRC that only grows ------------------------ */

vr_stream *vr_stream_find(vr_srtp *s, uint32_t ssrc) {
    if (!s->capacity)
        return NULL;
    size_t mask = s->capacity - 1;
    for (size_t i = (ssrc * 2654435761u) & mask;; i = (i + 1) & mask) {
        if (!s->streams[i].used)
            return NULL;
        if (s->streams[i].ssrc == ssrc)
            return &s->streams[i];
    }
}

static int stream_grow(vr_srtp *s) {
    size_t capacity = s->capacity ? s->capacity * 2 : 8;
    vr_stream *table = calloc(capacity, sizeof *table);
    if (!table)
        return -1;
    for (size_t i = 0; i < s->capacity; i++) {
        if (!s->streams[i].used)
            continue;
        size_t j = (s->streams[i].ssrc * 2654435761u) & (capacity - 1);
        while (table[j].used)
            j = (j + 1) & (capacity - 1);
        table[j] = s->streams[i];
    }
    free(s->streams);
    s->streams = table;
    s->capacity = capacity;
    return 0;
}

int vr_next_rtcp_index(vr_srtp *s, const uint8_t *in, size_t len, uint32_t *ssrc, uint32_t *index) {
    if (len < 8)
        return VR_SRTP_MALFORMED;
    *ssrc = vr_be32(in + 4);
    vr_stream *st = vr_stream_add(s, *ssrc, NULL);
    if (!st)
        return VR_SRTP_LIMIT;
    if (st->rtcp_out >= 0x7fffffffu)
        return VR_SRTP_LIMIT; /* the 31-bit index is spent: the keys must change */
    *index = ++st->rtcp_out;
    return VR_SRTP_OK;
}

/* The stream of ssrc, created (from *initial when given) if new; NULL at the limit. */
vr_stream *vr_stream_add(vr_srtp *s, uint32_t ssrc, const vr_stream *initial) {
    vr_stream *found = vr_stream_find(s, ssrc);
    if (found)
        return found;
    if (s->count >= VR_SRTP_MAX_STREAMS)
        return NULL;
    if ((s->count + 1) * 2 > s->capacity && stream_grow(s))
        return NULL;
    size_t mask = s->capacity - 1, i = (ssrc * 2654435761u) & mask;
    while (s->streams[i].used)
        i = (i + 1) & mask;
    if (initial)
        s->streams[i] = *initial;
    else
        memset(&s->streams[i], 0, sizeof s->streams[i]);
    s->streams[i].ssrc = ssrc;
    s->streams[i].used = 1;
    s->count++;
    return &s->streams[i];
}

/* --- index estimation and replay ----------------------------------------------------------- */

/* The 48-bit index of seq nearest the highest one seen; *delta is index - highest. */
uint64_t vr_estimate_index(const vr_replay *r, uint16_t seq, int64_t *delta) {
    uint64_t index;
    if (r->highest <= SEQ_MEDIAN) {
        index = seq; /* nothing seen past half the first cycle: no earlier ROC to guess */
    } else {
        uint32_t roc = (uint32_t)(r->highest >> 16);
        uint16_t s_l = (uint16_t)r->highest;
        uint32_t v = roc;
        if (s_l < SEQ_MEDIAN) {
            if ((int)seq - (int)s_l > SEQ_MEDIAN)
                v = roc - 1;
        } else if ((int)s_l - SEQ_MEDIAN > (int)seq) {
            v = roc + 1;
        }
        index = ((uint64_t)v << 16) | seq;
    }
    *delta = (int64_t)index - (int64_t)r->highest;
    return index;
}

int vr_replay_check(const vr_replay *r, int64_t delta) {
    if (delta > 0)
        return VR_SRTP_OK;
    uint64_t back = (uint64_t)(-delta);
    if (back >= WINDOW)
        return VR_SRTP_TOO_OLD;
    return (r->window[back / 64] >> (back % 64)) & 1 ? VR_SRTP_REPLAY : VR_SRTP_OK;
}

void vr_replay_add(vr_replay *r, uint64_t index, int64_t delta) {
    if (delta <= 0) {
        uint64_t back = (uint64_t)(-delta);
        r->window[back / 64] |= (uint64_t)1 << (back % 64);
        return;
    }
    uint64_t n = (uint64_t)delta;
    if (n >= 128) {
        r->window[0] = r->window[1] = 0;
    } else if (n >= 64) {
        r->window[1] = r->window[0] << (n - 64);
        r->window[0] = 0;
    } else {
        r->window[1] = (r->window[1] << n) | (r->window[0] >> (64 - n));
        r->window[0] <<= n;
    }
    r->window[0] |= 1;
    r->highest = index;
}

/* --- RTP ------------------------------------------------------------------------------------ */

static void cm_iv(uint8_t iv[16], const uint8_t salt[14], uint32_t ssrc, uint64_t index) {
    memcpy(iv, salt, 14);
    iv[14] = iv[15] = 0;
    iv[4] ^= (uint8_t)(ssrc >> 24);
    iv[5] ^= (uint8_t)(ssrc >> 16);
    iv[6] ^= (uint8_t)(ssrc >> 8);
    iv[7] ^= (uint8_t)ssrc;
    for (int i = 0; i < 6; i++)
        iv[8 + i] ^= (uint8_t)(index >> (40 - 8 * i));
}

int vr_tags_equal(const uint8_t *a, const uint8_t *b, size_t n) {
    uint8_t diff = 0; /* every byte compared: the time says nothing about where they differ */
    for (size_t i = 0; i < n; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

static int cm_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    size_t hlen;
    if (vr_rtp_header_length(in, len, &hlen))
        return VR_SRTP_MALFORMED;
    uint32_t ssrc = vr_be32(in + 8);
    vr_stream *st = vr_stream_add(s, ssrc, NULL);
    if (!st)
        return VR_SRTP_LIMIT;
    int64_t delta;
    uint64_t index = vr_estimate_index(&st->rtp_out, vr_be16(in + 2), &delta);
    int rc = vr_replay_check(&st->rtp_out, delta); /* one keystream never covers two payloads */
    if (rc)
        return rc;
    uint8_t iv[16], roc[4], tag[20];
    cm_iv(iv, s->rtp.salt, ssrc, index);
    if (out != in)
        memcpy(out, in, hlen);
    if (vr_aes_ctr_xor(s->rtp.ctr, iv, in + hlen, out + hlen, len - hlen))
        return VR_SRTP_CRYPTO;
    vr_put_be32(roc, (uint32_t)(index >> 16));
    if (vr_hmac_sha1(s->rtp.hmac, out, len, roc, 4, tag))
        return VR_SRTP_CRYPTO;
    memcpy(out + len, tag, s->rtp_tag);
    vr_replay_add(&st->rtp_out, index, delta);
    *out_len = len + s->rtp_tag;
    return VR_SRTP_OK;
}

static int cm_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    size_t hlen;
    if (len < s->rtp_tag)
        return VR_SRTP_MALFORMED;
    size_t alen = len - s->rtp_tag;
    if (vr_rtp_header_length(in, alen, &hlen))
        return VR_SRTP_MALFORMED;
    uint32_t ssrc = vr_be32(in + 8);
    vr_stream *st = vr_stream_find(s, ssrc), fresh;
    if (!st) {
        memset(&fresh, 0, sizeof fresh);
        st = &fresh;
    }
    int64_t delta;
    uint64_t index = vr_estimate_index(&st->rtp_in, vr_be16(in + 2), &delta);
    int rc = vr_replay_check(&st->rtp_in, delta);
    if (rc)
        return rc;
    uint8_t iv[16], roc[4], tag[20];
    vr_put_be32(roc, (uint32_t)(index >> 16));
    if (vr_hmac_sha1(s->rtp.hmac, in, alen, roc, 4, tag))
        return VR_SRTP_CRYPTO;
    if (!vr_tags_equal(tag, in + alen, s->rtp_tag))
        return VR_SRTP_AUTH;
    cm_iv(iv, s->rtp.salt, ssrc, index);
    if (out != in)
        memcpy(out, in, hlen);
    if (vr_aes_ctr_xor(s->rtp.ctr, iv, in + hlen, out + hlen, alen - hlen))
        return VR_SRTP_CRYPTO;
    if (st == &fresh && !(st = vr_stream_add(s, ssrc, &fresh)))
        return VR_SRTP_LIMIT;
    vr_replay_add(&st->rtp_in, index, delta);
    *out_len = alen;
    return VR_SRTP_OK;
}

/* --- RTCP: 8 header bytes in clear, then the encrypted rest, E || index, and an 80-bit tag --- */

static int cm_protect_rtcp(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    uint32_t ssrc, index;
    int rc = vr_next_rtcp_index(s, in, len, &ssrc, &index);
    if (rc != VR_SRTP_OK)
        return rc;
    uint8_t iv[16], tag[20];
    cm_iv(iv, s->rtcp.salt, ssrc, index);
    if (out != in)
        memcpy(out, in, 8);
    if (vr_aes_ctr_xor(s->rtcp.ctr, iv, in + 8, out + 8, len - 8))
        return VR_SRTP_CRYPTO;
    vr_put_be32(out + len, 0x80000000u | index);
    if (vr_hmac_sha1(s->rtcp.hmac, out, len + 4, NULL, 0, tag))
        return VR_SRTP_CRYPTO;
    memcpy(out + len + 4, tag, 10);
    *out_len = len + CM_TRAILER;
    return VR_SRTP_OK;
}

static int cm_unprotect_rtcp(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    if (len < 8 + CM_TRAILER)
        return VR_SRTP_MALFORMED;
    size_t alen = len - 10, plen = alen - 4;
    uint32_t e_index = vr_be32(in + plen), index = e_index & 0x7fffffffu;
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
    uint8_t iv[16], tag[20];
    if (vr_hmac_sha1(s->rtcp.hmac, in, alen, NULL, 0, tag))
        return VR_SRTP_CRYPTO;
    if (!vr_tags_equal(tag, in + alen, 10))
        return VR_SRTP_AUTH;
    if (out != in)
        memcpy(out, in, 8);
    if (e_index >> 31) {
        cm_iv(iv, s->rtcp.salt, ssrc, index);
        if (vr_aes_ctr_xor(s->rtcp.ctr, iv, in + 8, out + 8, plen - 8))
            return VR_SRTP_CRYPTO;
    } else if (out != in) {
        memmove(out + 8, in + 8, plen - 8);
    }
    if (st == &fresh && !(st = vr_stream_add(s, ssrc, &fresh)))
        return VR_SRTP_LIMIT;
    vr_replay_add(&st->rtcp_in, index, delta);
    *out_len = plen;
    return VR_SRTP_OK;
}

/* --- by profile ------------------------------------------------------------------------------ */

int vr_srtp_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    return s->gcm ? vr_gcm_protect(s, in, len, out, out_len) : cm_protect(s, in, len, out, out_len);
}

int vr_srtp_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    return s->gcm ? vr_gcm_unprotect(s, in, len, out, out_len) : cm_unprotect(s, in, len, out, out_len);
}

int vr_srtcp_protect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    return s->gcm ? vr_gcm_protect_rtcp(s, in, len, out, out_len) : cm_protect_rtcp(s, in, len, out, out_len);
}

int vr_srtcp_unprotect(vr_srtp *s, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
    return s->gcm ? vr_gcm_unprotect_rtcp(s, in, len, out, out_len) : cm_unprotect_rtcp(s, in, len, out, out_len);
}
