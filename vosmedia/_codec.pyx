# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Codecs of the media path: G.711 A-law / µ-law and G.729 (Annex A + B, through bcg729).

The C-level functions (declared in _codec.pxd) work on raw buffers without the GIL, for
the transcoding path of the relay core. The Python functions and classes below take and
return bytes-like objects of native-endian signed 16-bit samples, for tests and tools.

G.711: encoding is one table load per sample. Tables are built at import from the
G.711 segment rules (below): A-law quantises the 13 most significant bits of a sample
(8,192 entries), µ-law the 14 most significant bits (16,384 entries); both index by the
sample's two's complement bit pattern shifted right, so no sign handling per sample.
Decoding is a 256-entry table per law.

G.729: one bcg729 channel per encoder or decoder object (codec state is per stream).
With VAD on (Annex B, `annexb=yes`) a frame encodes to 10 bytes (speech), 2 bytes (SID,
a silence descriptor) or nothing (no change in the background noise: send nothing).
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.stdint cimport uint8_t, uint16_t, int16_t, uintptr_t

FRAME_SAMPLES = G729_FRAME_SAMPLES
FRAME_BYTES = G729_FRAME_BYTES
SID_BYTES = G729_SID_BYTES

cdef uint8_t ALAW_ENC[8192]
cdef uint8_t ULAW_ENC[16384]
cdef int16_t ALAW_DEC[256]
cdef int16_t ULAW_DEC[256]


# ---------------------------------------------------------------- G.711 rules

cdef uint8_t alaw_code(int x) noexcept:
    """A-law code of a 13-bit linear value x in [-4096, 4095] (G.711 Table 1a).

    Sign-magnitude with the negative side one step down (x = -1 is the smallest negative
    magnitude, 0). Segment 0 and 1 have 16 steps of 2; segment s >= 1 spans magnitudes
    [16 << s, 32 << s) in 16 steps of 1 << s. Even bits are inverted on the line (0x55)."""
    cdef int sign = 0x80 if x >= 0 else 0
    cdef int mag = x if x >= 0 else -x - 1
    cdef int seg = 0
    while seg < 7 and mag >= (32 << seg):
        seg += 1
    cdef int step = (mag >> (seg if seg > 1 else 1)) & 0x0F
    return <uint8_t>((sign | (seg << 4) | step) ^ 0x55)


cdef int16_t alaw_value(uint8_t code) noexcept:
    """16-bit linear value of an A-law code: the middle of its quantisation interval."""
    cdef int v = code ^ 0x55
    cdef int seg = (v >> 4) & 7
    cdef int mag = ((v & 0x0F) << 4) + 8
    if seg:
        mag = (mag + 0x100) << (seg - 1)
    return <int16_t>(mag if v & 0x80 else -mag)


cdef uint8_t ulaw_code(int x) noexcept:
    """µ-law code of a 14-bit linear value x in [-8192, 8191] (G.711 Table 2a).

    The magnitude, clipped to the top of the last interval, is biased by 33 so that
    segment s spans biased values [32 << s, 64 << s) in 16 steps of 2 << s; the code is
    the complement of sign | segment | step (positive values have the sign bit set)."""
    cdef int mag = x if x >= 0 else -x
    if mag > 8158:
        mag = 8158
    mag += 33
    cdef int seg = 0
    while seg < 7 and mag >= (64 << seg):
        seg += 1
    cdef int step = (mag >> (seg + 1)) & 0x0F
    cdef int code = (seg << 4) | step
    return <uint8_t>(code ^ (0xFF if x >= 0 else 0x7F))


cdef int16_t ulaw_value(uint8_t code) noexcept:
    """16-bit linear value of a µ-law code (interval middle, bias 132 = 33 << 2 removed)."""
    cdef int v = (~code) & 0xFF
    cdef int t = (((v & 0x0F) << 3) + 0x84) << ((v >> 4) & 7)
    return <int16_t>(0x84 - t if v & 0x80 else t - 0x84)


cdef void build_tables() noexcept:
    cdef int i
    for i in range(8192):
        # index = bits 15..3 of the sample's two's complement pattern
        ALAW_ENC[i] = alaw_code(i - 8192 if i >= 4096 else i)
    for i in range(16384):
        ULAW_ENC[i] = ulaw_code(i - 16384 if i >= 8192 else i)
    for i in range(256):
        ALAW_DEC[i] = alaw_value(<uint8_t>i)
        ULAW_DEC[i] = ulaw_value(<uint8_t>i)


build_tables()


# ---------------------------------------------------------------- G.711, C level

cdef void alaw_encode(const int16_t *pcm, uint8_t *out, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        out[i] = ALAW_ENC[<uint16_t>pcm[i] >> 3]


cdef void alaw_decode(const uint8_t *data, int16_t *out, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        out[i] = ALAW_DEC[data[i]]


cdef void ulaw_encode(const int16_t *pcm, uint8_t *out, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        out[i] = ULAW_ENC[<uint16_t>pcm[i] >> 2]


cdef void ulaw_decode(const uint8_t *data, int16_t *out, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        out[i] = ULAW_DEC[data[i]]


# ---------------------------------------------------------------- G.729, C level

cdef int g729_payload_frames(int length) noexcept nogil:
    if length < 0:
        return -1
    if length % G729_FRAME_BYTES == 0:
        return length // G729_FRAME_BYTES
    if length % G729_FRAME_BYTES == G729_SID_BYTES:
        return length // G729_FRAME_BYTES + 1
    return -1


cdef int g729_encode_frame(bcg729EncoderChannelContextStruct *enc, const int16_t *pcm,
                           uint8_t *out) noexcept nogil:
    cdef uint8_t length = 0
    bcg729Encoder(enc, pcm, out, &length)
    return length


cdef int g729_encode(bcg729EncoderChannelContextStruct *enc, const int16_t *pcm, int nframes,
                     uint8_t *out, uint8_t *lengths) noexcept nogil:
    cdef int i, total = 0
    cdef uint8_t length
    for i in range(nframes):
        length = 0
        bcg729Encoder(enc, pcm + i * G729_FRAME_SAMPLES, out + total, &length)
        if lengths != NULL:
            lengths[i] = length
        total += length
    return total


cdef int g729_decode(bcg729DecoderChannelContextStruct *dec, const uint8_t *payload, int length,
                     int16_t *pcm, int capacity) noexcept nogil:
    cdef int frames = g729_payload_frames(length)
    cdef int i, off = 0
    if frames < 0 or capacity < 0 or frames > capacity // G729_FRAME_SAMPLES:
        return -1
    for i in range(frames):
        if length - off == G729_SID_BYTES:
            bcg729Decoder(dec, payload + off, G729_SID_BYTES, 0, 1, 0, pcm + i * G729_FRAME_SAMPLES)
            off += G729_SID_BYTES
        else:
            bcg729Decoder(dec, payload + off, G729_FRAME_BYTES, 0, 0, 0, pcm + i * G729_FRAME_SAMPLES)
            off += G729_FRAME_BYTES
    return frames * G729_FRAME_SAMPLES


cdef void g729_conceal(bcg729DecoderChannelContextStruct *dec, int16_t *pcm) noexcept nogil:
    # No bitstream: bcg729 then extrapolates the last speech frame (G.729 4.4), or, when
    # the last frame was a SID, keeps generating comfort noise from it (Annex B.27).
    bcg729Decoder(dec, NULL, 0, 1, 0, 0, pcm)


# ---------------------------------------------------------------- Python level

cdef const uint8_t[::1] octets(object data, Py_ssize_t align):
    """The bytes of a C-contiguous buffer (bytes, bytearray, memoryview, numpy array),
    copied only when its start is not aligned for the sample type."""
    cdef const uint8_t[::1] raw
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    raw = view
    if raw.shape[0] and (<uintptr_t>&raw[0]) % align:
        raw = bytes(view)
    return raw


cdef const uint8_t[::1] samples(object pcm):
    cdef const uint8_t[::1] raw = octets(pcm, sizeof(int16_t))
    if raw.shape[0] % 2:
        raise ValueError(f"16-bit PCM needs an even number of bytes, got {raw.shape[0]}")
    return raw


ctypedef void (*g711_encoder)(const int16_t *pcm, uint8_t *out, int n) noexcept nogil
ctypedef void (*g711_decoder)(const uint8_t *codes, int16_t *out, int n) noexcept nogil


cdef bytes g711_encode_with(g711_encoder encode, object pcm):
    cdef const uint8_t[::1] raw = samples(pcm)
    cdef int n = <int>(raw.shape[0] // 2)
    out = PyBytes_FromStringAndSize(NULL, n)
    if n:
        encode(<const int16_t *>&raw[0], <uint8_t *>PyBytes_AS_STRING(out), n)
    return out


cdef bytes g711_decode_with(g711_decoder decode, object data):
    cdef const uint8_t[::1] raw = octets(data, 1)
    cdef int n = <int>raw.shape[0]
    out = PyBytes_FromStringAndSize(NULL, 2 * n)
    if n:
        decode(&raw[0], <int16_t *>PyBytes_AS_STRING(out), n)
    return out


def lin2alaw(pcm):
    """A-law bytes of 16-bit native-endian PCM (bytes-like or numpy int16 array)."""
    return g711_encode_with(alaw_encode, pcm)


def lin2ulaw(pcm):
    """µ-law bytes of 16-bit native-endian PCM (bytes-like or numpy int16 array)."""
    return g711_encode_with(ulaw_encode, pcm)


def alaw2lin(data):
    """16-bit native-endian PCM bytes of A-law bytes."""
    return g711_decode_with(alaw_decode, data)


def ulaw2lin(data):
    """16-bit native-endian PCM bytes of µ-law bytes."""
    return g711_decode_with(ulaw_decode, data)


def g729_frames(int length):
    """10 ms frames in a G.729 RTP payload of `length` bytes; -1 if no payload has that size."""
    return g729_payload_frames(length)


cdef class G729Encoder:
    """One G.729 encoding channel: 80 samples (10 ms) in, 10 / 2 / 0 bytes out.

    `vad=True` enables Annex B (voice activity detection, discontinuous transmission):
    during silence the encoder emits a 2-byte SID frame when the background noise
    changes and nothing otherwise. Not thread-safe: one object per stream."""

    def __cinit__(self, bint vad=False):
        self.vad = vad
        self.ctx = initBcg729EncoderChannel(1 if vad else 0)
        if self.ctx == NULL:
            raise MemoryError("bcg729 could not allocate an encoder channel")

    def __dealloc__(self):
        if self.ctx != NULL:
            closeBcg729EncoderChannel(self.ctx)
            self.ctx = NULL

    def encode_frame(self, pcm):
        """Encode exactly one frame (80 samples); returns 10, 2 or 0 bytes."""
        cdef const uint8_t[::1] raw = samples(pcm)
        cdef uint8_t out[G729_FRAME_BYTES]
        cdef int length
        if raw.shape[0] != 2 * G729_FRAME_SAMPLES:
            raise ValueError(f"a G.729 frame is {G729_FRAME_SAMPLES} samples, got {raw.shape[0] // 2}")
        length = g729_encode_frame(self.ctx, <const int16_t *>&raw[0], out)
        return PyBytes_FromStringAndSize(<char *>out, length)

    def encode(self, pcm):
        """Encode a whole number of frames; returns one bytes object per frame (10, 2 or 0 long)."""
        cdef const uint8_t[::1] raw = samples(pcm)
        cdef int nframes, i, off = 0
        cdef Py_ssize_t nsamples = raw.shape[0] // 2
        if nsamples % G729_FRAME_SAMPLES:
            raise ValueError(f"G.729 encodes whole {G729_FRAME_SAMPLES}-sample frames, got {nsamples} samples")
        nframes = <int>(nsamples // G729_FRAME_SAMPLES)
        if nframes == 0:
            return []
        out = bytearray(nframes * G729_FRAME_BYTES)
        lengths = bytearray(nframes)
        cdef uint8_t *o = out
        cdef uint8_t *lens = lengths
        g729_encode(self.ctx, <const int16_t *>&raw[0], nframes, o, lens)
        frames = []
        for i in range(nframes):
            frames.append(bytes(out[off:off + lens[i]]))
            off += lens[i]
        return frames


cdef class G729Decoder:
    """One G.729 decoding channel: RTP payloads (10-byte frames, optionally ending with a
    2-byte SID frame) in, 80 samples per frame out. Not thread-safe: one object per stream."""

    def __cinit__(self):
        self.ctx = initBcg729DecoderChannel()
        if self.ctx == NULL:
            raise MemoryError("bcg729 could not allocate a decoder channel")

    def __dealloc__(self):
        if self.ctx != NULL:
            closeBcg729DecoderChannel(self.ctx)
            self.ctx = NULL

    def decode(self, payload):
        """16-bit native-endian PCM of one RTP payload; ValueError for an impossible size."""
        cdef const uint8_t[::1] raw = octets(payload, 1)
        if raw.shape[0] > 0xFFFFFF:
            raise ValueError(f"G.729 payload of {raw.shape[0]} bytes is too large")
        cdef int length = <int>raw.shape[0]
        cdef int frames = g729_payload_frames(length)
        if frames < 0:
            raise ValueError(f"G.729 payload of {raw.shape[0]} bytes: expected 10-byte frames "
                             f"optionally followed by one 2-byte SID frame")
        if frames == 0:
            return b""
        out = PyBytes_FromStringAndSize(NULL, 2 * frames * G729_FRAME_SAMPLES)
        if g729_decode(self.ctx, &raw[0], length, <int16_t *>PyBytes_AS_STRING(out),
                       frames * G729_FRAME_SAMPLES) < 0:
            raise ValueError(f"G.729 payload of {length} bytes could not be decoded")
        return out

    def conceal(self, int frames=1):
        """16-bit PCM for `frames` missing 10 ms frames (erasure concealment or comfort noise)."""
        cdef int i
        if frames < 0:
            raise ValueError("frames must be >= 0")
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>frames * 2 * G729_FRAME_SAMPLES)
        cdef int16_t *pcm = <int16_t *>PyBytes_AS_STRING(out)
        for i in range(frames):
            g729_conceal(self.ctx, pcm + i * G729_FRAME_SAMPLES)
        return out
