/* _native.Port: a media socket's receive and send halves (port.c). */
#ifndef VR_PORT_H
#define VR_PORT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Add the Port type to module; SRTP key errors raise srtp_error. 0, or -1 with an exception set. */
int vr_port_register(PyObject *module, PyObject *srtp_error);

#endif
