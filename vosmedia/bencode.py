"""Bencode, the encoding of rtpengine's NG control protocol.

Four types exist on the wire: integers (``i42e``), byte strings (``4:spam``),
lists (``l...e``) and dictionaries with byte-string keys (``d...e``).

* :func:`encode` accepts ``int``, ``bytes``/``bytearray``/``memoryview``, ``str``
  (UTF-8, surrogate escapes round-trip), ``list``/``tuple`` and ``dict`` (keys ``str`` or
  ``bytes``).  Dictionary keys are written in sorted byte order, as the bencode
  specification requires, so equal values always encode to equal bytes.
* :func:`decode` parses untrusted input.  Every malformed input raises
  :class:`BencodeError` (a ``ValueError``) with a message saying what is wrong and at
  which offset: truncation, a bad or oversized length, leading zeros, ``-0``, a
  non-string dictionary key, a duplicate key, nesting deeper than ``max_depth``, trailing
  data.  Nothing else escapes.  Strings decode to ``bytes``; dictionary keys decode to
  ``bytes`` too unless ``str_keys=True``.  Unsorted dictionary keys are accepted because
  common NG clients (Kamailio's rtpengine module among them) do not sort them.
"""
from __future__ import annotations

__all__ = ["BencodeError", "encode", "decode", "MAX_DEPTH"]

MAX_DEPTH = 64
_MAX_LEN_DIGITS = 12     # a string length longer than this cannot fit in any datagram
_MAX_INT_DIGITS = 64     # generous for 64-bit counters; bounds the cost of int()


class BencodeError(ValueError):
    """Malformed bencode input (the message names the problem and the offset)."""


# ---------------------------------------------------------------- encoding

def encode(value) -> bytes:
    """Encode ``value`` to bencode bytes.  Unsupported types raise ``TypeError``."""
    out: list[bytes] = []
    _encode(value, out.append, 0)
    return b"".join(out)


def _key_bytes(key) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"bencode dictionary keys must be str or bytes, not {type(key).__name__}")


def _encode(value, put, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise TypeError(f"bencode value nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        put(b"%d:" % len(raw))
        put(raw)
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        put(b"%d:" % len(raw))
        put(raw)
    elif isinstance(value, int):          # bool included: True -> i1e
        put(b"i%de" % value)
    elif isinstance(value, (list, tuple)):
        put(b"l")
        for item in value:
            _encode(item, put, depth + 1)
        put(b"e")
    elif isinstance(value, dict):
        items = sorted((_key_bytes(k), v) for k, v in value.items()) if value else ()
        put(b"d")
        previous = None
        for key, item in items:
            if key == previous:
                raise TypeError(f"bencode dictionary has duplicate key {key!r}")
            previous = key
            put(b"%d:" % len(key))
            put(key)
            _encode(item, put, depth + 1)
        put(b"e")
    else:
        raise TypeError(f"cannot bencode a {type(value).__name__}")


# ---------------------------------------------------------------- decoding

def decode(data, *, max_depth: int = MAX_DEPTH, str_keys: bool = False):
    """Decode one complete bencoded value from ``data`` (bytes-like).

    Raises :class:`BencodeError` for any malformed input, including trailing bytes.
    With ``str_keys=True`` dictionary keys are returned as ``str`` (UTF-8, undecodable
    bytes kept as surrogate escapes) for convenient lookups.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BencodeError(f"bencode input must be bytes, not {type(data).__name__}")
    buf = bytes(data)
    if not buf:
        raise BencodeError("empty input")
    value, end = _Decoder(buf, max_depth, str_keys).value(0, 0)
    if end != len(buf):
        raise BencodeError(f"trailing data at offset {end} ({len(buf) - end} bytes)")
    return value


class _Decoder:
    __slots__ = ("buf", "size", "max_depth", "str_keys")

    def __init__(self, buf: bytes, max_depth: int, str_keys: bool):
        self.buf = buf
        self.size = len(buf)
        self.max_depth = max_depth
        self.str_keys = str_keys

    def value(self, pos: int, depth: int):
        buf = self.buf
        if pos >= self.size:
            raise BencodeError(f"truncated input: value expected at offset {pos}")
        lead = buf[pos]
        if 0x30 <= lead <= 0x39:                      # '0'..'9': byte string
            return self.string(pos)
        if lead == 0x69:                              # 'i'
            return self.integer(pos)
        if lead == 0x6C or lead == 0x64:              # 'l' or 'd'
            if depth >= self.max_depth:
                raise BencodeError(f"nesting deeper than {self.max_depth} levels at offset {pos}")
            return self.dictionary(pos, depth) if lead == 0x64 else self.list(pos, depth)
        raise BencodeError(f"unexpected byte {bytes([lead])!r} at offset {pos}")

    def string(self, pos: int):
        buf = self.buf
        colon = buf.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
        if colon < 0:
            if buf.find(b":", pos) < 0 and self.size - pos <= _MAX_LEN_DIGITS:
                raise BencodeError(f"truncated string length at offset {pos}")
            raise BencodeError(f"bad or oversized string length at offset {pos}")
        digits = buf[pos:colon]
        if not digits.isdigit():
            raise BencodeError(f"bad string length {digits[:20]!r} at offset {pos}")
        if len(digits) > 1 and digits[0] == 0x30:
            raise BencodeError(f"string length with leading zero at offset {pos}")
        length = int(digits)
        start = colon + 1
        end = start + length
        if end > self.size:
            raise BencodeError(
                f"truncated string at offset {pos}: {length} bytes declared, {self.size - start} available")
        return buf[start:end], end

    def integer(self, pos: int):
        buf = self.buf
        end = buf.find(b"e", pos + 1, pos + _MAX_INT_DIGITS + 3)
        if end < 0:
            if buf.find(b"e", pos + 1) < 0 and self.size - pos <= _MAX_INT_DIGITS + 2:
                raise BencodeError(f"truncated integer at offset {pos}")
            raise BencodeError(f"bad or oversized integer at offset {pos}")
        body = buf[pos + 1:end]
        digits = body[1:] if body[:1] == b"-" else body
        if not digits or not digits.isdigit():
            raise BencodeError(f"bad integer {body[:20]!r} at offset {pos}")
        if digits[0] == 0x30 and (len(digits) > 1 or len(body) != len(digits)):
            raise BencodeError(f"integer with leading zero or negative zero at offset {pos}")
        return int(body), end + 1

    def list(self, pos: int, depth: int):
        buf = self.buf
        items = []
        pos += 1
        while True:
            if pos >= self.size:
                raise BencodeError(f"truncated list: missing 'e' at offset {pos}")
            if buf[pos] == 0x65:                      # 'e'
                return items, pos + 1
            item, pos = self.value(pos, depth + 1)
            items.append(item)

    def dictionary(self, pos: int, depth: int):
        buf = self.buf
        result = {}
        pos += 1
        while True:
            if pos >= self.size:
                raise BencodeError(f"truncated dictionary: missing 'e' at offset {pos}")
            lead = buf[pos]
            if lead == 0x65:                          # 'e'
                return result, pos + 1
            if not 0x30 <= lead <= 0x39:
                raise BencodeError(f"dictionary key at offset {pos} is not a string")
            key_pos = pos
            key, pos = self.string(pos)
            if self.str_keys:
                key = key.decode("utf-8", "surrogateescape")
            if key in result:
                raise BencodeError(f"duplicate dictionary key {key!r} at offset {key_pos}")
            result[key], pos = self.value(pos, depth + 1)
