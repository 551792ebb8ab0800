/* The pure parts of the forwarding core, as the Python reference has them: keyframe detection
 * (rtp_packets.py; H.264 as RFC 6184 packs it), VP8 picture id rewriting (vp8_rewrite.py), the
 * sequence number and timestamp rewrite (stream_rewrite.py), voice activity (vad.py), keyframe
 * request pacing and the layer meters (gate.py). Every read is bounded by the sizes given. */
#include "plane.h"

#define MAX_REORDER 256
#define KEYFRAME_INTERVAL 0.5
#define KEYFRAME_GAP 0.15
#define SPEECH_LEVEL 50
#define VAD_ONSET 6
#define VAD_HOLD 1.0
#define LAYER_SILENCE 1.0
#define METER_WINDOW 1.0

int vr_vp8_keyframe(const uint8_t *payload, size_t size) {
    if (size < 2)
        return 0;
    uint8_t first = payload[0];
    if (!(first & 0x10) || (first & 0x07))  /* S bit, partition index 0 */
        return 0;
    size_t offset = 1;
    if (first & 0x80) {
        uint8_t extended = payload[1];
        offset = 2;
        if (extended & 0x80) {
            if (offset >= size)
                return 0;
            offset += payload[offset] & 0x80 ? 2 : 1;
        }
        if (extended & 0x40)
            offset += 1;
        if (extended & 0x30)
            offset += 1;
    }
    return offset < size && !(payload[offset] & 0x01);
}

/* An IDR slice (5) or SPS (7) in a single NAL unit, in a STAP-A (24) or at the start of a FU-A (28). */
int vr_h264_keyframe(const uint8_t *payload, size_t size) {
    if (size < 1)
        return 0;
    unsigned type = payload[0] & 0x1f;
    if (type == 5 || type == 7)
        return 1;
    if (type == 28)
        return size >= 2 && (payload[1] & 0x80) && ((payload[1] & 0x1f) == 5 || (payload[1] & 0x1f) == 7);
    if (type != 24)
        return 0;
    size_t at = 1;
    while (at + 2 < size) {
        size_t length = (size_t)payload[at] << 8 | payload[at + 1];
        at += 2;
        if (length == 0 || length > size - at)
            return 0;
        unsigned inner = payload[at] & 0x1f;
        if (inner == 5 || inner == 7)
            return 1;
        at += length;
    }
    return 0;
}

/* The PictureID's offset and width (0: none), TL0PICIDX's offset (-1: none); 0 when too short. */
static int vp8_fields(const uint8_t *p, size_t size, size_t *pid_at, int *width, long *tl0_at, int32_t *pid) {
    *pid_at = 0, *width = 0, *tl0_at = -1, *pid = 0;
    if (size < 1)
        return 0;
    if (!(p[0] & 0x80))
        return 1;
    if (size < 2)
        return 0;
    uint8_t extended = p[1];
    size_t offset = 2;
    if (extended & 0x80) {
        if (offset >= size)
            return 0;
        if (p[offset] & 0x80) {
            if (offset + 1 >= size)
                return 0;
            *pid_at = offset, *width = 15, *pid = (p[offset] & 0x7f) << 8 | p[offset + 1];
            offset += 2;
        } else {
            *pid_at = offset, *width = 7, *pid = p[offset] & 0x7f;
            offset += 1;
        }
    }
    if (extended & 0x40) {
        if (offset >= size)
            return 0;
        *tl0_at = (long)offset;
    }
    return 1;
}

static void note_picture(vr_subscriber *s, int32_t mapped, int32_t mask) {
    int32_t last = s->last_picture_id;
    int32_t ahead = (mapped - last) & mask;
    if (last < 0 || (ahead > 0 && ahead <= mask / 2))
        s->last_picture_id = mapped;
}

void vr_vp8_rewrite(vr_subscriber *s, uint8_t *p, size_t size) {
    size_t pid_at;
    int width;
    long tl0_at;
    int32_t pid;
    if (!vp8_fields(p, size, &pid_at, &width, &tl0_at, &pid) || (!width && tl0_at < 0))
        return;
    int32_t tl0 = tl0_at >= 0 ? p[tl0_at] : -1;
    if (!s->vp8_run_started) {
        s->vp8_run_started = 1;
        if (width)
            s->pid_offset = (s->last_picture_id < 0 ? 0 : s->last_picture_id + 1) - pid;
        if (tl0 >= 0)
            s->tl0_offset = (s->last_tl0 < 0 ? 0 : s->last_tl0 + 1) - tl0;
    }
    if (width == 15) {
        int32_t mapped = (pid + s->pid_offset) & 0x7fff;
        p[pid_at] = (uint8_t)(0x80 | mapped >> 8);
        p[pid_at + 1] = (uint8_t)mapped;
        note_picture(s, mapped, 0x7fff);
    } else if (width == 7) {
        int32_t mapped = (pid + s->pid_offset) & 0x7f;
        p[pid_at] = (uint8_t)mapped;
        note_picture(s, mapped, 0x7f);
    }
    if (tl0 >= 0) {
        int32_t mapped = (tl0 + s->tl0_offset) & 0xff;
        p[tl0_at] = (uint8_t)mapped;
        int32_t ahead = (mapped - s->last_tl0) & 0xff;
        if (s->last_tl0 < 0 || (ahead > 0 && ahead < 0x80))
            s->last_tl0 = mapped;
    }
}

void vr_stream_start_run(vr_subscriber *s, uint16_t seq, uint32_t timestamp, double now) {
    double ticks = s->last_time >= 0 ? (now - s->last_time) * s->clock_rate : 0;
    /* At least one tick on, and at most half the timestamp space: a clock that jumped must not overflow. */
    uint32_t elapsed = ticks < 1 ? 1 : ticks > 2147483647.0 ? 2147483647u : (uint32_t)ticks;
    s->seq_offset = (uint16_t)(s->next_seq - seq);
    s->ts_offset = (uint32_t)(s->last_timestamp + elapsed - timestamp);
    s->highest = (uint16_t)(seq - 1);
    s->window = -1;
}

int vr_stream_map(vr_subscriber *s, uint16_t seq, uint32_t timestamp, uint16_t *out_seq, uint32_t *out_ts) {
    uint16_t ahead = (uint16_t)(seq - s->highest);
    if (ahead == 0)
        return 0;
    if (ahead < 0x8000) {
        s->highest = seq;
        s->window = s->window + ahead < MAX_REORDER ? s->window + ahead : MAX_REORDER;
    } else if (0x10000 - (int)ahead > s->window) {
        return 0;
    }
    *out_seq = (uint16_t)(seq + s->seq_offset);
    *out_ts = timestamp + s->ts_offset;
    return 1;
}

int vr_stream_sent(vr_subscriber *s, uint16_t out_seq, uint32_t out_ts, double now) {
    if ((uint16_t)(out_seq - s->next_seq) >= 0x8000)
        return 0;
    s->next_seq = (uint16_t)(out_seq + 1);
    s->last_timestamp = out_ts;
    s->last_time = now;
    return 1;
}

int vr_voice_feed(vr_voice *v, int level, double now) {
    int loud = level <= SPEECH_LEVEL;
    v->recent[v->at] = (uint8_t)loud;
    v->at = (v->at + 1) % VR_VAD_WINDOW;
    if (v->count < VR_VAD_WINDOW)
        v->count++;
    if (loud)
        v->last_loud = now;
    int sum = 0;
    for (int i = 0; i < v->count; i++)
        sum += v->recent[i];
    if (!v->speaking && sum >= VAD_ONSET)
        return v->speaking = 1;
    if (v->speaking && now - v->last_loud >= VAD_HOLD) {
        v->speaking = 0;
        return 0;
    }
    return -1;
}

int vr_keyframes_ask(vr_keyframes *k, double now, int starting) {
    double wait = starting && k->answered ? KEYFRAME_GAP : KEYFRAME_INTERVAL;
    if (now - k->last_request < wait)
        return 0;
    k->last_request = now;
    k->answered = 0;
    return 1;
}

void vr_meter_packet(vr_publisher *pub, int layer, size_t size, double now) {
    vr_meter *m = &pub->meter[layer];
    if (now - m->last_packet > LAYER_SILENCE)
        m->arriving_since = now;
    m->last_packet = now;
    m->bytes += size;
    if (pub->window_start < 0)
        pub->window_start = now;
    double elapsed = now - pub->window_start;
    if (elapsed < METER_WINDOW)
        return;
    for (int i = 0; i < pub->layers; i++) {
        vr_meter *each = &pub->meter[i];
        double rate = (double)each->bytes * 8 / elapsed;
        /* Smoothed: one window of a keyframe burst must not look like the layer's rate. */
        each->bitrate = each->bitrate == 0 ? rate : 0.5 * each->bitrate + 0.5 * rate;
        each->bytes = 0;
    }
    pub->window_start = now;
}
