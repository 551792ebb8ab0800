/* The forwarding core's state: its publishers and subscribers by index, their links, the keyframe
 * requests and layer switches they ask for, and the bounded event queue (plane.h). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "plane.h"

/* The plane's tables (about 1 MiB for the default sizes) come straight from the kernel: pages are
 * zero and count in the resident size only once touched, and a room's close gives them back at once.
 * From malloc they were zeroed in full at every room's start, and on the media thread's arena what a
 * closed room freed stayed resident, spread between later allocations. Under AddressSanitizer they
 * stay on the heap so that its checks cover them. */
#if defined(__SANITIZE_ADDRESS__)
static void *zeroed_table(size_t count, size_t size) { return calloc(count, size); }
static void free_table(void *table, size_t count, size_t size) { (void)count, (void)size; free(table); }
#else
static void *zeroed_table(size_t count, size_t size) {
    void *table = mmap(NULL, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return table == MAP_FAILED ? NULL : table;
}
static void free_table(void *table, size_t count, size_t size) {
    if (table)
        munmap(table, count * size);
}
#endif

double vr_monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

const vr_kept *vr_plane_kept(const vr_plane *p, const vr_ref *ref) {
    if (!ref->stamp || ref->publisher < 0 || ref->publisher >= p->max_publishers)
        return NULL;
    const vr_publisher *pub = &p->publishers[ref->publisher];
    if (!pub->used || pub->incarnation != ref->incarnation || !pub->ring || ref->slot >= pub->ring_size)
        return NULL;
    const vr_kept *kept = &pub->ring[ref->slot];
    return kept->stamp == ref->stamp ? kept : NULL;
}

double vr_realtime(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int vr_plane_init(vr_plane *p, int max_publishers, int max_subscribers, double choice_interval) {
    p->max_publishers = max_publishers;
    p->max_subscribers = max_subscribers;
    p->choice_interval = choice_interval;
    p->publishers = zeroed_table((size_t)max_publishers, sizeof *p->publishers);
    p->subscribers = zeroed_table((size_t)max_subscribers, sizeof *p->subscribers);
    p->events = zeroed_table(VR_MAX_EVENTS, sizeof *p->events);
    if (!p->publishers || !p->subscribers || !p->events) {
        vr_plane_free(p);
        return -1;
    }
    return 0;
}

void vr_plane_free(vr_plane *p) {
    for (int i = 0; p->subscribers && i < p->max_subscribers; i++)
        if (p->subscribers[i].used)
            vr_subscriber_remove(p, i);
    for (int i = 0; p->publishers && i < p->max_publishers; i++)
        free(p->publishers[i].ring);
    free_table(p->publishers, (size_t)p->max_publishers, sizeof *p->publishers);
    free_table(p->subscribers, (size_t)p->max_subscribers, sizeof *p->subscribers);
    free_table(p->events, VR_MAX_EVENTS, sizeof *p->events);
    p->publishers = NULL, p->subscribers = NULL, p->events = NULL;
}

int vr_plane_emit(vr_plane *p, const vr_event *event) {
    if (p->event_count >= VR_MAX_EVENTS) {
        p->counters.events_dropped++;
        return -1;
    }
    p->events[(p->event_head + p->event_count) % VR_MAX_EVENTS] = *event;
    if (++p->event_count == 1 && p->on_first_event)
        p->on_first_event(p);
    return 0;
}

int vr_plane_drain(vr_plane *p, vr_event *out) {
    if (!p->event_count)
        return 0;
    *out = p->events[p->event_head];
    p->event_head = (p->event_head + 1) % VR_MAX_EVENTS;
    p->event_count--;
    return 1;
}

int vr_publisher_add(vr_plane *p, int video, int layers) {
    for (int i = 0; i < p->max_publishers; i++) {
        vr_publisher *pub = &p->publishers[i];
        if (pub->used)
            continue;
        memset(pub, 0, sizeof *pub);
        pub->used = 1, pub->video = video, pub->layers = layers;
        pub->first = -1;
        pub->window_start = -1;
        pub->rtx_payload_type = -1;
        pub->incarnation = ++p->incarnations;
        pub->voice.last_loud = -INFINITY;
        for (int l = 0; l < VR_MAX_LAYERS; l++) {
            pub->keyframes[l] = (vr_keyframes){-INFINITY, 1};
            pub->meter[l] = (vr_meter){-INFINITY, INFINITY, 0, 0};
        }
        return i;
    }
    return -1;
}

void vr_publisher_remove(vr_plane *p, int index) {
    vr_publisher *pub = &p->publishers[index];
    while (pub->first >= 0)
        vr_subscriber_link(p, pub->first, -1);
    free(pub->ring);  /* what its subscribers' histories point to is gone with it */
    pub->ring = NULL;
    pub->used = 0;
}

int vr_subscriber_add(vr_plane *p, int video, uint16_t seq, uint32_t timestamp, uint16_t rtx_seq) {
    for (int i = 0; i < p->max_subscribers; i++) {
        vr_subscriber *s = &p->subscribers[i];
        if (s->used)
            continue;
        memset(s, 0, sizeof *s);
        if (video && !(s->history = calloc(VR_HISTORY, sizeof *s->history)))
            return -2;
        s->used = 1, s->video = video, s->fd = -1;
        s->publisher = s->next = -1;
        s->current_layer = s->pending_layer = -1;
        s->next_seq = seq, s->last_timestamp = timestamp, s->rtx_seq = rtx_seq;
        s->last_time = -1, s->window = -1;
        s->last_picture_id = s->last_tl0 = -1;
        s->run_first_seq = -1;
        s->budget = VR_HISTORY;
        s->budget_stamp = vr_monotonic();
        return i;
    }
    return -1;
}

void vr_subscriber_remove(vr_plane *p, int index) {
    vr_subscriber *s = &p->subscribers[index];
    vr_subscriber_link(p, index, -1);
    if (s->srtp_ready)
        vr_srtp_free(&s->srtp);
    free(s->history);
    s->history = NULL;
    vr_subscriber_switched(s);
    s->srtp_ready = 0;
    s->used = 0;
}

static void unlink_subscriber(vr_plane *p, int index) {
    vr_subscriber *s = &p->subscribers[index];
    if (s->publisher < 0)
        return;
    int *at = &p->publishers[s->publisher].first;
    while (*at >= 0 && *at != index)
        at = &p->subscribers[*at].next;
    if (*at == index)
        *at = s->next;
    s->publisher = s->next = -1;
}

void vr_subscriber_switched(vr_subscriber *s) {
    s->running = 0, s->new_source = 1;
    free(s->held);  /* what was kept was of the source it leaves */
    s->held = NULL, s->held_count = 0;
}

void vr_subscriber_link(vr_plane *p, int index, int publisher) {
    vr_subscriber *s = &p->subscribers[index];
    if (s->publisher == publisher)
        return;
    unlink_subscriber(p, index);
    vr_subscriber_switched(s);
    s->layered = 0;
    s->current_layer = s->pending_layer = -1;
    if (publisher < 0)
        return;
    vr_publisher *pub = &p->publishers[publisher];
    s->publisher = publisher;
    s->next = pub->first;
    pub->first = index;
    s->layered = pub->layers > 0;
    if (!s->layered)
        vr_publisher_ask_keyframe(p, publisher, 0, 1);
    /* A layered one asks once its layer is chosen (vr_subscriber_choose). */
}

void vr_subscriber_choose(vr_plane *p, int index, int layer, int reason) {
    vr_subscriber *s = &p->subscribers[index];
    if (!s->layered)
        return;
    if (layer >= 0) {
        if (layer == s->current_layer) {
            s->pending_layer = -1;
        } else {
            s->pending_layer = layer;
            s->pending_reason = reason;
        }
    }
    if (s->pending_layer >= 0)
        vr_publisher_ask_keyframe(p, s->publisher, s->pending_layer, 1);
}

void vr_subscriber_ask_keyframe(vr_plane *p, int index, int starting) {
    vr_subscriber *s = &p->subscribers[index];
    if (s->publisher < 0)
        return;
    if (!s->layered) {
        vr_publisher_ask_keyframe(p, s->publisher, 0, starting);
        return;
    }
    int layer = s->pending_layer >= 0 ? s->pending_layer : s->current_layer;
    if (layer >= 0)
        vr_publisher_ask_keyframe(p, s->publisher, layer, starting);
}

void vr_publisher_ask_keyframe(vr_plane *p, int publisher, int layer, int starting) {
    vr_publisher *pub = &p->publishers[publisher];
    if (!pub->video || layer < 0 || layer >= (pub->layers ? pub->layers : 1))
        return;
    uint32_t ssrc;
    if (pub->layers) {
        if (!pub->has_layer_ssrc[layer])
            return;  /* before its first packet: the first frames come with a keyframe anyway */
        ssrc = pub->layer_ssrc[layer];
    } else {
        if (!pub->has_ssrc)
            return;
        ssrc = pub->ssrc;
    }
    if (!vr_keyframes_ask(&pub->keyframes[layer], vr_monotonic(), starting))
        return;
    p->counters.keyframe_requests++;
    vr_event event = {.kind = VR_EV_KEYFRAME, .publisher = publisher, .ssrc = ssrc};
    vr_plane_emit(p, &event);
}
