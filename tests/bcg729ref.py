"""bcg729 called directly through ctypes: a reference independent of vosmedia's Cython wrapper."""
import ctypes
import ctypes.util

import numpy as np

FRAME = 80


def load():
    lib = ctypes.CDLL(ctypes.util.find_library("bcg729") or "libbcg729.so.0")
    lib.initBcg729EncoderChannel.restype = ctypes.c_void_p
    lib.initBcg729EncoderChannel.argtypes = [ctypes.c_uint8]
    lib.closeBcg729EncoderChannel.argtypes = [ctypes.c_void_p]
    lib.bcg729Encoder.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.POINTER(ctypes.c_uint8)]
    lib.initBcg729DecoderChannel.restype = ctypes.c_void_p
    lib.initBcg729DecoderChannel.argtypes = []
    lib.closeBcg729DecoderChannel.argtypes = [ctypes.c_void_p]
    lib.bcg729Decoder.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint8,
                                  ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_void_p]
    return lib


def ctypes_encode(lib, pcm, vad):
    ctx = lib.initBcg729EncoderChannel(1 if vad else 0)
    out, length, frames = (ctypes.c_uint8 * 10)(), ctypes.c_uint8(), []
    try:
        for i in range(0, len(pcm), FRAME):
            chunk = np.ascontiguousarray(pcm[i:i + FRAME], dtype=np.int16)
            lib.bcg729Encoder(ctx, chunk.ctypes.data, out, ctypes.byref(length))
            frames.append(bytes(out)[:length.value])
    finally:
        lib.closeBcg729EncoderChannel(ctx)
    return frames


def ctypes_decode(lib, frames):
    """Frame by frame, as RFC 3551 defines them: 10 bytes voice, 2 bytes SID, empty = none sent."""
    ctx = lib.initBcg729DecoderChannel()
    signal, out = (ctypes.c_int16 * FRAME)(), []
    try:
        for frame in frames:
            if frame:
                lib.bcg729Decoder(ctx, frame, len(frame), 0, 1 if len(frame) == 2 else 0, 0, signal)
            else:
                lib.bcg729Decoder(ctx, None, 0, 1, 0, 0, signal)
            out.append(bytes(signal))
    finally:
        lib.closeBcg729DecoderChannel(ctx)
    return b"".join(out)
