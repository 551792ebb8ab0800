/* The receive-side bandwidth estimator (remb.h), written from draft-ietf-rmcat-gcc's delay-based
 * controller with the constants and update order of aiortc 1.16's rate.py, so that both give the
 * same estimates on the same arrivals (tests/unit/test_native_remb.py). Where aiortc's Python
 * integers are unbounded, the figures here saturate instead of overflowing; rounding is
 * Python's round() (half to even: rint in the default rounding mode). */
#include "remb.h"

#include <math.h>
#include <string.h>

#define GROUP_LENGTH ((5 << 26) / 1000)         /* 5 ms of send time, in abs-send-time << 8 units */
#define TIMESTAMP_TO_MS (1000.0 / (1 << 26))
#define BURST_DELTA_MS 5
#define MAX_ADAPT_OFFSET_MS 15
#define MIN_NUM_DELTAS 60
#define DELTA_COUNTER_MAX 1000
#define FEEDBACK_INTERVAL_MS 500
#define RTT_MS 200
#define RATE_HOLD 0
#define RATE_INCREASE 1
#define RATE_DECREASE 2

/* A double to int64 as Python's int() (truncating) or round(), saturated instead of undefined. */
static int64_t to_int(double x) {
    if (x != x)
        return 0;
    if (x >= 9.2e18)
        return INT64_MAX;
    if (x <= -9.2e18)
        return INT64_MIN;
    return (int64_t)x;
}

static int64_t round_int(double x) { return to_int(rint(x)); }

static int64_t add_sat(int64_t a, int64_t b) {
    int64_t sum;
    return __builtin_add_overflow(a, b, &sum) ? (b > 0 ? INT64_MAX : INT64_MIN) : sum;
}

static int uint32_gt(uint32_t a, uint32_t b) {
    return (a < b && b - a > 0x80000000u) || (a > b && a - b < 0x80000000u);
}

void vr_remb_init(vr_remb *r) {
    memset(r, 0, sizeof *r);
    r->rate_initialized = 1;
    r->e[0][0] = 100.0;
    r->e[1][1] = 0.1;
    r->slope = 1.0 / 64;
    r->var_noise = 50.0;
    r->threshold = 12.5;
    r->var_max_kbps = 0.4;
    r->current_bitrate = r->latest_throughput = 30000000;
}

/* ---- incoming bitrate (1 ms buckets over a second) ---- */

static void rate_reset(vr_remb *r) {
    memset(r->bucket_count, 0, sizeof r->bucket_count);
    memset(r->bucket_value, 0, sizeof r->bucket_value);
    r->origin_index = r->has_origin = 0;
    r->origin_ms = r->total_count = r->total_value = 0;
}

static void rate_erase_old(vr_remb *r, int64_t now_ms) {
    int64_t new_origin = now_ms - VR_REMB_WINDOW_MS + 1;
    if (new_origin - r->origin_ms >= VR_REMB_WINDOW_MS) { /* the whole window aged out: one step */
        int64_t steps = new_origin - r->origin_ms;
        memset(r->bucket_count, 0, sizeof r->bucket_count);
        memset(r->bucket_value, 0, sizeof r->bucket_value);
        r->total_count = r->total_value = 0;
        r->origin_index = (int)((r->origin_index + steps % VR_REMB_WINDOW_MS) % VR_REMB_WINDOW_MS);
        r->origin_ms = new_origin;
        return;
    }
    while (r->origin_ms < new_origin) {
        r->total_count -= r->bucket_count[r->origin_index];
        r->total_value -= r->bucket_value[r->origin_index];
        r->bucket_count[r->origin_index] = r->bucket_value[r->origin_index] = 0;
        r->origin_index = (r->origin_index + 1) % VR_REMB_WINDOW_MS;
        r->origin_ms++;
    }
}

static void rate_add(vr_remb *r, uint32_t value, int64_t now_ms) {
    if (!r->has_origin) {
        r->has_origin = 1;
        r->origin_ms = now_ms;
    } else {
        rate_erase_old(r, now_ms);
    }
    int64_t index = (r->origin_index + (now_ms - r->origin_ms)) % VR_REMB_WINDOW_MS;
    if (index < 0)
        index += VR_REMB_WINDOW_MS; /* time went back: Python's modulo */
    r->bucket_count[index]++; /* (saturating: a clock that never moves would add up for ever) */
    r->bucket_value[index] = add_sat(r->bucket_value[index], value);
    r->total_count++;
    r->total_value = add_sat(r->total_value, value);
}

/* The incoming bitrate in bit/s, or -1 (aiortc's None) */
static int64_t rate_now(vr_remb *r, int64_t now_ms) {
    if (!r->has_origin)
        return -1;
    rate_erase_old(r, now_ms);
    int64_t active = now_ms - r->origin_ms + 1;
    if (r->total_count > 0 && active > 1)
        return round_int(8000.0 * (double)r->total_value / (double)active);
    return -1;
}

/* ---- inter-arrival: send-time groups ---- */

static int belongs_to_burst(const vr_remb *r, uint32_t timestamp, int64_t arrival_ms) {
    int64_t timestamp_delta_ms = round_int(TIMESTAMP_TO_MS * (double)(uint32_t)(timestamp - r->current.last));
    int64_t arrival_delta = arrival_ms - r->current.arrival;
    return timestamp_delta_ms == 0 || (arrival_delta - timestamp_delta_ms < 0 && arrival_delta <= BURST_DELTA_MS);
}

/* 1 with the deltas between the last two complete groups when a group completes */
static int compute_deltas(vr_remb *r, uint32_t timestamp, int64_t arrival_ms, uint32_t size, uint32_t *ts_delta,
                          int64_t *arrival_delta, int64_t *size_delta) {
    int deltas = 0;
    vr_remb_group *cur = &r->current;
    if (!cur->has) {
        *cur = (vr_remb_group){.has = 1, .first = timestamp, .last = timestamp};
    } else if ((uint32_t)(timestamp - cur->first) >= 0x80000000u) {
        return 0; /* out of order */
    } else if (!belongs_to_burst(r, timestamp, arrival_ms) && (uint32_t)(timestamp - cur->first) > GROUP_LENGTH) {
        if (r->previous.has) {
            *ts_delta = cur->last - r->previous.last;
            *arrival_delta = cur->arrival - r->previous.arrival;
            *size_delta = cur->size - r->previous.size;
            deltas = 1;
        }
        r->previous = *cur;
        *cur = (vr_remb_group){.has = 1, .first = timestamp, .last = timestamp};
    } else if (uint32_gt(timestamp, cur->last)) {
        cur->last = timestamp;
    }
    cur->size = add_sat(cur->size, size); /* one endless burst must not overflow */
    cur->arrival = arrival_ms;
    cur->has_arrival = 1;
    return deltas;
}

/* ---- over-use estimator ---- */

static double min_frame_period(vr_remb *r, double ts_delta) {
    double least = ts_delta;
    for (int i = 0; i < r->frame_count; i++)
        least = fmin(r->frame_history[i], least);
    r->frame_history[r->frame_next] = ts_delta; /* a ring: the oldest goes, as aiortc's pop(0) */
    r->frame_next = (r->frame_next + 1) % VR_REMB_FRAME_HISTORY;
    if (r->frame_count < VR_REMB_FRAME_HISTORY)
        r->frame_count++;
    return least;
}

static void update_noise(vr_remb *r, double residual, double ts_delta) {
    double alpha = r->deltas > 10 * 30 ? 0.002 : 0.01;
    double beta = pow(1 - alpha, ts_delta * 30.0 / 1000.0);
    r->avg_noise = beta * r->avg_noise + (1 - beta) * residual;
    double d = r->avg_noise - residual;
    r->var_noise = beta * r->var_noise + (1 - beta) * (d * d);
    if (r->var_noise < 1)
        r->var_noise = 1;
}

static void estimator_update(vr_remb *r, int64_t time_delta_ms, double ts_delta_ms, int64_t size_delta) {
    double period = min_frame_period(r, ts_delta_ms);
    double t_ts_delta = (double)time_delta_ms - ts_delta_ms;
    r->deltas = r->deltas + 1 < DELTA_COUNTER_MAX ? r->deltas + 1 : DELTA_COUNTER_MAX;
    double (*e)[2] = r->e;
    e[0][0] += 1e-13;
    e[1][1] += 1e-3;
    if ((r->hypothesis == VR_USAGE_OVER && r->offset < r->previous_offset) ||
        (r->hypothesis == VR_USAGE_UNDER && r->offset > r->previous_offset))
        e[1][1] += 10 * 1e-3;
    double h0 = (double)size_delta, h1 = 1.0;
    double eh0 = e[0][0] * h0 + e[0][1] * h1, eh1 = e[1][0] * h0 + e[1][1] * h1;
    double residual = t_ts_delta - r->slope * h0 - r->offset;
    if (r->hypothesis == VR_USAGE_NORMAL) {
        double max_residual = 3.0 * sqrt(r->var_noise);
        if (fabs(residual) < max_residual)
            update_noise(r, residual, period);
        else
            update_noise(r, residual < 0 ? -max_residual : max_residual, period);
    }
    double denom = r->var_noise + h0 * eh0 + h1 * eh1;
    double k0 = eh0 / denom, k1 = eh1 / denom;
    double ikh00 = 1.0 - k0 * h0, ikh01 = -k0 * h1, ikh10 = -k1 * h0, ikh11 = 1.0 - k1 * h1;
    double e00 = e[0][0], e01 = e[0][1];
    e[0][0] = e00 * ikh00 + e[1][0] * ikh01;
    e[0][1] = e01 * ikh00 + e[1][1] * ikh01;
    e[1][0] = e00 * ikh10 + e[1][0] * ikh11;
    e[1][1] = e01 * ikh10 + e[1][1] * ikh11;
    r->previous_offset = r->offset;
    r->slope += k0 * residual;
    r->offset += k1 * residual;
}

/* ---- over-use detector ---- */

static void update_threshold(vr_remb *r, double modified_offset, int64_t now_ms) {
    if (!r->has_threshold_update) {
        r->has_threshold_update = 1;
        r->threshold_update_ms = now_ms;
    }
    double magnitude = fabs(modified_offset);
    if (magnitude > r->threshold + MAX_ADAPT_OFFSET_MS) {
        r->threshold_update_ms = now_ms;
        return;
    }
    double k = magnitude < r->threshold ? 0.039 : 0.0087;
    int64_t elapsed = now_ms - r->threshold_update_ms;
    if (elapsed > 100)
        elapsed = 100;
    r->threshold += k * (magnitude - r->threshold) * (double)elapsed;
    r->threshold = fmax(6, fmin(r->threshold, 600));
    r->threshold_update_ms = now_ms;
}

static void detect(vr_remb *r, double ts_delta_ms, int64_t now_ms) {
    if (r->deltas < 2)
        return;
    double t = (r->deltas < MIN_NUM_DELTAS ? r->deltas : MIN_NUM_DELTAS) * r->offset;
    if (t > r->threshold) {
        if (!r->has_overuse_time) {
            r->has_overuse_time = 1;
            r->overuse_time = ts_delta_ms / 2;
        } else {
            r->overuse_time += ts_delta_ms;
        }
        if (r->overuse_counter < 1000000)
            r->overuse_counter++; /* (only ever compared with 1) */
        if (r->overuse_time > 10 && r->overuse_counter > 1 && r->offset >= r->detector_previous_offset) {
            r->overuse_counter = 0;
            r->overuse_time = 0;
            r->hypothesis = VR_USAGE_OVER;
        }
    } else {
        r->overuse_counter = 0;
        r->has_overuse_time = 0;
        r->hypothesis = t < -r->threshold ? VR_USAGE_UNDER : VR_USAGE_NORMAL;
    }
    r->detector_previous_offset = r->offset;
    update_threshold(r, t, now_ms);
}

/* ---- AIMD rate control ---- */

static int64_t near_max_rate_increase(const vr_remb *r) {
    double bits_per_frame = (double)r->current_bitrate / 30;
    double packets = ceil(bits_per_frame / (8 * 1200));
    if (packets < 1)
        packets = 1; /* (aiortc divides by zero at a bitrate of 0) */
    double avg_packet_bits = bits_per_frame / packets;
    int64_t increase = to_int(avg_packet_bits * 1000 / (RTT_MS + 100));
    return increase > 4000 ? increase : 4000;
}

static int64_t additive_increase(const vr_remb *r, int64_t now_ms) {
    int64_t product, elapsed = now_ms - r->last_change_ms, per_second = near_max_rate_increase(r);
    if (__builtin_mul_overflow(elapsed, per_second, &product))
        return to_int((double)elapsed * (double)per_second / 1000);
    return to_int((double)product / 1000);
}

static int64_t multiplicative_increase(const vr_remb *r, int64_t bitrate, int64_t now_ms) {
    double alpha = 1.08;
    if (r->has_last_change) {
        int64_t elapsed = now_ms - r->last_change_ms;
        alpha = pow(alpha, (double)(elapsed < 1000 ? elapsed : 1000) / 1000);
    }
    return to_int(fmax((alpha - 1) * (double)bitrate, 1000));
}

static void update_max_throughput(vr_remb *r, double kbps) {
    double alpha = 0.05;
    r->avg_max_kbps = r->has_avg_max ? (1 - alpha) * r->avg_max_kbps + alpha * kbps : kbps;
    r->has_avg_max = 1;
    double norm = fmax(1, r->avg_max_kbps), d = r->avg_max_kbps - kbps;
    r->var_max_kbps = (1 - alpha) * r->var_max_kbps + alpha * (d * d) / norm;
    r->var_max_kbps = fmax(0.4, fmin(r->var_max_kbps, 2.5));
}

static void rate_state(vr_remb *r, int usage, int64_t now_ms) {
    if (usage == VR_USAGE_NORMAL && r->state == RATE_HOLD) {
        r->last_change_ms = now_ms;
        r->has_last_change = 1;
        r->state = RATE_INCREASE;
    } else if (usage == VR_USAGE_OVER) {
        r->state = RATE_DECREASE;
    } else if (usage == VR_USAGE_UNDER) {
        r->state = RATE_HOLD;
    }
}

/* The new target bitrate, or -1 (aiortc's None) while not initialised; throughput -1: unknown */
static int64_t rate_control(vr_remb *r, int usage, int64_t throughput, int64_t now_ms) {
    if (!r->bitrate_initialized && throughput >= 0) {
        if (!r->has_first_throughput) {
            r->has_first_throughput = 1;
            r->first_throughput_ms = now_ms;
        } else if (now_ms - r->first_throughput_ms > 3000) {
            r->current_bitrate = throughput;
            r->bitrate_initialized = 1;
        }
    }
    if (!r->bitrate_initialized && usage != VR_USAGE_OVER)
        return -1;
    rate_state(r, usage, now_ms);
    int64_t bitrate = r->current_bitrate;
    if (throughput >= 0)
        r->latest_throughput = throughput;
    else
        throughput = r->latest_throughput;
    double kbps = (double)throughput / 1000;
    double sigma = r->has_avg_max ? sqrt(r->var_max_kbps * r->avg_max_kbps) : 0;
    if (r->state == RATE_INCREASE) {
        if (r->has_avg_max && kbps >= r->avg_max_kbps + 3 * sigma)
            r->near_max = r->has_avg_max = 0;
        int64_t step = r->near_max ? additive_increase(r, now_ms) : multiplicative_increase(r, bitrate, now_ms);
        bitrate = add_sat(bitrate, step);
        r->last_change_ms = now_ms;
        r->has_last_change = 1;
    } else if (r->state == RATE_DECREASE) {
        if (r->has_avg_max && kbps < r->avg_max_kbps - 3 * sigma)
            r->has_avg_max = 0;
        update_max_throughput(r, kbps);
        r->near_max = 1;
        bitrate = round_int(0.85 * (double)throughput);
        r->last_change_ms = now_ms;
        r->has_last_change = 1;
        r->state = RATE_HOLD;
    }
    int64_t most = add_sat(to_int(1.5 * (double)throughput), 10000);
    if (most < r->current_bitrate)
        most = r->current_bitrate;
    r->current_bitrate = bitrate < most ? bitrate : most;
    return r->current_bitrate;
}

/* ---- the estimator ---- */

static void note_ssrc(vr_remb *r, uint32_t ssrc) {
    for (int i = 0; i < r->ssrc_count; i++)
        if (r->ssrcs[i] == ssrc)
            return;
    if (r->ssrc_count < VR_REMB_SSRCS)
        r->ssrcs[r->ssrc_count++] = ssrc;
}

int vr_remb_add(vr_remb *r, int64_t arrival_ms, uint32_t abs_send_time, uint32_t size, uint32_t ssrc,
                int64_t *bitrate) {
    if (arrival_ms > VR_REMB_MAX_MS || arrival_ms < -VR_REMB_MAX_MS)
        return 0;
    uint32_t timestamp = (abs_send_time & 0xffffffu) << 8;
    note_ssrc(r, ssrc);
    if (rate_now(r, arrival_ms) >= 0) {
        r->rate_initialized = 1;
    } else if (r->rate_initialized) {
        rate_reset(r);
        r->rate_initialized = 0;
    }
    rate_add(r, size, arrival_ms);
    uint32_t ts_delta = 0;
    int64_t arrival_delta = 0, size_delta = 0;
    if (compute_deltas(r, timestamp, arrival_ms, size, &ts_delta, &arrival_delta, &size_delta)) {
        double ts_delta_ms = (double)ts_delta * TIMESTAMP_TO_MS;
        estimator_update(r, arrival_delta, ts_delta_ms, size_delta);
        detect(r, ts_delta_ms, arrival_ms);
    }
    if (!r->has_last_update || arrival_ms - r->last_update_ms > FEEDBACK_INTERVAL_MS ||
        r->hypothesis == VR_USAGE_OVER) {
        int64_t target = rate_control(r, r->hypothesis, rate_now(r, arrival_ms), arrival_ms);
        if (target >= 0) {
            r->has_last_update = 1;
            r->last_update_ms = arrival_ms;
            *bitrate = target;
            return 1;
        }
    }
    return 0;
}

void vr_remb_feed_init(vr_remb_feed *f) {
    memset(f, 0, sizeof *f);
    vr_remb_init(&f->estimator);
}

int vr_remb_feed_add(vr_remb_feed *f, int64_t arrival_ms, uint32_t abs_send_time, uint32_t size, uint32_t ssrc,
                     int64_t *bitrate) {
    int due = vr_remb_add(&f->estimator, arrival_ms, abs_send_time, size, ssrc, bitrate);
    f->arrivals++;
    if (f->estimator.hypothesis == VR_USAGE_OVER) {
        f->has_overuse = 1;
        f->overuse_ms = arrival_ms;
    }
    if (due) {
        f->due = 1;
        f->due_bitrate = *bitrate;
        f->due_ms = arrival_ms;
        f->due_has_overuse = f->has_overuse;
        f->due_overuse_ms = f->overuse_ms;
    }
    return due;
}
