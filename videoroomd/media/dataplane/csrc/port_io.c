/* Batched UDP I/O (port_io.h). */
#define _GNU_SOURCE
#include "port_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONTROL_SPACE 128 /* SCM_TIMESTAMPNS (and SCM_TIMESTAMP, if another reader turned it on) */

int vr_addr_from_sockaddr(const struct sockaddr_storage *ss, vr_addr *out) {
    memset(out, 0, sizeof *out);
    if (ss->ss_family == AF_INET) { /* (the kernel wrote it: a storage's bytes copied out, no aliasing) */
        struct sockaddr_in in;
        memcpy(&in, ss, sizeof in);
        out->family = AF_INET;
        out->port = ntohs(in.sin_port);
        memcpy(out->addr, &in.sin_addr, 4);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, ss, sizeof in6);
        out->port = ntohs(in6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            out->family = AF_INET;
            memcpy(out->addr, &in6.sin6_addr.s6_addr[12], 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->addr, &in6.sin6_addr, 16);
        }
        return 0;
    }
    return -1;
}

int vr_addr_equal(const vr_addr *a, const vr_addr *b) {
    return a->family == b->family && a->port == b->port &&
           !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
}

int vr_addr_parse(const char *host, unsigned port, vr_addr *out) {
    uint8_t bytes[16];
    memset(out, 0, sizeof *out);
    if (port > 65535)
        return -1;
    out->port = (uint16_t)port;
    if (inet_pton(AF_INET, host, bytes) == 1) {
        out->family = AF_INET;
        memcpy(out->addr, bytes, 4);
    } else if (inet_pton(AF_INET6, host, bytes) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        int v4 = !memcmp(bytes, mapped, sizeof mapped); /* ::ffff:a.b.c.d is a.b.c.d */
        out->family = v4 ? AF_INET : AF_INET6;
        memcpy(out->addr, v4 ? bytes + 12 : bytes, v4 ? 4 : 16);
    } else {
        return -1;
    }
    return 0;
}

socklen_t vr_addr_to_sockaddr(const vr_addr *a, int socket_family, struct sockaddr_storage *out) {
    memset(out, 0, sizeof *out);
    if (a->family == AF_INET && socket_family == AF_INET) {
        struct sockaddr_in in;
        memset(&in, 0, sizeof in);
        in.sin_family = AF_INET;
        in.sin_port = htons(a->port);
        memcpy(&in.sin_addr, a->addr, 4);
        memcpy(out, &in, sizeof in);
        return sizeof in;
    }
    if (socket_family != AF_INET6)
        return 0;
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(a->port);
    if (a->family == AF_INET) { /* ::ffff:a.b.c.d */
        in6.sin6_addr.s6_addr[10] = 0xff;
        in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&in6.sin6_addr.s6_addr[12], a->addr, 4);
    } else {
        memcpy(&in6.sin6_addr, a->addr, 16);
    }
    memcpy(out, &in6, sizeof in6);
    return sizeof in6;
}

uint8_t *vr_io_slots(void) {
    static uint8_t *slots;
    if (!slots)
        slots = malloc((size_t)VR_IO_BATCH * VR_IO_SLOT); /* pages are touched only as far as datagrams reach */
    return slots;
}

static int64_t arrival_of(struct msghdr *msg) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
        if (c->cmsg_type == SCM_TIMESTAMP && c->cmsg_len >= CMSG_LEN(sizeof(struct timeval))) {
            struct timeval tv;
            memcpy(&tv, CMSG_DATA(c), sizeof tv);
            return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
        }
    }
    return -1;
}

int vr_io_read(int fd, uint8_t *slots, vr_datagram *out) {
    struct mmsghdr msgs[VR_IO_BATCH];
    struct iovec iov[VR_IO_BATCH];
    static uint8_t control[VR_IO_BATCH][CONTROL_SPACE]; /* guarded as the slots are */
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < VR_IO_BATCH; i++) {
        iov[i].iov_base = slots + (size_t)i * VR_IO_SLOT;
        iov[i].iov_len = VR_IO_SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &out[i].from;
        msgs[i].msg_hdr.msg_namelen = sizeof out[i].from;
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = CONTROL_SPACE;
    }
    int n;
    do
        n = recvmmsg(fd, msgs, VR_IO_BATCH, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        out[i].length = msgs[i].msg_len;
        out[i].truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        out[i].arrival_ns = arrival_of(&msgs[i].msg_hdr);
        if (msgs[i].msg_hdr.msg_namelen == 0)
            out[i].from.ss_family = AF_UNSPEC;
    }
    return n;
}

void vr_io_send(int fd, const vr_outgoing *queue, size_t count, vr_send_result *result) {
    struct mmsghdr msgs[VR_IO_BATCH];
    struct iovec iov[VR_IO_BATCH];
    size_t done = 0;
    while (done < count) {
        size_t n = count - done < VR_IO_BATCH ? count - done : VR_IO_BATCH;
        memset(msgs, 0, n * sizeof msgs[0]);
        for (size_t i = 0; i < n; i++) {
            const vr_outgoing *o = &queue[done + i];
            iov[i].iov_base = (void *)o->data;
            iov[i].iov_len = o->length;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (void *)&o->to;
            msgs[i].msg_hdr.msg_namelen = o->to_length;
        }
        int sent = sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
        if (sent > 0) {
            done += (size_t)sent;
            result->sent += (uint64_t)sent;
        } else if (sent < 0 && errno == EINTR) {
            continue;
        } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            result->dropped += count - done; /* never wait for the kernel's buffer: the rest is late anyway */
            return;
        } else {
            result->errors++; /* e.g. ECONNREFUSED from an earlier ICMP error: that datagram only */
            done++;
        }
    }
}

int vr_io_stamp(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}
