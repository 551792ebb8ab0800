/* A ported connection's received RTP handed straight to the forwarding core (port_fast.c).
 *
 * Python learns which publisher an SSRC belongs to (mid, RID, RTX mapping stay its policy) and
 * routes it here; from then on each decrypted datagram of that SSRC is parsed once, counted for the
 * receiver reports (RFC 3550 A.3, A.8), checked for gaps (the NACK generator), noted for the REMB
 * estimator (abs-send-time, arrival, size), unwrapped when it is a retransmission, and given to
 * the plane: no Python per packet. What Python still does reads batches (vr_fast drained after a
 * read): the NACKs due and the REMB arrivals. Pure C over plane.h. */
#ifndef VR_PORT_FAST_H
#define VR_PORT_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "plane.h"
#include "port_tap.h"
#include "remb.h"

#define VR_FAST_SSRCS 16        /* SSRCs one connection's socket forwards in C (a publisher's layers and RTX) */
#define VR_FAST_ARRIVALS 2048   /* REMB arrivals kept between two drains; more are counted and dropped */
#define VR_NACK_WINDOW 128      /* missing packets kept, as aiortc's NackGenerator (RTP_HISTORY_SIZE) */
#define VR_NTP_EPOCH_MS 2208988800000LL

typedef struct {
    int has;                    /* a packet was counted */
    uint16_t base_seq, max_seq;
    int64_t cycles, received, jitter_q4, last_arrival, last_timestamp; /* cycles: already << 16 */
} vr_rx_stats;

typedef struct {
    int has, due;               /* due: a gap was found since the last drain */
    uint16_t max_seq;
    uint8_t missing[32];        /* a bit per sequence number & 255, valid in [max_seq - 128, max_seq) */
} vr_nack;

typedef struct {
    uint32_t ssrc, incarnation, clock_rate;
    int publisher;              /* the plane's index */
    int64_t repaired;           /* an RTX SSRC: the media SSRC it repairs; -1: media */
    int payload_type, audio_level_id, abs_send_time_id;
    int stale;                  /* another payload type came, or the publisher went: Python is to look again */
    vr_rx_stats stats;
    vr_nack nack;               /* a media SSRC's */
    int tapped;                 /* a media SSRC whose track is recorded: each packet also made a record in tap */
    vr_tap tap;
    vr_remb_feed *remb;         /* the estimator its arrivals feed in C; NULL: they go to the ring for Python */
    void *remb_owner;           /* the Python object remb lives in (a reference port_fast_py.c holds) */
} vr_fast_entry;

typedef struct {
    int64_t arrival_ms;         /* since 1900, as aiortc's clock */
    uint32_t abs_send_time, size, ssrc;
} vr_arrival;

typedef struct {
    vr_plane *plane;
    vr_fast_entry entries[VR_FAST_SSRCS];
    int count;
    vr_arrival arrivals[VR_FAST_ARRIVALS];
    int arrival_count;
    uint64_t packets, octets, arrivals_dropped, malformed, rtx_empty, stale_dropped, tap_dropped;
    int due;                    /* since the last drain: a NACK or a REMB became due, an arrival waits in the
                                 * ring, or a route went stale (what Python's drain is for at once) */
    size_t tap_total;           /* bytes of records every entry's tap holds, at most VR_TAP_BYTES */
} vr_fast;

vr_fast_entry *vr_fast_find(vr_fast *f, uint32_t ssrc);
/* A decrypted RTP datagram of a routed entry: 1 taken (forwarded, or dropped: as the Python path
 * would, or because its route is stale: another payload type, the publisher gone, which marks the
 * entry for Python's next drain), 0 when Python is to have it. */
int vr_fast_take(vr_fast *f, vr_fast_entry *e, const uint8_t *data, size_t length, int64_t arrival_ns);
void vr_stats_add(vr_rx_stats *s, uint16_t seq, uint32_t timestamp, int64_t arrival);
int vr_nack_add(vr_nack *n, uint16_t seq);                /* 1 when a gap was found */
void vr_nack_mark(vr_nack *n, uint16_t seq);              /* seq is missing (a seed) */
size_t vr_nack_missing(const vr_nack *n, uint16_t *out);  /* at most VR_NACK_WINDOW, oldest first */

#endif
