/* The per-packet path of the forwarding core: a publisher's packet classified, then rewritten,
 * kept, protected and sent to each of its subscribers; a subscriber's NACK answered over RTX.
 * The Python reference is publisher.py, feeds.py and subscriber.py: the same decisions, in the
 * same order, so that both planes pass one contract. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "parse.h"
#include "plane.h"

#define NTP_EPOCH_OFFSET 2208988800ull
#define RETRANSMIT_BURST ((double)VR_HISTORY)

enum { REASON_OTHER = 0 };

typedef struct {
    double now;        /* wall clock, for timestamps and the sender reports */
    uint8_t send_time[3];
    uint64_t ntp;
} vr_moment;

static void moment(vr_moment *m) {
    double now = vr_realtime();
    uint32_t ast = (uint32_t)((uint64_t)(now * (1 << 18)) & 0xffffff);
    m->now = now;
    m->send_time[0] = (uint8_t)(ast >> 16), m->send_time[1] = (uint8_t)(ast >> 8), m->send_time[2] = (uint8_t)ast;
    double whole = floor(now);
    m->ntp = ((uint64_t)whole + NTP_EPOCH_OFFSET) << 32 | (uint64_t)((now - whole) * 4294967296.0);
}

/* The RTP header with the subscriber's extensions (mid, abs-send-time, audio level as negotiated). */
static size_t write_header(const vr_subscriber *s, uint8_t *out, uint8_t payload_type, uint8_t marker, uint16_t seq,
                           uint32_t timestamp, uint32_t ssrc, const uint8_t send_time[3], int level) {
    uint8_t elements[32];
    size_t n = 0;
    memcpy(elements, s->mid_element, s->mid_length);
    n += s->mid_length;
    if (s->ast_id) {
        elements[n++] = (uint8_t)(s->ast_id << 4 | 2);
        memcpy(elements + n, send_time, 3);
        n += 3;
    }
    if (level >= 0 && s->audio_level_id) {
        elements[n++] = (uint8_t)(s->audio_level_id << 4);
        elements[n++] = (uint8_t)level;
    }
    out[0] = n ? 0x90 : 0x80;
    out[1] = (uint8_t)(marker << 7 | payload_type);
    out[2] = (uint8_t)(seq >> 8), out[3] = (uint8_t)seq;
    vr_put_be32(out + 4, timestamp);
    vr_put_be32(out + 8, ssrc);
    if (!n)
        return 12;
    size_t padded = (n + 3) & ~(size_t)3;
    memset(elements + n, 0, padded - n);
    out[12] = 0xbe, out[13] = 0xde;
    out[14] = (uint8_t)((padded / 4) >> 8), out[15] = (uint8_t)(padded / 4);
    memcpy(out + 16, elements, padded);
    return 16 + padded;
}

static void fell_behind(vr_plane *p, int index) {
    vr_subscriber *s = &p->subscribers[index];
    p->counters.dropped++;
    if (!s->video || !s->running)
        return;  /* audio goes on with the next packet */
    s->running = 0;
    vr_event event = {.kind = VR_EV_FELL_BEHIND, .subscriber = index};
    vr_plane_emit(p, &event);
    vr_subscriber_ask_keyframe(p, index, 0);  /* the usual wait: it may keep falling behind */
}

/* Protect and send p->out (length bytes); 1 when it went. */
static int send_out(vr_plane *p, int index, size_t length) {
    vr_subscriber *s = &p->subscribers[index];
    if (!s->configured || !s->routed || !s->srtp_ready)
        return 0;
    size_t sealed = 0;
    if (vr_srtp_protect(&s->srtp, p->out, length, p->sealed, &sealed))
        return 0;
    const struct sockaddr *to = s->address_length ? (const struct sockaddr *)&s->address : NULL;
    ssize_t rc = sendto(s->fd, p->sealed, sealed, MSG_DONTWAIT | MSG_NOSIGNAL, to, s->address_length);
    if (rc >= 0)
        return 1;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        fell_behind(p, index);
    return 0;
}

static void send_packet(vr_plane *p, int index, const vr_packet *packet, const vr_moment *m) {
    vr_subscriber *s = &p->subscribers[index];
    uint16_t seq;
    uint32_t timestamp;
    if (!vr_stream_map(s, packet->seq, packet->timestamp, &seq, &timestamp))
        return;
    size_t size = packet->payload_length;
    size_t header = write_header(s, p->out, s->payload_type, packet->marker, seq, timestamp, s->ssrc, m->send_time,
                                 s->video ? -1 : packet->level);
    uint8_t *payload = p->out + header;
    memcpy(payload, packet->payload, size);
    if (s->layered)
        vr_vp8_rewrite(s, payload, size);
    if (s->history) {
        vr_history_entry *e = &s->history[seq % VR_HISTORY];
        e->used = packet->ref.stamp != 0;
        e->seq = seq, e->timestamp = timestamp, e->marker = packet->marker, e->ref = packet->ref;
        memcpy(e->head, payload, size < VR_VP8_HEAD ? size : VR_VP8_HEAD);
    }
    int sent = send_out(p, index, header + size);
    /* Its sequence number is used up even if it did not go: SRTP may have counted it, and a
     * NACK can still bring it from the history. */
    int newest = vr_stream_sent(s, seq, timestamp, m->now);
    if (!sent)
        return;
    if (newest)
        s->ntp = m->ntp, s->rtp = timestamp;
    s->octets += size;
    s->packets++;
    p->counters.forwarded++;
    p->counters.bytes_forwarded += size;
}

/* While not connected: a video subscriber keeps the latest keyframe and what follows (up to VR_HOLD
 * packets), so that it starts the moment it can send instead of asking again (gate.StartGate). */
static void hold(vr_subscriber *s, const vr_packet *packet, int keyframe) {
    if (!s->video)
        return;
    if (keyframe) {
        if (!s->held && !(s->held = malloc(VR_HOLD * sizeof *s->held)))
            return;
        s->held_count = 0;
    } else if (!s->held_count) {
        return;
    }
    if (s->held_count >= VR_HOLD || !packet->ref.stamp) {
        s->held_count = 0;  /* too long to catch up with (or not kept): wait for the next keyframe */
        return;
    }
    s->held[s->held_count++] = (vr_held_entry){packet->seq, packet->marker, packet->timestamp, packet->ref};
}

static void between_runs(vr_plane *p, int index, const vr_packet *packet, int keyframe, const vr_moment *m) {
    vr_subscriber *s = &p->subscribers[index];
    if (!s->configured || !s->routed) {
        hold(s, packet, keyframe);
        return;
    }
    int held = s->held_count;
    if (!held && !keyframe && s->video) {
        vr_subscriber_ask_keyframe(p, index, s->new_source);
        return;
    }
    s->running = 1, s->new_source = 0;
    if (s->layered) {
        s->run_first_seq = s->next_seq;
        s->vp8_run_started = 0;
    }
    if (held) {
        vr_held_entry *list = s->held;
        s->held = NULL, s->held_count = 0;
        vr_stream_start_run(s, list[0].seq, list[0].timestamp, m->now);
        for (int i = 0; i < held; i++) {
            const vr_kept *kept = vr_plane_kept(p, &list[i].ref);
            if (!kept)
                break;  /* its publisher's ring went round since: the rest is lost, a NACK or PLI follows */
            vr_packet each = {.ssrc = packet->ssrc, .timestamp = list[i].timestamp, .seq = list[i].seq,
                              .marker = list[i].marker, .level = -1, .payload = kept->payload,
                              .payload_length = kept->length, .ref = list[i].ref};
            send_packet(p, index, &each, m);
        }
        free(list);
    } else {
        vr_stream_start_run(s, packet->seq, packet->timestamp, m->now);
    }
    send_packet(p, index, packet, m);
}

static void forward(vr_plane *p, int index, const vr_packet *packet, int layer, int keyframe, const vr_moment *m) {
    vr_subscriber *s = &p->subscribers[index];
    if (s->layered) {  /* the layer switch (gate.LayerSwitch): at a keyframe of the pending layer */
        if (layer == s->pending_layer && keyframe) {
            int first = s->new_source && !s->running;
            s->current_layer = layer, s->pending_layer = -1;
            vr_subscriber_switched(s);
            vr_event event = {.kind = VR_EV_LAYER, .subscriber = index, .publisher = s->publisher, .value = layer,
                              .reason = first ? REASON_OTHER : s->pending_reason};
            vr_plane_emit(p, &event);
        } else if (layer != s->current_layer) {
            return;
        }
    }
    if (!s->running)
        between_runs(p, index, packet, keyframe, m);
    else
        send_packet(p, index, packet, m);
}

/* The packet's layer (0 for one stream) and whether it starts a keyframe; -1: dropped. */
static int classify(vr_plane *p, int publisher, const vr_packet *packet, int *keyframe, double now) {
    vr_publisher *pub = &p->publishers[publisher];
    int (*starts)(const uint8_t *, size_t) = pub->codec == VR_CODEC_H264 ? vr_h264_keyframe : vr_vp8_keyframe;
    *keyframe = 0;
    if (!pub->layers) {
        pub->ssrc = packet->ssrc, pub->has_ssrc = 1;
        if (!pub->video) {
            int change = packet->level >= 0 ? vr_voice_feed(&pub->voice, packet->level & 0x7f, now) : -1;
            if (change >= 0) {
                vr_event event = {.kind = VR_EV_VOICE, .publisher = publisher, .value = change};
                vr_plane_emit(p, &event);
            }
            return 0;
        }
        if ((*keyframe = starts(packet->payload, packet->payload_length)))
            pub->keyframes[0].answered = 1;
        return 0;
    }
    int layer = -1;
    for (int i = 0; i < pub->layers; i++)
        if (pub->has_layer_ssrc[i] && pub->layer_ssrc[i] == packet->ssrc)
            layer = i;
    if (layer < 0) {  /* no RID seen for its SSRC yet, or one the offer did not have */
        pub->unknown_layer_packets++;
        return -1;
    }
    vr_meter_packet(pub, layer, packet->payload_length, now);
    if ((*keyframe = starts(packet->payload, packet->payload_length)))
        pub->keyframes[layer].answered = 1;
    return layer;
}

/* The payload into the publisher's ring (video only), where histories and holds point to it. */
static void keep(vr_plane *p, int publisher, vr_packet *packet) {
    vr_publisher *pub = &p->publishers[publisher];
    packet->ref.stamp = 0;
    if (!pub->video || packet->payload_length > VR_HISTORY_PAYLOAD)
        return;
    if (!pub->ring) {
        pub->ring_size = VR_HISTORY * (uint32_t)(pub->layers ? pub->layers : 1);
        if (!(pub->ring = calloc(pub->ring_size, sizeof *pub->ring)))
            return;
    }
    uint32_t stamp = ++pub->stamps ? pub->stamps : ++pub->stamps;  /* never 0, which means none */
    uint32_t slot = stamp % pub->ring_size;
    vr_kept *kept = &pub->ring[slot];
    kept->stamp = stamp;
    kept->length = (uint16_t)packet->payload_length;
    memcpy(kept->payload, packet->payload, packet->payload_length);
    packet->ref = (vr_ref){publisher, pub->incarnation, slot, stamp};
}

void vr_plane_receive(vr_plane *p, int publisher, const vr_packet *received) {
    vr_publisher *pub = &p->publishers[publisher];
    vr_packet copy = *received, *packet = &copy;
    pub->packets++;
    p->counters.received++;
    double now = vr_monotonic();
    int keyframe;
    int layer = classify(p, publisher, packet, &keyframe, now);
    if (layer < 0 || pub->first < 0)
        return;
    keep(p, publisher, packet);
    if (pub->layers && now >= pub->next_choice && p->on_choice) {
        pub->next_choice = now + p->choice_interval;
        p->on_choice(p, publisher);  /* the caller revisits its subscribers' layers, before this packet goes */
    }
    vr_moment m;
    moment(&m);
    for (int index = pub->first, next; index >= 0; index = next) {
        vr_subscriber *s = &p->subscribers[index];
        if (!s->used || s->publisher != publisher)
            break;  /* a callback (an event's wakeup) changed the links under the walk: the rest waits */
        next = s->next;
        forward(p, index, packet, layer, keyframe, &m);
    }
}

/* A retransmission (RFC 4588) as the packet it repairs: its media SSRC (the layer's that its RTX
 * SSRC was learnt for; a plain publisher's own) and original sequence number. 1 when unwrapped,
 * 0 when it repairs nothing known, -1 when it is too short to hold the original sequence number. */
static int unwrap_rtx(const vr_publisher *pub, vr_packet *packet) {
    if (packet->payload_length < 2)
        return -1;
    if (pub->layers) {
        int found = 0;
        for (int i = 0; i < pub->layers; i++)
            if (pub->has_layer_rtx_ssrc[i] && pub->layer_rtx_ssrc[i] == packet->ssrc && pub->has_layer_ssrc[i]) {
                packet->ssrc = pub->layer_ssrc[i];
                found = 1;
            }
        if (!found)
            return 0;
    } else {
        if (!pub->has_ssrc)
            return 0;
        packet->ssrc = pub->ssrc;
    }
    packet->seq = vr_be16(packet->payload);
    packet->payload += 2;
    packet->payload_length -= 2;
    return 1;
}

int vr_plane_receive_datagram(vr_plane *p, int publisher, const uint8_t *data, size_t length, double arrival) {
    vr_rtp rtp;
    if (length > VR_MAX_PAYLOAD || vr_rtp_parse(data, length, &rtp)) {  /* no datagram is longer */
        p->counters.malformed++;
        return 0;
    }
    vr_publisher *pub = &p->publishers[publisher];
    vr_packet packet = {.ssrc = rtp.ssrc, .timestamp = rtp.timestamp, .seq = rtp.sequence, .marker = rtp.marker,
                        .level = -1, .payload = data + rtp.header_length, .payload_length = rtp.payload_length};
    if (pub->rtx_payload_type >= 0 && rtp.payload_type == pub->rtx_payload_type) {
        int unwrapped = unwrap_rtx(pub, &packet);
        if (unwrapped <= 0) {
            if (unwrapped < 0)
                p->counters.malformed++;
            return 0;
        }
    }
    size_t offset, size;
    if (pub->audio_level_id && vr_rtp_extension(data, &rtp, (unsigned)pub->audio_level_id, &offset, &size) == 1 &&
        size >= 1)
        packet.level = data[offset];
    pub->last_arrival = arrival;
    vr_plane_receive(p, publisher, &packet);
    return 1;
}

int vr_subscriber_nack(vr_plane *p, int index, const uint16_t *seqs, size_t count, double rate) {
    vr_subscriber *s = &p->subscribers[index];
    if (!s->configured || !s->has_rtx || !s->history)
        return 0;
    vr_moment m;
    moment(&m);
    double now = vr_monotonic();
    s->budget += (now - s->budget_stamp) * rate;
    if (s->budget > RETRANSMIT_BURST)
        s->budget = RETRANSMIT_BURST;
    s->budget_stamp = now;
    int sent = 0;
    for (size_t i = 0; i < count; i++) {
        if (s->budget < 1.0)
            break;  /* the rest stays lost; a PLI from the subscriber brings a keyframe */
        uint16_t seq = seqs[i];
        if (s->run_first_seq >= 0 && (uint16_t)(seq - (uint16_t)s->run_first_seq) >= 0x8000)
            continue;  /* before the keyframe its layer started at: the decoder no longer needs it */
        vr_history_entry *e = &s->history[seq % VR_HISTORY];
        const vr_kept *kept = e->used && e->seq == seq ? vr_plane_kept(p, &e->ref) : NULL;
        if (!kept)
            continue;
        s->budget -= 1.0;
        size_t header = write_header(s, p->out, s->rtx_payload_type, e->marker, s->rtx_seq, e->timestamp, s->rtx_ssrc,
                                     m.send_time, -1);
        uint8_t *payload = p->out + header + 2;
        p->out[header] = (uint8_t)(seq >> 8), p->out[header + 1] = (uint8_t)seq;
        memcpy(payload, kept->payload, kept->length);
        memcpy(payload, e->head, kept->length < VR_VP8_HEAD ? kept->length : VR_VP8_HEAD);  /* as it was sent */
        s->rtx_seq++;
        if (send_out(p, index, header + 2 + kept->length)) {
            p->counters.retransmitted++;
            sent++;
        }
    }
    return sent;
}
