/* _native.Plane's object, shared by plane_module.c (its calls) and plane_stats.c (what it reads out). */
#ifndef VR_PLANE_PY_H
#define VR_PLANE_PY_H

#include <Python.h>

#include "plane.h"

typedef struct {
    PyObject_HEAD
    vr_plane plane;
    int ready;
    PyObject *wakeup, *chooser;
} Plane;

/* An int argument; -1 with an exception set when it is none (an index is never negative). */
static inline int vr_as_int(PyObject *arg) {
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred())
        return -1;
    return value < 0 || value > 0x7fffffffL ? -2 : (int)value;
}

/* 0 when index names a publisher (publisher != 0) or subscriber of the plane, else -1 with IndexError. */
int vr_plane_check(Plane *self, int index, int publisher);

PyObject *vr_plane_set_route(Plane *self, PyObject *args);
PyObject *vr_plane_meter(Plane *self, PyObject *arg);
PyObject *vr_plane_publisher_stats(Plane *self, PyObject *arg);
PyObject *vr_plane_subscriber_stats(Plane *self, PyObject *arg);
PyObject *vr_plane_counters(Plane *self, PyObject *unused);

/* The core of an initialised _native.Plane, else NULL (nothing set). */
vr_plane *vr_plane_of(PyObject *object);

/* Adds Plane and its constants to the module: 0, or -1 with an exception set. */
int vr_plane_register(PyObject *module);

#endif
