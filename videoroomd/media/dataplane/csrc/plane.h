/* The compiled data plane's forwarding core: publishers, subscribers and the per-packet path
 * between them, in plain C (no Python here; plane_module.c wraps it as _native.Plane).
 *
 * A received RTP packet of a publisher (already decrypted) is classified (its layer, whether it
 * starts a VP8 keyframe, its audio level), then forwarded to each subscriber linked to that
 * publisher: rewritten into the subscriber's own stream (SSRC, sequence numbers, timestamps,
 * VP8 picture ids, header extensions), noted in its history for NACKs, SRTP-protected and sent
 * with sendto on the subscriber's socket. What policy has to decide (which layer a subscriber
 * gets, the bandwidth estimate) stays with the caller: it reads the meters, and sets each
 * subscriber's wanted layer (on its calls, and when on_choice says a simulcast publisher's are
 * due: every choice_interval while it sends, never per packet); the switch itself happens here, at a keyframe of that layer.
 *
 * Everything is bounded: publishers and subscribers by the caps given at creation, the
 * events by a fixed ring. A video publisher's payloads are kept once, in its own ring (made at its
 * first packet); each subscriber's history and hold only point into it (with the bytes of the VP8
 * descriptor as that subscriber sent them), so that a subscriber costs kilobytes, not a copy of
 * every packet. Nothing is allocated per packet. */
#ifndef VR_PLANE_H
#define VR_PLANE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srtp.h"

#define VR_MAX_LAYERS 4
#define VR_HISTORY 512            /* packets a video subscriber can have retransmitted */
#define VR_HISTORY_PAYLOAD 1500   /* longer payloads are sent but not kept */
#define VR_VP8_HEAD 6             /* the VP8 payload descriptor's bytes at most: what a rewrite changes */
#define VR_HOLD 300               /* packets of a keyframe and what follows kept while a subscriber connects */
#define VR_MAX_EVENTS 10000       /* events kept undrained; more are counted and dropped */
#define VR_MAX_PAYLOAD 65536
#define VR_VAD_WINDOW 10

enum vr_event_kind { VR_EV_KEYFRAME = 1, VR_EV_LAYER, VR_EV_FELL_BEHIND, VR_EV_VOICE, VR_EV_OBJECT };
enum vr_codec { VR_CODEC_VP8 = 0, VR_CODEC_H264 = 1 };

typedef struct {
    int kind;
    int publisher, subscriber, value, reason; /* by kind: the layer, speaking, ... */
    uint32_t ssrc;
    void *object; /* VR_EV_OBJECT: the caller's (a reference it owns) */
} vr_event;

typedef struct {
    double last_request;  /* monotonic seconds */
    int answered;         /* a keyframe came after the last request */
} vr_keyframes;

typedef struct {
    double last_packet, arriving_since, bitrate;
    uint64_t bytes;
} vr_meter;

typedef struct {
    uint8_t recent[VR_VAD_WINDOW];
    int count, at, speaking;
    double last_loud;
} vr_voice;

typedef struct {
    int used, video, layers;  /* layers: 0 for one stream */
    int codec, audio_level_id;
    uint32_t ssrc;            /* a plain publisher's media SSRC, once seen */
    int has_ssrc;
    uint32_t layer_ssrc[VR_MAX_LAYERS], layer_rtx_ssrc[VR_MAX_LAYERS];
    int has_layer_ssrc[VR_MAX_LAYERS], has_layer_rtx_ssrc[VR_MAX_LAYERS];
    int rtx_payload_type;     /* of its retransmissions, unwrapped by receive_datagram; -1: none */
    uint64_t packets, unknown_layer_packets;
    vr_keyframes keyframes[VR_MAX_LAYERS]; /* a plain publisher uses the first */
    vr_meter meter[VR_MAX_LAYERS];
    double window_start;      /* of the meters; < 0: none yet */
    vr_voice voice;
    double next_choice, last_arrival;
    int first;                /* its first linked subscriber, -1: none */
    struct vr_kept *ring;     /* its last payloads (video), VR_HISTORY per layer */
    uint32_t ring_size, stamps, incarnation;
} vr_publisher;

typedef struct vr_kept {
    uint32_t stamp;           /* the packet the slot holds now (0: none) */
    uint16_t length;
    uint8_t payload[VR_HISTORY_PAYLOAD];
} vr_kept;

/* Where a packet's payload is kept: a slot of its publisher's ring, while the stamp still matches. */
typedef struct {
    int publisher;
    uint32_t incarnation, slot, stamp; /* stamp 0: not kept */
} vr_ref;

typedef struct {
    uint16_t seq;
    uint8_t used, marker;
    uint32_t timestamp;
    vr_ref ref;
    uint8_t head[VR_VP8_HEAD]; /* the payload's first bytes as sent (VP8 picture ids rewritten) */
} vr_history_entry;

typedef struct {
    uint16_t seq;
    uint8_t marker;
    uint32_t timestamp;
    vr_ref ref;
} vr_held_entry;

typedef struct {
    int used, video, configured, routed;
    int fd;
    struct sockaddr_storage address;
    socklen_t address_length;
    vr_srtp srtp;
    int srtp_ready;
    /* the master key of srtp: a route given again with the same keys keeps the session (its
     * rollover counters and indexes), so that a new address never reuses a keystream */
    int srtp_profile;
    uint8_t srtp_key[32], srtp_salt[14];
    /* the stream on the wire */
    uint8_t payload_type, rtx_payload_type, mid_element[18], ast_id, audio_level_id;
    int has_rtx;
    size_t mid_length;
    uint32_t clock_rate, ssrc, rtx_ssrc;
    /* what it carries */
    int publisher, next;      /* -1: nothing; next subscriber of the same publisher */
    int layered, current_layer, pending_layer, pending_reason;
    int running, new_source;
    /* the rewrite: sequence numbers and timestamps (stream_rewrite.py) */
    uint16_t next_seq, highest, seq_offset;
    uint32_t last_timestamp, ts_offset;
    double last_time;         /* < 0: nothing sent yet */
    int window;
    /* VP8 picture ids (vp8_rewrite.py) */
    int vp8_run_started;
    int32_t last_picture_id, last_tl0, pid_offset, tl0_offset; /* last_*: -1 none */
    /* retransmissions */
    vr_history_entry *history;
    vr_held_entry *held;      /* while not connected: a keyframe and what follows (made at a keyframe) */
    int held_count;
    uint16_t rtx_seq;
    int32_t run_first_seq;    /* -1: none */
    double budget, budget_stamp;
    /* what it sent */
    uint64_t packets, octets, ntp;
    uint32_t rtp;
} vr_subscriber;

typedef struct {
    uint64_t received, forwarded, bytes_forwarded, retransmitted, dropped, keyframe_requests, malformed,
        events_dropped;
} vr_counters;

typedef struct vr_plane {
    int max_publishers, max_subscribers;
    vr_publisher *publishers;
    vr_subscriber *subscribers;
    vr_event *events;
    int event_head, event_count;
    void (*on_first_event)(struct vr_plane *);
    void (*on_choice)(struct vr_plane *, int publisher); /* its subscribers' layers are due a choice */
    void *owner;              /* what on_first_event reaches (the Python object) */
    double choice_interval;
    uint32_t incarnations;    /* publishers added so far: a ring reference names which one */
    vr_counters counters;
    uint8_t out[VR_MAX_PAYLOAD + 256], sealed[VR_MAX_PAYLOAD + 512]; /* one packet being sent */
} vr_plane;

/* A received packet, from a datagram or from fields. */
typedef struct {
    uint32_t ssrc, timestamp;
    uint16_t seq;
    uint8_t marker;
    int level;                /* audio level with the voice bit (0x80), -1: none */
    const uint8_t *payload;
    size_t payload_length;
    vr_ref ref;               /* where it is kept (filled by vr_plane_receive) */
} vr_packet;

/* plane.c: the plane's ids and calls */
int vr_plane_init(vr_plane *p, int max_publishers, int max_subscribers, double choice_interval);
void vr_plane_free(vr_plane *p);
int vr_plane_emit(vr_plane *p, const vr_event *event);  /* 0, or -1 when full (counted) */
int vr_plane_drain(vr_plane *p, vr_event *out);          /* one event into out: 1, or 0 when none */
int vr_publisher_add(vr_plane *p, int video, int layers);  /* its index, -1 when full */
void vr_publisher_remove(vr_plane *p, int index);
int vr_subscriber_add(vr_plane *p, int video, uint16_t seq, uint32_t timestamp, uint16_t rtx_seq);
void vr_subscriber_remove(vr_plane *p, int index);
void vr_subscriber_link(vr_plane *p, int index, int publisher);
void vr_subscriber_choose(vr_plane *p, int index, int layer, int reason);
void vr_subscriber_switched(vr_subscriber *s); /* a new source (or none): it starts at a keyframe */
void vr_subscriber_ask_keyframe(vr_plane *p, int index, int starting);
void vr_publisher_ask_keyframe(vr_plane *p, int publisher, int layer, int starting);
double vr_monotonic(void);
double vr_realtime(void);

/* plane_forward.c: the per-packet path */
int vr_plane_receive_datagram(vr_plane *p, int publisher, const uint8_t *data, size_t length, double arrival);
void vr_plane_receive(vr_plane *p, int publisher, const vr_packet *packet);
const vr_kept *vr_plane_kept(const vr_plane *p, const vr_ref *ref); /* NULL: gone since */
int vr_subscriber_nack(vr_plane *p, int index, const uint16_t *seqs, size_t count, double rate);

/* plane_rewrite.c: pure helpers */
int vr_vp8_keyframe(const uint8_t *payload, size_t size);
int vr_h264_keyframe(const uint8_t *payload, size_t size);
void vr_vp8_rewrite(vr_subscriber *s, uint8_t *payload, size_t size);
void vr_stream_start_run(vr_subscriber *s, uint16_t seq, uint32_t timestamp, double now);
int vr_stream_map(vr_subscriber *s, uint16_t seq, uint32_t timestamp, uint16_t *out_seq, uint32_t *out_ts);
int vr_stream_sent(vr_subscriber *s, uint16_t out_seq, uint32_t out_ts, double now);
int vr_voice_feed(vr_voice *v, int level, double now); /* 1 or 0: the new state, -1: unchanged */
int vr_keyframes_ask(vr_keyframes *k, double now, int starting);
void vr_meter_packet(vr_publisher *pub, int layer, size_t size, double now);

#endif
