/* _native.Port: one UDP media socket after DTLS, read and written in batches (port_io.h).
 *
 * read_batch() drains what the socket holds; each datagram is classified (RFC 7983): STUN and DTLS
 * go back to Python unchanged with their source; RTP and RTCP from a source that is not allowed
 * (a validated ICE pair's remote address, allow()/forget()) are dropped and counted before any SRTP
 * work; the rest is unprotected with the inbound session (set_keys) and returned decrypted, with
 * the kernel's arrival time. send() protects RTP with the outbound session into a bounded queue
 * that flush() writes with sendmmsg. Nothing raises per packet: failures are counted.
 * The socket stays Python's: the Port never closes its descriptor. */
#include "port.h"
#include "port_object.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "feedback_py.h"
#include "parse.h"

#define MAX_READS 16        /* recvmmsg calls one read_batch makes at most (1024 datagrams), then yields */

static PyObject *SrtpError;

static int port_init(Port *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd", "timestamps", NULL};
    int fd, timestamps = 1, type = 0;
    struct sockaddr_storage ss;
    socklen_t len = sizeof type, ss_len = sizeof ss;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|p", kwlist, &fd, &timestamps))
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_DGRAM ||
        getsockname(fd, (struct sockaddr *)&ss, &ss_len) ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        PyErr_Format(PyExc_ValueError, "Port takes a bound UDP socket's descriptor; %d is not one", fd);
        return -1;
    }
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Port is already initialised");
        return -1;
    }
    self->fd = fd;
    self->ready = 1;
    self->family = ss.ss_family;
    if (timestamps)
        vr_io_stamp(fd); /* without stamps the arrival times are None: the caller takes its own clock */
    return 0;
}

static void port_dealloc(Port *self) {
    if (self->keyed) {
        vr_srtp_free(&self->rx);
        vr_srtp_free(&self->tx);
    }
    PyMem_Free(self->queue);
    vr_port_fast_free(self);
    Py_CLEAR(self->feedback);
    Py_CLEAR(self->handler);
    Py_CLEAR(self->lost);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *port_set_keys(Port *self, PyObject *args) {
    int profile;
    Py_buffer rk, rs, tk, ts;
    size_t key_len = 0, salt_len = 0;
    if (!PyArg_ParseTuple(args, "iy*y*y*y*", &profile, &rk, &rs, &tk, &ts))
        return NULL;
    PyObject *result = NULL;
    const char *why = vr_crypto_load();
    if (why) {
        PyErr_SetString(PyExc_RuntimeError, why);
    } else if (!vr_srtp_lengths(profile, &key_len, &salt_len)) {
        PyErr_Format(PyExc_ValueError, "unknown SRTP profile %d", profile);
    } else if ((size_t)rk.len != key_len || (size_t)tk.len != key_len || (size_t)rs.len != salt_len ||
               (size_t)ts.len != salt_len) {
        PyErr_Format(PyExc_ValueError, "SRTP profile %d takes %zu-byte keys and %zu-byte salts", profile, key_len,
                     salt_len);
    } else {
        vr_srtp rx, tx;
        int status = vr_srtp_init(&rx, profile, rk.buf, rs.buf);
        if (!status && (status = vr_srtp_init(&tx, profile, tk.buf, ts.buf)))
            vr_srtp_free(&rx);
        PyObject *why_args = status ? Py_BuildValue("(is)", status, vr_srtp_status_name(status)) : NULL;
        if (status) {
            if (why_args)
                PyErr_SetObject(SrtpError, why_args);
            Py_XDECREF(why_args);
        } else {
            if (self->keyed) {
                vr_srtp_free(&self->rx);
                vr_srtp_free(&self->tx);
            }
            self->rx = rx;
            self->tx = tx;
            self->keyed = 1;
            result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&rk);
    PyBuffer_Release(&rs);
    PyBuffer_Release(&tk);
    PyBuffer_Release(&ts);
    return result;
}

/* (host, port, ...) as a vr_addr; -1 with ValueError/TypeError set. */
static int address_arg(PyObject *address, vr_addr *out) {
    if (!PyTuple_Check(address) || PyTuple_GET_SIZE(address) < 2 || !PyUnicode_Check(PyTuple_GET_ITEM(address, 0)) ||
        !PyLong_Check(PyTuple_GET_ITEM(address, 1))) {
        PyErr_SetString(PyExc_TypeError, "an address is a tuple (host: str, port: int, ...)");
        return -1;
    }
    const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(address, 0));
    long port = PyLong_AsLong(PyTuple_GET_ITEM(address, 1));
    if (!host || (port == -1 && PyErr_Occurred()))
        return -1;
    if (port < 0 || port > 65535 || vr_addr_parse(host, (unsigned)port, out)) {
        PyErr_Format(PyExc_ValueError, "%R is no IP address and port", address);
        return -1;
    }
    return 0;
}

static ssize_t allowed_index(Port *self, const vr_addr *a) {
    for (size_t i = 0; i < self->allowed_count; i++)
        if (vr_addr_equal(&self->allowed[i], a))
            return (ssize_t)i;
    return -1;
}

static PyObject *port_allow(Port *self, PyObject *address) {
    vr_addr a;
    if (address_arg(address, &a))
        return NULL;
    if (allowed_index(self, &a) >= 0)
        Py_RETURN_FALSE;
    if (self->allowed_count >= MAX_ALLOWED) {
        PyErr_Format(PyExc_ValueError, "a Port takes media from at most %d addresses", MAX_ALLOWED);
        return NULL;
    }
    self->allowed[self->allowed_count++] = a;
    Py_RETURN_TRUE;
}

static PyObject *port_forget(Port *self, PyObject *address) {
    vr_addr a;
    if (address_arg(address, &a))
        return NULL;
    ssize_t i = allowed_index(self, &a);
    if (i < 0)
        Py_RETURN_FALSE;
    self->allowed[i] = self->allowed[--self->allowed_count];
    Py_RETURN_TRUE;
}

/* The source as Python's socket module writes it: (host, port) or (host, port, flowinfo, scope_id). */
static PyObject *address_object(const struct sockaddr_storage *ss) {
    char text[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, ss, sizeof in);
        inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
        return Py_BuildValue("(si)", text, ntohs(in.sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, ss, sizeof in6);
        inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        return Py_BuildValue("(siII)", text, ntohs(in6.sin6_port), ntohl(in6.sin6_flowinfo), in6.sin6_scope_id);
    }
    return Py_NewRef(Py_None);
}

/* Append item (a new reference, NULL: failed) to *list, made on the first append. */
static int append_new(PyObject **list, PyObject *item) {
    if (!item)
        return -1;
    if (!*list && !(*list = PyList_New(0))) {
        Py_DECREF(item);
        return -1;
    }
    int rc = PyList_Append(*list, item);
    Py_DECREF(item);
    return rc;
}

static void count_srtp_failure(Port *self, int status) {
    if (status == VR_SRTP_AUTH)
        self->n.auth++;
    else if (status == VR_SRTP_REPLAY || status == VR_SRTP_TOO_OLD)
        self->n.replay++;
    else if (status == VR_SRTP_MALFORMED)
        self->n.malformed++;
    else
        self->n.srtp_failed++;
}

static uint8_t plain_slot[VR_IO_SLOT]; /* one datagram at a time: the interpreter's lock is held */
static uint8_t feedback_up[VR_FEEDBACK_MAX];

/* Unprotect an SRTP (kind VR_RTP) or SRTCP datagram into plain_slot: its length, or 0 when it failed
 * (counted; no plain datagram is that short). */
static size_t unprotect(Port *self, int kind, const uint8_t *p, const vr_datagram *d) {
    size_t shrink = kind == VR_RTP ? self->rx.rtp_tag : self->rx.rtcp_trailer, header = kind == VR_RTP ? 12 : 8;
    size_t length = 0;
    int status = d->length < shrink + header ? VR_SRTP_MALFORMED
                 : kind == VR_RTP ? vr_srtp_unprotect(&self->rx, p, d->length, plain_slot, &length)
                                  : vr_srtcp_unprotect(&self->rx, p, d->length, plain_slot, &length);
    if (status) {
        count_srtp_failure(self, status);
        return 0;
    }
    kind == VR_RTP ? self->n.rtp++ : self->n.rtcp++;
    return length;
}

/* Hand Python (kind, a copy of the size bytes at plain, the kernel's arrival): -1 when out of memory. */
static int append_plain(PyObject **media, int kind, const uint8_t *plain, size_t size, const vr_datagram *d) {
    PyObject *arrival = d->arrival_ns >= 0 ? PyLong_FromLongLong(d->arrival_ns) : Py_NewRef(Py_None);
    return !arrival ? -1 : append_new(media, Py_BuildValue("(iy#N)", kind, (const char *)plain, (Py_ssize_t)size, arrival));
}

/* An SRTP datagram of an SSRC routed to the plane: decrypted here and forwarded in C, or handed to
 * Python as any other when the route cannot take it; -1 when Python ran out of memory. */
static int take_routed(Port *self, const uint8_t *p, const vr_datagram *d, PyObject **media) {
    size_t length = unprotect(self, VR_RTP, p, d);
    if (!length || vr_port_fast(self, plain_slot, length, d->arrival_ns))
        return 0;
    return append_plain(media, VR_RTP, plain_slot, length, d);
}

/* An SRTCP datagram of a connection whose RTCP about the plane's streams is read in C (feedback.h):
 * decrypted here, what is the plane's done, what is Python's (or the whole compound) handed up; -1
 * when Python ran out of memory. */
static int take_feedback(Port *self, const uint8_t *p, const vr_datagram *d, PyObject **media) {
    size_t length = unprotect(self, VR_RTCP, p, d);
    if (!length)
        return 0;
    long given = vr_feedback_take(vr_feedback_of(self->feedback), plain_slot, length, feedback_up);
    if (given == 0) {
        self->n.rtcp_done++;
        return 0;
    }
    return given < 0 ? append_plain(media, VR_RTCP, plain_slot, length, d)
                     : append_plain(media, VR_RTCP, feedback_up, (size_t)given, d);
}

/* One datagram of a read into signals or media; -1 when Python ran out of memory. */
static int take(Port *self, const uint8_t *p, const vr_datagram *d, PyObject **signals, PyObject **media) {
    int kind = vr_demux(p, d->length);
    if (kind == VR_STUN || kind == VR_DTLS) {
        kind == VR_STUN ? self->n.stun++ : self->n.dtls++;
        PyObject *address = address_object(&d->from);
        if (!address)
            return -1;
        PyObject *item = Py_BuildValue("(y#N)", (const char *)p, (Py_ssize_t)d->length, address);
        return append_new(signals, item);
    }
    if (kind != VR_RTP && kind != VR_RTCP) {
        self->n.other++;
        return 0;
    }
    vr_addr from;
    if (vr_addr_from_sockaddr(&d->from, &from) || allowed_index(self, &from) < 0) {
        self->n.unvalidated++; /* before any SRTP work: a stranger costs a comparison */
        return 0;
    }
    if (!self->keyed) {
        self->n.no_keys++;
        return 0;
    }
    if (kind == VR_RTP && self->fast && d->length >= 12 && vr_fast_find(self->fast, vr_be32(p + 8)))
        return take_routed(self, p, d, media);
    if (kind == VR_RTCP && self->feedback)
        return take_feedback(self, p, d, media);
    size_t length = unprotect(self, kind, p, d);
    return length ? append_plain(media, kind, plain_slot, length, d) : 0;
}

static int not_ready(Port *self) {
    if (self->ready)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "Port is not initialised");
    return 1;
}

/* Drain the socket into *signals and *media (lists made on their first item; left NULL when none): 0,
 * or -1 with an exception set (an OSError when the descriptor is gone). */
static int read_socket(Port *self, PyObject **signals, PyObject **media) {
    vr_datagram got[VR_IO_BATCH];
    uint8_t *slots = vr_io_slots();
    if (!slots) {
        PyErr_NoMemory();
        return -1;
    }
    for (int reads = 0; reads < MAX_READS; reads++) {
        int n = vr_io_read(self->fd, slots, got);
        if (n < 0) {
            if (n == -EBADF || n == -ENOTSOCK) {
                errno = -n;
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
            self->n.read_errors++; /* an ICMP error reported on the socket: the next read goes on */
            continue;
        }
        self->n.batches += n > 0;
        for (int i = 0; i < n; i++) {
            self->n.datagrams++;
            if (got[i].truncated) {
                self->n.truncated++;
                continue;
            }
            if (take(self, slots + (size_t)i * VR_IO_SLOT, &got[i], signals, media))
                return -1;
        }
        if (n < VR_IO_BATCH)
            break; /* the socket is empty (a full batch may mean more: read again) */
    }
    return 0;
}

static PyObject *port_read_batch(Port *self, PyObject *unused) {
    (void)unused;
    if (not_ready(self))
        return NULL;
    PyObject *signals = NULL, *media = NULL;
    if (read_socket(self, &signals, &media) || (!signals && !(signals = PyList_New(0))) ||
        (!media && !(media = PyList_New(0)))) {
        Py_XDECREF(signals);
        Py_XDECREF(media);
        return NULL;
    }
    return Py_BuildValue("(NN)", signals, media);
}

/* What Python's drain has since it last ran: VR_DUE_NOW (a NACK or REMB due, an arrival for Python's
 * estimator, a stale route, the Feedback's summary), VR_DUE_COUNTERS (only the counters of routed SSRCs,
 * drain_interval after the last drain), or 0. */
static int port_due(Port *self) {
    if ((self->fast && self->fast->due) || (self->feedback && vr_feedback_of(self->feedback)->due))
        return VR_DUE_NOW;
    return self->fast && self->fast->count && vr_monotonic() >= self->drain_at ? VR_DUE_COUNTERS : 0;
}

/* The loop's reader (set_reader): the whole read in C; Python's handler only when it has something. */
static PyObject *port_on_readable(Port *self, PyObject *unused) {
    (void)unused;
    if (not_ready(self))
        return NULL;
    if (!self->handler)
        Py_RETURN_NONE;
    PyObject *signals = NULL, *media = NULL, *result = NULL; /* no list made for a read with nothing for Python */
    if (read_socket(self, &signals, &media)) {
        if (!PyErr_ExceptionMatches(PyExc_OSError) || !self->lost)
            goto done;
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyObject *lost = Py_NewRef(self->lost); /* (the call may set_reader(None, None)) */
        result = PyObject_CallOneArg(lost, value ? value : Py_None);
        Py_DECREF(lost);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        goto done;
    }
    int due = port_due(self);
    if (!due && !signals && !media) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if ((!signals && !(signals = PyList_New(0))) || (!media && !(media = PyList_New(0))))
        goto done;
    PyObject *due_object = PyLong_FromLong(due);
    if (due_object) {
        PyObject *args[] = {signals, media, due_object}, *handler = Py_NewRef(self->handler);
        result = PyObject_Vectorcall(handler, args, 3, NULL); /* (which may set_reader(None, None)) */
        Py_DECREF(handler);
        Py_DECREF(due_object);
    }
done:
    Py_XDECREF(signals);
    Py_XDECREF(media);
    return result;
}

static PyObject *port_set_reader(Port *self, PyObject *args) {
    PyObject *handler, *lost;
    double interval = 0;
    if (!PyArg_ParseTuple(args, "OO|d", &handler, &lost, &interval))
        return NULL;
    if ((handler != Py_None && !PyCallable_Check(handler)) || (lost != Py_None && !PyCallable_Check(lost)))
        return PyErr_Format(PyExc_TypeError, "set_reader takes two callables or None");
    if (!(interval >= 0 && interval <= 3600))
        return PyErr_Format(PyExc_ValueError, "drain_interval is 0 to 3600 seconds");
    Py_XSETREF(self->handler, handler == Py_None ? NULL : Py_NewRef(handler));
    Py_XSETREF(self->lost, lost == Py_None ? NULL : Py_NewRef(lost));
    self->drain_interval = interval;
    self->drain_at = vr_monotonic() + interval;
    Py_RETURN_NONE;
}

static void flush_queue(Port *self) {
    vr_send_result r = {0, 0, 0};
    vr_io_send(self->fd, self->queue, self->queued, &r);
    self->n.sent += r.sent;
    self->n.send_dropped += r.dropped;
    self->n.send_errors += r.errors;
    self->queued = 0;
}

static PyObject *port_send(Port *self, PyObject *args) {
    Py_buffer data;
    PyObject *address;
    if (!PyArg_ParseTuple(args, "y*O", &data, &address))
        return NULL;
    PyObject *result = NULL;
    vr_addr to;
    if (not_ready(self) || address_arg(address, &to))
        goto done;
    if (!self->keyed) {
        PyErr_SetString(PyExc_RuntimeError, "Port.send before set_keys");
        goto done;
    }
    if (!self->queue && !(self->queue = PyMem_Calloc(VR_IO_BATCH, sizeof *self->queue))) {
        PyErr_NoMemory();
        goto done;
    }
    if (self->queued == VR_IO_BATCH)
        flush_queue(self);
    vr_outgoing *o = &self->queue[self->queued];
    o->to_length = vr_addr_to_sockaddr(&to, self->family, &o->to);
    int status = VR_SRTP_MALFORMED;
    if (o->to_length && (size_t)data.len + self->tx.rtp_tag <= VR_IO_SEND_SLOT)
        status = vr_srtp_protect(&self->tx, data.buf, (size_t)data.len, o->data, &o->length);
    if (status) {
        self->n.send_refused++; /* too long, not RTP, or an address of the other family */
        result = Py_NewRef(Py_False);
    } else {
        self->queued++;
        self->n.queued++;
        result = Py_NewRef(Py_True);
    }
done:
    PyBuffer_Release(&data);
    return result;
}

static PyObject *port_flush(Port *self, PyObject *unused) {
    (void)unused;
    if (not_ready(self))
        return NULL;
    uint64_t before = self->n.sent;
    if (self->queued)
        flush_queue(self);
    return PyLong_FromUnsignedLongLong(self->n.sent - before);
}

static PyObject *port_fileno(Port *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromLong(self->fd);
}

static PyObject *port_counters(Port *self, void *closure) {
    (void)closure;
    const port_counts *c = &self->n;
    return Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsK}", "datagrams", c->datagrams, "batches", c->batches, "stun",
        c->stun, "dtls", c->dtls, "rtp", c->rtp, "rtcp", c->rtcp, "unvalidated", c->unvalidated, "other", c->other,
        "truncated", c->truncated, "no_keys", c->no_keys, "auth", c->auth, "replay", c->replay, "malformed",
        c->malformed, "srtp_failed", c->srtp_failed, "read_errors", c->read_errors, "queued", c->queued, "sent",
        c->sent, "send_dropped", c->send_dropped, "send_errors", c->send_errors, "send_refused", c->send_refused,
        "rtcp_done", c->rtcp_done);
}

static PyObject *port_allowed(Port *self, void *closure) {
    (void)closure;
    return PyLong_FromSize_t(self->allowed_count);
}

static PyObject *port_set_feedback(Port *self, PyObject *feedback) {
    if (feedback != Py_None && !vr_feedback_of(feedback))
        return PyErr_Format(PyExc_TypeError, "set_feedback takes an initialised _native.Feedback or None, not %R",
                            feedback);
    Py_XSETREF(self->feedback, feedback == Py_None ? NULL : Py_NewRef(feedback));
    Py_RETURN_NONE;
}

static PyMethodDef port_methods[] = {
    {"set_keys", (PyCFunction)port_set_keys, METH_VARARGS,
     "(profile, rx_key, rx_salt, tx_key, tx_salt): the SRTP master keys of both directions."},
    {"allow", (PyCFunction)port_allow, METH_O, "Take media from (host, port); False when it already was."},
    {"forget", (PyCFunction)port_forget, METH_O, "Take no more media from (host, port); False when it did not."},
    {"read_batch", (PyCFunction)port_read_batch, METH_NOARGS,
     "-> ([(datagram, address)] of STUN and DTLS, [(RTP or RTCP, decrypted, arrival_ns or None)])."},
    {"on_readable", (PyCFunction)port_on_readable, METH_NOARGS,
     "The loop's reader: drains the socket as read_batch; then handler(signals, media, due) when either list has "
     "anything or the drain is due (due: DUE_NOW or DUE_COUNTERS), else nothing runs in Python. An OSError "
     "of the read (the descriptor gone) goes to lost(error)."},
    {"set_reader", (PyCFunction)port_set_reader, METH_VARARGS,
     "(handler, lost[, drain_interval]): what on_readable calls; the routed SSRCs' counters are due every "
     "drain_interval seconds after drain_fast. (None, None) lets the Port go (breaks the reference cycle)."},
    {"send", (PyCFunction)port_send, METH_VARARGS,
     "(rtp, address): protect and queue; False when refused (counted). Sends when the queue is full."},
    {"flush", (PyCFunction)port_flush, METH_NOARGS, "Send the queue (sendmmsg); how many went out."},
    {"fileno", (PyCFunction)port_fileno, METH_NOARGS, "The socket's descriptor (not owned)."},
    {"set_feedback", (PyCFunction)port_set_feedback, METH_O,
     "(a _native.Feedback or None): the connection's RTCP is read by it (what is Python's still comes up in "
     "read_batch's media); None: all of it comes up."},
    VR_PORT_FAST_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyObject *port_send_dropped(Port *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->n.send_dropped);
}

static PyObject *port_fast_due(Port *self, void *closure) {
    (void)closure;
    return Py_NewRef(port_due(self) == VR_DUE_NOW ? Py_True : Py_False);
}

static PyObject *port_get_drain_interval(Port *self, void *closure) {
    (void)closure;
    return PyFloat_FromDouble(self->drain_interval);
}

static int port_set_drain_interval(Port *self, PyObject *value, void *closure) {
    (void)closure;
    double interval = value ? PyFloat_AsDouble(value) : -1;
    if (interval == -1 && PyErr_Occurred())
        return -1;
    if (!(interval >= 0 && interval <= 3600)) {
        PyErr_SetString(PyExc_ValueError, "drain_interval is 0 to 3600 seconds");
        return -1;
    }
    self->drain_interval = interval; /* from the next drain_fast on */
    return 0;
}

static PyGetSetDef port_getset[] = {
    {"drain_interval", (getter)port_get_drain_interval, (setter)port_set_drain_interval,
     "seconds after a drain_fast at which on_readable calls the handler for the routed SSRCs' counters", NULL},
    {"send_dropped", (getter)port_send_dropped, NULL, "datagrams a full send buffer dropped (cheap to read)", NULL},
    {"fast_due", (getter)port_fast_due, NULL,
     "True when drain_fast() has more than counters since it last ran: a NACK or a REMB due, an arrival "
     "waiting for Python's estimator, a stale route; or the connection's Feedback has a REMB or loss to take "
     "(cheap to read)", NULL},
    {"counters", (getter)port_counters, NULL, "what happened to the datagrams, by name", NULL},
    {"allowed", (getter)port_allowed, NULL, "how many addresses media is taken from", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PortType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "videoroomd.media.dataplane._native.Port",
    .tp_basicsize = sizeof(Port),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Port(fd, timestamps=True): a UDP media socket's batched receive (demux, source check, SRTP "
              "unprotect) and send (SRTP protect, sendmmsg). The descriptor stays the caller's.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)port_init,
    .tp_dealloc = (destructor)port_dealloc,
    .tp_methods = port_methods,
    .tp_getset = port_getset,
};

int vr_port_register(PyObject *module, PyObject *srtp_error) {
    SrtpError = srtp_error;
    if (PyType_Ready(&PortType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Port", (PyObject *)&PortType);
}
