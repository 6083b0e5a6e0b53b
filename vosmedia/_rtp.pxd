# C-level declarations of the relay core, shared with the other engine modules.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t, int32_t, int64_t

from vosmedia._transcode cimport TcState, TC_MAX_PACKET, TC_OUT_CAP, TC_MAX_OUT_PACKETS
from vosmedia._jitter cimport JitterBuf
from vosmedia._dtmf cimport DtmfDet, DtmfGen, Rfc4733Rx


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


# DTMF methods (bit flags in DtmfLeg.accept; one of them, or 0 for none, in DtmfLeg.send)
cdef enum:
    DTMF_RFC2833 = 1
    DTMF_INBAND = 2
    DTMF_INFO = 4
    DTMF_TXQ = 32               # digits waiting to be sent to a party as RFC 4733 events
    DTMF_RECENT = 16            # finished digits a leg remembers for queries
    DTMF_PACKET = 16            # one RFC 4733 packet: 12-byte header + 4-byte payload


cdef struct DtmfDigit:
    char digit
    uint8_t method
    int32_t duration_ms
    int64_t start_ns


cdef struct DtmfQueued:
    char digit
    uint8_t volume              # RFC 4733 volume (-dBm0)
    int32_t duration_ms         # 0: live, the end comes when the digit it follows ends
    int32_t pause_ms            # quiet time after it


cdef struct DtmfLeg:
    # Configuration: what this leg's party sends and wants (MediaEngine.set_dtmf).
    uint8_t accept              # DTMF_* methods its digits are taken by
    uint8_t locked              # with several accepted: the first method seen (0: none yet)
    uint8_t send                # how digits are delivered to it: one DTMF_* method, 0 = not at all
    uint8_t mute_inband         # tones detected in audio toward it are muted
    int16_t rx_pt               # telephone-event payload type it sends (-1: none)
    int16_t tx_pt               # telephone-event payload type the engine sends it (-1: none)
    uint8_t volume              # RFC 4733 volume of events generated toward it
    double level_dbm0           # in-band tones generated toward it
    int tone_ms
    int gap_ms
    void *worker                # the Worker (for the transcoder's PCM hook)
    # Receiving digits from the party.
    Rfc4733Rx rx
    DtmfDet det
    char cur_digit              # the digit arriving now (0: none), by cur_method
    uint8_t cur_method
    int64_t cur_start_ns
    int64_t cur_last_ns         # the last packet or audio block that carried it
    uint32_t cur_ts             # its RTP timestamp (telephone-event)
    int32_t cur_duration        # its duration so far in timestamp units (telephone-event)
    # Sending RFC 4733 events to the party: the event in progress, then the queue.
    char ev_digit               # 0: none in progress
    uint8_t ev_volume
    int32_t ev_pause_ms
    uint32_t ev_ts
    uint32_t ev_ssrc            # the stream's SSRC when the event started (kept to its end)
    uint16_t ev_seq             # numbering of its packets if that stream has moved on since
    int64_t ev_start_ns
    int64_t ev_end_ns           # 0 while live
    int64_t ev_next_ns          # the next update or end retransmission
    int ev_ends                 # end packets sent (three in all)
    int64_t ev_quiet_ns         # the next event starts no earlier
    DtmfQueued txq[DTMF_TXQ]
    int txq_head
    int txq_count
    # In-band tones to the party (overwriting the audio sent to it).
    DtmfGen gen
    # The pass-through stream sent to the party (the other party's RTP, forwarded): events
    # the engine inserts take sequence numbers in it, and later packets shift past them.
    int pt_started
    uint32_t pt_ssrc
    uint16_t pt_seq             # highest sequence number sent, after the shift
    uint16_t seq_shift
    uint32_t pt_ts              # RTP timestamp of the last audio packet sent, at pt_ns
    int64_t pt_ns
    # Timer: in the worker's DTMF timer list while something is pending.
    uint8_t active
    int64_t next_ns
    # Counters and recent digits.
    uint64_t digits_in          # digits received from the party
    uint64_t events_out         # RFC 4733 events sent to it
    uint64_t tones_out          # in-band digits generated toward it
    uint64_t suppressed         # telephone-event packets, tones or INFO digits not accepted
    DtmfDigit recent[DTMF_RECENT]
    int recent_head
    int recent_n


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
    uint8_t dtmf_path           # this leg and its peer have DTMF state: packets take the DTMF code
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
    DtmfLeg *dtmf               # NULL unless DTMF is configured for this leg
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
    int64_t idle_ms             # timeout
    char digit                  # dtmf: the digit, how it came, how it went on, its length and start
    uint8_t method
    uint8_t forward
    int32_t duration_ms
    int64_t start_ns


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
    int32_t *dtmf_timers        # slots of legs with DTMF work pending (events, live digits)
    int ndtmf
    unsigned char *dtmfbuf      # RFC 4733 packets the engine sends, before they are sent
    int64_t now_ns              # the time of the packet or tick being handled (for hooks)
    epoll_event evs[MAXEVENTS]
