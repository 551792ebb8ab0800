/* What _native.Plane reads out for the caller's policy and stats: the layer meters, a publisher's
 * and a subscriber's state, the counters. Never per packet. */
#define PY_SSIZE_T_CLEAN
#include "plane_py.h"

static int index_of(Plane *self, PyObject *arg, int publisher) {
    int index = vr_as_int(arg);
    if (index == -1 && PyErr_Occurred())
        return -1;
    return vr_plane_check(self, index, publisher) ? -1 : index;
}

PyObject *vr_plane_meter(Plane *self, PyObject *arg) {
    int index = index_of(self, arg, 1);
    if (index < 0)
        return NULL;
    vr_publisher *pub = &self->plane.publishers[index];
    PyObject *last = PyTuple_New(pub->layers), *since = PyTuple_New(pub->layers), *rate = PyTuple_New(pub->layers);
    for (int i = 0; last && since && rate && i < pub->layers; i++) {
        PyTuple_SET_ITEM(last, i, PyFloat_FromDouble(pub->meter[i].last_packet));
        PyTuple_SET_ITEM(since, i, PyFloat_FromDouble(pub->meter[i].arriving_since));
        PyTuple_SET_ITEM(rate, i, PyFloat_FromDouble(pub->meter[i].bitrate));
    }
    if (!last || !since || !rate || PyErr_Occurred()) {
        Py_XDECREF(last), Py_XDECREF(since), Py_XDECREF(rate);
        return NULL;
    }
    return Py_BuildValue("(NNN)", last, since, rate);
}

PyObject *vr_plane_publisher_stats(Plane *self, PyObject *arg) {
    int index = index_of(self, arg, 1);
    if (index < 0)
        return NULL;
    vr_publisher *pub = &self->plane.publishers[index];
    return Py_BuildValue("(KKik)", (unsigned long long)pub->packets, (unsigned long long)pub->unknown_layer_packets,
                         pub->has_ssrc, (unsigned long)pub->ssrc);
}

PyObject *vr_plane_subscriber_stats(Plane *self, PyObject *arg) {
    int index = index_of(self, arg, 0);
    if (index < 0)
        return NULL;
    vr_subscriber *s = &self->plane.subscribers[index];
    return Py_BuildValue("(iiiKKKk)", s->publisher, s->current_layer, s->pending_layer, (unsigned long long)s->packets,
                         (unsigned long long)s->octets, (unsigned long long)s->ntp, (unsigned long)s->rtp);
}

PyObject *vr_plane_counters(Plane *self, PyObject *unused) {
    (void)unused;
    vr_counters *c = &self->plane.counters;
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "packets_received", (unsigned long long)c->received,
                         "packets_forwarded", (unsigned long long)c->forwarded, "bytes_forwarded",
                         (unsigned long long)c->bytes_forwarded, "packets_retransmitted",
                         (unsigned long long)c->retransmitted, "packets_dropped", (unsigned long long)c->dropped,
                         "keyframe_requests", (unsigned long long)c->keyframe_requests, "packets_malformed",
                         (unsigned long long)c->malformed, "events_dropped", (unsigned long long)c->events_dropped);
}
