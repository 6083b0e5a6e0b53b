# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Adaptive jitter buffer (SPEC 1.4) for the decode path, sans-I/O.

The caller hands in packets (one fixed-duration frame each) with their arrival time and
pulls one result per playout tick: a frame to decode, a conceal instruction (a missing
frame: the decoder runs PLC or its erasure concealment) or nothing (buffering, or
silence between talkspurts). The buffer keeps no clock of its own.

Frames are placed by timestamp: index = (timestamp - origin) / samples per frame, in a
ring of JB_SLOTS slots. Every packet adds a delay sample d = arrival - sender time to a
sliding window (WINDOW_MS). base is the window's smallest d; the target depth is the
QUANTILE point of d minus base, clamped to [MIN, MAX] (adaptive mode) or DEFAULT
(fixed mode; also the start depth until MIN_SAMPLES samples exist). A talkspurt (after
a marker bit, a timestamp gap on an empty buffer, or an underrun that outlasts the
hangover) starts playing when its first frame's sender time + base + target has come,
so depth changes fall between talkspurts. Inside a talkspurt the timeline moves by at
most one frame per STEP_MS (drop one, or insert one erasure), which absorbs sender
clock drift; in adaptive mode an erasure that is output anyway (a hole, an underrun)
also holds the timeline when the target asks for more depth. SSRC changes and
timestamp jumps flush the buffer and restart the estimator.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memset, memcpy
from libc.stdlib cimport calloc, free
from libc.math cimport floor, ceil

cdef enum:
    MIN_SAMPLES = 16            # below this the estimator uses the start depth
cdef double WINDOW_MS = 2500.0  # delay history considered by the estimator
cdef double QUANTILE = 0.99    # adaptive target covers this share of delays
cdef double JUMP_MS = 1000.0    # timestamp vs arrival inconsistency taken as a jump
cdef double STEP_MS = 1000.0    # mid-talkspurt corrections at most this often
cdef double HANGOVER_MS = 60.0  # erasures on underrun before the talkspurt is over

NOTHING = JB_NOTHING
FRAME = JB_FRAME
CONCEAL = JB_CONCEAL
PUT_RESULTS = {JB_BUFFERED: "buffered", JB_LATE: "late", JB_DUPLICATE: "duplicate",
               JB_OVERFLOW: "overflow", JB_INVALID: "invalid"}


cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a / b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline double clampd(double v, double lo, double hi) noexcept nogil:
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


cdef inline double sender_ms(JitterBuf *jb, int64_t idx) noexcept nogil:
    return <double>(idx * jb.spf) / jb.samples_per_ms


cdef int jb_init(JitterBuf *jb, int mode, double min_ms, double max_ms, double default_ms,
                 double frame_ms, double clock_rate) noexcept nogil:
    """Configure a zeroed buffer; -1 on values out of range."""
    if mode != 0 and mode != 1:
        return -1
    if not (0 <= min_ms <= default_ms <= max_ms <= 1000):
        return -1
    if frame_ms <= 0 or frame_ms > 60 or clock_rate < 1000 or clock_rate > 48000:
        return -1
    jb.mode = mode
    jb.min_ms = min_ms
    jb.max_ms = max_ms
    jb.default_ms = default_ms
    jb.frame_ms = frame_ms
    jb.samples_per_ms = clock_rate / 1000.0
    jb.spf = <int64_t>(frame_ms * jb.samples_per_ms + 0.5)
    if jb.spf < 1:
        return -1
    jb.hangover = <int>(HANGOVER_MS / frame_ms)
    if jb.hangover < 1:
        jb.hangover = 1
    jb_reset(jb)
    return 0


cdef void restart_stream(JitterBuf *jb) noexcept nogil:
    """Forget timing and buffered frames (kept in the flushed count); keep statistics."""
    cdef int i
    jb.st.flushed += jb.count
    for i in range(JB_SLOTS):
        jb.ring[i].state = JB_EMPTY
    jb.count = 0
    jb.started = 0
    jb.playing = 0
    jb.underrun_run = 0
    jb.hist_head = 0
    jb.hist_n = 0
    jb.est_dirty = 1


cdef void jb_reset(JitterBuf *jb) noexcept nogil:
    restart_stream(jb)
    memset(&jb.st, 0, sizeof(JbStats))


cdef void estimate(JitterBuf *jb) noexcept nogil:
    """Recompute base (window minimum) and target depth from the delay history."""
    cdef int i, j, k, n = 0, lo, hi
    cdef double newest, pivot, t, base
    if not jb.est_dirty:
        return
    jb.est_dirty = 0
    if jb.hist_n == 0:
        jb.est_base = 0
        jb.est_target = jb.default_ms
        return
    newest = jb.hist_t[(jb.hist_head - 1 + JB_HIST) % JB_HIST]
    base = 1e300
    for i in range(jb.hist_n):
        j = (jb.hist_head - 1 - i + 2 * JB_HIST) % JB_HIST
        if jb.hist_t[j] < newest - WINDOW_MS:
            break
        jb.scratch[n] = jb.hist_d[j]
        if jb.hist_d[j] < base:
            base = jb.hist_d[j]
        n += 1
    jb.est_base = base
    if jb.mode == 0 or n < MIN_SAMPLES:
        jb.est_target = jb.default_ms
        return
    # quickselect the QUANTILE element of scratch[0:n]
    k = <int>ceil(QUANTILE * n) - 1
    if k < 0:
        k = 0
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = jb.scratch[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while jb.scratch[i] < pivot:
                i += 1
            while jb.scratch[j] > pivot:
                j -= 1
            if i <= j:
                t = jb.scratch[i]
                jb.scratch[i] = jb.scratch[j]
                jb.scratch[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    jb.est_target = clampd(jb.scratch[k] - base, jb.min_ms, jb.max_ms)


cdef inline double offset_est(JitterBuf *jb) noexcept nogil:
    estimate(jb)
    return jb.est_base + jb.est_target


cdef int jb_put(JitterBuf *jb, uint32_t ssrc, uint16_t seq, uint32_t ts, int marker,
                const unsigned char *payload, uint32_t length, double arrival_ms) noexcept nogil:
    """Store one frame; returns JB_BUFFERED, JB_LATE, JB_DUPLICATE, JB_OVERFLOW or JB_INVALID."""
    cdef int64_t ext, idx
    cdef double d
    cdef JbSlot *slot
    cdef int h
    jb.st.puts += 1
    if length > JB_MAXPAYLOAD:
        jb.st.invalid += 1
        return JB_INVALID
    if jb.started and ssrc != jb.ssrc:
        jb.st.ssrc_changes += 1
        restart_stream(jb)
    if jb.started:
        ext = jb.last_ext + <int32_t>(ts - <uint32_t>jb.last_ext)
        d = (<double>(ext - jb.last_ext) / jb.samples_per_ms) - (arrival_ms - jb.last_arrival)
        if d > JUMP_MS or d < -JUMP_MS:
            jb.st.resyncs += 1
            restart_stream(jb)
    if not jb.started:
        jb.started = 1
        jb.ssrc = ssrc
        ext = ts
        jb.origin = ext
        jb.floor_idx = -(JB_SLOTS // 2)
        jb.max_idx = 0
        jb.next_idx = 0
        jb.last_step_ms = arrival_ms
    jb.last_ext = ext
    jb.last_arrival = arrival_ms
    idx = floordiv(ext - jb.origin + jb.spf // 2, jb.spf)

    if idx < jb.max_idx:
        jb.st.reorders += 1
    else:
        jb.max_idx = idx
    if idx < jb.floor_idx:
        slot = &jb.ring[idx & (JB_SLOTS - 1)]
        if slot.idx == idx and slot.state != JB_EMPTY:
            jb.st.duplicates += 1
            return JB_DUPLICATE
        record_delay(jb, idx, arrival_ms)
        jb.st.late += 1
        return JB_LATE
    slot = &jb.ring[idx & (JB_SLOTS - 1)]
    if slot.idx == idx and slot.state == JB_FULL:
        jb.st.duplicates += 1
        return JB_DUPLICATE
    if jb.count == 0:
        # a talkspurt starts: after a marker, or a timestamp gap past what was played
        if jb.playing and (marker or idx > jb.next_idx + jb.hangover):
            jb.playing = 0
        if idx >= jb.floor_idx + JB_SLOTS:
            jb.floor_idx = idx - JB_SLOTS // 2
            if jb.floor_idx < jb.next_idx:
                jb.floor_idx = jb.next_idx
            if jb.playing:
                jb.playing = 0
    elif idx >= jb.floor_idx + JB_SLOTS:
        jb.st.overflow += 1
        return JB_OVERFLOW
    record_delay(jb, idx, arrival_ms)
    slot.idx = idx
    slot.state = JB_FULL
    slot.marker = 1 if marker else 0
    slot.seq = seq
    slot.ts = ts
    slot.length = length
    if length:
        memcpy(slot.payload, payload, length)
    jb.count += 1
    return JB_BUFFERED


cdef inline void record_delay(JitterBuf *jb, int64_t idx, double arrival_ms) noexcept nogil:
    jb.hist_d[jb.hist_head] = arrival_ms - sender_ms(jb, idx)
    jb.hist_t[jb.hist_head] = arrival_ms
    jb.hist_head = (jb.hist_head + 1) % JB_HIST
    if jb.hist_n < JB_HIST:
        jb.hist_n += 1
    jb.est_dirty = 1


cdef inline JbSlot *take(JitterBuf *jb, int64_t idx) noexcept nogil:
    """The buffered frame of index idx, marked played; NULL if it is missing."""
    cdef JbSlot *slot = &jb.ring[idx & (JB_SLOTS - 1)]
    if slot.idx != idx or slot.state != JB_FULL:
        return NULL
    slot.state = JB_PLAYED
    jb.count -= 1
    return slot


cdef int jb_get(JitterBuf *jb, double now_ms, JbSlot **frame) noexcept nogil:
    """One playout tick: JB_FRAME (*frame set, valid until the next put), JB_CONCEAL or JB_NOTHING."""
    cdef int64_t i, head
    cdef double off, cur
    cdef JbSlot *slot
    frame[0] = NULL
    if not jb.playing:
        if jb.count == 0:
            return JB_NOTHING
        head = jb.floor_idx
        for i in range(jb.floor_idx, jb.floor_idx + JB_SLOTS):
            slot = &jb.ring[i & (JB_SLOTS - 1)]
            if slot.idx == i and slot.state == JB_FULL:
                head = i
                break
        off = offset_est(jb)
        if now_ms < sender_ms(jb, head) + off:
            return JB_NOTHING
        jb.playing = 1
        jb.next_idx = head
        jb.floor_idx = head
        jb.underrun_run = 0
        jb.last_step_ms = now_ms
        jb.st.talkspurts += 1
    if jb.count == 0:
        jb.underrun_run += 1
        if jb.underrun_run > jb.hangover:
            jb.playing = 0
            return JB_NOTHING
        jb.st.concealed += 1
        if jb.mode == 0:
            jb.next_idx += 1
            jb.floor_idx = jb.next_idx
        # adaptive: the frame is more likely delayed than lost, so hold the timeline
        # (the erasure lengthens the delay by one frame) instead of making it late
        return JB_CONCEAL
    jb.underrun_run = 0
    if now_ms - jb.last_step_ms >= STEP_MS:
        jb.last_step_ms = now_ms
        off = offset_est(jb)
        cur = now_ms - sender_ms(jb, jb.next_idx)
        if cur - jb.frame_ms >= off:
            if take(jb, jb.next_idx) != NULL:
                jb.st.scaled += 1
            jb.next_idx += 1
            jb.floor_idx = jb.next_idx
            if jb.count == 0:
                jb.st.concealed += 1
                jb.next_idx += 1
                jb.floor_idx = jb.next_idx
                return JB_CONCEAL
        elif cur < off - jb.frame_ms / 2:
            jb.st.inserted += 1
            return JB_CONCEAL
    slot = take(jb, jb.next_idx)
    if slot == NULL:
        jb.st.concealed += 1
        # a hole is concealed anyway: when the estimate asks for more depth, the
        # erasure also holds the timeline, so the missing frame may still make it
        if jb.mode == 1 and now_ms - sender_ms(jb, jb.next_idx) < offset_est(jb) - jb.frame_ms / 2:
            return JB_CONCEAL
        jb.next_idx += 1
        jb.floor_idx = jb.next_idx
        return JB_CONCEAL
    jb.next_idx += 1
    jb.floor_idx = jb.next_idx
    jb.st.played += 1
    frame[0] = slot
    return JB_FRAME


cdef double jb_depth_ms(JitterBuf *jb, double now_ms) noexcept nogil:
    """Current playout delay above the fastest packet of the window (0 when idle)."""
    if not jb.playing:
        return 0.0
    estimate(jb)
    return now_ms - sender_ms(jb, jb.next_idx) - jb.est_base


cdef double jb_target_ms(JitterBuf *jb) noexcept nogil:
    estimate(jb)
    return jb.est_target


cdef class JitterBuffer:
    """Python face of one leg's buffer, for tests and tools.

    put(seq, ts, marker, payload, arrival_ms, ssrc=0) -> "buffered" | "late" |
    "duplicate" | "overflow"; get(now_ms) -> (FRAME, (seq, ts, marker, payload)) |
    (CONCEAL, None) | (NOTHING, None).
    """

    def __cinit__(self, int mode=1, double min_ms=20, double max_ms=200, double default_ms=60,
                  double frame_ms=20, double clock_rate=8000):
        if mode not in (0, 1):
            raise ValueError("mode must be 0 (fixed) or 1 (adaptive)")
        if not (0 <= min_ms <= default_ms <= max_ms <= 1000):
            raise ValueError("need 0 <= min_ms <= default_ms <= max_ms <= 1000")
        if not (0 < frame_ms <= 60) or not (1000 <= clock_rate <= 48000):
            raise ValueError("frame_ms must be in (0, 60] and clock_rate in [1000, 48000]")
        self.jb = <JitterBuf *>calloc(1, sizeof(JitterBuf))
        if self.jb == NULL:
            raise MemoryError()
        if jb_init(self.jb, mode, min_ms, max_ms, default_ms, frame_ms, clock_rate) != 0:
            raise ValueError("frame_ms is too short for clock_rate")

    def __dealloc__(self):
        free(self.jb)
        self.jb = NULL

    def put(self, int seq, long long ts, marker, bytes payload, double arrival_ms, long long ssrc=0):
        cdef const unsigned char *p = payload
        cdef uint32_t n = <uint32_t>len(payload)
        cdef int r
        cdef uint32_t c_ssrc = <uint32_t>(ssrc & 0xFFFFFFFF)
        cdef uint16_t c_seq = <uint16_t>(seq & 0xFFFF)
        cdef uint32_t c_ts = <uint32_t>(ts & 0xFFFFFFFF)
        cdef int c_marker = 1 if marker else 0
        if len(payload) > JB_MAXPAYLOAD:
            raise ValueError(f"payload larger than {JB_MAXPAYLOAD} bytes")
        with nogil:
            r = jb_put(self.jb, c_ssrc, c_seq, c_ts, c_marker, p, n, arrival_ms)
        return PUT_RESULTS[r]

    def get(self, double now_ms):
        cdef JbSlot *slot
        cdef int r
        with nogil:
            r = jb_get(self.jb, now_ms, &slot)
        self.last_now = now_ms
        if r == JB_FRAME:
            return r, (slot.seq, slot.ts, bool(slot.marker), (<const char *>slot.payload)[:slot.length])
        return r, None

    def reset(self):
        jb_reset(self.jb)

    def delay_history(self):
        """(arrival_ms, delay_ms) samples the estimator holds, oldest first."""
        cdef int i, j
        out = []
        for i in range(self.jb.hist_n):
            j = (self.jb.hist_head - self.jb.hist_n + i + JB_HIST) % JB_HIST
            out.append((self.jb.hist_t[j], self.jb.hist_d[j]))
        return out

    @property
    def buffered(self):
        return self.jb.count

    def stats(self, now_ms=None):
        cdef JbStats *s = &self.jb.st
        now = self.last_now if now_ms is None else now_ms
        return {
            "depth_ms": jb_depth_ms(self.jb, now),
            "target_ms": jb_target_ms(self.jb),
            "buffered": self.jb.count,
            "puts": s.puts, "played": s.played, "late": s.late, "duplicates": s.duplicates,
            "overflow": s.overflow, "invalid": s.invalid, "flushed": s.flushed,
            "scaled": s.scaled, "inserted": s.inserted, "concealed": s.concealed,
            "reorders": s.reorders, "resyncs": s.resyncs, "ssrc_changes": s.ssrc_changes,
            "talkspurts": s.talkspurts,
        }
