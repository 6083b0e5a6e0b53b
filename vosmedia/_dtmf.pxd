# C-level DTMF (SPEC 1.5): in-band detector and generator, RFC 4733 telephone-event.
# Every function here runs without the GIL and never raises: errors are return values.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t


cdef enum:
    DTMF_BLOCK = 102            # Goertzel block, 12.75 ms at 8 kHz
    DTMF_TONES = 8              # 4 row (low group) + 4 column (high group) frequencies
    DTMF_GEN_QUEUE = 64         # digits a generator holds
    RFC4733_PAYLOAD = 4         # event, E|R|volume, duration
    RFC4733_HISTORY = 16        # recent event timestamps a receiver remembers
    RFC4733_FLASH = 16          # event code of a hook flash


cdef struct DtmfDet:
    float s1[DTMF_TONES]        # Goertzel state of the current block
    float s2[DTMF_TONES]
    float energy                # sum of squares of the current block
    int n                       # samples in the current block so far
    float block[DTMF_BLOCK]     # the block's samples, for the candidate checks
    char last_hit               # the previous block's verdict (0: no digit)
    char current                # the digit being held (0: none)
    uint64_t blocks             # blocks analysed
    uint64_t digits             # digits reported


cdef struct DtmfTone:
    char digit
    float amplitude             # peak of each of the two tones (16-bit linear)
    int tone_samples
    int gap_samples


cdef struct DtmfGen:
    float amplitude             # defaults for dtmf_generator_queue: peak of each tone,
    int tone_samples            # tone and gap lengths
    int gap_samples
    DtmfTone queue[DTMF_GEN_QUEUE]
    int head                    # next digit to start
    int count                   # digits queued (including the one playing)
    int pos                     # sample position inside the playing digit's tone + gap
    int hold                    # while set, the newest digit's tone lasts beyond its length


cdef struct Rfc4733Event:
    int event                   # 0-16
    int end                     # E bit
    int volume                  # 0-63, -dBm0
    int duration                # timestamp units since the event's start


cdef struct Rfc4733Rx:
    int started
    uint32_t ssrc
    uint32_t newest_ts          # newest event timestamp seen
    uint32_t history[RFC4733_HISTORY]   # timestamps of recent events (ring)
    int hist_n
    int hist_head
    int cur_event               # the newest event's code, its duration and end state
    int cur_duration
    int cur_ended
    uint64_t events             # digits reported
    uint64_t duplicates         # packets of an event already reported (updates, end repeats)
    uint64_t stale              # packets of events too old to be reported
    uint64_t invalid


# In-band detector: 8 kHz 16-bit samples in chunks of any size; the digits recognised in
# this call are written to digits_out (at most cap of them); returns how many.
cdef void dtmf_detector_init(DtmfDet *det) noexcept nogil
cdef int dtmf_detect(DtmfDet *det, const int16_t *pcm, int n, char *digits_out, int cap) noexcept nogil

# Generator: level per tone in dBm0 (0 dBm0 = a sine of peak 32768 * 10^(-3.17/20)).
cdef void dtmf_generator_init(DtmfGen *gen, double level_dbm0, int tone_ms, int gap_ms) noexcept nogil
# queue digits (0-9 * # A-D); returns how many were queued (stops at an unknown character
# or a full queue)
cdef int dtmf_generator_queue(DtmfGen *gen, const char *digits, int n) noexcept nogil
# queue one digit with its own level and lengths; 1 if queued, 0 (unknown digit, full queue)
cdef int dtmf_generator_add(DtmfGen *gen, char digit, double level_dbm0, int tone_ms,
                            int gap_ms) noexcept nogil
# n samples of the queued tones and gaps into out (zeros once the queue is empty); returns
# the samples that belonged to the sequence (0 when there was nothing to play)
cdef int dtmf_generate(DtmfGen *gen, int16_t *out, int n) noexcept nogil
cdef int dtmf_generator_pending(DtmfGen *gen) noexcept nogil

# RFC 4733 telephone-event payloads. Event codes 0-15 <-> '0'-'9' '*' '#' 'A'-'D', 16 flash ('!').
cdef char rfc4733_event_char(int event) noexcept nogil        # 0 if no such event
cdef int rfc4733_char_event(char digit) noexcept nogil        # -1 if no such digit
cdef int rfc4733_parse(const uint8_t *payload, int length, Rfc4733Event *ev) noexcept nogil   # 0 / -1
cdef void rfc4733_build(uint8_t *payload, int event, int end, int volume, int duration) noexcept nogil
# A whole RTP packet (12-byte header + 4-byte payload) into out (16 bytes).
cdef int rfc4733_packet(uint8_t *out, int pt, int marker, uint16_t seq, uint32_t ts, uint32_t ssrc,
                        int event, int end, int volume, int duration) noexcept nogil

# Per-leg receiver: one call per telephone-event packet; returns 1 and the digit in
# *digit for the first packet of an event not reported before, 0 for any other packet
# (updates, end retransmissions, duplicates, late packets of old events), -1 if invalid.
cdef void rfc4733_rx_init(Rfc4733Rx *rx) noexcept nogil
cdef int rfc4733_receive(Rfc4733Rx *rx, uint32_t ssrc, uint32_t ts, const uint8_t *payload,
                         int length, char *digit) noexcept nogil


cdef class DtmfDetector:
    cdef DtmfDet det


cdef class DtmfGenerator:
    cdef DtmfGen gen


cdef class Rfc4733Receiver:
    cdef Rfc4733Rx rx
