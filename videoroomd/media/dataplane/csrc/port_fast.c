/* The receive side of a routed SSRC in C (port_fast.h): receiver statistics as aiortc's
 * StreamStatistics, gaps as its NackGenerator, arrivals for its REMB estimator, RTX unwrap, then
 * the forwarding core. */
#include "port_fast.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "parse.h"

static int seq_after(uint16_t a, uint16_t b) { /* aiortc's uint16_gt */
    uint16_t d = (uint16_t)(a - b);
    return d >= 1 && d < 0x8000;
}

vr_fast_entry *vr_fast_find(vr_fast *f, uint32_t ssrc) {
    for (int i = 0; i < f->count; i++)
        if (f->entries[i].ssrc == ssrc)
            return &f->entries[i];
    return NULL;
}

void vr_stats_add(vr_rx_stats *s, uint16_t seq, uint32_t timestamp, int64_t arrival) {
    int in_order = !s->has || seq_after(seq, s->max_seq);
    s->received++;
    if (!s->has) {
        s->base_seq = seq;
        s->has = 1;
    } else if (!in_order) {
        return;
    } else if (seq < s->max_seq) {
        s->cycles += 1 << 16;
    }
    if (s->received > 1 && s->last_arrival >= 0 && (int64_t)timestamp != s->last_timestamp) {
        int64_t diff = (arrival - s->last_arrival) - ((int64_t)timestamp - s->last_timestamp);
        if (diff < 0)
            diff = -diff;
        s->jitter_q4 += diff - ((s->jitter_q4 + 8) >> 4);
    }
    s->max_seq = seq;
    s->last_arrival = arrival;
    s->last_timestamp = timestamp;
}

static void set_bit(vr_nack *n, uint16_t seq, int on) {
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (on)
        n->missing[(seq & 255) >> 3] |= bit;
    else
        n->missing[(seq & 255) >> 3] &= (uint8_t)~bit;
}

void vr_nack_mark(vr_nack *n, uint16_t seq) {
    if (n->has && (uint16_t)(n->max_seq - seq) >= 1 && (uint16_t)(n->max_seq - seq) <= VR_NACK_WINDOW)
        set_bit(n, seq, 1);
}

int vr_nack_add(vr_nack *n, uint16_t seq) {
    if (!n->has) {
        n->has = 1;
        n->max_seq = seq;
        memset(n->missing, 0, sizeof n->missing);
        return 0;
    }
    if (!seq_after(seq, n->max_seq)) {
        if ((uint16_t)(n->max_seq - seq) < 256)  /* its bit is still its own */
            set_bit(n, seq, 0);
        return 0;
    }
    uint16_t gap = (uint16_t)(seq - n->max_seq);
    if (gap >= 256)
        memset(n->missing, 0, sizeof n->missing);
    else
        for (uint16_t s = (uint16_t)(n->max_seq + 1); s != (uint16_t)(seq + 1); s++)
            set_bit(n, s, 0);  /* slots of sequence numbers 256 older: theirs no more */
    uint16_t first = gap > VR_NACK_WINDOW ? (uint16_t)(seq - VR_NACK_WINDOW) : (uint16_t)(n->max_seq + 1);
    for (uint16_t s = first; s != seq; s++)
        set_bit(n, s, 1);
    n->max_seq = seq;
    if (gap > 1)
        n->due = 1;
    return gap > 1;
}

size_t vr_nack_missing(const vr_nack *n, uint16_t *out) {
    size_t count = 0;
    if (!n->has)
        return 0;
    for (uint16_t s = (uint16_t)(n->max_seq - VR_NACK_WINDOW); s != n->max_seq; s++)
        if (n->missing[(s & 255) >> 3] & (1u << (s & 7)))
            out[count++] = s;
    return count;
}

static void note_arrival(vr_fast *f, const vr_fast_entry *e, const uint8_t *data, const vr_rtp *rtp,
                         int64_t arrival_ns) {
    size_t offset, size;
    if (!e->abs_send_time_id || vr_rtp_extension(data, rtp, (unsigned)e->abs_send_time_id, &offset, &size) != 1 ||
        size < 3)
        return;
    uint32_t abs_send_time = (uint32_t)data[offset] << 16 | (uint32_t)data[offset + 1] << 8 | data[offset + 2];
    int64_t arrival_ms = arrival_ns / 1000000 + VR_NTP_EPOCH_MS;
    uint32_t payload_size = (uint32_t)(rtp->payload_length + rtp->padding);
    if (e->remb) {
        int64_t bitrate;
        if (vr_remb_feed_add(e->remb, arrival_ms, abs_send_time, payload_size, rtp->ssrc, &bitrate))
            f->due = 1;
        return;
    }
    if (f->arrival_count >= VR_FAST_ARRIVALS) {
        f->arrivals_dropped++;
        return;
    }
    f->due = 1;
    vr_arrival *a = &f->arrivals[f->arrival_count++];
    a->arrival_ms = arrival_ms;
    a->abs_send_time = abs_send_time;
    a->size = payload_size;
    a->ssrc = rtp->ssrc;
}

int vr_fast_take(vr_fast *f, vr_fast_entry *e, const uint8_t *data, size_t length, int64_t arrival_ns) {
    vr_rtp rtp;
    if (length > VR_MAX_PAYLOAD || vr_rtp_parse(data, length, &rtp)) {
        f->malformed++;  /* as the Python path: a packet that does not parse is dropped */
        return 1;
    }
    vr_plane *p = f->plane;
    if (rtp.payload_type != e->payload_type || e->publisher >= p->max_publishers ||
        !p->publishers[e->publisher].used || p->publishers[e->publisher].incarnation != e->incarnation) {
        e->stale = 1;  /* not Python's path now: its NACK generator and statistics are behind the Port's */
        f->due = 1;
        f->stale_dropped++;
        return 1;
    }
    if (arrival_ns < 0)
        arrival_ns = (int64_t)(vr_realtime() * 1e9);
    note_arrival(f, e, data, &rtp, arrival_ns);
    int64_t clock = e->clock_rate;  /* in the clock's units, as aiortc's int(time.time() * clockrate) */
    vr_stats_add(&e->stats, rtp.sequence, rtp.timestamp,
                 arrival_ns / 1000000000 * clock + arrival_ns % 1000000000 * clock / 1000000000);
    f->packets++;
    f->octets += length;
    vr_packet packet = {.ssrc = rtp.ssrc, .timestamp = rtp.timestamp, .seq = rtp.sequence, .marker = rtp.marker,
                        .level = -1, .payload = data + rtp.header_length, .payload_length = rtp.payload_length};
    vr_fast_entry *media = e;
    if (e->repaired >= 0) {
        if (rtp.payload_length < 2) {
            f->rtx_empty++;  /* padding only (a browser's probe): nothing to unwrap, as aiortc */
            return 1;
        }
        packet.ssrc = (uint32_t)e->repaired;
        packet.seq = vr_be16(packet.payload);
        packet.payload += 2;
        packet.payload_length -= 2;
        media = vr_fast_find(f, packet.ssrc);
    }
    if (media) {
        if (vr_nack_add(&media->nack, packet.seq))
            f->due = 1;
        if (media->tapped && vr_tap_record(&media->tap, &f->tap_total, &packet, media->payload_type, arrival_ns) < 0)
            f->tap_dropped++;
    }
    size_t offset, size;
    if (e->audio_level_id && vr_rtp_extension(data, &rtp, (unsigned)e->audio_level_id, &offset, &size) == 1 &&
        size >= 1)
        packet.level = data[offset];
    vr_plane_receive(p, e->publisher, &packet);
    return 1;
}
