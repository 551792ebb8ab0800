/* Track-file RTP records made in C for a recorded SSRC (port_tap.h). */
#include "port_tap.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"

/* CRC-32 (ISO-HDLC, as zlib's crc32), eight bytes a step (slicing-by-8); the table is made once. */
static uint32_t crc_table[8][256];

void vr_crc32_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = crc_table[t - 1][i] >> 8 ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t vr_crc32(uint32_t crc, const uint8_t *p, size_t length) {
    const uint32_t (*t)[256] = crc_table;
    crc = ~crc;
    for (; length >= 8; p += 8, length -= 8) {
        uint32_t one = crc ^ le32(p), two = le32(p + 4);
        crc = t[7][one & 0xFF] ^ t[6][one >> 8 & 0xFF] ^ t[5][one >> 16 & 0xFF] ^ t[4][one >> 24] ^
              t[3][two & 0xFF] ^ t[2][two >> 8 & 0xFF] ^ t[1][two >> 16 & 0xFF] ^ t[0][two >> 24];
    }
    for (; length; p++, length--)
        crc = t[0][(crc ^ *p) & 0xFF] ^ crc >> 8;
    return ~crc;
}

static int make_room(vr_tap *t, size_t *total, size_t need) {
    if (*total + need > VR_TAP_BYTES)
        return -1;
    if (t->used + need <= t->size)
        return 0;
    size_t size = t->size ? t->size : 16384;
    while (size < t->used + need)
        size *= 2;  /* at most twice VR_TAP_BYTES: used + need is within it */
    uint8_t *grown = realloc(t->data, size);
    if (!grown)
        return -1;
    t->data = grown;
    t->size = size;
    return 0;
}

int vr_tap_record(vr_tap *t, size_t *total, const vr_packet *packet, int payload_type, int64_t arrival_ns) {
    size_t length = packet->payload_length;
    if (length > VR_RECORD_MAX_PAYLOAD)
        return 1;  /* as the recorder: no browser sends one */
    size_t need = VR_RECORD_OVERHEAD + length;
    if (make_room(t, total, need))
        return -1;
    int64_t arrival_us = arrival_ns / 1000 - t->start_us;
    uint64_t arrival = arrival_us > 0 ? (uint64_t)arrival_us : 0;  /* as TrackEncoder: never before the start */
    uint8_t *r = t->data + t->used;
    vr_put_be32(r, (uint32_t)(need - 8));  /* type and body */
    r[4] = 1;                              /* RTP */
    vr_put_be32(r + 5, (uint32_t)(arrival >> 32));
    vr_put_be32(r + 9, (uint32_t)arrival);
    r[13] = packet->marker ? 1 : 0;
    r[14] = (uint8_t)payload_type;
    r[15] = (uint8_t)(packet->seq >> 8);
    r[16] = (uint8_t)packet->seq;
    vr_put_be32(r + 17, packet->timestamp);
    vr_put_be32(r + 21, packet->ssrc);
    if (length)
        memcpy(r + 25, packet->payload, length);
    vr_put_be32(r + 25 + length, vr_crc32(0, r, 25 + length));
    if (!t->has_keyframe && vr_vp8_keyframe(packet->payload, length)) {
        t->has_keyframe = 1;
        t->keyframe = t->count;
    }
    t->used += need;
    *total += need;
    t->count++;
    return 0;
}

void vr_tap_clear(vr_tap *t, size_t *total) {
    *total -= t->used;
    t->used = 0;
    t->count = 0;
    t->has_keyframe = 0;
    t->keyframe = 0;
    if (t->size > VR_TAP_KEEP) {
        free(t->data);
        t->data = NULL;
        t->size = 0;
    }
}

void vr_tap_free(vr_tap *t, size_t *total) {
    *total -= t->used;
    free(t->data);
    t->data = NULL;
    t->used = t->size = 0;
    t->count = 0;
    t->has_keyframe = 0;
}
