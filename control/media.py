"""The B2BUA's handle on the media engine.

Calls go through the same offer/answer/delete code as the NG protocol server
(:class:`vosmedia.ng.NgServer`), in-process and without bencode: one implementation of SDP
rewriting, codec negotiation and transcoding set-up, whether the signalling is our own
B2BUA or a Kamailio next door.

A media call is keyed by the caller's Call-ID; the caller leg is named by the caller's
From tag and the vendor leg by the vendor's To tag, exactly as a proxy would name them.
"""
from __future__ import annotations

from vosmedia.ng import NgServer


class MediaError(Exception):
    """The media engine refused an SDP (reason is readable); the call gets 488 or 503."""

    def __init__(self, reason: str, status: int = 488):
        super().__init__(reason)
        self.reason = reason
        self.status = status


# engine-side failures that are about capacity, not about the offered SDP
_CAPACITY_WORDS = ("Ran out of ports", "Transcoding capacity")


class MediaControl:
    def __init__(self, ng: NgServer):
        self.ng = ng

    def _run(self, message: dict) -> dict:
        reply = self.ng.dispatch(message)
        if reply.get("result") != "ok":
            reason = str(reply.get("error-reason", "media engine error"))
            status = 503 if any(word in reason for word in _CAPACITY_WORDS) else 488
            raise MediaError(reason, status)
        return reply

    def offer(self, call_id: str, from_tag: str, sdp: bytes, flags=(), codec: dict | None = None) -> bytes:
        """Relay an offer: returns the SDP to send on (endpoints are the engine's).
        ``codec`` is rtpengine's codec dictionary (strip/except/mask/transcode)."""
        message = {"command": "offer", "call-id": call_id, "from-tag": from_tag,
                   "sdp": sdp.decode("utf-8", "surrogateescape"),
                   "flags": list(flags), "replace": ["origin", "session-connection"]}
        if codec:
            message["codec"] = codec
        reply = self._run(message)
        return reply["sdp"].encode("utf-8", "surrogateescape")

    def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: bytes, flags=()) -> bytes:
        """Relay the answer to an offer made by the party tagged ``from_tag``."""
        reply = self._run({"command": "answer", "call-id": call_id, "from-tag": from_tag,
                           "to-tag": to_tag, "sdp": sdp.decode("utf-8", "surrogateescape"),
                           "flags": list(flags), "replace": ["origin", "session-connection"]})
        return reply["sdp"].encode("utf-8", "surrogateescape")

    def delete(self, call_id: str, reason: str) -> dict | None:
        """End the media of a call; returns its final statistics (NG query shape) or None."""
        if call_id not in self.ng.calls:
            return None
        return self.ng.delete_call(call_id, reason)

    def query(self, call_id: str) -> dict | None:
        """The call's statistics so far (NG query shape), or None without media."""
        if call_id not in self.ng.calls:
            return None
        return self._run({"command": "query", "call-id": call_id})

    def has_call(self, call_id: str) -> bool:
        return call_id in self.ng.calls

    # ------------------------------------------------------------------ DTMF

    def audio_session(self, call_id: str) -> int | None:
        """The engine session of the call's first relayed audio stream."""
        call = self.ng.calls.get(call_id)
        if call is None:
            return None
        for stream in call.streams:
            if stream.sid is not None and stream.media == "audio":
                return stream.sid
        return None

    def side_of(self, call_id: str, tag: str) -> int | None:
        """The engine side (0/1) of the party named by ``tag`` in this call."""
        call = self.ng.calls.get(call_id)
        return call.side_of(tag) if call is not None else None

    def call_of_session(self, sid: int) -> str | None:
        entry = self.ng._by_sid.get(sid)
        return entry[0].call_id if entry is not None else None

    def set_dtmf(self, sid: int, side: int, **settings) -> None:
        self.ng.engine.set_dtmf(sid, side, **settings)

    def info_digit(self, sid: int, side: int, digit: str, duration_ms: int) -> bool:
        """A digit that came by SIP INFO from the party on ``side``: True if taken (the engine
        passes it on by the other party's method), False if refused as a duplicate."""
        return self.ng.engine.dtmf_info(sid, side, digit, duration_ms)
