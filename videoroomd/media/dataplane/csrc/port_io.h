/* Batched UDP I/O for a media socket: recvmmsg with the kernel's arrival time of each datagram,
 * sendmmsg that never blocks, and the socket addresses a port compares and answers.
 *
 * Pure C over the socket API, nothing of Python: port.c wraps it. Every call is non-blocking
 * (MSG_DONTWAIT); a full send buffer drops what is left of a batch rather than wait. */
#ifndef VR_PORT_IO_H
#define VR_PORT_IO_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define VR_IO_BATCH 64          /* datagrams one recvmmsg or sendmmsg call moves at most */
#define VR_IO_SLOT 65536        /* bytes of a receive slot: a UDP datagram always fits whole */
#define VR_IO_SEND_SLOT 2048    /* bytes of a queued send: an SRTP packet of a path's MTU fits */

/* An address as compared: IPv4 and IPv4-mapped IPv6 are one (family AF_INET, the 4 bytes first). */
typedef struct {
    uint16_t family;
    uint16_t port;  /* host order */
    uint8_t addr[16];
} vr_addr;

int vr_addr_from_sockaddr(const struct sockaddr_storage *ss, vr_addr *out);
int vr_addr_equal(const vr_addr *a, const vr_addr *b);
/* host (text) and port: 0, or -1 when host is no IP address. */
int vr_addr_parse(const char *host, unsigned port, vr_addr *out);
/* A sockaddr to send to from a socket of family (AF_INET6 sockets take IPv4 as mapped); its length or 0. */
socklen_t vr_addr_to_sockaddr(const vr_addr *a, int socket_family, struct sockaddr_storage *out);

typedef struct {
    size_t length;
    int truncated;            /* MSG_TRUNC: the datagram was longer than its slot */
    int64_t arrival_ns;       /* the kernel's receive time (ns since 1970), -1 when not told */
    struct sockaddr_storage from;
} vr_datagram;

/* The shared receive slots (VR_IO_BATCH of VR_IO_SLOT bytes, made on first use); NULL when out of memory.
 * One batch at a time in the process: the caller holds the interpreter's lock around a read and its use. */
uint8_t *vr_io_slots(void);

/* Read up to VR_IO_BATCH datagrams into the slots; how many (0: none waiting), or -errno. */
int vr_io_read(int fd, uint8_t *slots, vr_datagram *out);

typedef struct {
    uint8_t data[VR_IO_SEND_SLOT];
    size_t length;
    struct sockaddr_storage to;
    socklen_t to_length;
} vr_outgoing;

typedef struct {
    uint64_t sent, dropped, errors;
} vr_send_result;

/* Send count queued datagrams, as many per sendmmsg as the kernel takes; EAGAIN drops the rest,
 * another error skips the one datagram it was about. */
void vr_io_send(int fd, const vr_outgoing *queue, size_t count, vr_send_result *result);

/* Ask the kernel for SO_TIMESTAMPNS on fd; 0 when it will stamp. */
int vr_io_stamp(int fd);

#endif
