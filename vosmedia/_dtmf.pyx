# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""DTMF (SPEC 1.5): in-band detector and generator, RFC 4733 telephone-event payloads.

Detector. 8 kHz 16-bit audio is cut into blocks of DTMF_BLOCK (102) samples whatever
the caller's chunk sizes. A block is analysed with Goertzel filters at the eight DTMF
frequencies; the strongest row and column tone make a candidate digit when

* each tone is above MIN_LEVEL_DBM0 (-31 dBm0; 0 dBm0 is a sine of peak
  32768 * 10^(-3.17/20) = 22793, the G.711 µ-law reference, A-law's 3.14 dB is within 0.03 dB),
* the twist is within REVERSE_TWIST_DB (column weaker) / NORMAL_TWIST_DB (column stronger),
* each beats the other tones of its group by RELATIVE_PEAK (6 dB),
* the two tones carry at least TONE_TO_TOTAL of the block's energy (white noise, music
  and speech spread theirs),
* and then, on the buffered block: each tone's energy at the nominal frequency exceeds
  the energy at ±DETUNE (5 %) of it, so a tone is taken only within about ±2.5 % of its
  frequency (±1.5 % passes, ±3.5 % fails), and neither tone has a second harmonic above
  HARMONIC_RATIO of the pair (voiced speech has harmonics, DTMF tones do not; a row
  tone's harmonic is not measured when a column tone lies within 200 Hz of it).

A digit is reported when two consecutive blocks (25.5 ms) give the same candidate, and
it ends after two consecutive blocks without it, so a 40 ms tone is always seen (it spans
two whole blocks wherever it starts), a single disturbed block does not split a digit, and
a 40 ms gap (two whole silent blocks) separates repeats of one digit.

RFC 4733. A receiver keys events by their RTP timestamp: the first packet of a new
timestamp reports the digit; updates, the three end retransmissions, duplicates and
late packets of an event already reported (or older than the last RFC4733_HISTORY events)
report nothing. A lost start packet is harmless since every packet carries the event.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t, int32_t
from libc.string cimport memset
from libc.math cimport cos, sin, pow, M_PI

cdef double RATE = 8000.0
cdef double DBM0_PEAK = 22792.6             # 32768 * 10^(-3.17/20)
cdef double MIN_LEVEL_DBM0 = -31.0
cdef double REVERSE_TWIST_DB = 9.5
cdef double NORMAL_TWIST_DB = 5.5
cdef float RELATIVE_PEAK = 4.0              # 6 dB
cdef float TONE_TO_TOTAL = 0.7
cdef double DETUNE = 0.05
cdef float HARMONIC_RATIO = 0.15

cdef double FREQS[8]
FREQS[:] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0]
cdef char *KEYS = b"123A456B789C*0#D"
cdef char *EVENTS = b"0123456789*#ABCD!"

cdef float COEF[8]
cdef float COEF_LO[8]
cdef float COEF_HI[8]
cdef float COEF_H2[8]
cdef float MIN_POWER
cdef bint ROW_HARMONIC_OK[4][4]     # the row's second harmonic is 200 Hz or more from the column
cdef float REVERSE_TWIST
cdef float NORMAL_TWIST


cdef void build_constants() noexcept:
    global MIN_POWER, REVERSE_TWIST, NORMAL_TWIST
    cdef int i
    for i in range(8):
        COEF[i] = <float>(2.0 * cos(2.0 * M_PI * FREQS[i] / RATE))
        COEF_LO[i] = <float>(2.0 * cos(2.0 * M_PI * FREQS[i] * (1.0 - DETUNE) / RATE))
        COEF_HI[i] = <float>(2.0 * cos(2.0 * M_PI * FREQS[i] * (1.0 + DETUNE) / RATE))
        COEF_H2[i] = <float>(2.0 * cos(2.0 * M_PI * 2.0 * FREQS[i] / RATE))
    for i in range(16):
        ROW_HARMONIC_OK[i // 4][i % 4] = abs(2.0 * FREQS[i // 4] - FREQS[4 + i % 4]) >= 200.0
    # mean power of a sine at the minimum level: peak^2 / 2
    MIN_POWER = <float>(pow(DBM0_PEAK * pow(10.0, MIN_LEVEL_DBM0 / 20.0), 2.0) / 2.0)
    REVERSE_TWIST = <float>pow(10.0, REVERSE_TWIST_DB / 10.0)
    NORMAL_TWIST = <float>pow(10.0, NORMAL_TWIST_DB / 10.0)


build_constants()


# ---------------------------------------------------------------- detector, C level

cdef inline float tone_power(float s1, float s2, float coef) noexcept nogil:
    """Mean power (peak^2 / 2 for a sine) of a Goertzel output over one block."""
    return (s1 * s1 + s2 * s2 - coef * s1 * s2) * (2.0 / (DTMF_BLOCK * DTMF_BLOCK))


cdef void goertzel6(const float *x, const float *coef, float *power) noexcept nogil:
    """Mean powers over one block at six frequencies (independent chains, one pass)."""
    cdef float s1[6]
    cdef float s2[6]
    cdef float s0
    cdef int i, j
    for j in range(6):
        s1[j] = 0
        s2[j] = 0
    for i in range(DTMF_BLOCK):
        for j in range(6):
            s0 = x[i] + coef[j] * s1[j] - s2[j]
            s2[j] = s1[j]
            s1[j] = s0
    for j in range(6):
        power[j] = tone_power(s1[j], s2[j], coef[j])


cdef void dtmf_detector_init(DtmfDet *det) noexcept nogil:
    memset(det, 0, sizeof(DtmfDet))


cdef char analyse_block(DtmfDet *det) noexcept nogil:
    """The candidate digit of the full block in det.block, 0 if none."""
    cdef float p[8]
    cdef float s1[8]
    cdef float s2[8]
    cdef float x, s0, total = 0
    cdef int i, j, r = 0, c = 4
    for j in range(8):
        s1[j] = 0
        s2[j] = 0
    for i in range(DTMF_BLOCK):
        x = det.block[i]
        total += x * x
        for j in range(8):
            s0 = x + COEF[j] * s1[j] - s2[j]
            s2[j] = s1[j]
            s1[j] = s0
    for j in range(8):
        p[j] = tone_power(s1[j], s2[j], COEF[j])
    for j in range(1, 4):
        if p[j] > p[r]:
            r = j
    for j in range(5, 8):
        if p[j] > p[c]:
            c = j
    cdef float pr = p[r], pc = p[c]
    if pr < MIN_POWER or pc < MIN_POWER:
        return 0
    if pc > pr * NORMAL_TWIST or pr > pc * REVERSE_TWIST:
        return 0
    for j in range(4):
        if j != r and p[j] * RELATIVE_PEAK > pr:
            return 0
        if j + 4 != c and p[j + 4] * RELATIVE_PEAK > pc:
            return 0
    # total / N is the block's mean power
    if (pr + pc) < TONE_TO_TOTAL * total / DTMF_BLOCK:
        return 0
    cdef char key = KEYS[r * 4 + (c - 4)]
    if key == det.last_hit:
        # the previous block passed every check with this tone pair: it goes on
        return key
    # the candidate checks: six more filters in one pass over the block
    cdef float coef[6]
    cdef float q[6]
    coef[0] = COEF_LO[r]
    coef[1] = COEF_HI[r]
    coef[2] = COEF_LO[c]
    coef[3] = COEF_HI[c]
    coef[4] = COEF_H2[r]
    coef[5] = COEF_H2[c]
    goertzel6(det.block, coef, q)
    if q[0] >= pr or q[1] >= pr or q[2] >= pc or q[3] >= pc:
        return 0
    if q[5] > HARMONIC_RATIO * (pr + pc):
        return 0
    # 2 x 697, 770 and 852 Hz lie within 100 Hz of a column tone whose leakage would
    # swamp the measurement: those rows are checked only with a column far enough away
    if ROW_HARMONIC_OK[r][c - 4] and q[4] > HARMONIC_RATIO * (pr + pc):
        return 0
    return key


cdef int dtmf_detect(DtmfDet *det, const int16_t *pcm, int n, char *digits_out, int cap) noexcept nogil:
    cdef int i = 0, k, take, count = 0
    cdef char hit
    while i < n:
        take = DTMF_BLOCK - det.n
        if take > n - i:
            take = n - i
        for k in range(take):
            det.block[det.n + k] = pcm[i + k]
        det.n += take
        i += take
        if det.n < DTMF_BLOCK:
            break
        det.n = 0
        det.blocks += 1
        hit = analyse_block(det)
        if hit != 0 and hit == det.last_hit and hit != det.current:
            det.current = hit
            det.digits += 1
            if count < cap:
                digits_out[count] = hit
                count += 1
        elif det.current != 0 and hit != det.current and det.last_hit != det.current:
            det.current = 0
        det.last_hit = hit
    return count


# ---------------------------------------------------------------- generator, C level

cdef int key_index(char digit) noexcept nogil:
    cdef int i
    if digit >= 97 and digit <= 100:        # a-d
        digit -= 32
    for i in range(16):
        if KEYS[i] == digit:
            return i
    return -1


cdef void dtmf_generator_init(DtmfGen *gen, double level_dbm0, int tone_ms, int gap_ms) noexcept nogil:
    memset(gen, 0, sizeof(DtmfGen))
    gen.amplitude = <float>(DBM0_PEAK * pow(10.0, level_dbm0 / 20.0))
    gen.tone_samples = tone_ms * 8
    gen.gap_samples = gap_ms * 8


cdef int dtmf_generator_add(DtmfGen *gen, char digit, double level_dbm0, int tone_ms,
                            int gap_ms) noexcept nogil:
    cdef DtmfTone *t
    if gen.count >= DTMF_GEN_QUEUE or key_index(digit) < 0 or tone_ms < 0 or gap_ms < 0:
        return 0
    t = &gen.queue[(gen.head + gen.count) % DTMF_GEN_QUEUE]
    t.digit = digit
    t.amplitude = <float>(DBM0_PEAK * pow(10.0, level_dbm0 / 20.0))
    t.tone_samples = tone_ms * 8
    t.gap_samples = gap_ms * 8
    gen.count += 1
    return 1


cdef int dtmf_generator_queue(DtmfGen *gen, const char *digits, int n) noexcept nogil:
    cdef int i
    cdef DtmfTone *t
    for i in range(n):
        if gen.count >= DTMF_GEN_QUEUE or key_index(digits[i]) < 0:
            return i
        t = &gen.queue[(gen.head + gen.count) % DTMF_GEN_QUEUE]
        t.digit = digits[i]
        t.amplitude = gen.amplitude
        t.tone_samples = gen.tone_samples
        t.gap_samples = gen.gap_samples
        gen.count += 1
    return n


cdef int dtmf_generator_pending(DtmfGen *gen) noexcept nogil:
    return gen.count


cdef int dtmf_generate(DtmfGen *gen, int16_t *out, int n) noexcept nogil:
    cdef int i = 0, k
    cdef DtmfTone *t
    cdef double wr, wc, v
    while i < n and gen.count > 0:
        t = &gen.queue[gen.head]
        k = key_index(t.digit)
        wr = 2.0 * M_PI * FREQS[k // 4] / RATE
        wc = 2.0 * M_PI * FREQS[4 + k % 4] / RATE
        while i < n:
            if gen.hold and gen.count == 1 and gen.pos >= t.tone_samples:
                # held (a digit still arriving by another method): the tone goes on
                t.tone_samples = gen.pos + 1
            if gen.pos >= t.tone_samples + t.gap_samples:
                break
            if gen.pos < t.tone_samples:
                v = t.amplitude * (sin(wr * gen.pos) + sin(wc * gen.pos))
                out[i] = <int16_t>(v + 0.5 if v >= 0 else v - 0.5)
            else:
                out[i] = 0
            gen.pos += 1
            i += 1
        if gen.pos >= t.tone_samples + t.gap_samples:
            gen.pos = 0
            gen.head = (gen.head + 1) % DTMF_GEN_QUEUE
            gen.count -= 1
    k = i
    while k < n:
        out[k] = 0
        k += 1
    return i


# ---------------------------------------------------------------- RFC 4733, C level

cdef char rfc4733_event_char(int event) noexcept nogil:
    if event < 0 or event > 16:
        return 0
    return EVENTS[event]


cdef int rfc4733_char_event(char digit) noexcept nogil:
    cdef int i
    if digit >= 97 and digit <= 100:
        digit -= 32
    for i in range(17):
        if EVENTS[i] == digit:
            return i
    return -1


cdef int rfc4733_parse(const uint8_t *payload, int length, Rfc4733Event *ev) noexcept nogil:
    # several events may share a packet (RFC 4733 2.5.1.4 stacking is not used for DTMF;
    # a longer payload is taken by its first event)
    if length < RFC4733_PAYLOAD or payload[0] > 16:
        return -1
    ev.event = payload[0]
    ev.end = (payload[1] >> 7) & 1
    ev.volume = payload[1] & 0x3F
    ev.duration = (payload[2] << 8) | payload[3]
    return 0


cdef void rfc4733_build(uint8_t *payload, int event, int end, int volume, int duration) noexcept nogil:
    payload[0] = <uint8_t>event
    payload[1] = <uint8_t>((0x80 if end else 0) | (volume & 0x3F))
    payload[2] = <uint8_t>((duration >> 8) & 0xFF)
    payload[3] = <uint8_t>(duration & 0xFF)


cdef int rfc4733_packet(uint8_t *out, int pt, int marker, uint16_t seq, uint32_t ts, uint32_t ssrc,
                        int event, int end, int volume, int duration) noexcept nogil:
    out[0] = 0x80
    out[1] = <uint8_t>((0x80 if marker else 0) | (pt & 0x7F))
    out[2] = seq >> 8
    out[3] = seq & 0xFF
    out[4] = (ts >> 24) & 0xFF
    out[5] = (ts >> 16) & 0xFF
    out[6] = (ts >> 8) & 0xFF
    out[7] = ts & 0xFF
    out[8] = (ssrc >> 24) & 0xFF
    out[9] = (ssrc >> 16) & 0xFF
    out[10] = (ssrc >> 8) & 0xFF
    out[11] = ssrc & 0xFF
    rfc4733_build(out + 12, event, end, volume, duration)
    return 12 + RFC4733_PAYLOAD


cdef void rfc4733_rx_init(Rfc4733Rx *rx) noexcept nogil:
    memset(rx, 0, sizeof(Rfc4733Rx))
    rx.cur_event = -1


cdef int rfc4733_receive(Rfc4733Rx *rx, uint32_t ssrc, uint32_t ts, const uint8_t *payload,
                         int length, char *digit) noexcept nogil:
    cdef Rfc4733Event ev
    cdef int i
    if rfc4733_parse(payload, length, &ev) < 0:
        rx.invalid += 1
        return -1
    if rx.started and ssrc != rx.ssrc:
        rfc4733_rx_init(rx)
    if rx.started:
        for i in range(rx.hist_n):
            if rx.history[i] == ts:
                if ts == rx.newest_ts:
                    if ev.duration > rx.cur_duration:
                        rx.cur_duration = ev.duration
                    if ev.end:
                        rx.cur_ended = 1
                rx.duplicates += 1
                return 0
        # older than every remembered event: its report (if any) has long gone
        if rx.hist_n == RFC4733_HISTORY and <int32_t>(ts - rx.newest_ts) < 0:
            for i in range(rx.hist_n):
                if <int32_t>(ts - rx.history[i]) > 0:
                    break
            else:
                rx.stale += 1
                return 0
    rx.started = 1
    rx.ssrc = ssrc
    rx.history[rx.hist_head] = ts
    rx.hist_head = (rx.hist_head + 1) % RFC4733_HISTORY
    if rx.hist_n < RFC4733_HISTORY:
        rx.hist_n += 1
    if rx.hist_n == 1 or <int32_t>(ts - rx.newest_ts) > 0:
        rx.newest_ts = ts
        rx.cur_event = ev.event
        rx.cur_duration = ev.duration
        rx.cur_ended = ev.end
    rx.events += 1
    digit[0] = rfc4733_event_char(ev.event)
    return 1


# ---------------------------------------------------------------- Python level

cdef const uint8_t[::1] octets(object data):
    cdef const uint8_t[::1] raw
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    raw = view
    return raw


cdef class DtmfDetector:
    """In-band DTMF detector for one channel: feed 8 kHz 16-bit native-endian PCM
    (bytes-like or numpy int16) in chunks of any size; each call returns the digits that
    were recognised in it as a str. Not thread-safe: one object per stream."""

    def __cinit__(self):
        dtmf_detector_init(&self.det)

    def feed(self, pcm):
        cdef const uint8_t[::1] raw = octets(pcm)
        cdef Py_ssize_t nbytes = raw.shape[0]
        cdef int n
        if nbytes % 2:
            raise ValueError(f"16-bit PCM needs an even number of bytes, got {nbytes}")
        n = <int>(nbytes // 2)
        if n == 0:
            return ""
        # at most one digit per two blocks
        cdef int cap = n // DTMF_BLOCK + 2
        out = bytearray(cap)
        cdef char *o = out
        cdef bytes copy
        cdef int count
        if (<size_t>&raw[0]) % 2:
            copy = bytes(raw)
            count = dtmf_detect(&self.det, <const int16_t *>PyBytes_AS_STRING(copy), n, o, cap)
        else:
            count = dtmf_detect(&self.det, <const int16_t *>&raw[0], n, o, cap)
        return out[:count].decode("ascii")

    def reset(self):
        dtmf_detector_init(&self.det)

    @property
    def current(self):
        """The digit whose tone is present now, or ''."""
        return chr(self.det.current) if self.det.current else ""

    @property
    def blocks(self):
        return self.det.blocks


cdef class DtmfGenerator:
    """DTMF tones: level per tone in dBm0, tone and gap durations in ms."""

    def __cinit__(self, double level_dbm0=-10.0, int tone_ms=50, int gap_ms=50):
        if tone_ms < 0 or gap_ms < 0:
            raise ValueError("tone_ms and gap_ms must be >= 0")
        if level_dbm0 > 3.0:
            raise ValueError(f"level {level_dbm0} dBm0 would clip")
        dtmf_generator_init(&self.gen, level_dbm0, tone_ms, gap_ms)

    def generate(self, digits):
        """16-bit native-endian PCM bytes of `digits` (0-9 * # A-D), each tone then gap."""
        data = digits.encode("ascii") if isinstance(digits, str) else bytes(digits)
        cdef int per = self.gen.tone_samples + self.gen.gap_samples
        out = bytearray()
        buf = PyBytes_FromStringAndSize(NULL, 2 * per * 16) if per else b""
        cdef const char *p = data
        cdef int done = 0, queued, made
        while done < len(data):
            queued = dtmf_generator_queue(&self.gen, p + done, min(16, len(data) - done))
            if queued == 0:
                raise ValueError(f"not a DTMF digit: {chr(data[done])!r}")
            done += queued
            while dtmf_generator_pending(&self.gen):
                made = dtmf_generate(&self.gen, <int16_t *>PyBytes_AS_STRING(buf), per * 16)
                out += buf[:2 * made]
        return bytes(out)


def parse_event(payload):
    """(digit, end, volume, duration) of a telephone-event payload; ValueError if invalid."""
    cdef const uint8_t[::1] raw = octets(payload)
    cdef Rfc4733Event ev
    if rfc4733_parse(&raw[0] if raw.shape[0] else NULL, <int>raw.shape[0], &ev) < 0:
        raise ValueError(f"not a telephone-event payload: {bytes(payload)!r}")
    return chr(rfc4733_event_char(ev.event)), bool(ev.end), ev.volume, ev.duration


def build_event(digit, bint end=False, int volume=10, int duration=0):
    """The 4-byte telephone-event payload; digit is '0'-'9', '*', '#', 'A'-'D' or '!' (flash)."""
    cdef int event = rfc4733_char_event(ord(digit)) if len(digit) == 1 else -1
    if event < 0:
        raise ValueError(f"not a DTMF event: {digit!r}")
    if not 0 <= volume <= 63 or not 0 <= duration <= 0xFFFF:
        raise ValueError("volume is 0-63 and duration 0-65535")
    cdef uint8_t out[RFC4733_PAYLOAD]
    rfc4733_build(out, event, end, volume, duration)
    return PyBytes_FromStringAndSize(<char *>out, RFC4733_PAYLOAD)


def event_packets(digit, int duration_ms=100, int pt=101, int seq=0, long long ts=0,
                  long long ssrc=0, int volume=10, int interval_ms=50):
    """RTP packets sending one digit: (send offset in ms, packet bytes) for a first packet
    with the marker bit, an update every interval_ms, and three end packets (E bit, the
    full duration). Sequence numbers count up from seq; every packet carries timestamp ts."""
    cdef int event = rfc4733_char_event(ord(digit)) if len(digit) == 1 else -1
    if event < 0:
        raise ValueError(f"not a DTMF event: {digit!r}")
    if duration_ms <= 0 or interval_ms <= 0 or duration_ms * 8 > 0xFFFF:
        raise ValueError("duration_ms must be 1-8191 and interval_ms positive")
    cdef uint8_t pkt[12 + RFC4733_PAYLOAD]
    cdef int total = duration_ms * 8, k = 0, at = 0, i
    packets = []
    # the first packet (marker) at the start with duration 0, then one every interval_ms
    # with the duration so far, the last of them at the end with the E bit
    while True:
        end = at >= duration_ms
        rfc4733_packet(pkt, pt, k == 0, <uint16_t>(seq + k), <uint32_t>ts, <uint32_t>ssrc,
                       event, end, volume, min(total, at * 8))
        packets.append((min(at, duration_ms), PyBytes_FromStringAndSize(<char *>pkt, sizeof(pkt))))
        k += 1
        if end:
            break
        at += interval_ms
    # two retransmissions of the end packet (three in all), 20 ms apart
    for i in range(2):
        rfc4733_packet(pkt, pt, 0, <uint16_t>(seq + k), <uint32_t>ts, <uint32_t>ssrc,
                       event, 1, volume, total)
        packets.append((duration_ms + (i + 1) * 20, PyBytes_FromStringAndSize(<char *>pkt, sizeof(pkt))))
        k += 1
    return packets


cdef class Rfc4733Receiver:
    """Telephone-event receiver of one leg: receive() returns the digit for the first
    packet of each event and None for every other packet."""

    def __cinit__(self):
        rfc4733_rx_init(&self.rx)

    def receive(self, payload, long long ts, long long ssrc=0):
        cdef const uint8_t[::1] raw = octets(payload)
        cdef char digit = 0
        cdef int r = rfc4733_receive(&self.rx, <uint32_t>ssrc, <uint32_t>ts,
                                     &raw[0] if raw.shape[0] else NULL, <int>raw.shape[0], &digit)
        if r < 0:
            raise ValueError(f"not a telephone-event payload: {bytes(payload)!r}")
        return chr(digit) if r == 1 else None

    def receive_packet(self, packet):
        """Like receive() for a whole RTP packet (header with CSRCs/extension skipped)."""
        data = bytes(packet)
        if len(data) < 12 or data[0] >> 6 != 2:
            raise ValueError("not an RTP packet")
        off = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10:
            if len(data) < off + 4:
                raise ValueError("truncated RTP header extension")
            off += 4 + 4 * int.from_bytes(data[off + 2:off + 4], "big")
        return self.receive(data[off:], int.from_bytes(data[4:8], "big"),
                            int.from_bytes(data[8:12], "big"))

    @property
    def state(self):
        """The newest event: (digit or '', duration in timestamp units, ended)."""
        return (chr(rfc4733_event_char(self.rx.cur_event)) if self.rx.cur_event >= 0 else "",
                self.rx.cur_duration, bool(self.rx.cur_ended))

    def stats(self):
        return {"events": self.rx.events, "duplicates": self.rx.duplicates,
                "stale": self.rx.stale, "invalid": self.rx.invalid}
