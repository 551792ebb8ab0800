/* _native.Plane.set_route: where a subscriber's packets go (a socket's descriptor and the peer's
 * address) and the SRTP session that protects them, made from the profile, key and salt. */
#define PY_SSIZE_T_CLEAN
#include "plane_py.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>

#include "crypto.h"

/* (host, port[, flowinfo, scope_id]) for IPv4/IPv6, a path for a Unix datagram socket, or None for a
 * connected socket (length 0: sent without an address). */
static int parse_address(PyObject *address, struct sockaddr_storage *out, socklen_t *length) {
    memset(out, 0, sizeof *out);
    if (address == Py_None) {
        *length = 0;
        return 0;
    }
    if (PyUnicode_Check(address)) {
        struct sockaddr_un *un = (struct sockaddr_un *)out;
        Py_ssize_t size;
        const char *path = PyUnicode_AsUTF8AndSize(address, &size);
        if (!path)
            return -1;
        if ((size_t)size >= sizeof un->sun_path) {
            PyErr_SetString(PyExc_ValueError, "a Unix socket path is too long");
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, (size_t)size);
        *length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)size + 1);
        return 0;
    }
    const char *host;
    int port;
    unsigned int flow = 0, scope = 0;
    if (!PyTuple_Check(address) || !PyArg_ParseTuple(address, "si|II", &host, &port, &flow, &scope)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "an address is (host, port[, flowinfo, scope_id]) or a Unix path");
        return -1;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "a port is 0 to 65535");
        return -1;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET, in4->sin_port = htons((uint16_t)port);
        *length = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6, in6->sin6_port = htons((uint16_t)port);
        in6->sin6_flowinfo = htonl(flow), in6->sin6_scope_id = scope;
        *length = sizeof *in6;
    } else {
        PyErr_Format(PyExc_ValueError, "%s is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    return 0;
}

PyObject *vr_plane_set_route(Plane *self, PyObject *args) {
    int index, fd, profile;
    PyObject *address;
    Py_buffer key, salt;
    if (!PyArg_ParseTuple(args, "iiOiy*y*", &index, &fd, &address, &profile, &key, &salt))
        return NULL;
    PyObject *rc = NULL;
    size_t key_len = 0, salt_len = 0;
    struct sockaddr_storage where;
    socklen_t where_len = 0;
    const char *why;
    if (vr_plane_check(self, index, 0) || parse_address(address, &where, &where_len)) {
    } else if ((why = vr_crypto_load())) {
        PyErr_Format(PyExc_RuntimeError, "no SRTP: %s", why);
    } else if (!vr_srtp_lengths(profile, &key_len, &salt_len) || (size_t)key.len != key_len ||
               (size_t)salt.len != salt_len || fd < 0) {
        PyErr_Format(PyExc_ValueError, "a route takes a socket and an SRTP profile with its key and salt lengths");
    } else {
        vr_subscriber *s = &self->plane.subscribers[index];
        int same_keys = s->srtp_ready && s->srtp_profile == profile && key_len <= sizeof s->srtp_key &&
                        salt_len <= sizeof s->srtp_salt && memcmp(s->srtp_key, key.buf, key_len) == 0 &&
                        memcmp(s->srtp_salt, salt.buf, salt_len) == 0;
        int status = 0;
        if (!same_keys) {
            if (s->srtp_ready)
                vr_srtp_free(&s->srtp);
            s->srtp_ready = s->routed = 0;
            status = vr_srtp_init(&s->srtp, profile, key.buf, salt.buf);
        }
        if (status) {
            PyErr_Format(PyExc_RuntimeError, "SRTP session: %s", vr_srtp_status_name(status));
        } else {
            if (!same_keys) {
                s->srtp_profile = profile;
                memset(s->srtp_key, 0, sizeof s->srtp_key), memset(s->srtp_salt, 0, sizeof s->srtp_salt);
                memcpy(s->srtp_key, key.buf, key_len < sizeof s->srtp_key ? key_len : sizeof s->srtp_key);
                memcpy(s->srtp_salt, salt.buf, salt_len < sizeof s->srtp_salt ? salt_len : sizeof s->srtp_salt);
            }
            s->srtp_ready = s->routed = 1;
            s->fd = fd, s->address = where, s->address_length = where_len;
            rc = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&salt);
    return rc;
}

