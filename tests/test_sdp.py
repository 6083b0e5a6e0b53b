"""SDP model: parse, inspect, rewrite, serialize; malformed input raises SdpError only."""
import pytest
from hypothesis import given, settings, strategies as st

from vosmedia import sdp
from vosmedia.sdp import Codec, SdpError, parse

OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=call\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "b=AS:80\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "m=audio 49170 RTP/AVP 18 0 8 101\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=rtcp:49175\r\n"
    "a=ice-ufrag:F7gI\r\n"
    "a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n"
    "a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host\r\n"
    "a=sendrecv\r\n"
    "m=video 51372 RTP/AVPF 99\r\n"
    "c=IN IP4 192.0.2.11\r\n"
    "a=rtpmap:99 H264/90000\r\n"
    "a=fmtp:99 profile-level-id=42e01f\r\n"
    "a=rtcp-fb:99 nack\r\n"
    "a=rtcp-mux\r\n"
    "a=recvonly\r\n"
)


def test_round_trip_is_exact():
    assert parse(OFFER).serialize() == OFFER


def test_lf_only_and_blank_lines_are_tolerated_and_crlf_is_written():
    lf = OFFER.replace("\r\n", "\n").replace("t=0 0\n", "t=0 0\n\n")
    desc = parse(lf)
    assert desc.serialize() == OFFER
    assert parse(OFFER.encode()).serialize() == OFFER


def test_session_fields():
    desc = parse(OFFER)
    assert desc.version == 0
    assert desc.origin == sdp.Origin("alice", "2890844526", 2890844526, "IN", "IP4", "192.0.2.10")
    assert desc.session_name == "call"
    assert desc.connection == sdp.Connection("IN", "IP4", "192.0.2.10")
    assert desc.bandwidths == ["AS:80"]
    assert desc.times == [("0 0", [])]
    assert [str(a) for a in desc.attributes] == ["group:BUNDLE 0"]
    audio, video = desc.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == ("audio", 49170, "RTP/AVP", ["18", "0", "8", "101"])
    assert (video.media, video.port, video.proto, video.formats) == ("video", 51372, "RTP/AVPF", ["99"])
    assert [a.name for a in audio.attributes] == [
        "rtpmap", "fmtp", "rtpmap", "fmtp", "ptime", "rtcp", "ice-ufrag", "ice-pwd", "candidate", "sendrecv"]


def test_endpoints_media_and_session_connection_rtcp_attribute_and_mux():
    audio, video = parse(OFFER).endpoints()
    assert audio.address == "192.0.2.10" and audio.rtp_port == 49170
    assert audio.rtcp_port == 49175 and audio.rtcp_address == "192.0.2.10" and not audio.rtcp_mux
    assert audio.direction == "sendrecv" and audio.addrtype == "IP4"
    assert video.address == "192.0.2.11"            # media-level c= wins over the session's
    assert video.rtcp_mux and video.rtcp_port == 51372
    assert video.direction == "recvonly"


def test_rtcp_defaults_to_rtp_plus_one_and_full_rtcp_attribute_address():
    text = OFFER.replace("a=rtcp:49175\r\n", "").replace("a=rtcp-mux\r\n", "a=rtcp:6000 IN IP4 198.51.100.7\r\n")
    audio, video = parse(text).endpoints()
    assert audio.rtcp_port == 49171
    assert video.rtcp_port == 6000 and video.rtcp_address == "198.51.100.7"


def test_ipv6_endpoint():
    text = ("v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\n"
            "m=audio 5004 RTP/AVP 0\n")
    (ep,) = parse(text).endpoints()
    assert (ep.address, ep.addrtype, ep.rtp_port, ep.rtcp_port) == ("2001:db8::1", "IP6", 5004, 5005)


def test_direction_falls_back_to_session_level_then_sendrecv():
    text = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\na=sendonly\nm=audio 5 RTP/AVP 0\n"
    desc = parse(text)
    assert desc.direction_of(0) == "sendonly"
    desc.attributes.clear()
    assert desc.direction_of(0) == "sendrecv"
    desc.media[0].direction = "inactive"
    assert desc.direction_of(0) == "inactive"
    assert "a=inactive\r\n" in desc.serialize()
    with pytest.raises(ValueError):
        desc.media[0].direction = "sideways"


@pytest.mark.parametrize("connection, message", [
    ("c=IN IP4 pbx.example.com\r\n", "not an IP4 address"),
    ("c=IN IP6 10.0.0.1\r\n", "not an IP6 address"),
    ("c=IN ATM 10.0.0.1\r\n", "unsupported address type"),
    ("", "no c= line"),
])
def test_endpoint_errors_name_the_media_line(connection, message):
    text = f"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n{connection}t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
    with pytest.raises(SdpError, match=message) as info:
        parse(text).endpoint(0)
    assert "m= line 1" in str(info.value)


def test_codecs_static_dynamic_fmtp_and_channels():
    desc = parse(OFFER)
    assert desc.codecs(0) == [
        Codec(18, "G729", 8000, 1, "annexb=no"),
        Codec(0, "PCMU", 8000, 1, None),
        Codec(8, "PCMA", 8000, 1, None),
        Codec(101, "telephone-event", 8000, 1, "0-16"),
    ]
    assert desc.codecs(1) == [Codec(99, "H264", 90000, 1, "profile-level-id=42e01f")]
    stereo = parse("v=0\no=- 1 1 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\nm=audio 1 RTP/AVP 111 96\n"
                   "a=rtpmap:111 opus/48000/2\n")
    assert stereo.codecs(0) == [Codec(111, "opus", 48000, 2, None), Codec(96, "", 0, 1, None)]
    assert stereo.codecs(0)[0].name == "opus/48000/2"
    udptl = parse("v=0\no=- 1 1 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\nm=image 4000 udptl t38\n")
    assert udptl.codecs(0) == [] and udptl.media[0].is_udp and not udptl.media[0].is_rtp


def test_set_codecs_rewrites_formats_and_bound_attributes_in_place():
    desc = parse(OFFER)
    audio = desc.media[0]
    keep = [c for c in audio.codecs() if c.encoding in ("PCMA", "telephone-event")]
    audio.set_codecs(keep)
    assert audio.formats == ["8", "101"]
    assert [str(a) for a in audio.attributes] == [
        "rtpmap:101 telephone-event/8000", "fmtp:101 0-16", "ptime:20", "rtcp:49175",
        "ice-ufrag:F7gI", "ice-pwd:x9cml/YzichV2+XlhiMu8g",
        "candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host", "sendrecv"]
    audio.set_codecs([Codec(18, "G729", 8000, 1, "annexb=yes"), Codec(96, "PCMA", 8000, 1, None)])
    assert audio.formats == ["18", "96"]
    assert [str(a) for a in audio.attributes][:2] == ["fmtp:18 annexb=yes", "rtpmap:96 PCMA/8000"]
    video = desc.media[1]
    video.set_codecs(video.codecs())
    assert parse(desc.serialize()).media[1].attribute_values("rtcp-fb") == ["99 nack"]


def test_ptime_accessors():
    audio = parse(OFFER).media[0]
    assert audio.ptime == 20
    audio.ptime = 30
    assert audio.attribute_values("ptime") == ["30"]
    audio.ptime = None
    assert audio.ptime is None
    audio.set_attribute("ptime", "abc")
    with pytest.raises(SdpError, match="ptime"):
        audio.ptime


def test_rewrite_single_stream_on_session_connection_keeps_other_stream_address():
    text = OFFER.replace("c=IN IP4 192.0.2.11\r\n", "")     # both media rely on the session c=
    desc = parse(text)
    desc.rewrite_endpoints({0: ("203.0.113.5", 30000)})
    out = parse(desc.serialize())
    assert out.connection.address == "203.0.113.5"
    audio, video = out.endpoints()
    assert (audio.address, audio.rtp_port, audio.rtcp_port) == ("203.0.113.5", 30000, 30001)
    assert (video.address, video.rtp_port) == ("192.0.2.10", 51372)   # pinned with its own c=


def test_rewrite_all_streams_media_and_session_connections_and_rtcp():
    desc = parse(OFFER)
    desc.rewrite_endpoints({0: ("203.0.113.5", 30000, 30001), 1: ("203.0.113.5", 30010)})
    text = desc.serialize()
    assert "192.0.2.1" not in text.replace("o=alice 2890844526 2890844526 IN IP4 192.0.2.10", "") \
        .replace("candidate:1 1 UDP 2130706431 192.0.2.10", "")
    out = parse(text)
    assert [(e.address, e.rtp_port, e.rtcp_port) for e in out.endpoints()] == [
        ("203.0.113.5", 30000, 30001), ("203.0.113.5", 30010, 30010)]
    assert "m=audio 30000 RTP/AVP 18 0 8 101\r\n" in text and "a=rtcp:30001\r\n" in text
    # everything else (codecs, ICE, order) is untouched
    assert [a.name for a in out.media[0].attributes] == [a.name for a in parse(OFFER).media[0].attributes]


def test_rewrite_full_rtcp_attribute_and_ipv6_target():
    text = OFFER.replace("a=rtcp:49175", "a=rtcp:49175 IN IP4 192.0.2.10")
    desc = parse(text)
    desc.rewrite_endpoints({0: ("2001:db8::5", 40000, 40001), 1: ("2001:db8::5", 40002)})
    out = desc.serialize()
    assert "c=IN IP6 2001:db8::5\r\n" in out
    assert "a=rtcp:40001 IN IP6 2001:db8::5\r\n" in out


def test_rewrite_without_session_connection_adds_media_connection_when_missing():
    desc = sdp.SessionDescription(media=[sdp.Media("audio", 1000, None, "RTP/AVP", ["0"])])
    desc.rewrite_endpoints({0: ("10.0.0.1", 2000)})
    assert desc.endpoint(0).address == "10.0.0.1" and desc.endpoint(0).rtp_port == 2000


def test_origin_rewrite_and_version_bump():
    desc = parse(OFFER)
    desc.set_origin_address("2001:db8::9")
    assert desc.bump_version() == 2890844527
    assert "o=alice 2890844526 2890844527 IN IP6 2001:db8::9\r\n" in desc.serialize()


def test_remove_ice_strips_only_ice_attributes():
    text = OFFER.replace("a=group:BUNDLE 0\r\n", "a=group:BUNDLE 0\r\na=ice-lite\r\n")
    desc = parse(text)
    assert desc.remove_ice() == 4
    out = desc.serialize()
    assert "ice-" not in out and "candidate" not in out
    assert "a=rtpmap:18 G729/8000" in out and "a=sendrecv" in out and "a=ptime:20" in out


def test_attribute_helpers():
    audio = parse(OFFER).media[0]
    assert audio.attribute("rtpmap").value == "18 G729/8000"
    assert audio.attribute_values("fmtp") == ["18 annexb=no", "101 0-16"]
    assert audio.has_attribute("sendrecv") and not audio.has_attribute("rtcp-mux")
    audio.set_attribute("fmtp", "18 annexb=yes")
    assert audio.attribute_values("fmtp") == ["18 annexb=yes"]
    audio.add_attribute("x-custom", "1")
    assert str(audio.attributes[-1]) == "x-custom:1"
    assert audio.remove_attributes(["x-custom", "ptime"]) == 2


def test_unknown_line_types_and_repeat_times_are_kept():
    text = ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\ny=0123456789\r\nt=2873397496 2873404696\r\n"
            "r=7d 1h 0 25h\r\nm=audio 4 RTP/AVP 0\r\nc=IN IP4 1.1.1.1\r\nx=media-level\r\n")
    desc = parse(text)
    assert desc.other_lines == [("y", "0123456789")]
    assert desc.times == [("2873397496 2873404696", ["7d 1h 0 25h"])]
    assert desc.media[0].other_lines == [("x", "media-level")]
    assert parse(desc.serialize()).serialize() == desc.serialize()


@pytest.mark.parametrize("text, message", [
    ("", "no v= line"),
    ("\r\n\r\n", "no v= line"),
    ("o=- 1 1 IN IP4 1.1.1.1\r\n", "must start with a v= line"),
    ("v=x\r\no=- 1 1 IN IP4 1.1.1.1\r\n", "bad protocol version"),
    ("v=0\r\ns=-\r\n", "missing o= line"),
    ("v=0\r\nv=0\r\n", "duplicate v= line"),
    ("v=0\r\no=- 1 1 IN IP4\r\n", "origin needs 6 fields"),
    ("v=0\r\no=- 1 x IN IP4 1.1.1.1\r\n", "not a number"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\no=- 1 1 IN IP4 1.1.1.1\r\n", "duplicate o= line"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nc=IN IP4\r\n", "connection needs 3 fields"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nc=IN IP4 1.1.1.1\r\nc=IN IP4 1.1.1.1\r\n", "more than one session-level c="),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nhello\r\n", "line 3"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nA=b\r\n", "expected '<letter>=<value>'"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nr=1d\r\n", "before any t= line"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio\r\n", "media line needs"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 70000 RTP/AVP 0\r\n", "bad port"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio -1 RTP/AVP 0\r\n", "bad port"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5/x RTP/AVP 0\r\n", "bad port count"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP PCMU\r\n", "payload type 'PCMU'"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 128\r\n", "payload type '128'"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\no=- 1 1 IN IP4 1.1.1.1\r\n", "not allowed inside a media"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\na=\r\n", "empty attribute"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n", "rtpmap"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", "rtpmap"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/0\r\n", "channel count"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\na=rtcp:abc\r\n", "bad port"),
    ("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\na=rtcp:5 IN IP4\r\n", "a=rtcp needs"),
])
def test_malformed_sdp_raises_sdp_error_naming_the_problem(text, message):
    with pytest.raises(SdpError, match=message):
        parse(text)


def test_sdp_error_is_value_error_and_wrong_type_is_rejected():
    assert issubclass(SdpError, ValueError)
    with pytest.raises(SdpError, match="str or bytes"):
        parse(42)


# ------------------------------------------------------------------ properties

line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)


@settings(max_examples=400)
@given(st.lists(st.tuples(st.sampled_from("vosicbtrmakzxA ="), st.sampled_from("= "), line_text), max_size=20))
def test_random_line_soup_parses_or_raises_sdp_error(lines):
    text = "v=0\r\n" + "".join(f"{k}{sep}{v}\r\n" for k, sep, v in lines)
    try:
        desc = parse(text)
    except SdpError:
        return
    once = desc.serialize()
    assert parse(once).serialize() == once
    for i in range(len(desc.media)):
        try:
            desc.endpoint(i)
            desc.codecs(i)
        except SdpError:
            pass


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_random_text_parses_or_raises_sdp_error(text):
    try:
        parse(text)
    except SdpError:
        pass


ipv4 = st.ip_addresses(v=4).map(str)
ports = st.integers(1, 65534)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["audio", "video"]), ports,
                          st.lists(st.sampled_from([0, 8, 18, 96, 101]), min_size=1, max_size=4, unique=True),
                          st.booleans(), ipv4), min_size=1, max_size=4),
       ipv4, ipv4, ports)
def test_generated_offers_rewrite_to_exactly_the_requested_endpoints(medias, session_addr, relay, base):
    text = f"v=0\r\no=- 7 7 IN IP4 {session_addr}\r\ns=-\r\nc=IN IP4 {session_addr}\r\nt=0 0\r\n"
    for kind, port, pts, own_c, addr in medias:
        text += f"m={kind} {port} RTP/AVP {' '.join(map(str, pts))}\r\n"
        if own_c:
            text += f"c=IN IP4 {addr}\r\n"
        if 96 in pts:
            text += "a=rtpmap:96 opus/48000/2\r\n"
        text += "a=sendrecv\r\n"
    desc = parse(text)
    assert desc.serialize() == text
    before = desc.endpoints()
    for ep, (kind, port, pts, own_c, addr) in zip(before, medias):
        assert ep.rtp_port == port and ep.address == (addr if own_c else session_addr)
    wanted = {i: (relay, (base + 2 * i) % 65000 + 2) for i in range(0, len(medias), 2)}
    desc.rewrite_endpoints(wanted)
    after = parse(desc.serialize()).endpoints()
    for i, (ep, old) in enumerate(zip(after, before)):
        if i in wanted:
            assert (ep.address, ep.rtp_port) == wanted[i]
        else:
            assert (ep.address, ep.rtp_port) == (old.address, old.rtp_port)
        assert desc.media[i].formats == [str(p) for p in medias[i][2]]


def test_set_codecs_always_rtpmap_writes_static_payload_types_too():
    desc = parse("v=0\no=- 1 1 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\nm=audio 1 RTP/AVP 8 101\n"
                 "a=rtpmap:101 telephone-event/8000\na=ptime:20\n")
    audio = desc.media[0]
    codecs = [Codec(18, "G729", 8000, 1, "annexb=no"), Codec(101, "telephone-event", 8000, 1, "0-16")]
    audio.set_codecs(codecs)
    assert audio.attribute_values("rtpmap") == ["101 telephone-event/8000"]
    audio.set_codecs(codecs, always_rtpmap=True)
    assert [str(a) for a in audio.attributes] == [
        "rtpmap:18 G729/8000", "fmtp:18 annexb=no", "rtpmap:101 telephone-event/8000", "fmtp:101 0-16", "ptime:20"]
    assert parse(desc.serialize()).codecs(0) == codecs


def test_set_codecs_writes_no_rtpmap_for_a_dynamic_type_without_encoding():
    desc = parse("v=0\no=- 1 1 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\nm=audio 1 RTP/AVP 96 8\n")
    audio = desc.media[0]
    audio.set_codecs(list(reversed(audio.codecs())), always_rtpmap=True)
    assert audio.attribute_values("rtpmap") == ["8 PCMA/8000"]
    assert parse(desc.serialize()).codecs(0) == [Codec(8, "PCMA", 8000, 1, None), Codec(96, "", 0, 1, None)]
