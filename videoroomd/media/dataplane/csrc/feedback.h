/* A connection's RTCP about the streams the plane sends it, read in C (feedback.c).
 *
 * A client that receives the room's media sends, for each stream, receiver reports and feedback:
 * NACKs, PLI/FIR, REMB. Python registers the SSRC of each stream the plane sends the connection (with
 * its subscriber index and NACK rate, both its policy); a Port that decrypted a compound hands it
 * here, and what concerns those SSRCs is done at once: a NACK answered from the subscriber's history,
 * a PLI or FIR passed to the plane (rate-limited there), a REMB's bitrate and a video report's lost
 * fraction kept as a summary that Python takes in batches for its bandwidth policy. What Python's
 * aiortc objects need (sender reports and BYEs of the streams the client sends) goes up as a
 * compound of those packets only; a compound whose structure C does not trust goes up whole, where
 * aiortc's parser drops it as before. Pure C over plane.h. */
#ifndef VR_FEEDBACK_H
#define VR_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>

#include "plane.h"

#define VR_FEEDBACK_SSRCS 128     /* streams one connection receives whose RTCP is read in C */
#define VR_FEEDBACK_PACKETS 32    /* packets of one compound; a longer compound goes up to Python */
#define VR_FEEDBACK_MAX 1500      /* bytes of a compound read here (RTCP fits a path's MTU) */

typedef struct {
    uint32_t ssrc;              /* the media SSRC the plane sends the stream with */
    int subscriber, video;
    double rate;                /* retransmissions a second the subscriber may have (Python's policy) */
} vr_feedback_entry;

typedef struct {
    vr_plane *plane;
    vr_feedback_entry entries[VR_FEEDBACK_SSRCS];
    int count;
    /* the summary since Python last took it */
    int due;                    /* a REMB came, or a lost fraction other than the last one given */
    int has_remb, has_loss;
    int64_t remb_bps;
    int loss, last_loss;        /* a video report's fraction lost (0-255); last_loss: given last, -1 none */
    uint64_t compounds, taken, passed, whole, nacks, keyframes, rembs, reports;
} vr_feedback;

void vr_feedback_init(vr_feedback *f, vr_plane *plane);
/* Register (or update) the stream ssrc: 0, or -1 when the table is full. */
int vr_feedback_add(vr_feedback *f, uint32_t ssrc, int subscriber, int video, double rate);
int vr_feedback_discard(vr_feedback *f, uint32_t ssrc); /* 1 when it was registered */

/* A decrypted compound of n bytes: does what is the plane's, and writes what is Python's to up
 * (at least n bytes). Returns how many bytes of up Python is to have (0: nothing), or -1 when the
 * compound is to go up whole (nothing of it was done here). */
long vr_feedback_take(vr_feedback *f, const uint8_t *p, size_t n, uint8_t *up);

#endif
