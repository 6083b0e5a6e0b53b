# C-level declarations of the relay core, shared with the other engine modules.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t, int32_t, int64_t

from vosmedia._transcode cimport TcState, TC_MAX_PACKET, TC_OUT_CAP, TC_MAX_OUT_PACKETS
from vosmedia._jitter cimport JitterBuf


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags, void *timeout)
    int sendmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags)
    int MSG_DONTWAIT
    int MSG_TRUNC
    int AF_INET
    int AF_INET6


cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct in6_addr:
        uint8_t s6_addr[16]
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)


# Large enough for IPv4 and IPv6 (28 bytes, not sockaddr_storage's 128): legs stay small
# and a packet's lookups touch fewer cache lines.
ctypedef sockaddr_in6 Addr


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLLIN
    int EPOLL_CTL_ADD
    int EPOLL_CTL_DEL
    int EPOLL_CLOEXEC


# The loop's three system calls go through syscall(2) directly: the libc wrappers are
# thread-cancellation points and pay for toggling cancellation on every call.
cdef extern from "<sys/syscall.h>" nogil:
    long SYS_recvmmsg
    long SYS_sendmmsg
    long SYS_epoll_pwait


cdef extern from "<unistd.h>" nogil:
    long syscall(long number, ...)


cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    int EFD_NONBLOCK
    int EFD_CLOEXEC


cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    int CLOCK_MONOTONIC


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *m, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)


# Packets taken from one socket per recvmmsg call, and epoll events per wake-up.
cdef enum:
    BATCH = 64
    BUFSZ = 2048
    MAXEVENTS = 1024


cdef struct RxStats:
    # what arrived on a leg from its remote party
    uint64_t packets
    uint64_t octets
    uint64_t errors
    uint64_t ssrc_changes
    uint32_t ssrc
    int seq_started
    # RFC 3550 A.3 sequence state
    uint16_t max_seq
    uint32_t cycles
    uint32_t base_seq
    uint32_t bad_seq
    uint32_t probation
    uint32_t received
    int64_t lost_prior          # loss accumulated over earlier SSRCs
    # RFC 3550 A.8 interarrival jitter, timestamp units scaled by 16
    int jitter_started
    uint32_t transit
    uint32_t jitter_q4
    int64_t last_ns


cdef struct TxStats:
    # what the relay sent out of a leg toward its remote party
    uint64_t packets
    uint64_t octets
    uint64_t errors


cdef struct RtcpStats:
    uint64_t rx_packets
    uint64_t rx_octets
    uint64_t tx_packets
    uint64_t tx_octets
    uint64_t errors
    uint64_t reports
    uint32_t sr_ntp_mid         # middle 32 bits of the last SR's NTP time seen on this leg
    int64_t sr_arrival_ns
    int64_t rtt_ns              # -1 while unknown
    uint32_t remote_fraction_lost
    int32_t remote_cumulative_lost
    uint32_t remote_jitter
    int64_t last_ns


cdef struct Drops:
    uint64_t too_short
    uint64_t bad_version
    uint64_t foreign_source
    uint64_t no_destination
    uint64_t truncated
    uint64_t rtcp_malformed
    uint64_t unknown_payload_type
    uint64_t bad_payload


cdef struct Leg:
    # Hot part first: what one packet reads on its own leg and on the peer.
    uint32_t gen
    int32_t peer
    int rtp_fd
    int rtcp_fd
    uint8_t in_use
    uint8_t latched
    uint8_t strict
    uint8_t has_dst_rtp
    uint8_t rtcp_mux
    uint8_t has_dst_rtcp
    uint8_t rtcp_latched
    uint8_t has_sdp
    uint8_t timed_out
    socklen_t addrlen
    uint32_t latched_ssrc
    uint32_t clock_rate
    int64_t base_ns             # time origin of this leg's arrival clock
    Addr dst_rtp                # where this leg sends: latched source, else the SDP address
    TxStats tx
    RxStats rx
    # Media path: with `tc` set, audio arriving on this leg is transcoded toward the peer;
    # telephone-event packets (dtmf_pt, -1 if none) pass with the peer's payload type.
    TcState *tc
    int16_t dtmf_pt
    int16_t peer_dtmf_pt
    # With `jb` set (transcoding legs), audio waits in the jitter buffer and a playout
    # tick every `tick_ns` hands one frame (or a concealment) to the transcoder.
    JitterBuf *jb
    int64_t tick_ns
    int64_t next_tick_ns
    # Colder: RTCP, signalling state, drop reasons.
    Addr dst_rtcp
    Addr sdp_rtp
    Addr sdp_rtcp
    int64_t session
    int side
    int64_t armed_ns            # the RTP timeout counts from here when nothing arrived since
    uint64_t relatches
    RtcpStats rtcp
    Drops drops


cdef struct Event:
    int kind
    int side
    int64_t session
    int64_t idle_ms


cdef struct Totals:
    uint64_t rtp_relayed
    uint64_t rtp_octets
    uint64_t rtcp_relayed
    uint64_t dropped
    uint64_t stale_events
    uint64_t wakeups
    uint64_t events_lost


cdef struct Worker:
    pthread_mutex_t lock
    int epfd
    int wakefd
    int notifyfd
    int stopping
    Leg *legs
    int capacity
    int high_water              # slots below this may be in use
    int32_t *free_slots
    int nfree
    int64_t timeout_ns
    int64_t last_scan_ns
    Event *events
    int ev_head
    int ev_count
    int ev_cap
    Totals totals
    mmsghdr rmsg[BATCH]
    iovec riov[BATCH]
    Addr raddr[BATCH]
    mmsghdr smsg[BATCH]
    iovec siov[BATCH]
    mmsghdr cmsg[BATCH]
    iovec ciov[BATCH]
    unsigned char *bufs
    unsigned char *tcbuf        # packets the media path generates, before they are sent
    int32_t *playout            # slots of legs with a jitter buffer
    int nplayout
    epoll_event evs[MAXEVENTS]
