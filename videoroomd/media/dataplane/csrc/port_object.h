/* _native.Port's object, shared by port.c (the socket) and port_fast_py.c (the SSRCs routed to the plane). */
#ifndef VR_PORT_OBJECT_H
#define VR_PORT_OBJECT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "port_fast.h"
#include "port_io.h"
#include "srtp.h"

#define MAX_ALLOWED 64      /* remote addresses one socket takes media from: a connection's validated pairs */

typedef struct {
    uint64_t datagrams, batches, stun, dtls, rtp, rtcp, unvalidated, other, truncated, no_keys;
    uint64_t auth, replay, malformed, srtp_failed, read_errors, rtcp_done;
    uint64_t queued, sent, send_dropped, send_errors, send_refused;
} port_counts;

typedef struct {
    PyObject_HEAD
    int fd, family;
    int ready, keyed;
    vr_srtp rx, tx;
    vr_addr allowed[MAX_ALLOWED];
    size_t allowed_count;
    vr_outgoing *queue; /* VR_IO_BATCH slots, made on the first send */
    size_t queued;
    port_counts n;
    vr_fast *fast;      /* made on the first route; holds a reference to its plane (plane) */
    PyObject *plane;
    PyObject *feedback; /* a _native.Feedback: the connection's RTCP about what the plane sends it is read there */
    PyObject *handler, *lost; /* on_readable's Python side (set_reader) */
    double drain_interval, drain_at; /* monotonic seconds: when the routed SSRCs' counters are due */
} Port;

enum { VR_DUE_NOW = 1, VR_DUE_COUNTERS = 2 };

/* A routed SSRC's decrypted datagram goes to the plane (port_fast_py.c): 1 taken, 0 Python's. */
int vr_port_fast(Port *self, const uint8_t *plain, size_t length, int64_t arrival_ns);
void vr_port_fast_free(Port *self);
PyObject *vr_port_route(Port *self, PyObject *args);
PyObject *vr_port_unroute(Port *self, PyObject *arg);
PyObject *vr_port_stream(Port *self, PyObject *arg);
PyObject *vr_port_drain_fast(Port *self, PyObject *unused);
PyObject *vr_port_tap(Port *self, PyObject *args);
PyObject *vr_port_take_records(Port *self, PyObject *unused);
#define VR_PORT_FAST_METHODS                                                                                       \
    {"route", (PyCFunction)vr_port_route, METH_VARARGS, VR_ROUTE_DOC},                                               \
    {"unroute", (PyCFunction)vr_port_unroute, METH_O, "(ssrc) -> (stats, nack) as route takes them, or None."},     \
    {"stream", (PyCFunction)vr_port_stream, METH_O,                                                                \
     "(ssrc) -> (base_seq, max_seq, cycles, packets_received, jitter_q4) of a routed SSRC, or None."},             \
    {"drain_fast", (PyCFunction)vr_port_drain_fast, METH_NOARGS,                                                   \
     "-> ([(media_ssrc, [missing seq])] of NACKs due, [(arrival_ms, abs_send_time, size, ssrc)], packets, octets, "\
     "arrivals_dropped, [stale ssrc]) since the last drain (stale: another payload type or publisher came: route again)"}, \
    {"tap", (PyCFunction)vr_port_tap, METH_VARARGS,                                                                \
     "(ssrc, on[, start_us]): a routed media SSRC's packets (RTX unwrapped) also made track-file RTP records, "     \
     "arrival in µs since start_us (its track file's start, µs since the Unix epoch), for take_records; records "  \
     "held for another start, or when turned off, are discarded. False when ssrc is not routed here or is an RTX " \
     "SSRC."},                                                                                                     \
    {"take_records", (PyCFunction)vr_port_take_records, METH_NOARGS,                                               \
     "-> ([(ssrc, records, count, keyframe, start_us)], dropped) since the last take: per tapped SSRC with "       \
     "records, their bytes (trackfile.TrackEncoder.rtp's, in arrival order), how many, the index of the first "    \
     "whose payload starts a VP8 key frame (-1: none); dropped: records beyond the bound (4 MiB a take)"}
#define VR_ROUTE_DOC                                                                                               \
    "(ssrc, plane, publisher, repaired_ssrc or -1, payload_type, clock_rate, audio_level_id, abs_send_time_id, "    \
    "stats or None, nack or None[, remb]): forward ssrc's RTP in C from now on; False when the table is full. "   \
    "remb: a _native.Remb the SSRC's arrivals feed in C (None: they go to drain_fast's list). stats: "             \
    "(base_seq, max_seq, cycles, packets_received, jitter_q4, last_arrival, last_timestamp); nack: (max_seq, "      \
    "[missing])."

#endif
