/* videoroomd.media.dataplane._native: the compiled data plane's first parts, for Python.
 *
 * SrtpSession (srtp.h) protects and unprotects (AES-CM with HMAC-SHA1, AES-GCM); demux, parse_rtp,
 * rtp_extension and walk_rtcp (parse.h) read untrusted datagrams;
 * derive_key and aes_cm_keystream expose the key schedule for RFC 3711's
 * test vectors. Every error is an exception, never a crash: bad input
 * raises ParseError or SrtpError, a missing libcrypto raises
 * CryptoUnavailable with the reason. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "crypto.h"
#include "parse.h"
#include "port.h"
#include "port_tap.h"
#include "srtp.h"
#include "plane_py.h"
#include "feedback_py.h"
#include "port_object.h"
#include "remb_py.h"

static PyObject *ParseError, *SrtpError, *CryptoUnavailable;

typedef struct {
    PyObject_HEAD
    vr_srtp srtp;
    int ready;
} SrtpSession;

static PyObject *srtp_error(int status) {
    PyObject *args = Py_BuildValue("(is)", status, vr_srtp_status_name(status));
    if (args) {
        PyErr_SetObject(SrtpError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static int session_init(SrtpSession *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"profile", "key", "salt", NULL};
    int profile;
    size_t key_len = 0, salt_len = 0;
    Py_buffer key, salt;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iy*y*", kwlist, &profile, &key, &salt))
        return -1;
    int rc = -1;
    const char *why = vr_crypto_load();
    if (why) {
        PyErr_SetString(CryptoUnavailable, why);
    } else if (!vr_srtp_lengths(profile, &key_len, &salt_len)) {
        PyErr_Format(PyExc_ValueError, "unknown SRTP profile %d", profile);
    } else if ((size_t)key.len != key_len || (size_t)salt.len != salt_len) {
        PyErr_Format(PyExc_ValueError, "SRTP profile %d takes a %zu-byte master key and a %zu-byte salt", profile,
                     key_len, salt_len);
    } else {
        if (self->ready)
            vr_srtp_free(&self->srtp);
        int status = vr_srtp_init(&self->srtp, profile, key.buf, salt.buf);
        self->ready = status == 0;
        if (status)
            srtp_error(status);
        else
            rc = 0;
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&salt);
    return rc;
}

static void session_dealloc(SrtpSession *self) {
    if (self->ready)
        vr_srtp_free(&self->srtp);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

typedef int (*transform)(vr_srtp *, const uint8_t *, size_t, uint8_t *, size_t *);

/* Run one transform of data into a new bytes of exactly the size it will have. */
static PyObject *apply(SrtpSession *self, PyObject *data, transform fn, Py_ssize_t grow, Py_ssize_t minimum) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpSession is not initialised");
        return NULL;
    }
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE))
        return NULL;
    PyObject *out = NULL;
    if (in.len < minimum) {
        srtp_error(VR_SRTP_MALFORMED);
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, in.len + grow);
    if (!out)
        goto done;
    size_t out_len = 0;
    int status = fn(&self->srtp, in.buf, (size_t)in.len, (uint8_t *)PyBytes_AS_STRING(out), &out_len);
    if (status) {
        Py_CLEAR(out);
        srtp_error(status);
    }
done:
    PyBuffer_Release(&in);
    return out;
}

static PyObject *session_protect(SrtpSession *self, PyObject *data) {
    return apply(self, data, vr_srtp_protect, (Py_ssize_t)self->srtp.rtp_tag, 0);
}

static PyObject *session_unprotect(SrtpSession *self, PyObject *data) {
    Py_ssize_t tag = (Py_ssize_t)self->srtp.rtp_tag;
    return apply(self, data, vr_srtp_unprotect, -tag, tag);
}

static PyObject *session_protect_rtcp(SrtpSession *self, PyObject *data) {
    return apply(self, data, vr_srtcp_protect, (Py_ssize_t)self->srtp.rtcp_trailer, 0);
}

static PyObject *session_unprotect_rtcp(SrtpSession *self, PyObject *data) {
    Py_ssize_t trailer = (Py_ssize_t)self->srtp.rtcp_trailer;
    return apply(self, data, vr_srtcp_unprotect, -trailer, trailer);
}

static PyObject *session_streams(SrtpSession *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(self->ready ? self->srtp.count : 0);
}

static PyMethodDef session_methods[] = {
    {"protect", (PyCFunction)session_protect, METH_O, "RTP -> SRTP bytes; raises SrtpError."},
    {"unprotect", (PyCFunction)session_unprotect, METH_O, "SRTP -> RTP bytes; raises SrtpError."},
    {"protect_rtcp", (PyCFunction)session_protect_rtcp, METH_O, "RTCP -> SRTCP bytes; raises SrtpError."},
    {"unprotect_rtcp", (PyCFunction)session_unprotect_rtcp, METH_O, "SRTCP -> RTCP bytes; raises SrtpError."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef session_getset[] = {
    {"streams", (getter)session_streams, NULL, "SSRCs this session holds state for", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SrtpSessionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "videoroomd.media.dataplane._native.SrtpSession",
    .tp_basicsize = sizeof(SrtpSession),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SrtpSession(profile, key, salt): SRTP/SRTCP with one master key and salt, both directions.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)session_init,
    .tp_dealloc = (destructor)session_dealloc,
    .tp_methods = session_methods,
    .tp_getset = session_getset,
};

/* --- parsing -------------------------------------------------------------------------------- */

static PyObject *parse_error(int status) {
    PyErr_SetString(ParseError, vr_parse_status_name(status));
    return NULL;
}

static PyObject *py_demux(PyObject *module, PyObject *data) {
    (void)module;
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE))
        return NULL;
    int kind = vr_demux(in.buf, (size_t)in.len);
    PyBuffer_Release(&in);
    return PyLong_FromLong(kind);
}

static PyObject *rtp_dict(const vr_rtp *r) {
    return Py_BuildValue("{s:i,s:O,s:i,s:I,s:k,s:k,s:n,s:n,s:i,s:O,s:i,s:n,s:n}", "payload_type", r->payload_type,
                         "marker", r->marker ? Py_True : Py_False, "csrc_count", r->csrc_count, "sequence",
                         (unsigned)r->sequence, "timestamp", (unsigned long)r->timestamp, "ssrc",
                         (unsigned long)r->ssrc, "header_length", (Py_ssize_t)r->header_length, "payload_length",
                         (Py_ssize_t)r->payload_length, "padding", r->padding, "has_extension",
                         r->has_extension ? Py_True : Py_False, "extension_profile", r->extension_profile,
                         "extension_offset", (Py_ssize_t)r->extension_offset, "extension_length",
                         (Py_ssize_t)r->extension_length);
}

static PyObject *py_parse_rtp(PyObject *module, PyObject *data) {
    (void)module;
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE))
        return NULL;
    vr_rtp r;
    int rc = vr_rtp_parse(in.buf, (size_t)in.len, &r);
    PyBuffer_Release(&in);
    return rc ? parse_error(rc) : rtp_dict(&r);
}

static PyObject *py_rtp_extension(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer in;
    unsigned int id;
    if (!PyArg_ParseTuple(args, "y*I", &in, &id))
        return NULL;
    PyObject *result = NULL;
    vr_rtp r;
    size_t offset = 0, length = 0;
    int rc = vr_rtp_parse(in.buf, (size_t)in.len, &r);
    if (!rc)
        rc = vr_rtp_extension(in.buf, &r, id, &offset, &length);
    if (rc < 0)
        parse_error(rc);
    else if (rc == 0)
        result = Py_NewRef(Py_None);
    else
        result = PyBytes_FromStringAndSize((const char *)in.buf + offset, (Py_ssize_t)length);
    PyBuffer_Release(&in);
    return result;
}

static PyObject *py_walk_rtcp(PyObject *module, PyObject *data) {
    (void)module;
    Py_buffer in;
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE))
        return NULL;
    PyObject *list = NULL;
    vr_rtcp *packets = NULL;
    int count = vr_rtcp_walk(in.buf, (size_t)in.len, NULL, 0); /* first how many, then where */
    if (count < 0) {
        parse_error(count);
    } else if (!(packets = PyMem_Calloc((size_t)count + 1, sizeof *packets))) {
        PyErr_NoMemory();
    } else if (vr_rtcp_walk(in.buf, (size_t)in.len, packets, (size_t)count) == count &&
               (list = PyList_New(count))) {
        for (int i = 0; i < count; i++) {
            vr_rtcp *p = &packets[i];
            PyObject *item = Py_BuildValue("(iiknni)", p->packet_type, p->count, (unsigned long)p->ssrc,
                                           (Py_ssize_t)p->offset, (Py_ssize_t)p->length, p->padding);
            if (!item) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, i, item);
        }
    }
    PyMem_Free(packets);
    PyBuffer_Release(&in);
    return list;
}

/* --- the key schedule, for the RFC's test vectors --------------------------------------------- */

static PyObject *py_derive_key(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer key, salt;
    int label;
    Py_ssize_t length;
    uint8_t padded[14] = {0}; /* a 12-byte (AEAD) salt ends with two zero bytes, as libsrtp pads it */
    if (!PyArg_ParseTuple(args, "y*y*in", &key, &salt, &label, &length))
        return NULL;
    PyObject *out = NULL;
    const char *why = vr_crypto_load();
    if (why) {
        PyErr_SetString(CryptoUnavailable, why);
    } else if ((key.len != 16 && key.len != 32) || (salt.len != 14 && salt.len != 12) || label < 0 ||
               label > 255 || length < 0 || length > 4096) {
        PyErr_SetString(PyExc_ValueError, "key 16 or 32 bytes, salt 14 or 12, label 0-255, length up to 4096");
    } else if ((out = PyBytes_FromStringAndSize(NULL, length))) {
        memcpy(padded, salt.buf, (size_t)salt.len);
        if (vr_srtp_derive(key.buf, (size_t)key.len, padded, (uint8_t)label, (uint8_t *)PyBytes_AS_STRING(out),
                           (size_t)length)) {
            Py_CLEAR(out);
            srtp_error(VR_SRTP_CRYPTO);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&salt);
    return out;
}

static PyObject *py_aes_cm_keystream(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer key, iv;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "y*y*n", &key, &iv, &length))
        return NULL;
    PyObject *out = NULL;
    vr_cipher *c = NULL;
    const char *why = vr_crypto_load();
    if (why)
        PyErr_SetString(CryptoUnavailable, why);
    else if (key.len != 16 || iv.len != 16 || length < 0 || length > (1 << 24))
        PyErr_SetString(PyExc_ValueError, "key 16 bytes, iv 16, length up to 16 MiB");
    else if (!(c = vr_aes_ctr_new(key.buf, 16)))
        srtp_error(VR_SRTP_CRYPTO);
    else if ((out = PyBytes_FromStringAndSize(NULL, length))) {
        uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
        memset(p, 0, (size_t)length);
        if (vr_aes_ctr_xor(c, iv.buf, p, p, (size_t)length)) {
            Py_CLEAR(out);
            srtp_error(VR_SRTP_CRYPTO);
        }
    }
    vr_cipher_free(c);
    PyBuffer_Release(&key);
    PyBuffer_Release(&iv);
    return out;
}

static PyObject *py_crypto_error(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    const char *why = vr_crypto_load();
    return why ? PyUnicode_FromString(why) : Py_NewRef(Py_None);
}

static PyMethodDef module_methods[] = {
    {"crypto_error", py_crypto_error, METH_NOARGS, "None when libcrypto is loaded, else why not."},
    {"demux", py_demux, METH_O, "RFC 7983 class of a datagram: DROP, STUN, ZRTP, DTLS, TURN_CHANNEL, RTP, RTCP."},
    {"parse_rtp", py_parse_rtp, METH_O, "The RTP header's fields as a dict; raises ParseError."},
    {"rtp_extension", py_rtp_extension, METH_VARARGS, "(packet, id) -> the element's bytes or None."},
    {"walk_rtcp", py_walk_rtcp, METH_O, "[(type, count, ssrc, offset, length, padding)] of a compound."},
    {"derive_key", py_derive_key, METH_VARARGS, "(master_key, master_salt, label, length) -> RFC 3711 4.3."},
    {"aes_cm_keystream", py_aes_cm_keystream, METH_VARARGS, "(key, iv, length) -> AES-CM keystream."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "The compiled data plane's SRTP and parsers.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    vr_crc32_init();
    if (PyType_Ready(&SrtpSessionType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (!m)
        return NULL;
    ParseError = PyErr_NewException("videoroomd.media.dataplane._native.ParseError", PyExc_ValueError, NULL);
    SrtpError = PyErr_NewException("videoroomd.media.dataplane._native.SrtpError", NULL, NULL);
    CryptoUnavailable =
        PyErr_NewException("videoroomd.media.dataplane._native.CryptoUnavailable", PyExc_RuntimeError, NULL);
    if (!ParseError || !SrtpError || !CryptoUnavailable ||
        PyModule_AddObjectRef(m, "ParseError", ParseError) < 0 ||
        PyModule_AddObjectRef(m, "SrtpError", SrtpError) < 0 ||
        PyModule_AddObjectRef(m, "CryptoUnavailable", CryptoUnavailable) < 0 ||
        PyModule_AddObjectRef(m, "SrtpSession", (PyObject *)&SrtpSessionType) < 0 ||
        vr_port_register(m, SrtpError) < 0 ||
        vr_plane_register(m) < 0 ||
        vr_remb_register(m) < 0 ||
        vr_feedback_register(m) < 0)
        goto fail;
    struct { const char *name; long value; } constants[] = {
        {"DROP", VR_DROP}, {"STUN", VR_STUN}, {"ZRTP", VR_ZRTP}, {"DTLS", VR_DTLS},
        {"TURN_CHANNEL", VR_TURN_CHANNEL}, {"RTP", VR_RTP}, {"RTCP", VR_RTCP},
        {"DUE_NOW", VR_DUE_NOW}, {"DUE_COUNTERS", VR_DUE_COUNTERS},
        {"AES_CM_128_HMAC_SHA1_80", VR_AES_CM_128_HMAC_SHA1_80},
        {"AES_CM_128_HMAC_SHA1_32", VR_AES_CM_128_HMAC_SHA1_32},
        {"AEAD_AES_128_GCM", VR_AEAD_AES_128_GCM}, {"AEAD_AES_256_GCM", VR_AEAD_AES_256_GCM},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0)
            goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
