"""Codec negotiation for NG offers/answers (vosmedia.codecs): plans, SDP rewriting, errors."""
import pytest
from hypothesis import given, settings, strategies as st

from vosmedia import codecs
from vosmedia.codecs import (AnswerPlan, CodecNegotiationError, CodecOptions, OfferPlan, apply_answer,
                             apply_offer, codec_key, plan_answer, plan_offer)
from vosmedia.sdp import Codec, parse

PCMU = Codec(0, "PCMU", 8000, 1, None)
PCMA = Codec(8, "PCMA", 8000, 1, None)
G729_NO = Codec(18, "G729", 8000, 1, "annexb=no")
TE101 = Codec(101, "telephone-event", 8000, 1, "0-16")


def sdp(port, codec="PCMA", te_pt=101, ptime=20, te_fmtp=None):
    """The SDP /work/shared/tools/relaybench/ng_setup.py sends (optionally another DTMF PT)."""
    pt, rtpmap = {"PCMA": (8, "PCMA/8000"), "PCMU": (0, "PCMU/8000"), "G729": (18, "G729/8000")}[codec]
    extra = "a=fmtp:18 annexb=no\r\n" if pt == 18 else ""
    te = f"a=fmtp:{te_pt} {te_fmtp}\r\n" if te_fmtp else ""
    ptime_line = f"a=ptime:{ptime}\r\n" if ptime else ""
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt} {te_pt}\r\na=rtpmap:{pt} {rtpmap}\r\n{extra}"
            f"a=rtpmap:{te_pt} telephone-event/8000\r\n{te}{ptime_line}a=sendrecv\r\n")


def audio(text):
    return parse(text).media[0]


# ------------------------------------------------------------------ table and helpers

def test_known_codecs_table_and_transcodable_set():
    assert codecs.TRANSCODABLE == {"PCMA", "PCMU", "G729"}
    assert codecs.KNOWN_CODECS["PCMU"].static_pt == 0 and codecs.KNOWN_CODECS["PCMA"].static_pt == 8
    assert codecs.KNOWN_CODECS["G729"].static_pt == 18 and codecs.KNOWN_CODECS["G729"].clock_rate == 8000
    te = codecs.KNOWN_CODECS["TELEPHONE-EVENT"]
    assert (te.static_pt, te.default_pt, te.default_fmtp, te.transcodable) == (None, 101, "0-16", False)
    assert codecs.known_codec(Codec(97, "pcma", 8000, 1, None)).name == "PCMA"
    assert codecs.known_codec(Codec(97, "PCMA", 16000, 1, None)) is None


@pytest.mark.parametrize("fmtp, expected", [(None, True), ("annexb=yes", True), ("annexb=no", False),
                                            ("ANNEXB=No", False), ("bitrate=8; annexb=no", False)])
def test_g729_annexb_defaults_to_yes(fmtp, expected):
    assert codecs.g729_annexb(Codec(18, "G729", 8000, 1, fmtp)) is expected
    assert codecs.g729_annexb(PCMA) is None


def test_selectors():
    assert codecs.codec_matches(PCMA, "pcma") and codecs.codec_matches(PCMA, "8")
    assert codecs.codec_matches(PCMA, "PCMA/8000") and not codecs.codec_matches(PCMA, "PCMA/16000")
    assert codecs.codec_matches(PCMA, "all") and not codecs.codec_matches(PCMA, "PCMU")
    assert codecs.codec_matches(G729_NO, "G729/8000///annexb=yes")


def test_options_from_ng_dictionary():
    opts = CodecOptions.from_ng({"transcode": ["G729"], "mask": ["PCMA"], "consume": ["PCMU"],
                                 "Strip": ["G722"], "except": ["8"], "set": ["x"]}, ptime=30)
    assert opts == CodecOptions(strip=("G722",), except_=("8",), transcode=("G729",), mask=("PCMA", "PCMU"),
                                ptime=30)
    assert CodecOptions.from_ng(None).empty and not opts.empty
    with pytest.raises(CodecNegotiationError, match="ptime 25"):
        CodecOptions(ptime=25)
    with pytest.raises(CodecNegotiationError, match="'mask' must be a list"):
        CodecOptions.from_ng({"mask": [1]})


# ------------------------------------------------------------------ pass-through

def test_pass_through_when_both_sides_use_pcma():
    offer = audio(sdp(4000))
    plan = plan_offer(offer, CodecOptions())
    assert plan.offered == (PCMA, Codec(101, "telephone-event", 8000, 1, None))
    before = offer.lines()
    assert apply_offer(offer, plan) is False and list(offer.lines()) == list(before)

    answer = audio(sdp(5000))
    result = plan_answer(plan, answer)
    assert not result.transcoding and not result.repacketizing and not result.media_path
    assert result.offerer.codec == PCMA and result.answerer.codec == PCMA
    assert result.offerer.ptime == result.answerer.ptime == 20
    assert result.to_offerer == (PCMA, Codec(101, "telephone-event", 8000, 1, None))
    assert result.offerer.payload_types == result.answerer.payload_types == {"PCMA/8000": 8,
                                                                              "TELEPHONE-EVENT/8000": 101}


# ------------------------------------------------------------------ the relaybench transcoding case

def test_ng_setup_transcode_g729_mask_pcma():
    offer = audio(sdp(4000, te_fmtp="0-16"))
    plan = plan_offer(offer, CodecOptions.from_ng({"transcode": ["G729"], "mask": ["PCMA"]}))
    # an added G.729 is offered without Annex B (annexb=no); the offerer's DTMF keeps its PT and fmtp
    assert plan.offered == (G729_NO, TE101)
    assert plan.masked == (PCMA,) and plan.added == (G729_NO,)
    assert apply_offer(offer, plan) is True
    text = "".join(line + "\r\n" for line in offer.lines())
    assert text.startswith("m=audio 4000 RTP/AVP 18 101\r\n")
    assert "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n" in text      # what ng_setup.py checks for
    assert "PCMA" not in text and "a=ptime:20" in text

    answer = audio(sdp(5000, "G729"))
    result = plan_answer(plan, answer)
    assert result.transcoding and result.media_path and not result.repacketizing
    assert result.answerer.codec == G729_NO and result.answerer.annexb is False
    assert result.offerer.codec == PCMA and result.offerer.annexb is None
    assert result.to_offerer == (PCMA, Codec(101, "telephone-event", 8000, 1, None))
    assert apply_answer(answer, result) is True
    assert answer.formats == ["8", "101"]
    assert answer.attribute_values("rtpmap") == ["8 PCMA/8000", "101 telephone-event/8000"]
    assert answer.attribute_values("fmtp") == [] and answer.ptime == 20


def test_transcode_keeps_offerers_fmtp_for_its_own_g729_and_accepts_fmtp_in_selector():
    offer = [Codec(18, "G729", 8000, 1, "annexb=yes"), PCMA]
    plan = plan_offer(offer, CodecOptions(transcode=("G729",), mask=("PCMA",)))
    assert plan.offered == (Codec(18, "G729", 8000, 1, "annexb=yes"),) and plan.added == ()
    plan = plan_offer([PCMA], CodecOptions(transcode=("G729/8000///annexb=yes",)))
    assert plan.offered == (PCMA, Codec(18, "G729", 8000, 1, "annexb=yes"))
    # answerer drops VAD: the answerer leg runs without Annex B
    result = plan_answer(plan, [Codec(18, "G729", 8000, 1, "annexb=no")])
    assert result.answerer.annexb is False and result.offerer.codec == PCMA


def test_transcode_added_codec_order_and_present_codec_preferred():
    plan = plan_offer([PCMU, TE101], CodecOptions(transcode=("G729", "PCMA")))
    assert [c.encoding for c in plan.offered] == ["PCMU", "G729", "PCMA", "telephone-event"]
    plan = plan_offer([PCMA, PCMU, TE101], CodecOptions(transcode=("PCMU",)))
    assert [c.pt for c in plan.offered] == [0, 8, 101] and plan.added == ()


def test_answerer_picks_pass_through_codec_when_offered_beside_transcoded_one():
    plan = plan_offer([PCMA, TE101], CodecOptions(transcode=("G729",)))
    result = plan_answer(plan, [PCMA, G729_NO])
    assert not result.transcoding and result.offerer.codec == PCMA and result.to_offerer == (PCMA,)


def test_transcoding_source_is_offerers_first_transcodable_codec():
    g722 = Codec(9, "G722", 8000, 1, None)
    plan = plan_offer([g722, PCMU, PCMA], CodecOptions(transcode=("G729",), mask=("all",)))
    assert plan.offered == (G729_NO,)
    result = plan_answer(plan, [G729_NO])
    assert result.offerer.codec == PCMU and result.transcoding


def test_added_codec_static_pt_taken_moves_to_dynamic():
    odd = Codec(18, "opus", 48000, 2, None)            # a broken offer reusing static 18
    plan = plan_offer([PCMA, odd], CodecOptions(transcode=("G729",)))
    assert plan.added == (Codec(96, "G729", 8000, 1, "annexb=no"),)


# ------------------------------------------------------------------ strip / offer / except

def test_strip_all_with_offer_restricts_and_orders():
    offer = [PCMA, PCMU, G729_NO, TE101]
    plan = plan_offer(offer, CodecOptions(strip=("all",), offer=("G729", "PCMU")))
    assert plan.offered == (G729_NO, PCMU)
    assert plan.offerer_codecs == (PCMU, G729_NO)
    result = plan_answer(plan, [PCMU])
    assert not result.transcoding and result.to_offerer == (PCMU,) and result.offerer.dtmf is None


def test_strip_except_and_never_strip_to_nothing():
    offer = [PCMA, PCMU, G729_NO, TE101]
    assert plan_offer(offer, CodecOptions(strip=("all",), except_=("PCMA", "telephone-event"))).offered \
        == (PCMA, TE101)
    assert plan_offer(offer, CodecOptions(strip=("PCMU", "8"))).offered == (G729_NO, TE101)
    assert plan_offer(offer, CodecOptions(strip=("all",))).offered == tuple(offer)
    assert plan_offer(offer, CodecOptions(offer=("G729",))).offered == (G729_NO, PCMA, PCMU, TE101)
    # a stripped codec is not a transcoding source either
    plan = plan_offer([PCMA, PCMU], CodecOptions(strip=("PCMA",), transcode=("G729",)))
    assert plan_answer(plan, [G729_NO]).offerer.codec == PCMU


# ------------------------------------------------------------------ payload type renumbering

def test_telephone_event_keeps_each_sides_payload_type():
    offer = audio(sdp(4000, te_fmtp="0-16"))
    plan = plan_offer(offer, CodecOptions(transcode=("G729",), mask=("PCMA",)))
    apply_offer(offer, plan)
    answer = audio(sdp(5000, "G729", te_pt=96, te_fmtp="0-15"))
    result = plan_answer(plan, answer)
    assert result.offerer.dtmf == Codec(101, "telephone-event", 8000, 1, "0-15")
    assert result.answerer.dtmf == Codec(96, "telephone-event", 8000, 1, "0-15")
    assert result.offerer.payload_types == {"PCMA/8000": 8, "TELEPHONE-EVENT/8000": 101}
    assert result.answerer.payload_types == {"G729/8000": 18, "TELEPHONE-EVENT/8000": 96}
    apply_answer(answer, result)
    assert answer.formats == ["8", "101"]
    assert answer.attribute_values("fmtp") == ["101 0-15"]


def test_no_dtmf_unless_both_sides_have_it():
    plan = plan_offer([PCMA, TE101], CodecOptions())
    result = plan_answer(plan, [PCMA])
    assert result.offerer.dtmf is None and result.answerer.dtmf is None and result.to_offerer == (PCMA,)
    plan = plan_offer([PCMA], CodecOptions())
    result = plan_answer(plan, [PCMA, Codec(96, "telephone-event", 8000, 1, None)])
    assert result.offerer.dtmf is None and result.to_offerer == (PCMA,)


# ------------------------------------------------------------------ errors

def test_no_common_codec_names_the_codecs():
    plan = plan_offer([PCMA, TE101], CodecOptions())
    with pytest.raises(CodecNegotiationError, match=r"offered PCMA, telephone-event, answered PCMU"):
        plan_answer(plan, [PCMU, TE101])
    g722 = Codec(9, "G722", 8000, 1, None)
    with pytest.raises(CodecNegotiationError, match="G722"):
        plan_answer(plan_offer([g722], CodecOptions()), [PCMA])


def test_transcode_refusals():
    g722 = Codec(9, "G722", 8000, 1, None)
    with pytest.raises(CodecNegotiationError, match="Cannot transcode to 'G722'.*PCMU, PCMA, G729"):
        plan_offer([PCMA], CodecOptions(transcode=("G722",)))
    with pytest.raises(CodecNegotiationError, match="no codec the engine can convert from.*G722"):
        plan_offer([g722], CodecOptions(transcode=("G729",)))
    with pytest.raises(CodecNegotiationError, match="No codec left to offer.*masked: PCMA"):
        plan_offer([PCMA, TE101], CodecOptions(mask=("PCMA",)))
    with pytest.raises(CodecNegotiationError, match="no RTP codecs"):
        plan_offer(audio("v=0\no=- 1 1 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\nm=image 4000 udptl t38\n"))


def test_unsupported_ptime_on_transcoded_stream():
    plan = plan_offer(audio(sdp(4000, ptime=60)), CodecOptions(transcode=("G729",), mask=("PCMA",)))
    with pytest.raises(CodecNegotiationError, match="ptime 60 ms of the offerer"):
        plan_answer(plan, audio(sdp(5000, "G729")))


# ------------------------------------------------------------------ ptime

def test_forced_ptime_toward_answerer():
    offer = audio(sdp(4000))
    plan = plan_offer(offer, CodecOptions(ptime=30, transcode=("G729",), mask=("PCMA",)))
    assert apply_offer(offer, plan) and offer.ptime == 30
    answer = audio(sdp(5000, "G729", ptime=None))
    result = plan_answer(plan, answer)
    assert (result.offerer.ptime, result.answerer.ptime) == (20, 30)
    assert result.transcoding and result.repacketizing
    apply_answer(answer, result)
    assert answer.ptime == 20


def test_forced_ptime_on_same_codec_is_repacketizing_not_transcoding():
    offer = audio(sdp(4000))
    plan = plan_offer(offer, CodecOptions(ptime=40))
    assert apply_offer(offer, plan) and offer.ptime == 40 and offer.formats == ["8", "101"]
    result = plan_answer(plan, audio(sdp(5000, ptime=40)))
    assert not result.transcoding and result.repacketizing and result.media_path
    assert (result.offerer.ptime, result.answerer.ptime) == (20, 40)


def test_offer_without_ptime_and_pass_through_keeps_answerers_ptime():
    plan = plan_offer(audio(sdp(4000, ptime=None)), CodecOptions())
    answer = audio(sdp(5000, ptime=30))
    result = plan_answer(plan, answer)
    assert (result.offerer.ptime, result.answerer.ptime) == (30, 30) and not result.media_path
    apply_answer(answer, result)
    assert answer.ptime == 30


# ------------------------------------------------------------------ fuzz

POOL = [
    PCMU, PCMA, Codec(18, "G729", 8000, 1, None), G729_NO, Codec(18, "G729", 8000, 1, "annexb=yes"),
    Codec(9, "G722", 8000, 1, None), Codec(13, "CN", 8000, 1, None), Codec(3, "GSM", 8000, 1, None),
    Codec(111, "opus", 48000, 2, "useinbandfec=1"), Codec(97, "iLBC", 8000, 1, "mode=30"),
    Codec(96, "", 0, 1, None), Codec(18, "AMR", 8000, 1, None),    # a broken offer reusing static 18
]
selectors = st.sampled_from(["PCMU", "PCMA", "G729", "G722", "opus", "telephone-event", "all", "8", "0",
                             "18", "101", "PCMA/8000", "G729/8000///annexb=yes", "AMR", "CN"])
options = st.builds(
    CodecOptions,
    strip=st.lists(selectors, max_size=3).map(tuple), except_=st.lists(selectors, max_size=2).map(tuple),
    offer=st.lists(selectors, max_size=2).map(tuple),
    transcode=st.lists(st.one_of(st.sampled_from(["G729", "PCMA", "PCMU", "G729/8000///annexb=yes"]), selectors),
                       max_size=2).map(tuple),
    mask=st.lists(st.sampled_from(["PCMA", "PCMU", "G729", "all", "telephone-event"]), max_size=2).map(tuple),
    ptime=st.sampled_from([None, 10, 20, 30, 40]))


@st.composite
def offers(draw):
    chosen = draw(st.lists(st.sampled_from(POOL), max_size=5))
    te_pt = draw(st.sampled_from([None, 96, 100, 101, 127]))
    if te_pt is not None:
        chosen.insert(draw(st.integers(0, len(chosen))),
                      Codec(te_pt, "telephone-event", 8000, 1, draw(st.sampled_from([None, "0-16", "0-15"]))))
    return chosen


def media_of(codec_list, ptime):
    text = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    media = parse(text).media[0]
    media.set_codecs(codec_list)
    media.ptime = ptime
    return parse("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
                 + "".join(line + "\r\n" for line in media.lines())).media[0]


def check_offer_plan(plan: OfferPlan, offer_codecs, opts: CodecOptions):
    unique = list({c.pt: c for c in reversed(offer_codecs)}.values())
    assert len({c.pt for c in plan.offered}) == len(plan.offered)
    assert any(codecs.is_media_codec(c) or not c.encoding for c in plan.offered)
    for c in plan.offered:
        if c in plan.added:
            assert codec_key(c).split("/")[0] in codecs.TRANSCODABLE
            assert any(codecs.codec_matches(c, s) for s in opts.transcode)
            assert any(codecs._transcodable(o) for o in plan.offerer_codecs)
        else:
            assert c in plan.offerer_codecs and c not in plan.masked
    for c in plan.masked:
        assert c in plan.offerer_codecs and c not in plan.offered
    assert set(plan.offerer_codecs) <= set(unique)


def check_answer_plan(plan: OfferPlan, result: AnswerPlan):
    off, ans = result.offerer, result.answerer
    assert off.codec.pt in {c.pt for c in plan.offerer_codecs}
    assert codec_key(ans.codec) in {codec_key(c) for c in plan.offered}
    visible = {codec_key(c) for c in plan.offerer_codecs if c not in plan.masked}
    assert result.transcoding == (codec_key(ans.codec) not in visible)     # pass-through whenever possible
    if result.transcoding:
        assert codec_key(off.codec).split("/")[0] in codecs.TRANSCODABLE
        assert codec_key(ans.codec).split("/")[0] in codecs.TRANSCODABLE
    else:
        assert codec_key(off.codec) == codec_key(ans.codec)
    assert result.to_offerer[0] == off.codec
    assert (off.dtmf is None) == (ans.dtmf is None)
    if off.dtmf is not None:
        assert result.to_offerer == (off.codec, off.dtmf)
        assert off.dtmf.pt in {c.pt for c in plan.offerer_codecs if codecs.is_dtmf(c)}
    if result.media_path:
        assert off.ptime in codecs.SUPPORTED_PTIMES and ans.ptime in codecs.SUPPORTED_PTIMES
    legs = [(ans.codec.pt, off.codec.pt)] + ([(ans.dtmf.pt, off.dtmf.pt)] if ans.dtmf else [])
    for a_pt, o_pt in result.renumbered.items():
        assert (a_pt, o_pt) in legs and a_pt != o_pt


@settings(max_examples=1500, deadline=None)
@given(offers(), options, st.sampled_from([None, 20, 30]), st.data())
def test_fuzz_plans_are_consistent_or_declared_errors(offer_codecs, opts, ptime, data):
    offer = media_of(offer_codecs, ptime)
    try:
        plan = plan_offer(offer, opts)
    except CodecNegotiationError as exc:
        assert str(exc)
        return
    check_offer_plan(plan, offer.codecs(), opts)
    apply_offer(offer, plan)
    reparsed = media_of(offer.codecs(), offer.ptime)
    assert tuple(reparsed.codecs()) == plan.offered
    if opts.ptime is not None:
        assert reparsed.ptime == opts.ptime

    # the answerer picks some of what it was offered (dynamic PTs renumbered) plus maybe junk
    picked = list(plan.added[:1]) + data.draw(st.lists(st.sampled_from(plan.offered), max_size=3, unique=True))
    picked = list(dict.fromkeys(picked[data.draw(st.integers(0, 1)):]))
    renumbered = [c._replace(pt=data.draw(st.sampled_from([c.pt, 96, 98, 120]))) if c.pt >= 96 else c
                  for c in picked]
    junk = data.draw(st.lists(st.sampled_from(POOL), max_size=1))
    answer_list = list({c.pt: c for c in reversed(data.draw(st.permutations(renumbered + junk)))}.values())
    if not answer_list:
        return
    answer = media_of(answer_list, data.draw(st.sampled_from([None, 20, 30, 60])))
    try:
        result = plan_answer(plan, answer)
    except CodecNegotiationError as exc:
        assert str(exc)
        return
    check_answer_plan(plan, result)
    apply_answer(answer, result)
    assert tuple(media_of(answer.codecs(), answer.ptime).codecs()) == result.to_offerer


def test_fuzz_check_rejects_an_inconsistent_plan():
    """The fuzz invariants are not vacuous: a plan offering a masked codec fails them."""
    plan = plan_offer([PCMA, PCMU], CodecOptions(mask=("PCMA",)))
    broken = OfferPlan(plan.media, plan.offerer_codecs, (PCMA,) + plan.offered, plan.masked, plan.added,
                       plan.offerer_ptime, plan.ptime)
    with pytest.raises(AssertionError):
        check_offer_plan(broken, [PCMA, PCMU], CodecOptions(mask=("PCMA",)))
    result = plan_answer(plan, [PCMU])
    wrong = AnswerPlan(codecs.Leg(PCMA, None, 20), result.answerer, (PCMA,))   # PCMA -> PCMU "pass-through"
    with pytest.raises(AssertionError):
        check_answer_plan(plan, wrong)


def test_renumbered_payload_types_and_video_streams():
    plan = plan_offer([PCMA, TE101], CodecOptions())
    result = plan_answer(plan, [PCMA, Codec(96, "telephone-event", 8000, 1, None)])
    assert not result.media_path and result.renumbered == {96: 101}
    assert plan_answer(plan, [PCMA, TE101]).renumbered == {}
    dyn = plan_offer([Codec(97, "PCMU", 8000, 1, None)], CodecOptions())
    assert plan_answer(dyn, [Codec(0, "PCMU", 8000, 1, None)]).renumbered == {0: 97}
    # transcoding: the codec pair is converted anyway, only DTMF is renumbered
    plan = plan_offer([PCMA, TE101], CodecOptions(transcode=("G729",), mask=("PCMA",)))
    assert plan_answer(plan, [G729_NO, Codec(96, "telephone-event", 8000, 1, None)]).renumbered == {96: 101}
    video = parse("v=0\no=- 1 1 IN IP4 1.1.1.1\nc=IN IP4 1.1.1.1\nm=video 4000 RTP/AVP 99\n"
                  "a=rtpmap:99 H264/90000\n").media[0]
    plan = plan_offer(video, CodecOptions(transcode=("G729",)))
    assert plan.offered == (Codec(99, "H264", 90000, 1, None),) and plan.added == ()
    assert not plan_answer(plan, video).media_path
    with pytest.raises(CodecNegotiationError, match="Cannot transcode to 'VP8'"):
        plan_offer(video, CodecOptions(transcode=("VP8",)))
