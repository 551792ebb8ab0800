/* The receive-side bandwidth estimator behind REMB (remb.c): the delay-based part of
 * draft-ietf-rmcat-gcc as aiortc 1.16's RemoteBitrateEstimator computes it, figure for figure:
 * packets grouped by 5 ms of abs-send-time (bursts kept together), a Kalman filter over the
 * groups' delay variation, an adaptive over-use threshold, AIMD rate control, and the incoming
 * bitrate over a one-second window of 1 ms buckets. Pure C, no allocation: one struct per
 * publisher's connection, fed one arrival at a time. */
#ifndef VR_REMB_H
#define VR_REMB_H

#include <stdint.h>

#define VR_REMB_WINDOW_MS 1000      /* the incoming bitrate's window */
#define VR_REMB_FRAME_HISTORY 60    /* group send-time deltas the noise filter's frame period looks at */
#define VR_REMB_SSRCS 16            /* SSRCs a REMB names; later ones are estimated, not named */
#define VR_REMB_MAX_MS (INT64_C(1) << 52) /* arrival times beyond +-this are refused (no overflow) */

enum { VR_USAGE_NORMAL = 0, VR_USAGE_UNDER = 1, VR_USAGE_OVER = 2 };

typedef struct {
    int has, has_arrival;
    uint32_t first, last;       /* send times, abs-send-time << 8 */
    int64_t arrival, size;
} vr_remb_group;

typedef struct {
    /* incoming bitrate: 1 ms buckets */
    int64_t bucket_count[VR_REMB_WINDOW_MS], bucket_value[VR_REMB_WINDOW_MS];
    int64_t origin_ms, total_count, total_value;
    int origin_index, has_origin, rate_initialized;
    /* inter-arrival */
    vr_remb_group current, previous;
    /* over-use estimator (Kalman) */
    double e[2][2], offset, previous_offset, slope, avg_noise, var_noise;
    double frame_history[VR_REMB_FRAME_HISTORY];
    int frame_count, frame_next, deltas;
    /* over-use detector */
    int hypothesis, overuse_counter, has_overuse_time, has_threshold_update;
    double overuse_time, detector_previous_offset, threshold;
    int64_t threshold_update_ms;
    /* AIMD rate control */
    int has_avg_max, bitrate_initialized, has_first_throughput, has_last_change, near_max, state;
    double avg_max_kbps, var_max_kbps;
    int64_t current_bitrate, latest_throughput, first_throughput_ms, last_change_ms;
    /* the estimator */
    int has_last_update;
    int64_t last_update_ms;
    uint32_t ssrcs[VR_REMB_SSRCS];
    int ssrc_count;
} vr_remb;

void vr_remb_init(vr_remb *r);
/* One packet: arrival in ms (any clock, as the caller's), its 24-bit abs-send-time, payload size,
 * SSRC. Returns 1 with *bitrate set when a REMB is due (as aiortc's add returns one), else 0. */
int vr_remb_add(vr_remb *r, int64_t arrival_ms, uint32_t abs_send_time, uint32_t size, uint32_t ssrc,
                int64_t *bitrate);

/* What a batch of arrivals left for Python's REMB policy: the newest REMB due and when the
 * estimator last saw over-use (port_fast.c feeds it; Python reads it once per read batch). */
typedef struct {
    vr_remb estimator;
    int due, has_overuse, due_has_overuse;
    int64_t due_bitrate, due_ms, overuse_ms, due_overuse_ms;
    uint64_t arrivals;          /* packets fed */
} vr_remb_feed;

void vr_remb_feed_init(vr_remb_feed *f);
/* vr_remb_add, noting the REMB due and the over-use; returns what vr_remb_add does. */
int vr_remb_feed_add(vr_remb_feed *f, int64_t arrival_ms, uint32_t abs_send_time, uint32_t size, uint32_t ssrc,
                     int64_t *bitrate);

#endif
