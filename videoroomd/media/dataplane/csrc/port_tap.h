/* A recorded SSRC's packets framed as track-file RTP records as the Port takes them (port_tap.c).
 *
 * The recorder (videoroomd/recording/recorder.py) then appends a batch of records per SSRC and read
 * batch, with no Python per packet. The record is exactly what trackfile.py's TrackEncoder.rtp makes
 * (docs/recording.md): u32 length (type + body), u8 type 1, u64 arrival_us, u8 marker, u8 payload type,
 * u16 sequence, u32 timestamp, u32 ssrc, the payload, u32 CRC-32 (zlib's) of all before it; big-endian.
 * Arrival is the kernel's, in µs since the track file's start, which Python gives with the tap. */
#ifndef VR_PORT_TAP_H
#define VR_PORT_TAP_H

#include <stddef.h>
#include <stdint.h>

#include "plane.h"

#define VR_TAP_BYTES (4 << 20)        /* records kept over a Port's SSRCs between two takes; more are dropped */
#define VR_TAP_KEEP 262144            /* a buffer larger than this is freed once taken (a burst's) */
#define VR_RECORD_MAX_PAYLOAD 2048    /* trackfile.MAX_PAYLOAD: a larger payload is not recorded */
#define VR_RECORD_OVERHEAD 29         /* length, type, fixed body, CRC */

typedef struct {
    uint8_t *data;                    /* count records, used bytes */
    size_t used, size;
    uint32_t count;
    int has_keyframe;                 /* a record's payload starts a VP8 key frame: the keyframe-th (from 0) first */
    uint32_t keyframe;
    int64_t start_us;                 /* wall time (µs since the Unix epoch) arrival counts from */
} vr_tap;

void vr_crc32_init(void);             /* once, before any vr_crc32 (the module's init) */
uint32_t vr_crc32(uint32_t crc, const uint8_t *data, size_t length);  /* as zlib.crc32(data, crc) */
/* packet as one record at the end of t's records; *total: the bytes every tap of the Port holds, kept at
 * most VR_TAP_BYTES. 0 appended, 1 not recorded (payload over VR_RECORD_MAX_PAYLOAD), -1 dropped (no room). */
int vr_tap_record(vr_tap *t, size_t *total, const vr_packet *packet, int payload_type, int64_t arrival_ns);
void vr_tap_clear(vr_tap *t, size_t *total);  /* no records (taken or discarded); a large buffer freed */
void vr_tap_free(vr_tap *t, size_t *total);

#endif
