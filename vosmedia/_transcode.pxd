# C-level declarations of the per-direction transcoding unit (issue 3), for the media path.
# Sans-I/O: payloads in, complete RTP packets (12-byte header + payload) out; no sockets,
# no clocks, no GIL. The G.729 channels belong to the caller (G729Encoder / G729Decoder
# objects, whose `ctx` it passes in and keeps alive as long as the TcState).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t

from vosmedia._codec cimport bcg729EncoderChannelContextStruct, bcg729DecoderChannelContextStruct


cdef enum:
    TC_PCMU = 0                 # codecs are named by their static RTP payload types
    TC_PCMA = 8
    TC_G729 = 18
    TC_RTP_HEADER = 12
    TC_FRAME = 80               # 10 ms at 8 kHz: the unit of G.729 and of concealment
    TC_MAX_PTIME_SAMPLES = 320  # output ptime 10/20/30/40 ms
    TC_MAX_IN_SAMPLES = 480     # an input payload decodes to at most 60 ms
    TC_MAX_CONCEAL = 6          # 10 ms frames one tc_conceal call may fill
    TC_BUF_SAMPLES = 1024       # pending (< one output packet) + one input payload
    TC_LATE_WINDOW = 8000       # a timestamp up to 1 s behind the expected one is late
    TC_MAX_OUT_PACKETS = 12     # packets one call can emit, at most
    TC_MAX_PACKET = TC_RTP_HEADER + TC_MAX_PTIME_SAMPLES
    TC_OUT_CAP = TC_MAX_OUT_PACKETS * TC_MAX_PACKET   # output room that always suffices
    # tc_feed / tc_conceal errors (return values)
    TC_ERR_PAYLOAD = -1         # impossible payload size for the input codec
    TC_ERR_ROOM = -2            # the caller's output buffer or packet array is too small


cdef struct TcStats:
    uint64_t packets_in
    uint64_t packets_out
    uint64_t bytes_out          # RTP payload bytes sent (headers excluded)
    uint64_t bad_payload        # input payloads rejected for their size
    uint64_t no_room            # calls refused for a too small output buffer
    uint64_t late               # input behind the expected timestamp (reordered, duplicate)
    uint64_t gaps               # input timestamp gaps bridged by advancing the output clock
    uint64_t resyncs            # input timestamp jumps backwards by more than 1 s
    uint64_t ssrc_changes
    uint64_t concealed          # 10 ms frames synthesised by tc_conceal
    uint64_t sid_out            # G.729 SID frames sent
    uint64_t dtx_frames         # G.729 frames the encoder chose not to send (DTX)
    uint64_t talkspurts         # packets sent with the marker bit


# Called with each run of decoded (or concealed, or silence) input samples before they are
# encoded: the relay's DTMF work (detect, mute, overwrite with generated tones) happens here.
ctypedef void (*tc_pcm_hook)(void *ctx, int16_t *pcm, int n) noexcept nogil


cdef struct TcState:
    # configuration
    int in_codec
    int in_ptime                # ms: the nominal input packet (a conceal unit for callers)
    int out_codec
    int out_pt
    int out_ptime
    int out_samples             # out_ptime * 8
    uint32_t out_ssrc
    bcg729DecoderChannelContextStruct *dec     # input G.729, else NULL
    bcg729EncoderChannelContextStruct *enc     # output G.729, else NULL
    # input timeline
    int started
    uint32_t in_ssrc
    uint32_t next_in            # input timestamp expected next
    # output timeline
    uint16_t seq                # next output sequence number
    uint32_t buf_ts             # output timestamp of pcm[0]
    int pending                 # samples in pcm, always < out_samples between calls
    int marker_next             # the next voice packet starts a talkspurt
    int silent                  # G.729 DTX: the last frame sent nothing or a SID
    # G.711 concealment: the last 10 ms received, repeated and faded
    int16_t last[TC_FRAME]
    int conceal_run             # consecutive concealed frames
    TcStats st
    tc_pcm_hook hook            # NULL unless the relay set one (DTMF on this direction)
    void *hook_ctx
    int16_t pcm[TC_BUF_SAMPLES]


# tc_init: validate and set up; 0, or -1 for an unknown codec, an output ptime other than
#   10/20/30/40 ms, a payload type outside 0..127, or a missing / superfluous G.729 channel.
# tc_feed: one input RTP payload with its SSRC, timestamp and marker. Emits zero or more
#   complete RTP packets back to back into `out` (room `out_cap` bytes), their lengths into
#   `out_lens` (room `max_packets`); returns the packet count, TC_ERR_PAYLOAD for a payload
#   of impossible size, TC_ERR_ROOM when the output room could be too small for this call
#   (TC_OUT_CAP bytes and TC_MAX_OUT_PACKETS packets always suffice). Errors change nothing
#   but the counters.
# tc_conceal: `frames` (1..TC_MAX_CONCEAL) missing 10 ms input frames at the expected
#   position; same outputs. G.729 input: the decoder's erasure concealment (comfort noise
#   after a SID). G.711 input: the last 10 ms received repeated with a linear fade to
#   silence over 50 ms.
cdef int tc_init(TcState *tc, int in_codec, int in_ptime, int out_codec, int out_pt,
                 int out_ptime, uint32_t out_ssrc, uint16_t seq, uint32_t ts,
                 bcg729DecoderChannelContextStruct *dec,
                 bcg729EncoderChannelContextStruct *enc) noexcept nogil
cdef int tc_feed(TcState *tc, uint32_t ssrc, const uint8_t *payload, int length, uint32_t ts,
                 int marker, uint8_t *out, int out_cap, int *out_lens,
                 int max_packets) noexcept nogil
cdef int tc_conceal(TcState *tc, int frames, uint8_t *out, int out_cap, int *out_lens,
                    int max_packets) noexcept nogil
# tc_silence: `frames` (1..TC_MAX_CONCEAL) 10 ms frames of silence at the expected position
#   (the hook may put generated tones there while the input is idle); same outputs.
cdef int tc_silence(TcState *tc, int frames, uint8_t *out, int out_cap, int *out_lens,
                    int max_packets) noexcept nogil


cdef class Transcoder:
    cdef TcState *tc
    cdef object decoder          # G729Decoder kept alive for tc.dec
    cdef object encoder          # G729Encoder kept alive for tc.enc
    cdef readonly bint annexb
    cdef list packets(self, int count, const uint8_t *out, const int *lens)
