"""Codec negotiation for NG offers and answers: who is offered what, which pair is transcoded.

Pure Python and sans-I/O: this module decides, per RTP media stream, the codec lists that
go out in the rewritten offer and answer and which codec each leg of the engine session
carries.  It does not touch the engine; the NG layer (:mod:`vosmedia.ng`) calls it and
then configures the engine from the resulting :class:`AnswerPlan`.

Flow for one m= line::

    options = CodecOptions.from_ng(request.codec_options(), ptime=request.integer("ptime"))
    offer_plan = plan_offer(offer_media, options)      # raises CodecNegotiationError
    apply_offer(offer_media, offer_plan)               # rewrites the m= line toward the answerer
    ...
    answer_plan = plan_answer(offer_plan, answer_media)  # raises CodecNegotiationError
    apply_answer(answer_media, answer_plan)            # rewrites the m= line toward the offerer
    answer_plan.offerer, answer_plan.answerer          # per-leg codec, DTMF payload type, ptime

Options follow rtpengine's NG ``codec`` dictionary.  Codec selectors are a payload type
number, ``NAME``, ``NAME/RATE`` or ``NAME/RATE/CHANNELS`` (case-insensitive names);
``transcode`` also accepts rtpengine's ``NAME/RATE/CHANNELS/BITRATE/FMTP`` form to set the
format parameters of an added codec (``G729/8000///annexb=yes``).

* ``strip``: remove matching codecs (``all`` removes every codec); neither side uses them.
  ``except``: codecs that survive ``strip all`` (and any ``strip``).  ``offer``: like
  ``except`` and additionally moves the listed codecs to the front, in the listed order.
  If stripping would leave the offer without any media codec, nothing is stripped (the
  behaviour of the NG layer before transcoding existed: never strip to nothing).
* ``mask`` (and ``consume``, treated the same): hide matching codecs from the outgoing
  offer, but remember that the offerer supports them, so the engine can transcode from
  them.  ``mask all`` hides every offered codec.  Codecs named in ``offer`` or
  ``transcode`` are never masked.
* ``transcode``: a codec the offerer already offers is moved to the front (no transcoding
  needed).  A codec it does not offer is added after the offerer's media codecs, before
  telephone-event/CN, when the engine can convert it from one of the offerer's codecs
  (:data:`TRANSCODABLE`); otherwise the offer fails.  An added codec takes its static
  payload type (PCMU 0, PCMA 8, G729 18) unless the offer already uses that number, then
  the lowest free dynamic one.  An added G.729 is offered with ``annexb=no`` (no VAD/CNG)
  unless the selector gives format parameters.  On a non-audio m= line a ``transcode``
  of a codec it does not have is ignored (nothing is transcoded there).
* ``ptime`` (the NG ``ptime`` key): the packetization time forced toward the answerer.

Answers: the answerer's codec is the first codec of its answer that was in the outgoing
offer (telephone-event and CN aside).  The offerer's leg uses the same codec when the
offerer offered it (pass-through) and otherwise the offerer's first transcodable codec
(masked ones included).  The answer toward the offerer lists that codec and, when both
sides have it, telephone-event — each with the offerer's payload type numbers, so dynamic
payload types keep every side's own number.  No usable codec raises
:class:`CodecNegotiationError`, whose message names the codecs on both sides (the NG layer
answers with an error; the SIP layer maps it to ``488 Not Acceptable Here``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

from vosmedia.sdp import Codec, Media

__all__ = [
    "KnownCodec", "KNOWN_CODECS", "TRANSCODABLE", "DTMF", "SUPPORTED_PTIMES", "DEFAULT_PTIME",
    "CodecNegotiationError", "CodecOptions", "OfferPlan", "Leg", "AnswerPlan",
    "codec_key", "codec_matches", "is_dtmf", "is_media_codec", "known_codec", "g729_annexb",
    "plan_offer", "plan_answer", "apply_offer", "apply_answer",
]


class KnownCodec(NamedTuple):
    """A codec this node knows how to describe (and, if ``transcodable``, convert)."""
    name: str                  # canonical encoding name, as written in a=rtpmap
    clock_rate: int
    channels: int
    static_pt: int | None      # RFC 3551 payload type, None for dynamic-only codecs
    default_pt: int            # payload type used when this node adds the codec
    default_fmtp: str | None   # format parameters used when this node adds the codec
    transcodable: bool         # the engine decodes and encodes it


#: codecs by upper-case encoding name
KNOWN_CODECS: dict[str, KnownCodec] = {
    "PCMU": KnownCodec("PCMU", 8000, 1, 0, 0, None, True),
    "PCMA": KnownCodec("PCMA", 8000, 1, 8, 8, None, True),
    # RFC 3555 4.1.9: annexb absent means annexb=yes; this node adds G.729 without VAD/CNG
    "G729": KnownCodec("G729", 8000, 1, 18, 18, "annexb=no", True),
    "TELEPHONE-EVENT": KnownCodec("telephone-event", 8000, 1, None, 101, "0-16", False),
}

#: encodings the engine converts between (any pair of them)
TRANSCODABLE = frozenset(k for k, v in KNOWN_CODECS.items() if v.transcodable)

#: the RFC 4733 event encoding
DTMF = "TELEPHONE-EVENT"

#: packetization times (ms) the engine's media path can produce
SUPPORTED_PTIMES = (10, 20, 30, 40)
DEFAULT_PTIME = 20

_NON_MEDIA = frozenset({"TELEPHONE-EVENT", "CN", "RED", "ULPFEC", "RTX"})
_DYNAMIC = range(96, 128)


class CodecNegotiationError(ValueError):
    """No acceptable codec arrangement; the message names the codecs involved."""


# ------------------------------------------------------------------ codec helpers

def known_codec(codec: Codec) -> KnownCodec | None:
    """The :data:`KNOWN_CODECS` entry for ``codec`` (name and clock rate must match)."""
    entry = KNOWN_CODECS.get(codec.encoding.upper())
    if entry is None or entry.clock_rate != codec.clock_rate or entry.channels != codec.channels:
        return None
    return entry


def codec_key(codec: Codec) -> str:
    """Identity of a codec across payload type numbers: ``NAME/RATE[/CHANNELS]``, name upper-cased."""
    base = f"{codec.encoding.upper()}/{codec.clock_rate}"
    return base if codec.channels == 1 else f"{base}/{codec.channels}"


def _label(codec: Codec) -> str:
    """How codecs are named in error messages: ``G729``, ``opus/48000/2``, ``PT 96``."""
    if not codec.encoding:
        return f"PT {codec.pt}"
    entry = known_codec(codec)
    return entry.name if entry is not None else codec.name


def is_dtmf(codec: Codec) -> bool:
    return codec.encoding.upper() == DTMF


def is_media_codec(codec: Codec) -> bool:
    """True for codecs that carry the stream itself (not telephone-event, CN, RED, FEC, RTX)."""
    return bool(codec.encoding) and codec.encoding.upper() not in _NON_MEDIA


def _transcodable(codec: Codec) -> bool:
    entry = known_codec(codec)
    return entry is not None and entry.transcodable


def g729_annexb(codec: Codec) -> bool | None:
    """G.729 Annex B (VAD/CNG) from the fmtp: True/False, default True (RFC 3555); None if not G.729."""
    if codec.encoding.upper() != "G729":
        return None
    for param in (codec.fmtp or "").replace(";", " ").split():
        name, _, value = param.partition("=")
        if name.strip().lower() == "annexb":
            return value.strip().lower() != "no"
    return True


def _spec_parts(spec: str) -> list[str]:
    return spec.split("/", 4)


def codec_matches(codec: Codec, spec: str) -> bool:
    """rtpengine codec selectors: a payload type number, ``NAME`` or ``NAME/RATE[/CHANNELS]``.

    ``all`` (and ``full``) match every codec.  Extra ``/BITRATE/FMTP`` fields are ignored.
    """
    spec = spec.strip()
    if spec.lower() in ("all", "full"):
        return True
    if spec.isdigit():
        return codec.pt == int(spec)
    parts = _spec_parts(spec)
    if parts[0].lower() != codec.encoding.lower():
        return False
    if len(parts) > 1 and parts[1] and parts[1] != str(codec.clock_rate):
        return False
    return not (len(parts) > 2 and parts[2] and parts[2] != str(codec.channels))


def _codec_for_spec(spec: str) -> tuple[KnownCodec, str | None] | None:
    """The known codec a ``transcode`` selector names and its fmtp (None: the default)."""
    parts = _spec_parts(spec.strip())
    entry = KNOWN_CODECS.get(parts[0].upper())
    if entry is None:
        return None
    if len(parts) > 1 and parts[1] and parts[1] != str(entry.clock_rate):
        return None
    if len(parts) > 2 and parts[2] and parts[2] != str(entry.channels):
        return None
    fmtp = parts[4] if len(parts) > 4 and parts[4] else None
    return entry, fmtp


# ------------------------------------------------------------------ options

def _names(value, op: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise CodecNegotiationError(f"codec option '{op}' must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class CodecOptions:
    """The codec manipulations requested for an offer (rtpengine's ``codec`` dictionary)."""
    strip: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    offer: tuple[str, ...] = ()
    transcode: tuple[str, ...] = ()
    mask: tuple[str, ...] = ()
    ptime: int | None = None

    def __post_init__(self):
        if self.ptime is not None and (isinstance(self.ptime, bool) or self.ptime not in SUPPORTED_PTIMES):
            raise CodecNegotiationError(
                f"ptime {self.ptime!r} is not supported (supported: {', '.join(map(str, SUPPORTED_PTIMES))} ms)")

    @classmethod
    def from_ng(cls, codec: Mapping[str, Sequence[str]] | None, ptime: int | None = None) -> "CodecOptions":
        """From the NG layer's normalised ``codec`` dictionary (operation -> selectors).

        Operation names are matched case-insensitively with ``-``/``_`` read as spaces;
        ``consume`` is taken as ``mask``; operations this node does not implement (``set``,
        ``accept``, ``ignore``, ...) are ignored, as rtpengine ignores unknown keys.
        """
        ops: dict[str, tuple[str, ...]] = {}
        for key, value in (codec or {}).items():
            op = key.lower().replace("-", " ").replace("_", " ").strip()
            if op == "consume":
                op = "mask"
            if op in ("strip", "except", "offer", "transcode", "mask"):
                ops[op] = ops.get(op, ()) + _names(value, op)
        return cls(strip=ops.get("strip", ()), except_=ops.get("except", ()), offer=ops.get("offer", ()),
                   transcode=ops.get("transcode", ()), mask=ops.get("mask", ()), ptime=ptime)

    @property
    def empty(self) -> bool:
        return not (self.strip or self.except_ or self.offer or self.transcode or self.mask
                    or self.ptime is not None)


# ------------------------------------------------------------------ plans

@dataclass(frozen=True)
class OfferPlan:
    """What an offer became: the outgoing codec list, and what the offerer supports."""
    media: str                         # m= media type (audio, video, ...)
    offerer_codecs: tuple[Codec, ...]  # the offerer's codecs after strip (masked ones included)
    offered: tuple[Codec, ...]         # the codec list sent toward the answerer
    masked: tuple[Codec, ...]          # offerer codecs hidden from the answerer
    added: tuple[Codec, ...]           # codecs this node added (the engine transcodes to them)
    offerer_ptime: int | None          # the offer's a=ptime
    ptime: int | None                  # forced ptime toward the answerer (None: unchanged)


@dataclass(frozen=True)
class Leg:
    """What one party sends and receives on its leg of the engine session."""
    codec: Codec                       # with this party's payload type and fmtp
    dtmf: Codec | None                 # telephone-event with this party's payload type, if negotiated
    ptime: int                         # packetization time in ms

    @property
    def payload_types(self) -> dict[str, int]:
        """Codec key -> payload type number on this leg."""
        types = {codec_key(self.codec): self.codec.pt}
        if self.dtmf is not None:
            types[codec_key(self.dtmf)] = self.dtmf.pt
        return types

    @property
    def annexb(self) -> bool | None:
        """G.729 Annex B on this leg (None when the leg is not G.729)."""
        return g729_annexb(self.codec)


@dataclass(frozen=True)
class AnswerPlan:
    """The negotiated result for one stream."""
    offerer: Leg                       # the offerer's leg
    answerer: Leg                      # the answerer's leg
    to_offerer: tuple[Codec, ...]      # the codec list of the answer sent to the offerer

    @property
    def transcoding(self) -> bool:
        """The two legs carry different codecs: decode and re-encode."""
        return codec_key(self.offerer.codec) != codec_key(self.answerer.codec)

    @property
    def repacketizing(self) -> bool:
        """Same or different codec, but different packetization times."""
        return self.offerer.ptime != self.answerer.ptime

    @property
    def media_path(self) -> bool:
        """The stream needs the engine's media path (decode/jitter buffer/encode)."""
        return self.transcoding or self.repacketizing

    @property
    def renumbered(self) -> dict[int, int]:
        """Answerer payload type -> offerer payload type, for the pairs whose numbers differ.

        Packets from the answerer with these payload types must reach the offerer with the
        offerer's number (and the reverse mapping applies the other way), also on a stream
        that otherwise passes through unchanged.
        """
        pairs = [(self.answerer.codec, self.offerer.codec)]
        if self.answerer.dtmf is not None and self.offerer.dtmf is not None:
            pairs.append((self.answerer.dtmf, self.offerer.dtmf))
        return {a.pt: o.pt for a, o in pairs if a.pt != o.pt and not (self.transcoding and a is self.answerer.codec)}


# ------------------------------------------------------------------ offer

def _unique_pts(codecs: Iterable[Codec]) -> list[Codec]:
    seen: set[int] = set()
    out = []
    for c in codecs:
        if c.pt not in seen:
            seen.add(c.pt)
            out.append(c)
    return out


def _offer_codecs(offer_media: Media | Sequence[Codec]) -> tuple[str, list[Codec], int | None]:
    if isinstance(offer_media, Media):
        if not offer_media.is_rtp:
            raise CodecNegotiationError(f"m={offer_media.media} {offer_media.proto} has no RTP codecs")
        return offer_media.media, _unique_pts(offer_media.codecs()), offer_media.ptime
    return "audio", _unique_pts(offer_media), None


def _names_of(codecs: Iterable[Codec]) -> str:
    return ", ".join(dict.fromkeys(_label(c) for c in codecs)) or "none"


def plan_offer(offer_media: Media | Sequence[Codec], options: CodecOptions | None = None) -> OfferPlan:
    """Plan the codec list of an offer toward the answerer.

    ``offer_media`` is the offerer's :class:`~vosmedia.sdp.Media` (or its codec list).
    Raises :class:`CodecNegotiationError` when a ``transcode`` codec cannot be produced
    or nothing would be left to offer.
    """
    options = options or CodecOptions()
    media_type, codecs, offerer_ptime = _offer_codecs(offer_media)

    def any_match(codec: Codec, specs: Iterable[str]) -> bool:
        return any(codec_matches(codec, s) for s in specs)

    keep = options.except_ + options.offer + options.transcode
    supported = [c for c in codecs if any_match(c, keep) or not any_match(c, options.strip)]
    if not any(is_media_codec(c) or not c.encoding for c in supported):
        supported = list(codecs)               # never strip to nothing
    masked = [c for c in supported if any_match(c, options.mask)
              and not any_match(c, options.offer + options.transcode)]
    visible = [c for c in supported if c not in masked]

    # codecs named in offer/transcode that the offerer has go first, in the order named
    front: list[Codec] = []
    for spec in options.offer + options.transcode:
        front.extend(c for c in visible if codec_matches(c, spec) and c not in front)
    visible = front + [c for c in visible if c not in front]

    added: list[Codec] = []
    used = {c.pt for c in codecs}
    sources = [c for c in supported if _transcodable(c)]
    for spec in options.transcode:
        if any(codec_matches(c, spec) for c in visible + added):
            continue
        found = _codec_for_spec(spec)
        if media_type != "audio" and (found is not None or spec.isdigit()):
            continue                           # audio codecs are not added to video/other streams
        if found is None or not found[0].transcodable:
            raise CodecNegotiationError(
                f"Cannot transcode to '{spec}': the engine converts only between "
                f"{', '.join(k.name for k in KNOWN_CODECS.values() if k.transcodable)}")
        if not sources:
            raise CodecNegotiationError(
                f"Cannot transcode to '{spec}': the offer has no codec the engine can convert from "
                f"(offered: {_names_of(codecs)})")
        entry, fmtp = found
        pt = entry.static_pt if entry.static_pt is not None and entry.static_pt not in used else None
        if pt is None:
            pt = next((p for p in _DYNAMIC if p not in used), None)
            if pt is None:
                raise CodecNegotiationError(f"Cannot transcode to '{spec}': no free payload type")
        used.add(pt)
        added.append(Codec(pt, entry.name, entry.clock_rate, entry.channels,
                           fmtp if fmtp is not None else entry.default_fmtp))

    media_first = [c for c in visible if is_media_codec(c) or not c.encoding]
    rest = [c for c in visible if c not in media_first]
    offered = media_first + added + rest
    if not any(is_media_codec(c) or not c.encoding for c in offered):
        raise CodecNegotiationError(
            f"No codec left to offer (offered: {_names_of(codecs)}; "
            f"masked: {_names_of(masked)}; nothing to transcode to)")
    return OfferPlan(media_type, tuple(supported), tuple(offered), tuple(masked), tuple(added),
                     offerer_ptime, options.ptime)


# ------------------------------------------------------------------ answer

def _find(codecs: Iterable[Codec], key: str) -> Codec | None:
    return next((c for c in codecs if codec_key(c) == key), None)


def plan_answer(plan: OfferPlan, answer_media: Media | Sequence[Codec]) -> AnswerPlan:
    """Decide both legs of a stream from the offer plan and the answerer's m= line.

    Raises :class:`CodecNegotiationError` (naming the codecs) when the answer has no codec
    of the outgoing offer, or when the engine cannot convert between the two sides.
    """
    if isinstance(answer_media, Media):
        if not answer_media.is_rtp:
            raise CodecNegotiationError(f"m={answer_media.media} {answer_media.proto} answer has no RTP codecs")
        answer_codecs, answer_ptime = _unique_pts(answer_media.codecs()), answer_media.ptime
    else:
        answer_codecs, answer_ptime = _unique_pts(answer_media), None

    offered_keys = {codec_key(c) for c in plan.offered}
    candidates = [c for c in answer_codecs if codec_key(c) in offered_keys]
    chosen = next((c for c in candidates if is_media_codec(c)), None)
    if chosen is None:
        raise CodecNegotiationError(
            f"No common codec: offered {_names_of(plan.offered)}, answered {_names_of(answer_codecs)}")
    offered_as = _find(plan.offered, codec_key(chosen))

    # answerer leg: its own payload type, the fmtp it answered (else what we offered)
    answerer_codec = chosen if chosen.fmtp is not None or offered_as.fmtp is None else chosen._replace(
        fmtp=offered_as.fmtp)
    if chosen.encoding.upper() == "G729":
        # Annex B only when both the offer toward it and its answer allow it
        annexb = bool(g729_annexb(chosen)) and bool(g729_annexb(offered_as))
        answerer_codec = answerer_codec._replace(fmtp="annexb=" + ("yes" if annexb else "no"))

    visible = [c for c in plan.offerer_codecs if c not in plan.masked]
    same = _find(visible, codec_key(chosen))
    if same is not None:
        # pass-through: the offerer's payload type, the answerer's parameters
        offerer_codec = same._replace(fmtp=answerer_codec.fmtp)
    else:
        offerer_codec = None
        if _transcodable(chosen):
            offerer_codec = next((c for c in plan.offerer_codecs if _transcodable(c)), None)
        if offerer_codec is None:
            raise CodecNegotiationError(
                f"No common codec and no conversion: the offerer has {_names_of(plan.offerer_codecs)}, "
                f"the answerer chose {_label(chosen)}")

    offerer_dtmf = next((c for c in plan.offerer_codecs if is_dtmf(c) and c not in plan.masked
                         and c.clock_rate == offerer_codec.clock_rate), None)
    answerer_dtmf = next((c for c in candidates if is_dtmf(c) and c.clock_rate == chosen.clock_rate), None)
    if offerer_dtmf is None or answerer_dtmf is None:
        offerer_dtmf = answerer_dtmf = None
    else:
        offerer_dtmf = offerer_dtmf._replace(fmtp=answerer_dtmf.fmtp)

    answerer_ptime = answer_ptime or plan.ptime or plan.offerer_ptime or DEFAULT_PTIME
    offerer_ptime = plan.offerer_ptime or (answerer_ptime if same is not None else DEFAULT_PTIME)
    result = AnswerPlan(Leg(offerer_codec, offerer_dtmf, offerer_ptime),
                        Leg(answerer_codec, answerer_dtmf, answerer_ptime),
                        tuple(c for c in (offerer_codec, offerer_dtmf) if c is not None))
    if result.media_path:
        for who, leg in (("offerer", result.offerer), ("answerer", result.answerer)):
            if leg.ptime not in SUPPORTED_PTIMES:
                raise CodecNegotiationError(
                    f"ptime {leg.ptime} ms of the {who} is not supported on a transcoded stream "
                    f"(supported: {', '.join(map(str, SUPPORTED_PTIMES))} ms)")
    return result


# ------------------------------------------------------------------ SDP rewriting

def apply_offer(media: Media, plan: OfferPlan) -> bool:
    """Rewrite the offer's m= line toward the answerer; return whether anything changed.

    The format list and a=rtpmap/a=fmtp lines become ``plan.offered`` (with an a=rtpmap
    for every codec); a forced ptime replaces a=ptime.  An unchanged plan leaves the
    m= line exactly as it was.
    """
    changed = False
    if list(plan.offered) != media.codecs():
        media.set_codecs(plan.offered, always_rtpmap=True)
        changed = True
    if plan.ptime is not None and media.ptime != plan.ptime:
        media.ptime = plan.ptime
        changed = True
    return changed


def apply_answer(media: Media, plan: AnswerPlan) -> bool:
    """Rewrite the answer's m= line toward the offerer; return whether anything changed.

    The format list and a=rtpmap/a=fmtp lines become ``plan.to_offerer`` (the offerer's
    payload type numbers).  When the stream takes the media path, a=ptime becomes the
    offerer leg's packetization time.
    """
    changed = False
    if list(plan.to_offerer) != media.codecs():
        media.set_codecs(plan.to_offerer, always_rtpmap=True)
        changed = True
    if plan.media_path and media.ptime != plan.offerer.ptime:
        media.ptime = plan.offerer.ptime
        changed = True
    return changed
