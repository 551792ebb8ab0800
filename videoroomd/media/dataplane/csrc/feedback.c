/* A connection's RTCP about the streams the plane sends it (feedback.h).
 *
 * A compound is read in two passes: the first checks every packet as aiortc's parser would (a
 * compound it would refuse goes up whole, and nothing of it is done here) and sorts each packet into
 * what C does, what goes up to Python, and what nobody reads; the second does it. */
#include "feedback.h"

#include <string.h>

#include "bytes.h"

enum { IGNORE = 0, DO, UP };

enum { SR = 200, RR = 201, SDES = 202, BYE = 203, RTPFB = 205, PSFB = 206 };
enum { NACK = 1, PLI = 1, FIR = 4, APP = 15 };

typedef struct {
    size_t offset, length;      /* the whole packet in the compound, padding included */
    size_t body, body_length;   /* after the header, without padding */
    uint8_t type, count;
    int what;
} packet;

void vr_feedback_init(vr_feedback *f, vr_plane *plane) {
    memset(f, 0, sizeof *f);
    f->plane = plane;
    f->last_loss = -1;
}

static vr_feedback_entry *find(vr_feedback *f, uint32_t ssrc) {
    for (int i = 0; i < f->count; i++)
        if (f->entries[i].ssrc == ssrc)
            return &f->entries[i];
    return NULL;
}

int vr_feedback_add(vr_feedback *f, uint32_t ssrc, int subscriber, int video, double rate) {
    vr_feedback_entry *e = find(f, ssrc);
    if (!e) {
        if (f->count >= VR_FEEDBACK_SSRCS)
            return -1;
        e = &f->entries[f->count++];
    }
    *e = (vr_feedback_entry){.ssrc = ssrc, .subscriber = subscriber, .video = video, .rate = rate};
    return 0;
}

int vr_feedback_discard(vr_feedback *f, uint32_t ssrc) {
    vr_feedback_entry *e = find(f, ssrc);
    if (!e)
        return 0;
    *e = f->entries[--f->count];
    return 1;
}

/* The entry of ssrc while its subscriber is still the plane's (an index Python gave back and the
 * plane reused is never acted on), else NULL. */
static vr_feedback_entry *live(vr_feedback *f, uint32_t ssrc) {
    vr_feedback_entry *e = find(f, ssrc);
    if (!e || e->subscriber < 0 || e->subscriber >= f->plane->max_subscribers)
        return NULL;
    const vr_subscriber *s = &f->plane->subscribers[e->subscriber];
    return s->used && s->configured && s->ssrc == ssrc ? e : NULL;
}

/* aiortc's RtcpSdesPacket.parse: 1 when it would take the body. */
static int sdes_ok(const uint8_t *d, size_t n, unsigned count) {
    size_t at = 0;
    for (unsigned chunk = 0; chunk < count; chunk++) {
        if (n < at + 4)
            return 0;
        at += 4;
        while (at + 1 < n) {
            uint8_t type = d[at], length = d[at + 1];
            at += 2;
            if (n < at + length)
                return 0;
            at += length;
            if (type == 0)
                break;
        }
    }
    return 1;
}

static int remb_fci(const uint8_t *fci, size_t n) { return n >= 8 && memcmp(fci, "REMB", 4) == 0; }

/* What to do with one packet whose body aiortc would parse; -1 when it would refuse it. */
static int sort(vr_feedback *f, const uint8_t *p, const packet *k) {
    const uint8_t *d = p + k->body;
    size_t n = k->body_length;
    switch (k->type) {
    case SR:
        return n == 24 + 24 * (size_t)k->count ? UP : -1;
    case RR:
        return n == 4 + 24 * (size_t)k->count ? DO : -1;
    case SDES:
        return sdes_ok(d, n, k->count) ? IGNORE : -1;
    case BYE:
        return n >= 4 * (size_t)k->count ? UP : -1;
    case RTPFB:
        if (n < 8 || n % 4)
            return -1;
        if (k->count != NACK)
            return IGNORE;
        return live(f, vr_be32(d + 4)) ? DO : UP;
    case PSFB:
        if (n < 8)
            return -1;
        if (k->count == PLI)
            return live(f, vr_be32(d + 4)) ? DO : UP;
        if (k->count == FIR) {
            if (live(f, vr_be32(d + 4)))
                return DO;
            for (size_t at = 8; at + 8 <= n; at += 8)
                if (live(f, vr_be32(d + at)))
                    return DO;
            return UP;
        }
        if (k->count == APP && remb_fci(d + 8, n - 8))
            return DO;
        return UP;
    default:
        return IGNORE; /* aiortc reads no other type */
    }
}

static void nack(vr_feedback *f, const uint8_t *d, size_t n) {
    vr_feedback_entry *e = live(f, vr_be32(d + 4));
    uint16_t seqs[VR_HISTORY];
    size_t count = 0;
    for (size_t at = 8; at + 4 <= n && count < VR_HISTORY; at += 4) {  /* aiortc's order: pid, then its bits */
        uint16_t pid = vr_be16(d + at), bits = vr_be16(d + at + 2);
        seqs[count++] = pid;
        for (int bit = 0; bit < 16 && count < VR_HISTORY; bit++)
            if (bits >> bit & 1)
                seqs[count++] = (uint16_t)(pid + bit + 1);
    }
    f->nacks++;
    vr_subscriber_nack(f->plane, e->subscriber, seqs, count, e->rate);
}

static void keyframe(vr_feedback *f, vr_feedback_entry *e) {
    f->keyframes++;
    vr_subscriber_ask_keyframe(f->plane, e->subscriber, 0);
}

static void remb(vr_feedback *f, const uint8_t *fci, size_t n) {
    unsigned exponent = fci[5] >> 2, named = fci[4];
    uint64_t mantissa = (uint64_t)(fci[5] & 3) << 16 | (uint64_t)fci[6] << 8 | fci[7];
    for (size_t at = 8, i = 0; i < named && at + 4 <= n; i++, at += 4) {
        if (live(f, vr_be32(fci + at))) {  /* the client's estimate, for a stream it gets from us */
            f->remb_bps = exponent > 45 && mantissa ? INT64_MAX : (int64_t)(mantissa << exponent);
            f->has_remb = f->due = 1;
            f->rembs++;
            return;
        }
    }
}

static void reports(vr_feedback *f, const uint8_t *blocks, unsigned count) {
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *block = blocks + 24 * (size_t)i;
        vr_feedback_entry *e = live(f, vr_be32(block));
        if (!e || !e->video)
            continue;
        f->reports++;
        f->loss = block[4];
        f->has_loss = 1;
        if (f->loss || f->last_loss != 0)  /* a run of "nothing lost" is told once */
            f->due = 1;
    }
}

static void act(vr_feedback *f, const uint8_t *p, const packet *k) {
    const uint8_t *d = p + k->body;
    size_t n = k->body_length;
    if (k->type == RR) {
        reports(f, d + 4, k->count);
    } else if (k->type == RTPFB) {
        nack(f, d, n);
    } else if (k->count == PLI) {
        keyframe(f, live(f, vr_be32(d + 4)));
    } else if (k->count == FIR) {
        vr_feedback_entry *e = live(f, vr_be32(d + 4));
        for (size_t at = 8; !e && at + 8 <= n; at += 8)
            e = live(f, vr_be32(d + at));
        keyframe(f, e);
    } else {
        remb(f, d + 8, n - 8);
    }
}

long vr_feedback_take(vr_feedback *f, const uint8_t *p, size_t n, uint8_t *up) {
    packet packets[VR_FEEDBACK_PACKETS];
    int count = 0;
    f->compounds++;
    if (n > VR_FEEDBACK_MAX || !f->plane)
        goto whole;
    for (size_t at = 0; at < n; count++) {  /* aiortc's RtcpPacket.parse */
        if (count == VR_FEEDBACK_PACKETS || n - at < 4 || p[at] >> 6 != 2)
            goto whole;
        size_t length = 4 + 4 * (size_t)vr_be16(p + at + 2);
        if (length > n - at)
            goto whole;
        packet *k = &packets[count];
        *k = (packet){.offset = at, .length = length, .body = at + 4, .body_length = length - 4,
                      .type = p[at + 1], .count = p[at] & 0x1f};
        if (p[at] & 0x20) {
            uint8_t padding = p[at + length - 1];
            if (length == 4 || padding == 0 || padding > length - 4)
                goto whole;
            k->body_length -= padding;
        }
        if ((k->what = sort(f, p, k)) < 0)
            goto whole;
        at += length;
    }
    size_t given = 0;
    for (int i = 0; i < count; i++) {
        if (packets[i].what == DO) {
            act(f, p, &packets[i]);
        } else if (packets[i].what == UP) {
            memcpy(up + given, p + packets[i].offset, packets[i].length);
            given += packets[i].length;
        }
    }
    given ? f->passed++ : f->taken++;
    return (long)given;
whole:
    f->whole++;
    return -1;
}
