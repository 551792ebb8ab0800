/* _native.Port's calls for the SSRCs it forwards in C (port_fast.h): route, unroute, stream, drain_fast. */
#include "port_object.h"

#include "bytes.h"
#include "plane_py.h"
#include "remb_py.h"

int vr_port_fast(Port *self, const uint8_t *plain, size_t length, int64_t arrival_ns) {
    vr_fast_entry *e = vr_fast_find(self->fast, vr_be32(plain + 8));
    return e ? vr_fast_take(self->fast, e, plain, length, arrival_ns) : 0;
}

void vr_port_fast_free(Port *self) {
    for (int i = 0; self->fast && i < self->fast->count; i++) {
        Py_XDECREF((PyObject *)self->fast->entries[i].remb_owner);
        vr_tap_free(&self->fast->entries[i].tap, &self->fast->tap_total);
    }
    PyMem_Free(self->fast);
    self->fast = NULL;
    Py_CLEAR(self->plane);
}

static int read_stats(PyObject *stats, vr_rx_stats *s) {
    long long base, max, cycles, received, jitter, arrival, timestamp;
    if (stats == Py_None)
        return 0;
    if (!PyArg_ParseTuple(stats, "LLLLLLL;stats is (base_seq, max_seq, cycles, packets_received, jitter_q4, "
                          "last_arrival, last_timestamp)", &base, &max, &cycles, &received, &jitter, &arrival,
                          &timestamp))
        return -1;
    *s = (vr_rx_stats){.has = received > 0, .base_seq = (uint16_t)base, .max_seq = (uint16_t)max,
                       .cycles = cycles, .received = received, .jitter_q4 = jitter, .last_arrival = arrival,
                       .last_timestamp = timestamp};
    return 0;
}

static int read_nack(PyObject *nack, vr_nack *n) {
    long max;
    PyObject *missing;
    if (nack == Py_None)
        return 0;
    if (!PyArg_ParseTuple(nack, "lO;nack is (max_seq, [missing])", &max, &missing))
        return -1;
    *n = (vr_nack){.has = 1, .max_seq = (uint16_t)max};
    PyObject *iterator = PyObject_GetIter(missing), *item;
    if (!iterator)
        return -1;
    while ((item = PyIter_Next(iterator))) {
        long seq = PyLong_AsLong(item);
        Py_DECREF(item);
        if (seq == -1 && PyErr_Occurred())
            break;
        vr_nack_mark(n, (uint16_t)seq);
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

PyObject *vr_port_route(Port *self, PyObject *args) {
    unsigned long ssrc;
    long long repaired;
    int publisher, payload_type, clock_rate, level_id, ast_id;
    PyObject *plane, *stats, *nack, *remb = Py_None;
    if (!PyArg_ParseTuple(args, "kOiLiiiiOO|O", &ssrc, &plane, &publisher, &repaired, &payload_type, &clock_rate,
                          &level_id, &ast_id, &stats, &nack, &remb))
        return NULL;
    vr_remb_feed *estimator = remb == Py_None ? NULL : vr_remb_of(remb);
    if (remb != Py_None && !estimator)
        return PyErr_Format(PyExc_TypeError, "route's remb is an initialised _native.Remb or None, not %R", remb);
    vr_plane *core = vr_plane_of(plane);
    if (!core)
        return PyErr_Format(PyExc_TypeError, "route takes an initialised _native.Plane, not %R", plane);
    if (self->plane && self->plane != plane)
        return PyErr_Format(PyExc_ValueError, "a Port forwards to one plane; SSRC %lu names another", ssrc);
    if (publisher < 0 || publisher >= core->max_publishers || !core->publishers[publisher].used)
        return PyErr_Format(PyExc_IndexError, "no publisher %d in the plane", publisher);
    if (ssrc > 0xffffffffUL || repaired < -1 || repaired > 0xffffffffLL || payload_type < 0 || payload_type > 127 ||
        clock_rate <= 0 || level_id < 0 || level_id > 14 || ast_id < 0 || ast_id > 14)
        return PyErr_Format(PyExc_ValueError, "SSRC %lu: a field of its route is out of range", ssrc);
    if (!self->fast && !(self->fast = PyMem_Calloc(1, sizeof *self->fast)))
        return PyErr_NoMemory();
    vr_fast *f = self->fast;
    vr_fast_entry *e = vr_fast_find(f, (uint32_t)ssrc);
    if (!e) {
        if (f->count >= VR_FAST_SSRCS)
            Py_RETURN_FALSE;
        e = &f->entries[f->count];
    }
    vr_fast_entry entry = {.ssrc = (uint32_t)ssrc, .incarnation = core->publishers[publisher].incarnation,
                           .clock_rate = (uint32_t)clock_rate, .publisher = publisher, .repaired = repaired,
                           .payload_type = payload_type, .audio_level_id = level_id, .abs_send_time_id = ast_id,
                           .remb = estimator, .remb_owner = estimator ? Py_NewRef(remb) : NULL};
    if (read_stats(stats, &entry.stats) || read_nack(nack, &entry.nack)) {
        Py_XDECREF((PyObject *)entry.remb_owner);
        return NULL;
    }
    if (e == &f->entries[f->count]) {
        f->count++;
    } else {
        Py_XDECREF((PyObject *)e->remb_owner); /* routed anew: the old estimator goes, its recording stays */
        entry.tapped = e->tapped;
        entry.tap = e->tap;
    }
    *e = entry;
    if (!self->plane) {
        self->plane = Py_NewRef(plane);
        f->plane = core;
    }
    Py_RETURN_TRUE;
}

static PyObject *nack_object(const vr_nack *n) {
    if (!n->has)
        return Py_NewRef(Py_None);
    uint16_t missing[VR_NACK_WINDOW];
    size_t count = vr_nack_missing(n, missing);
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list && i < count; i++)
        PyList_SET_ITEM(list, (Py_ssize_t)i, PyLong_FromLong(missing[i]));
    return list ? Py_BuildValue("(iN)", n->max_seq, list) : NULL;
}

static PyObject *stats_object(const vr_rx_stats *s, int whole) {
    if (!s->has)
        return Py_NewRef(Py_None);
    if (!whole)
        return Py_BuildValue("(iiLLL)", s->base_seq, s->max_seq, (long long)s->cycles, (long long)s->received,
                             (long long)s->jitter_q4);
    return Py_BuildValue("(iiLLLLL)", s->base_seq, s->max_seq, (long long)s->cycles, (long long)s->received,
                         (long long)s->jitter_q4, (long long)s->last_arrival, (long long)s->last_timestamp);
}

static vr_fast_entry *routed(Port *self, PyObject *arg) {
    unsigned long ssrc = PyLong_AsUnsignedLong(arg);
    if (ssrc == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    return self->fast && ssrc <= 0xffffffffUL ? vr_fast_find(self->fast, (uint32_t)ssrc) : NULL;
}

PyObject *vr_port_unroute(Port *self, PyObject *arg) {
    vr_fast_entry *e = routed(self, arg);
    if (!e)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    PyObject *result = Py_BuildValue("(NN)", stats_object(&e->stats, 1), nack_object(&e->nack));
    if (result) {
        Py_XDECREF((PyObject *)e->remb_owner);
        vr_tap_free(&e->tap, &self->fast->tap_total);
        *e = self->fast->entries[--self->fast->count];
    }
    return result;
}

PyObject *vr_port_stream(Port *self, PyObject *arg) {
    vr_fast_entry *e = routed(self, arg);
    if (!e)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    return stats_object(&e->stats, 0);
}

PyObject *vr_port_drain_fast(Port *self, PyObject *unused) {
    (void)unused;
    vr_fast *f = self->fast;
    self->drain_at = vr_monotonic() + self->drain_interval;
    if (!f)
        return Py_BuildValue("([][]KKK[])", 0ULL, 0ULL, 0ULL);
    PyObject *nacks = PyList_New(0), *arrivals = PyList_New(f->arrival_count), *stale = PyList_New(0);
    for (int i = 0; stale && i < f->count; i++) {
        if (!f->entries[i].stale)
            continue;
        PyObject *ssrc = PyLong_FromUnsignedLong(f->entries[i].ssrc);
        if (!ssrc || PyList_Append(stale, ssrc))
            Py_CLEAR(stale);
        Py_XDECREF(ssrc);
    }
    for (int i = 0; nacks && i < f->count; i++) {
        vr_nack *n = &f->entries[i].nack;
        if (!n->due || !n->has)
            continue;
        n->due = 0;
        PyObject *missing = nack_object(n);
        PyObject *item = missing ? Py_BuildValue("(kO)", (unsigned long)f->entries[i].ssrc,
                                                 PyTuple_GET_ITEM(missing, 1)) : NULL;
        Py_XDECREF(missing);
        if (!item || PyList_Append(nacks, item))
            Py_CLEAR(nacks);
        Py_XDECREF(item);
    }
    for (int i = 0; arrivals && i < f->arrival_count; i++) {
        const vr_arrival *a = &f->arrivals[i];
        PyObject *item = Py_BuildValue("(LIII)", (long long)a->arrival_ms, a->abs_send_time, a->size, a->ssrc);
        if (!item)
            Py_CLEAR(arrivals);
        else
            PyList_SET_ITEM(arrivals, i, item);
    }
    if (!nacks || !arrivals || !stale) {
        Py_XDECREF(nacks);
        Py_XDECREF(arrivals);
        Py_XDECREF(stale);
        return NULL;
    }
    PyObject *result = Py_BuildValue("(NNKKKN)", nacks, arrivals, f->packets, f->octets, f->arrivals_dropped, stale);
    if (!result)
        return NULL; /* (N: the lists went with it) */
    for (int i = 0; i < f->count; i++)
        f->entries[i].stale = 0;
    f->arrival_count = 0;
    f->packets = f->octets = f->arrivals_dropped = 0;
    f->due = 0;
    return result;
}

PyObject *vr_port_tap(Port *self, PyObject *args) {
    PyObject *ssrc;
    int on;
    long long start_us = 0;
    if (!PyArg_ParseTuple(args, "Op|L:tap", &ssrc, &on, &start_us))
        return NULL;
    vr_fast_entry *e = routed(self, ssrc);
    if (!e)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_False);
    int tapped = on && e->repaired < 0;
    if (!tapped || e->tap.start_us != start_us)  /* what it holds was made for another file, or none now */
        vr_tap_clear(&e->tap, &self->fast->tap_total);
    e->tapped = tapped;
    e->tap.start_us = start_us;
    return Py_NewRef(tapped || !on ? Py_True : Py_False);
}

static PyObject *take_one(vr_fast_entry *e) {
    const vr_tap *t = &e->tap;
    return Py_BuildValue("(ky#IiL)", (unsigned long)e->ssrc, (const char *)t->data, (Py_ssize_t)t->used, t->count,
                         t->has_keyframe ? (int)t->keyframe : -1, (long long)t->start_us);
}

PyObject *vr_port_take_records(Port *self, PyObject *unused) {
    (void)unused;
    vr_fast *f = self->fast;
    PyObject *taken = PyList_New(0);
    for (int i = 0; f && taken && i < f->count; i++) {
        vr_fast_entry *e = &f->entries[i];
        if (!e->tap.count)
            continue;
        PyObject *item = take_one(e);
        if (!item || PyList_Append(taken, item))
            Py_CLEAR(taken);
        Py_XDECREF(item);
    }
    if (!taken)
        return NULL;  /* nothing cleared: the next take has them */
    PyObject *result = Py_BuildValue("(NK)", taken, f ? f->tap_dropped : 0ULL);
    if (result && f) {
        for (int i = 0; i < f->count; i++)
            if (f->entries[i].tap.count)
                vr_tap_clear(&f->entries[i].tap, &f->tap_total);
        f->tap_dropped = 0;
    }
    return result;
}
