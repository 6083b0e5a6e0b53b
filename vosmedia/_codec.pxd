# C-level codec entry points, shared with the other engine modules (the transcoding path).
# Every function here runs without the GIL and never raises: errors are return values.
from libc.stdint cimport uint8_t, int16_t


cdef extern from "<bcg729/encoder.h>" nogil:
    ctypedef struct bcg729EncoderChannelContextStruct:
        pass
    bcg729EncoderChannelContextStruct *initBcg729EncoderChannel(uint8_t enableVAD)
    void closeBcg729EncoderChannel(bcg729EncoderChannelContextStruct *ctx)
    void bcg729Encoder(bcg729EncoderChannelContextStruct *ctx, const int16_t *inputFrame,
                       uint8_t *bitStream, uint8_t *bitStreamLength)


cdef extern from "<bcg729/decoder.h>" nogil:
    ctypedef struct bcg729DecoderChannelContextStruct:
        pass
    bcg729DecoderChannelContextStruct *initBcg729DecoderChannel()
    void closeBcg729DecoderChannel(bcg729DecoderChannelContextStruct *ctx)
    void bcg729Decoder(bcg729DecoderChannelContextStruct *ctx, const uint8_t *bitStream,
                       uint8_t bitStreamLength, uint8_t frameErasureFlag, uint8_t SIDFrameFlag,
                       uint8_t rfc3389PayloadFlag, int16_t *signal)


cdef enum:
    G729_FRAME_SAMPLES = 80     # 10 ms at 8 kHz
    G729_FRAME_BYTES = 10       # a voice frame
    G729_SID_BYTES = 2          # an Annex B silence descriptor


# G.711, n samples each way; `out` must hold n bytes (encode) or n samples (decode).
cdef void alaw_encode(const int16_t *pcm, uint8_t *out, int n) noexcept nogil
cdef void alaw_decode(const uint8_t *data, int16_t *out, int n) noexcept nogil
cdef void ulaw_encode(const int16_t *pcm, uint8_t *out, int n) noexcept nogil
cdef void ulaw_decode(const uint8_t *data, int16_t *out, int n) noexcept nogil

# G.729 (Annex A codec, Annex B VAD/DTX/CNG) through bcg729.
#
# g729_payload_frames: 10 ms frames carried by an RTP payload of `length` bytes (voice
#   frames of 10 bytes, optionally followed by one 2-byte SID frame), -1 if no such payload.
# g729_encode_frame: one frame of 80 samples -> `out` (room for 10 bytes); returns the
#   length written: 10 (voice), or with VAD on also 2 (SID) or 0 (nothing to send).
# g729_encode: `nframes` frames -> their outputs back to back in `out` (room for
#   10 * nframes bytes), each frame's length in `lengths` (may be NULL); returns the total.
#   A SID frame may only end an RTP payload: the packetizer splits where one is not last.
# g729_decode: one RTP payload -> 80 samples per frame into `pcm` (room for `capacity`
#   samples); returns the samples written, or -1 for an impossible size or too little room.
# g729_conceal: one missing 10 ms frame -> 80 samples: frame erasure concealment after
#   speech, comfort noise continued after a SID (also what an untransmitted DTX frame needs).
cdef int g729_payload_frames(int length) noexcept nogil
cdef int g729_encode_frame(bcg729EncoderChannelContextStruct *enc, const int16_t *pcm,
                           uint8_t *out) noexcept nogil
cdef int g729_encode(bcg729EncoderChannelContextStruct *enc, const int16_t *pcm, int nframes,
                     uint8_t *out, uint8_t *lengths) noexcept nogil
cdef int g729_decode(bcg729DecoderChannelContextStruct *dec, const uint8_t *payload, int length,
                     int16_t *pcm, int capacity) noexcept nogil
cdef void g729_conceal(bcg729DecoderChannelContextStruct *dec, int16_t *pcm) noexcept nogil


# One per channel and direction; the relay may keep `ctx` in its per-leg state.
cdef class G729Encoder:
    cdef bcg729EncoderChannelContextStruct *ctx
    cdef readonly bint vad


cdef class G729Decoder:
    cdef bcg729DecoderChannelContextStruct *ctx
