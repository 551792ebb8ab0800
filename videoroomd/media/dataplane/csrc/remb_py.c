/* _native.Remb: the receive-side bandwidth estimator (remb.h) for Python. A Port fed by it in C
 * (Port.route's remb) leaves Python one take() per read batch instead of a call per packet. */
#include "remb_py.h"

static PyObject *ssrc_list(const vr_remb *r) {
    PyObject *list = PyList_New(r->ssrc_count);
    for (int i = 0; list && i < r->ssrc_count; i++) {
        PyObject *ssrc = PyLong_FromUnsignedLong(r->ssrcs[i]);
        if (!ssrc)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, ssrc);
    }
    return list;
}

static PyObject *remb_add(RembObject *self, PyObject *args) {
    long long arrival_ms;
    unsigned long abs_send_time, size, ssrc;
    if (!PyArg_ParseTuple(args, "Lkkk", &arrival_ms, &abs_send_time, &size, &ssrc))
        return NULL;
    if (arrival_ms > VR_REMB_MAX_MS || arrival_ms < -VR_REMB_MAX_MS)
        return PyErr_Format(PyExc_ValueError, "arrival_ms %lld is out of range (at most 2**52 either side)",
                            arrival_ms);
    if (abs_send_time > 0xffffffUL || size > 0xffffffffUL || ssrc > 0xffffffffUL)
        return PyErr_Format(PyExc_ValueError, "abs_send_time is 24 bits, size and ssrc 32 (got %lu, %lu, %lu)",
                            abs_send_time, size, ssrc);
    int64_t bitrate;
    if (!vr_remb_feed_add(&self->feed, arrival_ms, (uint32_t)abs_send_time, (uint32_t)size, (uint32_t)ssrc, &bitrate))
        Py_RETURN_NONE;
    return Py_BuildValue("(LN)", (long long)bitrate, ssrc_list(&self->feed.estimator));
}

static PyObject *remb_take(RembObject *self, PyObject *unused) {
    (void)unused;
    vr_remb_feed *f = &self->feed;
    if (!f->due)
        Py_RETURN_NONE;
    PyObject *overuse = f->due_has_overuse ? PyLong_FromLongLong(f->due_overuse_ms) : Py_NewRef(Py_None);
    PyObject *result = overuse ? Py_BuildValue("(LLNN)", (long long)f->due_bitrate, (long long)f->due_ms, overuse,
                                               ssrc_list(&f->estimator)) : NULL;
    if (result)
        f->due = 0;
    return result;
}

static PyObject *remb_overusing(RembObject *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->feed.estimator.hypothesis == VR_USAGE_OVER);
}

static PyObject *remb_arrivals(RembObject *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->feed.arrivals);
}

static int remb_init(RembObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":Remb", keywords))
        return -1;
    vr_remb_feed_init(&self->feed);
    self->ready = 1;
    return 0;
}

static PyMethodDef remb_methods[] = {
    {"add", (PyCFunction)remb_add, METH_VARARGS,
     "(arrival_ms, abs_send_time, size, ssrc) -> (bitrate, [ssrcs]) when a REMB is due, else None: as aiortc's "
     "RemoteBitrateEstimator.add."},
    {"take", (PyCFunction)remb_take, METH_NOARGS,
     "-> (bitrate, at_ms, last_overuse_ms or None, [ssrcs]) of the newest REMB due since the last take, or None. "
     "last_overuse_ms: the last arrival the estimator saw over-use at, up to at_ms."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef remb_getset[] = {
    {"overusing", (getter)remb_overusing, NULL, "the detector's hypothesis is over-use", NULL},
    {"arrivals", (getter)remb_arrivals, NULL, "packets the estimator was fed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject RembType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "videoroomd.media.dataplane._native.Remb",
    .tp_basicsize = sizeof(RembObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Remb(): the delay-based receive-side bandwidth estimator (draft-ietf-rmcat-gcc) behind REMB, "
              "with aiortc's RemoteBitrateEstimator's figures.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)remb_init,
    .tp_methods = remb_methods,
    .tp_getset = remb_getset,
};

vr_remb_feed *vr_remb_of(PyObject *object) {
    if (!PyObject_TypeCheck(object, &RembType) || !((RembObject *)object)->ready)
        return NULL;
    return &((RembObject *)object)->feed;
}

int vr_remb_register(PyObject *module) {
    if (PyType_Ready(&RembType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Remb", (PyObject *)&RembType);
}
