# C-level declarations of the adaptive jitter buffer (SPEC 1.4), for the media path.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t


cdef enum:
    JB_SLOTS = 128              # ring of frames (power of two): 1.28 s of 10 ms frames
    JB_MAXPAYLOAD = 512         # largest opaque payload one frame may carry
    JB_HIST = 512               # delay samples kept for the estimator
    # get() results
    JB_NOTHING = 0              # still buffering, or silence between talkspurts
    JB_FRAME = 1                # a frame to decode
    JB_CONCEAL = 2              # a missing frame: the decoder runs PLC / erasure
    # put() results
    JB_BUFFERED = 0
    JB_LATE = 1
    JB_DUPLICATE = 2
    JB_OVERFLOW = 3
    JB_INVALID = 4
    # slot states
    JB_EMPTY = 0
    JB_FULL = 1
    JB_PLAYED = 2


cdef struct JbSlot:
    int64_t idx
    uint8_t state
    uint8_t marker
    uint16_t seq
    uint32_t ts
    uint32_t length
    unsigned char payload[JB_MAXPAYLOAD]


cdef struct JbStats:
    uint64_t puts
    uint64_t played
    uint64_t late
    uint64_t duplicates
    uint64_t overflow
    uint64_t invalid
    uint64_t flushed            # buffered frames dropped by an SSRC change or resync
    uint64_t scaled             # frames dropped to shorten the delay (drift, depth decrease)
    uint64_t inserted           # conceal frames inserted to lengthen the delay
    uint64_t concealed          # missing frames handed to the decoder as erasures
    uint64_t reorders
    uint64_t resyncs            # timestamp jumps
    uint64_t ssrc_changes
    uint64_t talkspurts


cdef struct JitterBuf:
    # configuration
    int mode                    # 0 fixed, 1 adaptive
    double min_ms
    double max_ms
    double default_ms
    double frame_ms
    double samples_per_ms
    int64_t spf                 # timestamp units per frame
    int hangover                # conceal frames on underrun before going idle
    # stream state
    int started
    uint32_t ssrc
    int64_t last_ext            # extended timestamp of the last packet
    double last_arrival
    int64_t origin              # extended timestamp of frame index 0
    int64_t floor_idx           # lowest index still accepted
    int64_t max_idx
    int64_t next_idx            # next frame to play
    int playing
    int underrun_run
    int count                   # frames buffered
    double last_step_ms
    # delay estimator: d = arrival - sender time, over a sliding window
    double hist_d[JB_HIST]
    double hist_t[JB_HIST]
    int hist_head
    int hist_n
    int est_dirty
    double est_base             # minimum delay in the window
    double est_target           # target depth above the minimum
    double scratch[JB_HIST]
    JbStats st
    JbSlot ring[JB_SLOTS]


cdef int jb_init(JitterBuf *jb, int mode, double min_ms, double max_ms, double default_ms,
                 double frame_ms, double clock_rate) noexcept nogil
cdef void jb_reset(JitterBuf *jb) noexcept nogil
cdef int jb_put(JitterBuf *jb, uint32_t ssrc, uint16_t seq, uint32_t ts, int marker,
                const unsigned char *payload, uint32_t length, double arrival_ms) noexcept nogil
cdef int jb_get(JitterBuf *jb, double now_ms, JbSlot **frame) noexcept nogil
cdef double jb_depth_ms(JitterBuf *jb, double now_ms) noexcept nogil
cdef double jb_target_ms(JitterBuf *jb) noexcept nogil


cdef class JitterBuffer:
    cdef JitterBuf *jb
    cdef double last_now
