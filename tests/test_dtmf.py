"""DTMF (SPEC 1.5): in-band detector and generator, RFC 4733 events, the dtmf-detect tool.

Tone suites follow ETSI ES 201 235-3 / ITU-T Q.24; every suite runs through G.711 A-law
and µ-law (encoded and decoded with vosmedia._codec) as well as on linear PCM.
Level reference: 0 dBm0 = a sine of peak 32768 * 10^(-3.17/20) (22,793).
"""
import glob
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from tests import audioutil
from vosmedia import _codec, _dtmf

RATE = 8000
ROWS = [697.0, 770.0, 852.0, 941.0]
COLS = [1209.0, 1336.0, 1477.0, 1633.0]
KEYS = "123A456B789C*0#D"
DBM0_PEAK = 32768 * 10 ** (-3.17 / 20)
LAWS = ["linear", "alaw", "ulaw"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def freqs(digit):
    k = KEYS.index(digit)
    return ROWS[k // 4], COLS[k % 4]


def dual(digit, ms=50, row_dbm0=-10.0, col_dbm0=-10.0, deviation=0.0, rng=None):
    """One digit's two tones (float samples), each at its level, frequencies scaled by
    (1 + deviation), with random start phases."""
    rng = rng or np.random.default_rng(1)
    fr, fc = freqs(digit)
    t = np.arange(int(ms * RATE / 1000)) / RATE
    ar, ac = DBM0_PEAK * 10 ** (row_dbm0 / 20), DBM0_PEAK * 10 ** (col_dbm0 / 20)
    return (ar * np.sin(2 * np.pi * fr * (1 + deviation) * t + rng.uniform(0, 2 * np.pi))
            + ac * np.sin(2 * np.pi * fc * (1 + deviation) * t + rng.uniform(0, 2 * np.pi)))


def sequence(digits, tone_ms=50, gap_ms=50, lead_ms=30, snr_db=None, seed=3, **kw):
    """Tones and gaps for `digits` as float samples, with white noise at snr_db below the
    tones' power (over the whole signal, gaps included) when given."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(lead_ms * 8))]
    for d in digits:
        parts += [dual(d, tone_ms, rng=rng, **kw), np.zeros(int(gap_ms * 8))]
    x = np.concatenate(parts)
    if snr_db is not None:
        tone = np.concatenate([dual(d, tone_ms, rng=rng, **kw) for d in digits[:1]])
        power = np.mean(tone ** 2)
        x = x + rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))
    return x


def through(x, law):
    """int16 PCM of float samples after a G.711 round trip (or none for 'linear')."""
    pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    if law == "alaw":
        return np.frombuffer(_codec.alaw2lin(_codec.lin2alaw(pcm)), dtype=np.int16)
    if law == "ulaw":
        return np.frombuffer(_codec.ulaw2lin(_codec.lin2ulaw(pcm)), dtype=np.int16)
    return pcm


def detect(pcm, chunks=(102, 160, 80, 106, 1, 333)):
    """Digits the detector finds in pcm fed in varying chunk sizes."""
    det = _dtmf.DtmfDetector()
    out, i, k = [], 0, 0
    while i < len(pcm):
        n = chunks[k % len(chunks)]
        out.append(det.feed(pcm[i:i + n].tobytes()))
        i, k = i + n, k + 1
    return "".join(out)


# ------------------------------------------------------------------ detector


@pytest.mark.parametrize("law", LAWS)
def test_all_digits_nominal(law):
    assert detect(through(sequence(KEYS), law)) == KEYS


@pytest.mark.parametrize("law", LAWS)
def test_chunking_does_not_matter(law):
    pcm = through(sequence("159D*0#", tone_ms=45, gap_ms=45), law)
    assert detect(pcm, chunks=(len(pcm),)) == "159D*0#"
    assert detect(pcm, chunks=(1,)) == "159D*0#"
    assert detect(pcm, chunks=(20, 103, 7)) == "159D*0#"


@pytest.mark.parametrize("law", LAWS)
def test_shortest_tones_and_gaps(law):
    # 40 ms tones with 40 ms gaps, at every offset against the detector's blocks
    for lead in range(0, 102, 17):
        pcm = through(sequence(KEYS, tone_ms=40, gap_ms=40, lead_ms=lead / 8), law)
        assert detect(pcm) == KEYS, lead


@pytest.mark.parametrize("law", LAWS)
def test_too_short_tone_rejected(law):
    pcm = through(sequence("5555", tone_ms=15, gap_ms=60), law)
    assert detect(pcm) == ""


@pytest.mark.parametrize("law", LAWS)
def test_repeated_digit_counts_each_time(law):
    assert detect(through(sequence("5555", tone_ms=40, gap_ms=40), law)) == "5555"
    assert detect(through(sequence("##", tone_ms=200, gap_ms=40), law)) == "##"


@pytest.mark.parametrize("law", LAWS)
def test_long_tone_is_one_digit(law):
    assert detect(through(sequence("7", tone_ms=2000), law)) == "7"


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("level", [-3.0, -10.0, -20.0, -26.0])
def test_levels_accepted(law, level):
    assert detect(through(sequence(KEYS, row_dbm0=level, col_dbm0=level), law)) == KEYS


@pytest.mark.parametrize("law", LAWS)
def test_level_too_low_rejected(law):
    assert detect(through(sequence(KEYS, row_dbm0=-36, col_dbm0=-36), law)) == ""


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("deviation", [-0.015, 0.015])
def test_deviation_accepted(law, deviation):
    assert detect(through(sequence(KEYS, deviation=deviation), law)) == KEYS


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("deviation", [-0.035, 0.035, -0.06, 0.06])
def test_deviation_rejected(law, deviation):
    assert detect(through(sequence(KEYS, deviation=deviation), law)) == ""


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("base", [-6.0, -12.0])
def test_twist_accepted(law, base):
    # reverse twist: the high (column) tone 8 dB weaker; normal twist: 4 dB stronger
    assert detect(through(sequence(KEYS, row_dbm0=base, col_dbm0=base - 8), law)) == KEYS
    assert detect(through(sequence(KEYS, row_dbm0=base - 4, col_dbm0=base), law)) == KEYS


@pytest.mark.parametrize("law", LAWS)
def test_twist_rejected(law):
    assert detect(through(sequence(KEYS, row_dbm0=-6, col_dbm0=-20), law)) == ""
    assert detect(through(sequence(KEYS, row_dbm0=-16, col_dbm0=-6), law)) == ""


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("level", [-10.0, -20.0, -26.0])
def test_noise_15db_accepted(law, level):
    for seed in range(3):
        pcm = through(sequence(KEYS, snr_db=15, seed=seed, row_dbm0=level, col_dbm0=level), law)
        assert detect(pcm) == KEYS, seed


@pytest.mark.parametrize("law", LAWS)
def test_single_tone_rejected(law):
    rng = np.random.default_rng(5)
    t = np.arange(RATE) / RATE
    for f in ROWS + COLS:
        x = DBM0_PEAK * 10 ** (-10 / 20) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
        assert detect(through(x, law)) == "", f


def test_noise_alone_rejected():
    rng = np.random.default_rng(9)
    for rms in (300, 3000, 10000):
        assert detect(through(rng.standard_normal(5 * RATE) * rms, "alaw")) == ""


@pytest.mark.parametrize("law", LAWS)
def test_talk_off_speechlike(law):
    # 64 s of the synthetic voiced signal over several seeds, loud and quiet
    for seed, seconds, peak in ((1, 16, 12000), (2, 16, 30000), (3, 16, 4000), (4, 16, 20000)):
        pcm = through(audioutil.speechlike(seconds, seed=seed, peak=peak).astype(float), law)
        assert detect(pcm) == "", seed


def test_music_like_chords_rejected():
    # three-note chords with four harmonics each, 40 random chords of 0.5 s
    rng = np.random.default_rng(12)
    t = np.arange(RATE // 2) / RATE
    for _ in range(40):
        notes = rng.uniform(200, 1000, 3)
        x = sum(np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6)) / h for f in notes for h in range(1, 5))
        x = x / np.max(np.abs(x)) * 15000
        assert detect(through(x, "ulaw")) == "", notes


@pytest.mark.parametrize("law", LAWS)
def test_digits_between_speech(law):
    speech = audioutil.speechlike(2, seed=11, peak=8000).astype(float)
    x = np.concatenate([speech, sequence("42#"), speech, sequence("9")])
    assert detect(through(x, law)) == "42#9"


ESPEAK_TEXT = (
    "Thank you for calling. Please listen carefully, as our menu options have changed. "
    "For billing questions, say billing or stay on the line. Your call is important to us, "
    "and the next available agent will be with you shortly. The weather tomorrow will be "
    "sunny in the morning with scattered showers and a light breeze in the afternoon. "
    "Seven hundred and twenty three thousand, nine hundred and forty one. ")
ESPEAK_TEXT += (
    "If you know the extension of the person you are trying to reach, you may dial it at any "
    "time. For account balances and recent payments, press or say one. To report a problem "
    "with your line, including noise, dropped calls or poor quality, press or say two. "
    "Our offices are open Monday to Friday from eight in the morning until six in the evening, "
    "and on Saturdays from nine until one. Please have your account number ready. ")
# twelve voices in five languages: over five minutes of speech (asserted below)
ESPEAK_VOICES = [("en", "en"), ("en+f3", "en"), ("en-us+m7", "en"), ("en+f2", "en"), ("en-gb+m3", "en"),
                 ("de", "de"), ("de+f2", "de"), ("fr", "fr"), ("fr+m2", "fr"), ("es", "es"),
                 ("es+f1", "es"), ("it", "it")]
ESPEAK_LOCAL = {
    "de": "Vielen Dank für Ihren Anruf. Bitte hören Sie aufmerksam zu, unser Menü hat sich "
          "geändert. Morgen wird es sonnig, am Nachmittag ziehen Schauer auf. "
          "Siebenhundertdreiundzwanzigtausend neunhundertvierzig. ",
    "fr": "Merci de votre appel. Veuillez écouter attentivement, notre menu a changé. Demain "
          "le temps sera ensoleillé le matin avec quelques averses l'après-midi. "
          "Sept cent vingt-trois mille neuf cent quarante et un. ",
    "es": "Gracias por su llamada. Escuche con atención, las opciones del menú han cambiado. "
          "Mañana hará sol por la mañana con chubascos por la tarde. "
          "Setecientos veintitrés mil novecientos cuarenta y uno. ",
    "it": "Grazie per aver chiamato. Ascolti attentamente, le opzioni del menu sono cambiate. "
          "Domani il tempo sarà soleggiato al mattino, con qualche rovescio nel pomeriggio. "
          "Settecentoventitremila novecentoquarantuno. Per conoscere il saldo del suo conto "
          "prema uno, per segnalare un guasto prema due, per parlare con un operatore resti in "
          "linea. I nostri uffici sono aperti dal lunedì al venerdì dalle otto alle diciotto. ",
}
for _lang, _extra in (("de", "Wenn Sie die Durchwahl kennen, können Sie sie jederzeit wählen. Für Ihren "
                             "Kontostand drücken Sie die Eins, für Störungen die Zwei. Unsere Büros sind "
                             "montags bis freitags von acht bis achtzehn Uhr geöffnet. "),
                      ("fr", "Si vous connaissez le numéro de poste, vous pouvez le composer à tout moment. "
                             "Pour votre solde, tapez un, pour signaler un problème, tapez deux. Nos bureaux "
                             "sont ouverts du lundi au vendredi de huit heures à dix-huit heures. "),
                      ("es", "Si conoce la extensión, puede marcarla en cualquier momento. Para su saldo, "
                             "pulse uno; para informar de una avería, pulse dos. Nuestras oficinas abren de "
                             "lunes a viernes de ocho de la mañana a seis de la tarde. ")):
    ESPEAK_LOCAL[_lang] += _extra


def espeak_8k(voice, text):
    from scipy.signal import resample_poly
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "--stdout", text],
                         check=True, capture_output=True).stdout
    # RIFF: find the data chunk
    i = 12
    rate = 22050
    while i + 8 <= len(wav):
        cid, size = wav[i:i + 4], struct.unpack("<I", wav[i + 4:i + 8])[0]
        if cid == b"fmt ":
            rate = struct.unpack("<I", wav[i + 12:i + 16])[0]
        if cid == b"data":
            data = wav[i + 8:]
            break
        i += 8 + size
    x = np.frombuffer(data[:len(data) // 2 * 2], dtype="<i2").astype(float)
    g = np.gcd(RATE, rate)
    y = resample_poly(x, RATE // g, rate // g)
    return y / max(1.0, np.max(np.abs(y))) * 26000


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (scripts/setup.sh)")
def test_talk_off_espeak():
    total = 0.0
    for voice, lang in ESPEAK_VOICES:
        x = espeak_8k(voice, ESPEAK_LOCAL.get(lang, ESPEAK_TEXT))
        total += len(x) / RATE
        for law in LAWS:
            for gain in (1.0, 0.1):
                assert detect(through(x * gain, law)) == "", (voice, law, gain)
    assert total >= 300, total          # the issue asks for at least five minutes of speech


# ------------------------------------------------------------------ generator


def test_generator_sequence_detected_and_timed():
    gen = _dtmf.DtmfGenerator()
    pcm = np.frombuffer(gen.generate(KEYS), dtype=np.int16)
    assert len(pcm) == 16 * 800
    for law in ("alaw", "ulaw"):
        assert detect(through(pcm.astype(float), law)) == KEYS
    # -10 dBm0 per tone: each tone's power is peak^2 / 2
    tone = pcm[:400].astype(float)
    expected = 2 * (DBM0_PEAK * 10 ** (-10 / 20)) ** 2 / 2
    assert abs(10 * np.log10(np.mean(tone ** 2) / expected)) < 0.2
    assert not pcm[400:800].any()
    spectrum = np.abs(np.fft.rfft(pcm[:400] * np.hanning(400)))
    peaks = sorted(np.argsort(spectrum)[-2:] * RATE / 400)
    assert abs(peaks[0] - 697) < 20 and abs(peaks[1] - 1209) < 20


def test_generator_options():
    gen = _dtmf.DtmfGenerator(level_dbm0=-20, tone_ms=40, gap_ms=60)
    pcm = np.frombuffer(gen.generate("#a"), dtype=np.int16)
    assert len(pcm) == 2 * 800
    assert detect(pcm) == "#A"
    with pytest.raises(ValueError):
        gen.generate("5x")
    long = _dtmf.DtmfGenerator(tone_ms=60, gap_ms=60).generate("0123456789" * 10)
    assert detect(np.frombuffer(long, dtype=np.int16)) == "0123456789" * 10


# ------------------------------------------------------------------ RFC 4733


def test_payload_parse_and_build():
    for code, digit in enumerate("0123456789*#ABCD!"):
        payload = _dtmf.build_event(digit, end=code % 2 == 1, volume=code + 5, duration=code * 160)
        assert payload[0] == code
        assert _dtmf.parse_event(payload) == (digit, code % 2 == 1, code + 5, code * 160)
    assert _dtmf.parse_event(bytes([11, 0x8a, 0x03, 0x20])) == ("#", True, 10, 800)
    for bad in (b"", b"\x01\x00\x00", bytes([17, 0, 0, 0]), bytes([200, 0, 0, 0])):
        with pytest.raises(ValueError):
            _dtmf.parse_event(bad)
    with pytest.raises(ValueError):
        _dtmf.build_event("x")


def packets_of(digits, start_seq=1000, start_ts=16000, ssrc=0x1234, duration_ms=120):
    out, seq, ts = [], start_seq, start_ts
    for d in digits:
        pkts = _dtmf.event_packets(d, duration_ms, pt=101, seq=seq, ts=ts, ssrc=ssrc)
        out += [p for _, p in pkts]
        seq += len(pkts)
        ts += (duration_ms + 100) * 8
    return out


def test_sender_packets():
    pkts = _dtmf.event_packets("9", 120, pt=96, seq=65534, ts=0xFFFFFF00, ssrc=0xDEADBEEF)
    offsets = [o for o, _ in pkts]
    assert offsets == [0, 50, 100, 120, 140, 160]
    seqs, payloads = [], []
    for i, (_, p) in enumerate(pkts):
        assert len(p) == 16 and p[0] == 0x80
        assert (p[1] & 0x80) == (0x80 if i == 0 else 0)
        assert p[1] & 0x7F == 96
        assert struct.unpack("!IIx", p[4:12] + b"\0")[:2] == (0xFFFFFF00, 0xDEADBEEF)
        seqs.append(struct.unpack("!H", p[2:4])[0])
        payloads.append(_dtmf.parse_event(p[12:]))
    assert seqs == [65534, 65535, 0, 1, 2, 3]
    assert [p[3] for p in payloads] == [0, 400, 800, 960, 960, 960]
    assert [p[1] for p in payloads] == [False, False, False, True, True, True]
    assert {p[0] for p in payloads} == {"9"}


def test_receiver_round_trip():
    rx = _dtmf.Rfc4733Receiver()
    got = [rx.receive_packet(p) for p in packets_of("0123456789*#ABCD!")]
    assert "".join(d for d in got if d) == "0123456789*#ABCD!"
    assert rx.state == ("!", 960, True)


def test_receiver_duplicates_loss_reorder():
    digits = "1155#"
    pkts = packets_of(digits)
    rng = np.random.default_rng(4)
    for trial in range(50):
        stream = []
        for p in pkts:
            r = rng.random()
            if r < 0.2:
                continue                    # lost
            stream.append(p)
            if r > 0.8:
                stream.append(p)            # duplicated
        # keep at least one packet of each event so every digit can arrive
        by_ts = {p[4:8] for p in stream}
        for p in pkts:
            if p[4:8] not in by_ts:
                stream.append(p)
                by_ts.add(p[4:8])
        # reorder neighbours
        for i in range(0, len(stream) - 1, 3):
            if rng.random() < 0.5:
                stream[i], stream[i + 1] = stream[i + 1], stream[i]
        rx = _dtmf.Rfc4733Receiver()
        got = "".join(d for d in (rx.receive_packet(p) for p in stream) if d)
        assert sorted(got) == sorted(digits), trial
        assert len(got) == len(digits)


def test_receiver_end_retransmissions_and_late_packets():
    rx = _dtmf.Rfc4733Receiver()
    pkts = packets_of("77")
    first = [rx.receive_packet(p) for p in pkts[:6]]
    assert first == ["7", None, None, None, None, None]
    assert rx.state == ("7", 960, True)
    # a very late copy of the first event after the second started: still nothing
    assert rx.receive_packet(pkts[6]) == "7"
    assert rx.receive_packet(pkts[2]) is None
    assert all(rx.receive_packet(p) is None for p in pkts[7:])
    stats = rx.stats()
    assert stats["events"] == 2 and stats["duplicates"] == 11


def test_receiver_ssrc_change_restarts():
    rx = _dtmf.Rfc4733Receiver()
    a = packets_of("3", ssrc=1)
    b = packets_of("3", ssrc=2)        # same timestamps, another stream
    assert rx.receive_packet(a[0]) == "3"
    assert rx.receive_packet(b[0]) == "3"
    with pytest.raises(ValueError):
        rx.receive(b"\x11\x00\x00\x00", 5)


def read_pcap(path):
    """(timestamp, RTP packet) of every UDP datagram in a classic pcap file
    (Ethernet or Linux cooked capture, IPv4)."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if linktype == 1:
            ethertype, ip = struct.unpack("!H", frame[12:14])[0], 14
        elif linktype == 113:
            ethertype, ip = struct.unpack("!H", frame[14:16])[0], 16
        else:
            raise ValueError(f"link type {linktype}")
        if ethertype != 0x0800 or frame[ip + 9] != 17:
            continue
        udp = ip + 4 * (frame[ip] & 0x0F)
        length = struct.unpack("!H", frame[udp + 4:udp + 6])[0]
        out.append((sec + usec / 1e6, frame[udp + 8:udp + length]))
    return out


CAPTURES = sorted(glob.glob("/usr/share/sip-tester/dtmf_2833_*.pcap"))


@pytest.mark.skipif(not CAPTURES, reason="sip-tester captures not installed")
def test_sip_tester_captures():
    # each capture carries the digit of its name: 10 packets of one event (PT 101)
    expected = {f"dtmf_2833_{d}.pcap": d for d in "0123456789"}
    expected.update({"dtmf_2833_pound.pcap": "#", "dtmf_2833_star.pcap": "*"})
    assert {os.path.basename(p) for p in CAPTURES} >= set(expected)
    for path in CAPTURES:
        rx = _dtmf.Rfc4733Receiver()
        packets = [p for _, p in read_pcap(path) if len(p) >= 12 and p[1] & 0x7F == 101]
        assert packets, path
        got = "".join(d for d in (rx.receive_packet(p) for p in packets) if d)
        assert got == expected[os.path.basename(path)], path
        assert rx.state == (expected[os.path.basename(path)], 2240, True), path   # 280 ms, ended


# ------------------------------------------------------------------ the dtmf-detect tool


@pytest.mark.parametrize("law", LAWS)
def test_cli_dtmf_detect(tmp_path, law):
    digits = "2580#*9"
    pcm = through(np.concatenate([sequence(digits, snr_db=25), audioutil.tone(440, 0.3, 500)]), "linear")
    data = {"linear": pcm.astype("<i2").tobytes(), "alaw": _codec.lin2alaw(pcm),
            "ulaw": _codec.lin2ulaw(pcm)}[law]
    path = tmp_path / "audio.raw"
    path.write_bytes(data)
    args = [sys.executable, "-m", "control.cli", "dtmf-detect"] + ([] if law == "linear" else ["--law", law])
    with open(path, "rb") as stdin:
        result = subprocess.run(args, stdin=stdin, capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == digits + "\n"
