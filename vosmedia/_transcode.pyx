# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The per-direction transcoding unit of the media path (issue 3): one Transcoder turns the
payloads of one input stream (PCMA / PCMU / G.729 at any ptime) into the RTP packets of the
output leg (its codec, payload type, ptime and SSRC). Sans-I/O and nogil: the relay core
feeds it what the jitter buffer plays and sends what it returns.

Timing: the output clock is 8 kHz like every input codec here. Output timestamps follow
the input timeline one to one, so a gap in the input timestamps (the sender's silence)
advances the output timestamp by the same duration; an SSRC change or a backwards jump of
the input continues the output where it stands. Sequence numbers count the packets sent.
The marker bit goes on the first voice packet of a talkspurt: the stream's first, the
first after a gap, an SSRC change, a resync, an input marker, or a G.729 DTX pause.

The G.729 channels are the caller's (`G729Encoder.ctx`, `G729Decoder.ctx`): this module
calls bcg729 only through _codec's C functions, so it needs no link against libbcg729.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, int16_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport calloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize

from vosmedia._codec cimport (G729Encoder, G729Decoder, alaw_encode, alaw_decode,
                              ulaw_encode, ulaw_decode, g729_payload_frames,
                              g729_encode_frame, g729_decode, g729_conceal)

PCMU = TC_PCMU
PCMA = TC_PCMA
G729 = TC_G729
OUT_CAP = TC_OUT_CAP
MAX_OUT_PACKETS = TC_MAX_OUT_PACKETS
MAX_CONCEAL = TC_MAX_CONCEAL
cdef enum:
    TC_FADE_FRAMES = 5          # G.711 concealment fades to silence over 5 x 10 ms

CONCEAL_FADE_FRAMES = TC_FADE_FRAMES


cdef inline int known_codec(int codec) noexcept nogil:
    return codec == TC_PCMU or codec == TC_PCMA or codec == TC_G729


cdef int tc_init(TcState *tc, int in_codec, int in_ptime, int out_codec, int out_pt,
                 int out_ptime, uint32_t out_ssrc, uint16_t seq, uint32_t ts,
                 bcg729DecoderChannelContextStruct *dec,
                 bcg729EncoderChannelContextStruct *enc) noexcept nogil:
    if not known_codec(in_codec) or not known_codec(out_codec):
        return -1
    if out_ptime not in (10, 20, 30, 40) or in_ptime not in (10, 20, 30, 40, 50, 60):
        return -1
    if out_pt < 0 or out_pt > 127:
        return -1
    if (in_codec == TC_G729) != (dec != NULL) or (out_codec == TC_G729) != (enc != NULL):
        return -1
    memset(tc, 0, sizeof(TcState))
    tc.in_codec = in_codec
    tc.in_ptime = in_ptime
    tc.out_codec = out_codec
    tc.out_pt = out_pt
    tc.out_ptime = out_ptime
    tc.out_samples = out_ptime * 8
    tc.out_ssrc = out_ssrc
    tc.dec = dec
    tc.enc = enc
    tc.seq = seq
    tc.buf_ts = ts
    tc.marker_next = 1
    return 0


# ---------------------------------------------------------------- packet output

cdef inline void put_header(uint8_t *p, TcState *tc, int marker, uint32_t ts) noexcept nogil:
    p[0] = 0x80
    p[1] = <uint8_t>((0x80 if marker else 0) | tc.out_pt)
    p[2] = <uint8_t>(tc.seq >> 8)
    p[3] = <uint8_t>(tc.seq & 0xFF)
    p[4] = <uint8_t>(ts >> 24)
    p[5] = <uint8_t>((ts >> 16) & 0xFF)
    p[6] = <uint8_t>((ts >> 8) & 0xFF)
    p[7] = <uint8_t>(ts & 0xFF)
    p[8] = <uint8_t>(tc.out_ssrc >> 24)
    p[9] = <uint8_t>((tc.out_ssrc >> 16) & 0xFF)
    p[10] = <uint8_t>((tc.out_ssrc >> 8) & 0xFF)
    p[11] = <uint8_t>(tc.out_ssrc & 0xFF)


cdef inline int finish_packet(TcState *tc, uint8_t *pkt, int payload_len, int marker,
                              uint32_t ts, int *out_lens, int *npackets) noexcept nogil:
    """Header for a packet whose payload is already at pkt + 12; returns its length."""
    put_header(pkt, tc, marker, ts)
    tc.seq = <uint16_t>(tc.seq + 1)
    out_lens[npackets[0]] = TC_RTP_HEADER + payload_len
    npackets[0] += 1
    tc.st.packets_out += 1
    tc.st.bytes_out += payload_len
    if marker:
        tc.st.talkspurts += 1
    return TC_RTP_HEADER + payload_len


cdef int emit_g711(TcState *tc, const int16_t *pcm, uint8_t *out, int *used,
                   int *out_lens, int *npackets) noexcept nogil:
    cdef uint8_t *pkt = out + used[0]
    cdef int n = tc.out_samples
    if tc.out_codec == TC_PCMA:
        alaw_encode(pcm, pkt + TC_RTP_HEADER, n)
    else:
        ulaw_encode(pcm, pkt + TC_RTP_HEADER, n)
    used[0] += finish_packet(tc, pkt, n, tc.marker_next, tc.buf_ts, out_lens, npackets)
    tc.marker_next = 0
    return 0


cdef int emit_g729(TcState *tc, const int16_t *pcm, uint8_t *out, int *used,
                   int *out_lens, int *npackets) noexcept nogil:
    """One output period of G.729 frames. Voice frames share a packet; a SID frame ends
    its packet (RFC 3551 4.5.6: voice frames, then at most one SID); a frame the encoder
    does not send (DTX) ends the packet and opens a gap in the timestamps."""
    cdef int frames = tc.out_samples // TC_FRAME
    cdef int i, length, marker
    cdef uint8_t *pkt = NULL       # packet being filled, NULL when none is open
    cdef int plen = 0
    cdef int pmarker = 0
    cdef uint32_t pts = 0
    cdef uint8_t frame[10]
    for i in range(frames):
        length = g729_encode_frame(tc.enc, pcm + i * TC_FRAME, frame)
        if length == 0:
            tc.st.dtx_frames += 1
            if pkt != NULL:
                used[0] += finish_packet(tc, pkt, plen, pmarker, pts, out_lens, npackets)
                pkt = NULL
            tc.silent = 1
            continue
        if pkt == NULL:
            pkt = out + used[0]
            plen = 0
            pts = tc.buf_ts + <uint32_t>(i * TC_FRAME)
            pmarker = 0
            if length == 10 and (tc.silent or tc.marker_next):
                pmarker = 1
                tc.marker_next = 0
        memcpy(pkt + TC_RTP_HEADER + plen, frame, length)
        plen += length
        if length == 2:
            tc.st.sid_out += 1
            tc.silent = 1
            used[0] += finish_packet(tc, pkt, plen, pmarker, pts, out_lens, npackets)
            pkt = NULL
        else:
            tc.silent = 0
    if pkt != NULL:
        used[0] += finish_packet(tc, pkt, plen, pmarker, pts, out_lens, npackets)
    return 0


cdef void drain(TcState *tc, uint8_t *out, int *used, int *out_lens,
                int *npackets) noexcept nogil:
    """Send every whole output packet in the buffer; keep the remainder."""
    cdef int off = 0
    while tc.pending - off >= tc.out_samples:
        if tc.out_codec == TC_G729:
            emit_g729(tc, tc.pcm + off, out, used, out_lens, npackets)
        else:
            emit_g711(tc, tc.pcm + off, out, used, out_lens, npackets)
        off += tc.out_samples
        tc.buf_ts += <uint32_t>tc.out_samples
    if off:
        tc.pending -= off
        memcpy(tc.pcm, tc.pcm + off, tc.pending * sizeof(int16_t))


cdef int room_ok(TcState *tc, int samples, int out_cap, int max_packets) noexcept nogil:
    """Whether the output room suffices for `samples` more buffered samples, worst case."""
    cdef int periods = (tc.pending + samples) // tc.out_samples
    cdef int packets, nbytes
    if tc.out_codec == TC_G729:
        packets = periods * (tc.out_samples // TC_FRAME)
        nbytes = packets * (TC_RTP_HEADER + 10)
    else:
        packets = periods
        nbytes = periods * (TC_RTP_HEADER + tc.out_samples)
    return packets <= max_packets and nbytes <= out_cap


# ---------------------------------------------------------------- input

cdef int decoded_samples(TcState *tc, int length) noexcept nogil:
    """Samples an input payload of `length` bytes decodes to, or -1 if impossible."""
    cdef int frames
    if length <= 0:
        return -1
    if tc.in_codec == TC_G729:
        frames = g729_payload_frames(length)
        if frames <= 0 or frames * TC_FRAME > TC_MAX_IN_SAMPLES:
            return -1
        return frames * TC_FRAME
    if length > TC_MAX_IN_SAMPLES:
        return -1
    return length


cdef int tc_feed(TcState *tc, uint32_t ssrc, const uint8_t *payload, int length, uint32_t ts,
                 int marker, uint8_t *out, int out_cap, int *out_lens,
                 int max_packets) noexcept nogil:
    cdef int n = decoded_samples(tc, length)
    cdef int32_t delta
    cdef int gap = 0, pad = 0, used = 0, npackets = 0, resync = 0
    if n < 0 or payload == NULL:
        tc.st.bad_payload += 1
        return TC_ERR_PAYLOAD
    if tc.started and ssrc == tc.in_ssrc:
        delta = <int32_t>(ts - tc.next_in)
        if delta < 0:
            if delta >= -TC_LATE_WINDOW:
                tc.st.late += 1
                tc.st.packets_in += 1
                return 0
            resync = 1
        elif delta > 0:
            gap = delta
            if tc.pending:
                pad = tc.out_samples - tc.pending
                if pad > gap:
                    pad = gap
    if not room_ok(tc, pad + n, out_cap, max_packets):
        tc.st.no_room += 1
        return TC_ERR_ROOM
    tc.st.packets_in += 1
    if not tc.started:
        tc.started = 1
        tc.in_ssrc = ssrc
    elif ssrc != tc.in_ssrc:
        # A new input stream: its timestamps say nothing about the old one's, so the
        # output continues where it stands and a talkspurt starts.
        tc.st.ssrc_changes += 1
        tc.in_ssrc = ssrc
        tc.marker_next = 1
    elif resync:
        tc.st.resyncs += 1
        tc.marker_next = 1
    elif gap:
        # Silence in the input: complete the packet in progress with silence from the
        # gap, then move the output clock over the rest of it.
        tc.st.gaps += 1
        if pad:
            memset(tc.pcm + tc.pending, 0, pad * sizeof(int16_t))
            tc.pending += pad
            drain(tc, out, &used, out_lens, &npackets)
        if gap > pad:
            tc.buf_ts += <uint32_t>(gap - pad)
            tc.marker_next = 1
    if marker:
        tc.marker_next = 1
    # decode at the end of the buffer
    if tc.in_codec == TC_G729:
        g729_decode(tc.dec, payload, length, tc.pcm + tc.pending, n)
    elif tc.in_codec == TC_PCMA:
        alaw_decode(payload, tc.pcm + tc.pending, n)
    else:
        ulaw_decode(payload, tc.pcm + tc.pending, n)
    if n >= TC_FRAME:
        memcpy(tc.last, tc.pcm + tc.pending + n - TC_FRAME, TC_FRAME * sizeof(int16_t))
    else:
        memmove_tail(tc.last, tc.pcm + tc.pending, n)
    tc.conceal_run = 0
    if tc.hook != NULL:
        tc.hook(tc.hook_ctx, tc.pcm + tc.pending, n)
    tc.pending += n
    tc.next_in = ts + <uint32_t>n
    drain(tc, out, &used, out_lens, &npackets)
    return npackets


cdef inline void memmove_tail(int16_t *last, const int16_t *pcm, int n) noexcept nogil:
    """Shift the concealment history left by n and append n new samples (n < TC_FRAME)."""
    cdef int i
    for i in range(TC_FRAME - n):
        last[i] = last[i + n]
    for i in range(n):
        last[TC_FRAME - n + i] = pcm[i]


cdef int tc_conceal(TcState *tc, int frames, uint8_t *out, int out_cap, int *out_lens,
                    int max_packets) noexcept nogil:
    cdef int f, i, used = 0, npackets = 0
    cdef int16_t *pcm
    cdef int start, k
    if frames <= 0 or frames > TC_MAX_CONCEAL:
        tc.st.bad_payload += 1
        return TC_ERR_PAYLOAD
    if not tc.started:
        return 0                 # nothing received yet: nothing to stand in for
    if not room_ok(tc, frames * TC_FRAME, out_cap, max_packets):
        tc.st.no_room += 1
        return TC_ERR_ROOM
    for f in range(frames):
        pcm = tc.pcm + tc.pending
        if tc.in_codec == TC_G729:
            g729_conceal(tc.dec, pcm)
        else:
            # Repeat the last 10 ms received, fading linearly from full level at the start
            # of the first concealed frame to silence at the end of the fifth.
            k = tc.conceal_run
            for i in range(TC_FRAME):
                start = TC_FADE_FRAMES * TC_FRAME - (k * TC_FRAME + i)
                if start <= 0:
                    pcm[i] = 0
                else:
                    pcm[i] = <int16_t>((<int>tc.last[i] * start) // (TC_FADE_FRAMES * TC_FRAME))
        tc.conceal_run += 1
        tc.st.concealed += 1
        if tc.hook != NULL:
            tc.hook(tc.hook_ctx, pcm, TC_FRAME)
        tc.pending += TC_FRAME
        tc.next_in += TC_FRAME
        drain(tc, out, &used, out_lens, &npackets)
    return npackets


cdef int tc_silence(TcState *tc, int frames, uint8_t *out, int out_cap, int *out_lens,
                    int max_packets) noexcept nogil:
    cdef int f, used = 0, npackets = 0
    if frames <= 0 or frames > TC_MAX_CONCEAL:
        return TC_ERR_PAYLOAD
    if not room_ok(tc, frames * TC_FRAME, out_cap, max_packets):
        tc.st.no_room += 1
        return TC_ERR_ROOM
    for f in range(frames):
        memset(tc.pcm + tc.pending, 0, TC_FRAME * sizeof(int16_t))
        if tc.hook != NULL:
            tc.hook(tc.hook_ctx, tc.pcm + tc.pending, TC_FRAME)
        tc.pending += TC_FRAME
        # the input timeline moves on too, so input resuming later lines up after it
        tc.next_in += TC_FRAME
        drain(tc, out, &used, out_lens, &npackets)
    return npackets


# ---------------------------------------------------------------- Python level


CODEC_NAMES = {TC_PCMU: "PCMU", TC_PCMA: "PCMA", TC_G729: "G729"}
_CODECS = {"PCMU": TC_PCMU, "PCMA": TC_PCMA, "G729": TC_G729,
           TC_PCMU: TC_PCMU, TC_PCMA: TC_PCMA, TC_G729: TC_G729}
_STATS = ("packets_in", "packets_out", "bytes_out", "bad_payload", "no_room", "late", "gaps",
          "resyncs", "ssrc_changes", "concealed", "sid_out", "dtx_frames", "talkspurts")


cdef int codec_number(object codec) except -1:
    try:
        return _CODECS[codec.upper() if isinstance(codec, str) else codec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown codec {codec!r}: expected PCMU (0), PCMA (8) or G729 (18)") from None


cdef class Transcoder:
    """Python face of one direction's transcoder, for tests and tools.

    Transcoder(in_codec, out_codec, in_ptime=20, out_ptime=20, out_pt=None, out_ssrc=0,
    annexb=False, seq=0, ts=0): codecs by name ("PCMA", "PCMU", "G729") or payload type;
    `out_pt` defaults to the output codec's static payload type; `annexb` turns the G.729
    encoder's VAD/DTX on (the output leg negotiated annexb=yes); `seq` and `ts` are the
    first output sequence number and timestamp. The object owns its G.729 channels.

    feed(payload, ts, marker=False, ssrc=0) and conceal(frames=None) return the list of
    RTP packets (bytes) to send; a payload of impossible size raises ValueError and counts
    in stats["bad_payload"]. conceal's default is one input packet (in_ptime / 10 frames).
    """

    def __cinit__(self, in_codec, out_codec, int in_ptime=20, int out_ptime=20, out_pt=None,
                  unsigned long long out_ssrc=0, bint annexb=False, int seq=0,
                  unsigned long long ts=0):
        cdef int inc = codec_number(in_codec)
        cdef int outc = codec_number(out_codec)
        cdef int pt = outc if out_pt is None else out_pt
        cdef bcg729DecoderChannelContextStruct *dec = NULL
        cdef bcg729EncoderChannelContextStruct *enc = NULL
        if out_ptime not in (10, 20, 30, 40):
            raise ValueError(f"output ptime must be 10, 20, 30 or 40 ms, got {out_ptime}")
        if in_ptime not in (10, 20, 30, 40, 50, 60):
            raise ValueError(f"input ptime must be 10 to 60 ms in steps of 10, got {in_ptime}")
        if not 0 <= pt <= 127:
            raise ValueError(f"payload type must be 0..127, got {pt}")
        if out_ssrc > 0xFFFFFFFF or ts > 0xFFFFFFFF or not 0 <= seq <= 0xFFFF:
            raise ValueError("out_ssrc and ts are 32-bit, seq 16-bit")
        self.annexb = annexb
        if inc == TC_G729:
            self.decoder = G729Decoder()
            dec = (<G729Decoder>self.decoder).ctx
        if outc == TC_G729:
            self.encoder = G729Encoder(annexb)
            enc = (<G729Encoder>self.encoder).ctx
        self.tc = <TcState *>calloc(1, sizeof(TcState))
        if self.tc == NULL:
            raise MemoryError()
        if tc_init(self.tc, inc, in_ptime, outc, pt, out_ptime, <uint32_t>out_ssrc,
                   <uint16_t>seq, <uint32_t>ts, dec, enc) != 0:
            raise ValueError("invalid transcoder configuration")

    def __dealloc__(self):
        free(self.tc)
        self.tc = NULL

    cdef list packets(self, int count, const uint8_t *out, const int *lens):
        cdef int i, off = 0
        result = []
        for i in range(count):
            result.append(PyBytes_FromStringAndSize(<const char *>out + off, lens[i]))
            off += lens[i]
        return result

    def feed(self, payload, long long ts, marker=False, long long ssrc=0):
        cdef const uint8_t[::1] raw = memoryview(bytes(payload))
        cdef uint8_t out[TC_OUT_CAP]
        cdef int lens[TC_MAX_OUT_PACKETS]
        cdef int length = <int>min(raw.shape[0], 0x7FFFFFFF)
        cdef const uint8_t *p = &raw[0] if raw.shape[0] else NULL
        cdef int m = 1 if marker else 0
        cdef int count
        with nogil:
            count = tc_feed(self.tc, <uint32_t>ssrc, p, length, <uint32_t>ts, m,
                            out, TC_OUT_CAP, lens, TC_MAX_OUT_PACKETS)
        if count == TC_ERR_PAYLOAD:
            raise ValueError(f"{CODEC_NAMES[self.tc.in_codec]} payload of {raw.shape[0]} bytes "
                             f"has an impossible size")
        if count < 0:
            raise RuntimeError(f"tc_feed failed ({count})")
        return self.packets(count, out, lens)

    def conceal(self, frames=None):
        cdef int n = self.tc.in_ptime // 10 if frames is None else frames
        cdef uint8_t out[TC_OUT_CAP]
        cdef int lens[TC_MAX_OUT_PACKETS]
        cdef int count
        result = []
        if n < 0:
            raise ValueError("frames must be >= 0")
        while n > 0:
            step = min(n, TC_MAX_CONCEAL)
            count = tc_conceal(self.tc, step, out, TC_OUT_CAP, lens, TC_MAX_OUT_PACKETS)
            if count < 0:
                raise RuntimeError(f"tc_conceal failed ({count})")
            result += self.packets(count, out, lens)
            n -= step
        return result

    @property
    def stats(self):
        cdef TcStats s = self.tc.st
        values = (s.packets_in, s.packets_out, s.bytes_out, s.bad_payload, s.no_room, s.late,
                  s.gaps, s.resyncs, s.ssrc_changes, s.concealed, s.sid_out, s.dtx_frames,
                  s.talkspurts)
        return dict(zip(_STATS, values))

    @property
    def pending(self):
        """Samples buffered toward the next output packet."""
        return self.tc.pending
