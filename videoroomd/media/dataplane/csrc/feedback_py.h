/* _native.Feedback (feedback_py.c) as the Port reaches it. */
#ifndef VR_FEEDBACK_PY_H
#define VR_FEEDBACK_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "feedback.h"

typedef struct {
    PyObject_HEAD
    PyObject *plane;    /* the _native.Plane the subscribers are in (a reference: the core stays) */
    vr_feedback feedback;
} FeedbackObject;

/* The table of an initialised _native.Feedback, or NULL (no exception set). */
vr_feedback *vr_feedback_of(PyObject *object);
int vr_feedback_register(PyObject *module);

#endif
