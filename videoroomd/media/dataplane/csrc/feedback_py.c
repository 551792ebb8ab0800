/* _native.Feedback: a connection's RTCP about the streams the plane sends it, read in C (feedback.h).
 * Python registers each stream; a Port given the object (Port.set_feedback) hands it every
 * decrypted compound, and Python takes the REMB and loss summary when the Port says it is due. */
#include "feedback_py.h"

#include "plane_py.h"

static int checked_ssrc(PyObject *arg, uint32_t *out) {
    unsigned long long ssrc = PyLong_AsUnsignedLongLong(arg);
    if (ssrc == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    if (ssrc > 0xffffffffULL) {
        PyErr_Format(PyExc_ValueError, "an SSRC is 32 bits, not %llu", ssrc);
        return -1;
    }
    *out = (uint32_t)ssrc;
    return 0;
}

static int ready(FeedbackObject *self) {
    if (self->plane)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Feedback is not initialised");
    return 0;
}

static PyObject *feedback_add(FeedbackObject *self, PyObject *args) {
    PyObject *ssrc_object;
    int subscriber, video;
    double rate;
    uint32_t ssrc;
    if (!ready(self) || !PyArg_ParseTuple(args, "Oipd", &ssrc_object, &subscriber, &video, &rate) ||
        checked_ssrc(ssrc_object, &ssrc) || vr_plane_check((Plane *)self->plane, subscriber, 0))
        return NULL;
    if (!(rate >= 0))
        return PyErr_Format(PyExc_ValueError, "a retransmission rate is at least 0, not %R", PyTuple_GET_ITEM(args, 3));
    return PyBool_FromLong(vr_feedback_add(&self->feedback, ssrc, subscriber, video, rate) == 0);
}

static PyObject *feedback_discard(FeedbackObject *self, PyObject *arg) {
    uint32_t ssrc;
    if (!ready(self) || checked_ssrc(arg, &ssrc))
        return NULL;
    return PyBool_FromLong(vr_feedback_discard(&self->feedback, ssrc));
}

static PyObject *feedback_feed(FeedbackObject *self, PyObject *arg) {
    Py_buffer view;
    if (!ready(self) || PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint8_t up[VR_FEEDBACK_MAX];
    long given = vr_feedback_take(&self->feedback, view.buf, (size_t)view.len, up);
    PyObject *result = given < 0 ? PyBytes_FromStringAndSize(view.buf, view.len)
                       : given ? PyBytes_FromStringAndSize((const char *)up, given) : Py_NewRef(Py_None);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *feedback_take(FeedbackObject *self, PyObject *unused) {
    (void)unused;
    vr_feedback *f = &self->feedback;
    if (!ready(self))
        return NULL;
    if (!f->due)
        Py_RETURN_NONE;
    PyObject *remb = f->has_remb ? PyLong_FromLongLong(f->remb_bps) : Py_NewRef(Py_None);
    PyObject *loss = f->has_loss ? PyLong_FromLong(f->loss) : Py_NewRef(Py_None);
    PyObject *result = remb && loss ? PyTuple_Pack(2, remb, loss) : NULL;
    Py_XDECREF(remb);
    Py_XDECREF(loss);
    if (result) {
        if (f->has_loss)
            f->last_loss = f->loss;
        f->due = f->has_remb = f->has_loss = 0;
    }
    return result;
}

static PyObject *feedback_due(FeedbackObject *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->feedback.due);
}

static PyObject *feedback_counters(FeedbackObject *self, void *closure) {
    (void)closure;
    vr_feedback *f = &self->feedback;
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsi}", "compounds", f->compounds, "taken", f->taken, "passed", f->passed,
                         "whole", f->whole, "nacks", f->nacks, "keyframe_requests", f->keyframes, "rembs", f->rembs,
                         "reports", f->reports, "streams", f->count);
}

static int feedback_init(FeedbackObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"plane", NULL};
    PyObject *plane;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Feedback", keywords, &plane))
        return -1;
    vr_plane *core = vr_plane_of(plane);
    if (!core) {
        PyErr_Format(PyExc_TypeError, "Feedback takes an initialised _native.Plane, not %R", plane);
        return -1;
    }
    Py_XSETREF(self->plane, Py_NewRef(plane));
    vr_feedback_init(&self->feedback, core);
    return 0;
}

static void feedback_dealloc(FeedbackObject *self) {
    Py_CLEAR(self->plane);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef feedback_methods[] = {
    {"add", (PyCFunction)feedback_add, METH_VARARGS,
     "(ssrc, subscriber, video, rate): the plane's subscriber sends its stream with media SSRC ssrc on this "
     "connection; its NACKs are answered at rate retransmissions a second at most. Again: updated. False when "
     "the table is full (that stream's RTCP goes up to Python)."},
    {"discard", (PyCFunction)feedback_discard, METH_O, "(ssrc): no more; False when it was not registered."},
    {"feed", (PyCFunction)feedback_feed, METH_O,
     "(compound) -> None when all of it was done here, else the bytes Python is to have: its sender reports "
     "and BYEs, or the whole compound when its structure is not one aiortc would take (nothing of it done)."},
    {"take", (PyCFunction)feedback_take, METH_NOARGS,
     "-> (remb_bps or None, fraction_lost or None) since the last take, when due (a REMB came, or a video "
     "report's lost fraction, 0-255, other than a repeat of nothing lost), else None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef feedback_getset[] = {
    {"due", (getter)feedback_due, NULL, "take() has something (cheap to read)", NULL},
    {"counters", (getter)feedback_counters, NULL, "compounds read and what was done, by name", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FeedbackType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "videoroomd.media.dataplane._native.Feedback",
    .tp_basicsize = sizeof(FeedbackObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Feedback(plane): one connection's RTCP about the streams plane sends it, read in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)feedback_init,
    .tp_dealloc = (destructor)feedback_dealloc,
    .tp_methods = feedback_methods,
    .tp_getset = feedback_getset,
};

vr_feedback *vr_feedback_of(PyObject *object) {
    if (!PyObject_TypeCheck(object, &FeedbackType) || !((FeedbackObject *)object)->plane)
        return NULL;
    return &((FeedbackObject *)object)->feedback;
}

int vr_feedback_register(PyObject *module) {
    if (PyType_Ready(&FeedbackType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Feedback", (PyObject *)&FeedbackType);
}
