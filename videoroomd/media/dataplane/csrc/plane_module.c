/* _native.Plane: the forwarding core (plane.h) for Python, by index.
 *
 * native_plane.py keeps the ids, the connections and the layer policy and calls these methods;
 * every index is checked (IndexError), every capacity is a ValueError that names it, and the
 * per-packet entries (receive_datagram, receive) never raise for what a packet holds: a
 * malformed one is counted and dropped. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "crypto.h"
#include "plane_py.h"


static void wake(vr_plane *p) {
    Plane *self = p->owner;
    if (!self->wakeup)
        return;
    PyObject *rc = PyObject_CallNoArgs(self->wakeup);
    if (rc)
        Py_DECREF(rc);
    else
        PyErr_WriteUnraisable(self->wakeup);  /* the packet path goes on whatever the wakeup does */
}

static void choose(vr_plane *p, int publisher) {
    Plane *self = p->owner;
    if (!self->chooser)
        return;
    PyObject *rc = PyObject_CallFunction(self->chooser, "i", publisher);
    if (rc)
        Py_DECREF(rc);
    else
        PyErr_WriteUnraisable(self->chooser);
}

static int plane_init(Plane *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"max_publishers", "max_subscribers", "choice_interval", NULL};
    int publishers = 256, subscribers = 1024;
    double interval = 0.2;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iid", kwlist, &publishers, &subscribers, &interval))
        return -1;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Plane is initialised once");
        return -1;
    }
    if (publishers < 1 || publishers > 65536 || subscribers < 1 || subscribers > 65536) {
        PyErr_SetString(PyExc_ValueError, "a plane holds 1 to 65536 publishers and subscribers");
        return -1;
    }
    if (vr_plane_init(&self->plane, publishers, subscribers, interval)) {
        PyErr_NoMemory();
        return -1;
    }
    self->plane.owner = self;
    self->plane.on_first_event = wake;
    self->plane.on_choice = choose;
    self->ready = 1;
    return 0;
}

static void drop_events(Plane *self) {
    vr_event event;
    while (self->ready && vr_plane_drain(&self->plane, &event))
        if (event.kind == VR_EV_OBJECT)
            Py_XDECREF((PyObject *)event.object);
}

static int plane_traverse(Plane *self, visitproc visit, void *arg) {
    Py_VISIT(self->wakeup);
    Py_VISIT(self->chooser);
    vr_plane *p = &self->plane;
    for (int i = 0; self->ready && i < p->event_count; i++) {
        vr_event *e = &p->events[(p->event_head + i) % VR_MAX_EVENTS];
        if (e->kind == VR_EV_OBJECT)
            Py_VISIT((PyObject *)e->object);
    }
    return 0;
}

static int plane_clear(Plane *self) {
    Py_CLEAR(self->wakeup);
    Py_CLEAR(self->chooser);
    drop_events(self);
    return 0;
}

static void plane_dealloc(Plane *self) {
    PyObject_GC_UnTrack(self);
    plane_clear(self);
    if (self->ready)
        vr_plane_free(&self->plane);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int vr_plane_check(Plane *self, int index, int publisher) {
    vr_plane *p = &self->plane;
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Plane is not initialised");
        return -1;
    }
    int max = publisher ? p->max_publishers : p->max_subscribers;
    if (index < 0 || index >= max || !(publisher ? p->publishers[index].used : p->subscribers[index].used)) {
        PyErr_Format(PyExc_IndexError, "no %s %d in the plane", publisher ? "publisher" : "subscriber", index);
        return -1;
    }
    return 0;
}

static PyObject *plane_add_publisher(Plane *self, PyObject *args) {
    int video, layers, codec = VR_CODEC_VP8, level_id = 0;
    if (!PyArg_ParseTuple(args, "pi|ii", &video, &layers, &codec, &level_id))
        return NULL;
    if (!self->ready || layers < 0 || layers > VR_MAX_LAYERS || (layers && !video) || level_id < 0 ||
        level_id > 14 || (codec != VR_CODEC_VP8 && codec != VR_CODEC_H264)) {
        PyErr_Format(PyExc_ValueError, "a publisher has 0 to %d layers (video only), codec VP8 or H264, an audio"
                     " level id 0 to 14", VR_MAX_LAYERS);
        return NULL;
    }
    int index = vr_publisher_add(&self->plane, video, layers);
    if (index < 0)
        return PyErr_Format(PyExc_ValueError, "the data plane holds at most %d publishers",
                            self->plane.max_publishers);
    self->plane.publishers[index].codec = codec;
    self->plane.publishers[index].audio_level_id = level_id;
    return PyLong_FromLong(index);
}

static PyObject *plane_set_publisher(Plane *self, PyObject *args) {
    int index, codec, level_id, rtx_pt;
    if (!PyArg_ParseTuple(args, "iiii", &index, &codec, &level_id, &rtx_pt) || vr_plane_check(self, index, 1))
        return NULL;
    if (level_id < 0 || level_id > 14 || (codec != VR_CODEC_VP8 && codec != VR_CODEC_H264) || rtx_pt < -1 ||
        rtx_pt > 127)
        return PyErr_Format(PyExc_ValueError, "a publisher's codec is VP8 or H264, its audio level id 0 to 14,"
                            " its RTX payload type -1 (none) to 127");
    vr_publisher *pub = &self->plane.publishers[index];
    pub->codec = codec, pub->audio_level_id = level_id, pub->rtx_payload_type = rtx_pt;
    Py_RETURN_NONE;
}

/* Each item of a tuple of SSRCs or None into ssrcs/has: 0, or -1 with an exception set. */
static int read_ssrcs(PyObject *tuple, int count, uint32_t *ssrcs, int *has) {
    if (PyTuple_GET_SIZE(tuple) != count) {
        PyErr_Format(PyExc_ValueError, "the publisher has %d layers", count);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        has[i] = item != Py_None;
        if (item == Py_None)
            continue;
        unsigned long value = PyLong_AsUnsignedLong(item);
        if (PyErr_Occurred() || value > 0xffffffffUL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "an SSRC is 32 bits");
            return -1;
        }
        ssrcs[i] = (uint32_t)value;
    }
    return 0;
}

static PyObject *plane_set_layer_ssrcs(Plane *self, PyObject *args) {
    int index;
    PyObject *media, *rtx;
    if (!PyArg_ParseTuple(args, "iO!O!", &index, &PyTuple_Type, &media, &PyTuple_Type, &rtx) ||
        vr_plane_check(self, index, 1))
        return NULL;
    vr_publisher *pub = &self->plane.publishers[index];
    uint32_t ssrcs[2][VR_MAX_LAYERS];
    int has[2][VR_MAX_LAYERS];
    if (read_ssrcs(media, pub->layers, ssrcs[0], has[0]) || read_ssrcs(rtx, pub->layers, ssrcs[1], has[1]))
        return NULL;  /* nothing changed */
    memcpy(pub->layer_ssrc, ssrcs[0], sizeof ssrcs[0]);
    memcpy(pub->has_layer_ssrc, has[0], sizeof has[0]);
    memcpy(pub->layer_rtx_ssrc, ssrcs[1], sizeof ssrcs[1]);
    memcpy(pub->has_layer_rtx_ssrc, has[1], sizeof has[1]);
    Py_RETURN_NONE;
}

static PyObject *plane_remove_publisher(Plane *self, PyObject *arg) {
    int index = vr_as_int(arg);
    if ((index == -1 && PyErr_Occurred()) || vr_plane_check(self, index, 1))
        return NULL;
    vr_publisher_remove(&self->plane, index);
    Py_RETURN_NONE;
}

static PyObject *plane_receive_datagram(Plane *self, PyObject *args) {
    int index;
    Py_buffer data;
    double arrival = 0;
    if (!PyArg_ParseTuple(args, "iy*|d", &index, &data, &arrival))
        return NULL;
    PyObject *rc = NULL;
    if (!vr_plane_check(self, index, 1))
        rc = PyBool_FromLong(vr_plane_receive_datagram(&self->plane, index, data.buf, (size_t)data.len, arrival));
    PyBuffer_Release(&data);
    return rc;
}

static PyObject *plane_receive(Plane *self, PyObject *args) {
    int index, marker, level;
    unsigned long ssrc, timestamp;
    unsigned int seq;
    Py_buffer payload;
    if (!PyArg_ParseTuple(args, "ikIkpy*i", &index, &ssrc, &seq, &timestamp, &marker, &payload, &level))
        return NULL;
    if (!vr_plane_check(self, index, 1)) {
        vr_packet packet = {.ssrc = (uint32_t)ssrc, .timestamp = (uint32_t)timestamp, .seq = (uint16_t)seq,
                            .marker = (uint8_t)marker, .level = level < 0 || level > 255 ? -1 : level,
                            .payload = payload.buf, .payload_length = (size_t)payload.len};
        if (payload.len <= VR_MAX_PAYLOAD)
            vr_plane_receive(&self->plane, index, &packet);
    }
    PyBuffer_Release(&payload);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *plane_add_subscriber(Plane *self, PyObject *args) {
    int video;
    unsigned int seq, rtx_seq;
    unsigned long timestamp;
    if (!PyArg_ParseTuple(args, "pIkI", &video, &seq, &timestamp, &rtx_seq))
        return NULL;
    if (!self->ready)
        return PyErr_Format(PyExc_RuntimeError, "Plane is not initialised");
    int index = vr_subscriber_add(&self->plane, video, (uint16_t)seq, (uint32_t)timestamp, (uint16_t)rtx_seq);
    if (index == -2)
        return PyErr_NoMemory();
    if (index < 0)
        return PyErr_Format(PyExc_ValueError, "the data plane holds at most %d subscribers",
                            self->plane.max_subscribers);
    return PyLong_FromLong(index);
}

static PyObject *plane_set_stream(Plane *self, PyObject *args) {
    int index, pt, rtx_pt, ast_id, level_id;
    unsigned long clock, ssrc, rtx_ssrc;
    Py_buffer mid;
    if (!PyArg_ParseTuple(args, "iikkkiy*ii", &index, &pt, &clock, &ssrc, &rtx_ssrc, &rtx_pt, &mid, &ast_id,
                          &level_id))
        return NULL;
    PyObject *rc = NULL;
    if (vr_plane_check(self, index, 0)) {
    } else if (pt < 0 || pt > 127 || rtx_pt < -1 || rtx_pt > 127 || clock < 1 || clock > 1000000 ||
               (size_t)mid.len > sizeof self->plane.subscribers[0].mid_element || ast_id < 0 || ast_id > 14 ||
               level_id < 0 || level_id > 14 || ssrc > 0xffffffffUL || rtx_ssrc > 0xffffffffUL) {
        PyErr_SetString(PyExc_ValueError, "a stream's payload types, clock rate, SSRCs or extensions are out of range");
    } else {
        vr_subscriber *s = &self->plane.subscribers[index];
        if (!s->configured) {  /* the first one is kept for good, as aiortc's sender does */
            s->configured = 1;
            s->payload_type = (uint8_t)pt, s->clock_rate = (uint32_t)clock;
            s->ssrc = (uint32_t)ssrc, s->rtx_ssrc = (uint32_t)rtx_ssrc;
            s->has_rtx = rtx_pt >= 0, s->rtx_payload_type = (uint8_t)(rtx_pt < 0 ? 0 : rtx_pt);
            memcpy(s->mid_element, mid.buf, (size_t)mid.len);
            s->mid_length = (size_t)mid.len;
            s->ast_id = (uint8_t)ast_id, s->audio_level_id = (uint8_t)level_id;
        }
        rc = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&mid);
    return rc;
}

static PyObject *plane_remove_subscriber(Plane *self, PyObject *arg) {
    int index = vr_as_int(arg);
    if ((index == -1 && PyErr_Occurred()) || vr_plane_check(self, index, 0))
        return NULL;
    vr_subscriber_remove(&self->plane, index);
    Py_RETURN_NONE;
}

static PyObject *plane_link(Plane *self, PyObject *args) {
    int index, publisher;
    if (!PyArg_ParseTuple(args, "ii", &index, &publisher) || vr_plane_check(self, index, 0) ||
        (publisher >= 0 && vr_plane_check(self, publisher, 1)))
        return NULL;
    vr_subscriber_link(&self->plane, index, publisher < 0 ? -1 : publisher);
    Py_RETURN_NONE;
}

static PyObject *plane_choose(Plane *self, PyObject *args) {
    int index, layer, reason;
    if (!PyArg_ParseTuple(args, "iii", &index, &layer, &reason) || vr_plane_check(self, index, 0))
        return NULL;
    vr_subscriber_choose(&self->plane, index, layer < VR_MAX_LAYERS ? layer : VR_MAX_LAYERS - 1, reason);
    Py_RETURN_NONE;
}

static PyObject *plane_ask_keyframe(Plane *self, PyObject *args) {
    int index, starting;
    if (!PyArg_ParseTuple(args, "ip", &index, &starting) || vr_plane_check(self, index, 0))
        return NULL;
    vr_subscriber_ask_keyframe(&self->plane, index, starting);
    Py_RETURN_NONE;
}

static PyObject *plane_nack(Plane *self, PyObject *args) {
    int index;
    PyObject *seqs;
    double rate;
    if (!PyArg_ParseTuple(args, "iOd", &index, &seqs, &rate) || vr_plane_check(self, index, 0))
        return NULL;
    PyObject *fast = PySequence_Fast(seqs, "a NACK's sequence numbers are a sequence");
    if (!fast)
        return NULL;
    uint16_t list[VR_HISTORY];  /* more than the history holds cannot be answered */
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast), n = 0;
    for (Py_ssize_t i = 0; i < count && n < VR_HISTORY; i++) {
        /* Modulo 2**16, whatever its size: a PID near the wrap names its bits past 65535 */
        unsigned long value = PyLong_AsUnsignedLongMask(PySequence_Fast_GET_ITEM(fast, i));
        if (value == (unsigned long)-1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return NULL;
        }
        list[n++] = (uint16_t)value;
    }
    Py_DECREF(fast);
    return PyLong_FromLong(vr_subscriber_nack(&self->plane, index, list, (size_t)n, rate));
}

static PyObject *plane_emit(Plane *self, PyObject *object) {
    if (!self->ready)
        return PyErr_Format(PyExc_RuntimeError, "Plane is not initialised");
    vr_event event = {.kind = VR_EV_OBJECT, .object = Py_NewRef(object)};
    if (vr_plane_emit(&self->plane, &event))
        Py_DECREF(object);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *plane_drain(Plane *self, PyObject *unused) {
    (void)unused;
    PyObject *list = PyList_New(0);
    vr_event e;
    while (list && self->ready && vr_plane_drain(&self->plane, &e)) {
        PyObject *item = e.kind == VR_EV_OBJECT
                             ? Py_BuildValue("(iN)", e.kind, (PyObject *)e.object)
                             : Py_BuildValue("(iiiiik)", e.kind, e.publisher, e.subscriber, e.value, e.reason,
                                             (unsigned long)e.ssrc);
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        int failed = PyList_Append(list, item);
        Py_DECREF(item);
        if (failed)
            Py_CLEAR(list);
    }
    return list;
}

static PyObject *plane_on_events(Plane *self, PyObject *callback) {
    Py_XSETREF(self->wakeup, callback == Py_None ? NULL : Py_NewRef(callback));
    Py_RETURN_NONE;
}


static PyObject *plane_on_choice(Plane *self, PyObject *callback) {
    Py_XSETREF(self->chooser, callback == Py_None ? NULL : Py_NewRef(callback));
    Py_RETURN_NONE;
}

static PyMethodDef plane_methods[] = {
    {"add_publisher", (PyCFunction)plane_add_publisher, METH_VARARGS,
     "(video, layers[, codec, audio_level_id]) -> its index; ValueError when the plane is full."},
    {"set_publisher", (PyCFunction)plane_set_publisher, METH_VARARGS,
     "(publisher, codec, audio level id or 0, rtx payload type or -1): how its datagrams are read."},
    {"set_layer_ssrcs", (PyCFunction)plane_set_layer_ssrcs, METH_VARARGS,
     "(publisher, (media ssrc or None, ...), (rtx ssrc or None, ...)): each layer's, as learnt."},
    {"remove_publisher", (PyCFunction)plane_remove_publisher, METH_O, "(publisher): its subscribers unlinked."},
    {"receive_datagram", (PyCFunction)plane_receive_datagram, METH_VARARGS,
     "(publisher, rtp bytes[, arrival]) -> False when malformed (counted, dropped)."},
    {"receive", (PyCFunction)plane_receive, METH_VARARGS,
     "(publisher, ssrc, seq, timestamp, marker, payload, audio level byte or -1)"},
    {"add_subscriber", (PyCFunction)plane_add_subscriber, METH_VARARGS,
     "(video, first seq, first timestamp, first rtx seq) -> its index; ValueError when the plane is full."},
    {"set_route", (PyCFunction)vr_plane_set_route, METH_VARARGS, "(subscriber, fd, address, profile, key, salt)"},
    {"set_stream", (PyCFunction)plane_set_stream, METH_VARARGS,
     "(subscriber, pt, clock rate, ssrc, rtx ssrc, rtx pt or -1, mid element, abs-send-time id, level id)"},
    {"remove_subscriber", (PyCFunction)plane_remove_subscriber, METH_O, "(subscriber)"},
    {"link", (PyCFunction)plane_link, METH_VARARGS, "(subscriber, publisher or -1)"},
    {"choose", (PyCFunction)plane_choose, METH_VARARGS,
     "(subscriber, layer or -1, reason): switch at its keyframe, asked for while pending."},
    {"ask_keyframe", (PyCFunction)plane_ask_keyframe, METH_VARARGS, "(subscriber, starting)"},
    {"nack", (PyCFunction)plane_nack, METH_VARARGS, "(subscriber, seqs, rate) -> packets sent again."},
    {"emit", (PyCFunction)plane_emit, METH_O, "Queue an object among the events, in order."},
    {"drain", (PyCFunction)plane_drain, METH_NOARGS,
     "[(kind, publisher, subscriber, value, reason, ssrc) or (kind, object)], oldest first."},
    {"on_events", (PyCFunction)plane_on_events, METH_O, "wakeup() when an event enters an empty queue (None: none)."},
    {"on_choice", (PyCFunction)plane_on_choice, METH_O,
     "choose(publisher) when a simulcast publisher's subscribers are due a layer choice (None: never)."},
    {"meter", (PyCFunction)vr_plane_meter, METH_O, "(publisher) -> (last packet, arriving since, bitrate) per layer."},
    {"publisher_stats", (PyCFunction)vr_plane_publisher_stats, METH_O,
     "(publisher) -> (packets, unknown layer packets, has ssrc, ssrc)."},
    {"subscriber_stats", (PyCFunction)vr_plane_subscriber_stats, METH_O,
     "(subscriber) -> (publisher, layer, pending, packets, octets, ntp, rtp)."},
    {"counters", (PyCFunction)vr_plane_counters, METH_NOARGS, "The plane's counters as a dict."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PlaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "videoroomd.media.dataplane._native.Plane",
    .tp_basicsize = sizeof(Plane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Plane(max_publishers=256, max_subscribers=1024, choice_interval=0.2): the forwarding core.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)plane_init,
    .tp_dealloc = (destructor)plane_dealloc,
    .tp_traverse = (traverseproc)plane_traverse,
    .tp_clear = (inquiry)plane_clear,
    .tp_methods = plane_methods,
};

vr_plane *vr_plane_of(PyObject *object) {
    return PyObject_TypeCheck(object, &PlaneType) && ((Plane *)object)->ready ? &((Plane *)object)->plane : NULL;
}

int vr_plane_register(PyObject *m) {
    if (PyType_Ready(&PlaneType) < 0 || PyModule_AddObjectRef(m, "Plane", (PyObject *)&PlaneType) < 0)
        return -1;
    struct { const char *name; long value; } constants[] = {
        {"EV_KEYFRAME", VR_EV_KEYFRAME}, {"EV_LAYER", VR_EV_LAYER}, {"EV_FELL_BEHIND", VR_EV_FELL_BEHIND},
        {"EV_VOICE", VR_EV_VOICE}, {"EV_OBJECT", VR_EV_OBJECT},
        {"CODEC_VP8", VR_CODEC_VP8}, {"CODEC_H264", VR_CODEC_H264}, {"MAX_LAYERS", VR_MAX_LAYERS},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0)
            return -1;
    return 0;
}
