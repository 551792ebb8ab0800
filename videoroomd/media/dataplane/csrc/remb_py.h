/* _native.Remb (remb_py.c) as the Port reaches it. */
#ifndef VR_REMB_PY_H
#define VR_REMB_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "remb.h"

typedef struct {
    PyObject_HEAD
    int ready;
    vr_remb_feed feed;
} RembObject;

/* The estimator of an initialised _native.Remb, or NULL (no exception set). */
vr_remb_feed *vr_remb_of(PyObject *object);
int vr_remb_register(PyObject *module);

#endif
