# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Relay core: one `Relay` per worker thread.

A worker owns an epoll set over its legs' sockets and runs `run()` with the GIL
released: recvmmsg a batch from a ready socket, validate and account every packet,
sendmmsg the batch out of the peer leg's socket. Python only adds, changes, queries
and removes legs (under the worker's mutex), queues DTMF digits to send, and drains
events (RTP timeouts, DTMF digits). Legs with DTMF settings also take the DTMF code:
RFC 4733 events, in-band detection and generation (see the DTMF section below).

Slots: legs live in a fixed array; an epoll registration carries (generation, slot,
is_rtcp) so an event that raced with a removal is recognised as stale and ignored.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memset, memcpy, memcmp
from libc.stdlib cimport calloc, free
from posix.unistd cimport close, read, write

from vosmedia._transcode cimport (Transcoder, TcStats, TcState, tc_feed, tc_conceal, tc_silence,
                                  TC_MAX_IN_SAMPLES)
from vosmedia._codec cimport alaw_encode, alaw_decode, ulaw_encode, ulaw_decode
from vosmedia._dtmf cimport (Rfc4733Event, RFC4733_PAYLOAD, dtmf_detector_init, dtmf_detect,
                             dtmf_generator_init, dtmf_generator_add, dtmf_generate,
                             rfc4733_char_event, rfc4733_parse, rfc4733_packet, rfc4733_rx_init,
                             rfc4733_receive)
from vosmedia._jitter cimport (JitterBuffer, JbSlot, JbStats, jb_put, jb_get, jb_depth_ms,
                               jb_target_ms, JB_FRAME, JB_CONCEAL)

import socket as _socket
import time as _time

cdef enum:
    EVENT_TIMEOUT = 1
    EVENT_DTMF = 2
    TCBUF_SIZE = BATCH * TC_MAX_PACKET
    # RFC 3550 A.3 constants
    MAX_DROPOUT = 3000
    MAX_MISORDER = 100
    MIN_SEQUENTIAL = 2

cdef uint64_t WAKE_TOKEN = 0xFFFFFFFFFFFFFFFFU
# After latching, a new source is accepted (NAT rebinding) when it keeps the latched
# SSRC, or when the latched source has been silent this long.
cdef int64_t RELATCH_IDLE_NS = 1000000000
cdef int64_t SCAN_INTERVAL_NS = 250000000

EVENT_KINDS = {EVENT_TIMEOUT: "timeout", EVENT_DTMF: "dtmf"}


cdef inline int sys_recvmmsg(int fd, mmsghdr *msgs, unsigned int count) noexcept nogil:
    return <int>syscall(SYS_recvmmsg, fd, msgs, count, MSG_DONTWAIT, <void *>NULL)


cdef inline int sys_sendmmsg(int fd, mmsghdr *msgs, unsigned int count) noexcept nogil:
    return <int>syscall(SYS_sendmmsg, fd, msgs, count, 0)


cdef inline int sys_epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout_ms) noexcept nogil:
    return <int>syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout_ms, <void *>NULL, <size_t>8)


cdef inline int64_t mono_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline uint16_t be16(const unsigned char *p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t be32(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline bint same_addr(const Addr *a, const Addr *b) noexcept nogil:
    cdef const sockaddr_in *a4
    cdef const sockaddr_in *b4
    cdef const sockaddr_in6 *a6
    cdef const sockaddr_in6 *b6
    if a.sin6_family != b.sin6_family:
        return False
    if a.sin6_family == AF_INET:
        a4 = <const sockaddr_in *>a
        b4 = <const sockaddr_in *>b
        return a4.sin_port == b4.sin_port and a4.sin_addr.s_addr == b4.sin_addr.s_addr
    a6 = <const sockaddr_in6 *>a
    b6 = <const sockaddr_in6 *>b
    return a6.sin6_port == b6.sin6_port and memcmp(&a6.sin6_addr, &b6.sin6_addr, 16) == 0


cdef inline void set_port(Addr *a, uint16_t port) noexcept nogil:
    if a.sin6_family == AF_INET:
        (<sockaddr_in *>a).sin_port = htons(port)
    else:
        (<sockaddr_in6 *>a).sin6_port = htons(port)


cdef inline uint16_t get_port(const Addr *a) noexcept nogil:
    if a.sin6_family == AF_INET:
        return ntohs((<const sockaddr_in *>a).sin_port)
    return ntohs((<const sockaddr_in6 *>a).sin6_port)


# ---------------------------------------------------------------- statistics

cdef inline void seq_init(RxStats *rx, uint16_t seq) noexcept nogil:
    rx.base_seq = seq
    rx.max_seq = seq
    rx.bad_seq = 65536 + 1
    rx.cycles = 0
    rx.received = 0


cdef void seq_update(RxStats *rx, uint16_t seq) noexcept nogil:
    """RFC 3550 A.3: track extended sequence numbers; a new source is confirmed after
    MIN_SEQUENTIAL packets in order (those count as received)."""
    cdef uint16_t udelta = <uint16_t>(seq - rx.max_seq)
    if rx.probation:
        if seq == <uint16_t>(rx.max_seq + 1):
            rx.probation -= 1
            rx.max_seq = seq
            if rx.probation == 0:
                seq_init(rx, seq)
                rx.base_seq = <uint16_t>(seq - (MIN_SEQUENTIAL - 1))
                rx.received = MIN_SEQUENTIAL
            return
        rx.probation = MIN_SEQUENTIAL - 1
        rx.max_seq = seq
        return
    if udelta < MAX_DROPOUT:
        if seq < rx.max_seq:
            rx.cycles += 65536
        rx.max_seq = seq
    elif udelta <= 65536 - MAX_MISORDER:
        if seq == rx.bad_seq:
            # two sequential packets after a big jump: the source restarted
            rx.lost_prior += seq_lost(rx)
            seq_init(rx, seq)
        else:
            rx.bad_seq = (seq + 1) & 0xFFFF
            return
    rx.received += 1


cdef inline int64_t seq_lost(const RxStats *rx) noexcept nogil:
    cdef int64_t expected
    if not rx.seq_started or rx.probation:
        return 0
    expected = <int64_t>rx.cycles + rx.max_seq - <int64_t>rx.base_seq + 1
    return expected - rx.received


cdef inline void account_rtp(Leg *leg, const unsigned char *buf, unsigned int length, int64_t now) noexcept nogil:
    cdef RxStats *rx = &leg.rx
    cdef uint32_t ssrc = be32(buf + 8)
    cdef uint16_t seq = be16(buf + 2)
    cdef uint32_t arrival, transit
    cdef int32_t d
    rx.packets += 1
    rx.octets += length
    rx.last_ns = now
    leg.timed_out = 0
    if rx.seq_started and ssrc != rx.ssrc:
        rx.ssrc_changes += 1
        rx.lost_prior += seq_lost(rx)
        rx.seq_started = 0
        rx.jitter_started = 0
    if not rx.seq_started:
        rx.seq_started = 1
        rx.ssrc = ssrc
        seq_init(rx, seq)
        rx.max_seq = <uint16_t>(seq - 1)
        rx.probation = MIN_SEQUENTIAL
    seq_update(rx, seq)
    # RFC 3550 A.8, in the arrival clock of this leg's media
    arrival = <uint32_t>(((now - leg.base_ns) // 1000) * leg.clock_rate // 1000000)
    transit = arrival - be32(buf + 4)
    if rx.jitter_started:
        d = <int32_t>(transit - rx.transit)
        if d < 0:
            d = -d
        rx.jitter_q4 += <uint32_t>d - ((rx.jitter_q4 + 8) >> 4)
    rx.jitter_started = 1
    rx.transit = transit


cdef bint parse_rtcp(Leg *leg, Leg *peer, const unsigned char *buf, unsigned int length, int64_t now) noexcept nogil:
    """Walk a compound RTCP packet; keep SR timing and report blocks. False if malformed."""
    cdef unsigned int off = 0, blen, rstart, rb, k
    cdef uint8_t pt, rc
    cdef uint32_t lsr, dlsr
    cdef int64_t rtt
    cdef int32_t cum
    while off + 4 <= length:
        if (buf[off] >> 6) != 2:
            return False
        blen = (<unsigned int>be16(buf + off + 2) + 1) * 4
        if off + blen > length:
            return False
        pt = buf[off + 1]
        rc = buf[off] & 0x1F
        rstart = 0
        if pt == 200 and blen >= 28:
            leg.rtcp.sr_ntp_mid = (be32(buf + off + 8) << 16) | (be32(buf + off + 12) >> 16)
            leg.rtcp.sr_arrival_ns = now
            rstart = off + 28
        elif pt == 201 and blen >= 8:
            rstart = off + 8
        if rstart:
            for k in range(rc):
                rb = rstart + 24 * k
                if rb + 24 > off + blen:
                    break
                leg.rtcp.reports += 1
                leg.rtcp.remote_fraction_lost = buf[rb + 4]
                cum = <int32_t>((<uint32_t>buf[rb + 5] << 16) | (<uint32_t>buf[rb + 6] << 8) | buf[rb + 7])
                if cum & 0x800000:
                    cum -= 0x1000000
                leg.rtcp.remote_cumulative_lost = cum
                leg.rtcp.remote_jitter = be32(buf + rb + 12)
                lsr = be32(buf + rb + 16)
                dlsr = be32(buf + rb + 20)
                # The SR this block answers crossed the relay on the peer leg: the time
                # since then, less the reporter's hold time, is the round trip to it.
                if lsr != 0 and lsr == peer.rtcp.sr_ntp_mid:
                    rtt = now - peer.rtcp.sr_arrival_ns - (<int64_t>dlsr * 1000000000 >> 16)
                    if rtt >= 0:
                        leg.rtcp.rtt_ns = rtt
        off += blen
    return off == length


# ---------------------------------------------------------------- source checks

cdef inline void latch_rtp(Leg *leg, const Addr *src, uint32_t ssrc) noexcept nogil:
    memcpy(&leg.dst_rtp, src, sizeof(Addr))
    leg.has_dst_rtp = 1
    leg.latched = 1
    leg.latched_ssrc = ssrc
    if leg.rtcp_mux:
        memcpy(&leg.dst_rtcp, src, sizeof(Addr))
        leg.has_dst_rtcp = 1
    elif not leg.rtcp_latched:
        memcpy(&leg.dst_rtcp, src, sizeof(Addr))
        set_port(&leg.dst_rtcp, get_port(src) + 1)
        leg.has_dst_rtcp = 1


cdef inline bint rtp_source_ok(Leg *leg, const Addr *src, uint32_t ssrc, int64_t now) noexcept nogil:
    if leg.latched:
        if same_addr(src, &leg.dst_rtp):
            leg.latched_ssrc = ssrc
            return True
        if not leg.strict and (ssrc == leg.latched_ssrc or now - leg.rx.last_ns >= RELATCH_IDLE_NS):
            latch_rtp(leg, src, ssrc)
            leg.relatches += 1
            return True
        leg.drops.foreign_source += 1
        return False
    if leg.strict and leg.has_sdp and not same_addr(src, &leg.sdp_rtp):
        leg.drops.foreign_source += 1
        return False
    latch_rtp(leg, src, ssrc)
    return True


cdef inline bint rtcp_source_ok(Leg *leg, const Addr *src) noexcept nogil:
    if leg.rtcp_latched:
        if same_addr(src, &leg.dst_rtcp):
            return True
        if leg.strict:
            leg.drops.foreign_source += 1
            return False
    elif leg.strict and leg.has_sdp and not same_addr(src, &leg.sdp_rtcp):
        leg.drops.foreign_source += 1
        return False
    memcpy(&leg.dst_rtcp, src, sizeof(Addr))
    leg.has_dst_rtcp = 1
    leg.rtcp_latched = 1
    return True


# ---------------------------------------------------------------- the loop

cdef inline bint looks_like_rtcp(const unsigned char *buf, unsigned int length) noexcept nogil:
    # RFC 5761 demultiplexing: RTCP packet types 192..223 sit where RTP has M+PT 64..95
    return length >= 2 and buf[1] >= 192 and buf[1] <= 223


cdef void send_batch(Leg *leg, int fd, mmsghdr *msgs, int count, bint rtcp) noexcept nogil:
    cdef int sent = 0, r, i
    while sent < count:
        r = sys_sendmmsg(fd, msgs + sent, count - sent)
        if r <= 0:
            # the first remaining message failed: count it and go on with the rest
            if rtcp:
                leg.rtcp.errors += 1
            else:
                leg.tx.errors += 1
            sent += 1
            continue
        for i in range(sent, sent + r):
            if rtcp:
                leg.rtcp.tx_packets += 1
                leg.rtcp.tx_octets += msgs[i].msg_hdr.msg_iov.iov_len
            else:
                leg.tx.packets += 1
                leg.tx.octets += msgs[i].msg_hdr.msg_iov.iov_len
        sent += r


cdef inline int rtp_payload(const unsigned char *buf, unsigned int length,
                            unsigned int *offset) noexcept nogil:
    """Payload length of an RTP packet (CSRCs, extension and padding skipped); -1 if malformed."""
    cdef unsigned int off = 12 + 4 * (buf[0] & 0x0F)
    cdef unsigned int pad = 0
    if buf[0] & 0x10:
        if off + 4 > length:
            return -1
        off += 4 + 4 * be16(buf + off + 2)
    if buf[0] & 0x20:
        pad = buf[length - 1]
    if off + pad > length:
        return -1
    offset[0] = off
    return <int>(length - off - pad)


cdef inline int queue_made(Worker *w, Leg *leg, const int *lens, int made, int nrtp,
                           int *used) noexcept nogil:
    """Queue the packets the transcoder just wrote at tcbuf + used; count a refused payload.
    Returns the new number of queued packets."""
    cdef int k
    if made < 0:
        leg.drops.bad_payload += 1
        leg.rx.errors += 1
        return nrtp
    for k in range(made):
        w.siov[nrtp].iov_base = w.tcbuf + used[0]
        w.siov[nrtp].iov_len = lens[k]
        used[0] += lens[k]
        nrtp += 1
    return nrtp


cdef inline void flush_rtp(Worker *w, Leg *peer, int count) noexcept nogil:
    cdef int i
    for i in range(count):
        w.smsg[i].msg_hdr.msg_name = &peer.dst_rtp
        w.smsg[i].msg_hdr.msg_namelen = peer.addrlen
    send_batch(peer, peer.rtp_fd, w.smsg, count, False)
    w.totals.rtp_relayed += count


# ---------------------------------------------------------------- DTMF (SPEC 1.5)
#
# A leg's DtmfLeg says how its party sends digits (accept, rx_pt) and how it wants them
# (send, tx_pt). A digit arriving on leg L is reported as an event when it ends, and is
# passed on to the peer P by P's method as it starts: RFC 4733 events of a pass-through
# stream go on as they are (payload type renumbered); otherwise the engine sends its own
# events in the stream toward P (live: updates every 50 ms until the digit ends, then
# three end packets), or overwrites the audio toward P with generated tones (held as long
# as the digit lasts). In-band detection runs on decoded audio: the transcoder's PCM hook
# on transcoded legs, a G.711 decode of the payload on pass-through legs.
#
# Only legs with `dtmf_path` come here; every other packet pays one flag test.

cdef int64_t DTMF_UPDATE_NS = 50000000          # an event update every 50 ms (RFC 4733's usual rate)
cdef int64_t DTMF_END_REPEAT_NS = 20000000      # the three end packets, 20 ms apart
cdef int64_t DTMF_RX_IDLE_NS = 300000000        # a digit with no news for this long has ended
cdef int64_t DTMF_STREAM_WAIT_NS = 200000000     # media this recent is flowing: wait to see it
cdef int64_t DTMF_NEVER = 0x7FFFFFFFFFFFFFFF
cdef int DTMF_MIN_EVENT_MS = 40                 # shortest event sent (the detector's minimum)
DTMF_METHOD_NAMES = {DTMF_RFC2833: "rfc2833", DTMF_INBAND: "inband", DTMF_INFO: "info", 0: "none"}


cdef inline bint dtmf_accepts(const DtmfLeg *d, uint8_t method) noexcept nogil:
    """Whether the party's digits are taken by `method` now: it must be accepted, and under
    several accepted methods ("all") the first one seen locks the leg to it."""
    return (d.accept & method) != 0 and (d.locked == 0 or d.locked == method)


cdef inline int64_t ns_to_samples(int64_t ns) noexcept nogil:
    return ns * 8 // 1000000        # the telephone-event clock is 8 kHz


cdef void dtmf_schedule(Worker *w, Leg *leg, int64_t when) noexcept nogil:
    """Make sure the worker services this leg's DTMF state at `when` (or earlier)."""
    cdef DtmfLeg *d = leg.dtmf
    if not d.active:
        d.active = 1
        d.next_ns = when
        w.dtmf_timers[w.ndtmf] = <int32_t>(leg - w.legs)
        w.ndtmf += 1
    elif when < d.next_ns:
        d.next_ns = when


cdef void dtmf_unschedule(Worker *w, Leg *leg) noexcept nogil:
    cdef int i
    cdef int32_t slot = <int32_t>(leg - w.legs)
    if leg.dtmf == NULL or not leg.dtmf.active:
        return
    leg.dtmf.active = 0
    for i in range(w.ndtmf):
        if w.dtmf_timers[i] == slot:
            w.ndtmf -= 1
            w.dtmf_timers[i] = w.dtmf_timers[w.ndtmf]
            return


cdef void push_dtmf_event(Worker *w, const Leg *leg, const DtmfDigit *dg, uint8_t forward) noexcept nogil:
    cdef Event *ev = claim_event(w, EVENT_DTMF, leg)
    if ev == NULL:
        return
    ev.digit = dg.digit
    ev.method = dg.method
    ev.forward = forward
    ev.duration_ms = dg.duration_ms
    ev.start_ns = dg.start_ns
    post_event(w)


cdef void dtmf_report(Worker *w, Leg *leg, char digit, uint8_t method, int32_t duration_ms,
                      int64_t start_ns) noexcept nogil:
    """A finished digit: remember it for queries and tell the control plane."""
    cdef DtmfLeg *d = leg.dtmf
    cdef DtmfDigit *dg = &d.recent[d.recent_head]
    dg.digit = digit
    dg.method = method
    dg.duration_ms = duration_ms
    dg.start_ns = start_ns
    d.recent_head = (d.recent_head + 1) % DTMF_RECENT
    if d.recent_n < DTMF_RECENT:
        d.recent_n += 1
    push_dtmf_event(w, leg, dg, w.legs[leg.peer].dtmf.send)


# ------------------------------------------------ sending RFC 4733 events to a party

cdef int tx_queue(Worker *w, Leg *out, char digit, int32_t duration_ms, int volume,
                  int32_t pause_ms, int64_t now) noexcept nogil:
    """Queue an event toward the party of `out` (duration 0: live); 1 if queued."""
    cdef DtmfLeg *d = out.dtmf
    cdef DtmfQueued *q
    if d.txq_count == DTMF_TXQ or d.tx_pt < 0 or rfc4733_char_event(digit) < 0:
        return 0
    q = &d.txq[(d.txq_head + d.txq_count) % DTMF_TXQ]
    q.digit = digit
    q.volume = <uint8_t>volume
    q.duration_ms = duration_ms
    q.pause_ms = pause_ms
    d.txq_count += 1
    dtmf_schedule(w, out, now)
    return 1


cdef void tx_release(Worker *w, Leg *out, int32_t duration_ms, int64_t now) noexcept nogil:
    """The live digit an event toward `out` follows has ended after `duration_ms`."""
    cdef DtmfLeg *d = out.dtmf
    cdef DtmfQueued *q
    if duration_ms < DTMF_MIN_EVENT_MS:
        duration_ms = DTMF_MIN_EVENT_MS
    if d.ev_digit and d.ev_end_ns == 0:
        # the event we send lasts as long as the digit did (its end may be due already)
        d.ev_end_ns = d.ev_start_ns + <int64_t>duration_ms * 1000000
        dtmf_schedule(w, out, d.ev_end_ns if d.ev_end_ns > now else now)
        return
    if d.txq_count:
        q = &d.txq[(d.txq_head + d.txq_count - 1) % DTMF_TXQ]
        if q.duration_ms == 0:
            q.duration_ms = duration_ms


cdef uint32_t stream_ts(Worker *w, Leg *out, int64_t now) noexcept nogil:
    """The RTP timestamp 'now' in the stream the engine sends out of `out`."""
    cdef Leg *src = &w.legs[out.peer]
    if src.tc != NULL:
        return src.tc.buf_ts + <uint32_t>src.tc.pending
    return out.dtmf.pt_ts + <uint32_t>ns_to_samples(now - out.dtmf.pt_ns)


cdef int build_event(Worker *w, Leg *out, int npkt, int marker, int end, int64_t duration_ns) noexcept nogil:
    """One RFC 4733 packet of the event in progress into dtmfbuf slot `npkt`, numbered in the
    stream sent out of `out`: the transcoder's (its SSRC and sequence) or the forwarded one
    (its SSRC; the sequence numbers after it shift by one)."""
    cdef DtmfLeg *d = out.dtmf
    cdef Leg *src = &w.legs[out.peer]
    cdef uint32_t ssrc
    cdef uint16_t seq
    cdef int64_t duration = ns_to_samples(duration_ns)
    if duration > 0xFFFF:
        duration = 0xFFFF
    if marker:
        d.ev_ssrc = src.tc.out_ssrc if src.tc != NULL else d.pt_ssrc
        d.ev_seq = d.pt_seq
    ssrc = d.ev_ssrc
    if src.tc != NULL and src.tc.out_ssrc == ssrc:
        seq = src.tc.seq
        src.tc.seq = <uint16_t>(src.tc.seq + 1)
    elif src.tc == NULL and d.pt_ssrc == ssrc:
        d.pt_seq = <uint16_t>(d.pt_seq + 1)
        d.seq_shift = <uint16_t>(d.seq_shift + 1)
        seq = d.pt_seq
    else:
        # the stream changed source during the event (audio began after it started):
        # the event keeps its SSRC, so a receiver sees one event, and its own numbering
        d.ev_seq = <uint16_t>(d.ev_seq + 1)
        seq = d.ev_seq
    rfc4733_packet(w.dtmfbuf + npkt * DTMF_PACKET, d.tx_pt, marker, seq, d.ev_ts, ssrc,
                   rfc4733_char_event(d.ev_digit), end, d.ev_volume, <int>duration)
    w.siov[npkt].iov_base = w.dtmfbuf + npkt * DTMF_PACKET
    w.siov[npkt].iov_len = DTMF_PACKET
    return npkt + 1


cdef inline bint stream_known(Worker *w, Leg *out, int64_t now) noexcept nogil:
    """Whether an event can take its numbering from the stream sent out of `out`: the
    transcoder's always; a pass-through stream once a packet of it has gone through here,
    or when none flows (the engine then numbers its events on its own)."""
    cdef Leg *src = &w.legs[out.peer]
    if src.tc != NULL or out.dtmf.pt_started:
        return True
    return src.rx.packets == 0 or now - src.rx.last_ns > DTMF_STREAM_WAIT_NS


cdef void tx_service(Worker *w, Leg *out, int64_t now) noexcept nogil:
    """Send what is due of the events toward `out`'s party: a start, an update, end packets."""
    cdef DtmfLeg *d = out.dtmf
    cdef DtmfQueued *q
    cdef int npkt = 0
    if d.ev_digit == 0 and d.txq_count and now >= d.ev_quiet_ns and stream_known(w, out, now):
        q = &d.txq[d.txq_head]
        d.txq_head = (d.txq_head + 1) % DTMF_TXQ
        d.txq_count -= 1
        d.ev_digit = q.digit
        d.ev_volume = q.volume
        d.ev_pause_ms = q.pause_ms
        d.ev_start_ns = now
        d.ev_end_ns = now + <int64_t>q.duration_ms * 1000000 if q.duration_ms else 0
        d.ev_ts = stream_ts(w, out, now)
        d.ev_ends = 0
        d.ev_next_ns = now + DTMF_UPDATE_NS
        d.events_out += 1
        npkt = build_event(w, out, npkt, 1, 0, 0)
    if d.ev_digit:
        if d.ev_end_ns and now >= d.ev_end_ns:
            if d.ev_ends == 0 or now >= d.ev_next_ns:
                npkt = build_event(w, out, npkt, 0, 1, d.ev_end_ns - d.ev_start_ns)
                d.ev_ends += 1
                d.ev_next_ns = now + DTMF_END_REPEAT_NS
                if d.ev_ends == 3:
                    d.ev_digit = 0
                    d.ev_quiet_ns = now + <int64_t>d.ev_pause_ms * 1000000
        elif now >= d.ev_next_ns:
            npkt = build_event(w, out, npkt, 0, 0, now - d.ev_start_ns)
            d.ev_next_ns += DTMF_UPDATE_NS
            if d.ev_next_ns <= now:
                d.ev_next_ns = now + DTMF_UPDATE_NS
    if npkt and out.has_dst_rtp:
        flush_rtp(w, out, npkt)


cdef void dtmf_service(Worker *w, Leg *leg, int64_t now) noexcept nogil:
    """Timers of one leg: end a digit that went quiet, send due events; then reschedule."""
    cdef DtmfLeg *d = leg.dtmf
    cdef int64_t due = DTMF_NEVER
    if d.cur_digit and now - d.cur_last_ns >= DTMF_RX_IDLE_NS:
        # the end packets were lost, or the audio carrying the tone stopped
        digit_end(w, leg, now)
    tx_service(w, leg, now)
    if d.cur_digit:
        due = d.cur_last_ns + DTMF_RX_IDLE_NS
    if d.ev_digit:
        if d.ev_end_ns and d.ev_ends == 0 and d.ev_end_ns < d.ev_next_ns:
            due = min(due, d.ev_end_ns)
        else:
            due = min(due, d.ev_next_ns)
    elif d.txq_count:
        if stream_known(w, leg, now):
            due = min(due, max(now, d.ev_quiet_ns))
        else:
            due = min(due, now + DTMF_END_REPEAT_NS)     # the stream's next packet tells
    d.next_ns = DTMF_NEVER
    if due != DTMF_NEVER:
        dtmf_schedule(w, leg, due)


cdef int dtmf_wait_ms(Worker *w, int64_t now, int wait_ms) noexcept nogil:
    cdef int i, ms
    cdef int64_t soonest = DTMF_NEVER
    for i in range(w.ndtmf):
        if w.legs[w.dtmf_timers[i]].dtmf.next_ns < soonest:
            soonest = w.legs[w.dtmf_timers[i]].dtmf.next_ns
    if soonest == DTMF_NEVER:
        return wait_ms
    if soonest <= now:
        return 0
    ms = <int>((soonest - now + 999999) // 1000000)
    return ms if ms < wait_ms else wait_ms


cdef void dtmf_timers(Worker *w, int64_t now) noexcept nogil:
    cdef int i = w.ndtmf - 1
    cdef Leg *leg
    while i >= 0:
        leg = &w.legs[w.dtmf_timers[i]]
        if leg.dtmf.next_ns <= now:
            dtmf_service(w, leg, now)
        if leg.dtmf.next_ns == DTMF_NEVER:
            leg.dtmf.active = 0
            w.ndtmf -= 1
            w.dtmf_timers[i] = w.dtmf_timers[w.ndtmf]
        i -= 1


# ------------------------------------------------ digits arriving from a party

cdef void digit_begin(Worker *w, Leg *leg, char digit, uint8_t method, int64_t now) noexcept nogil:
    """A digit starts arriving on `leg`: lock the leg to its method and start passing it on."""
    cdef DtmfLeg *d = leg.dtmf
    cdef Leg *peer = &w.legs[leg.peer]
    cdef DtmfLeg *pd = peer.dtmf
    if d.cur_digit:
        digit_end(w, leg, now)
    d.locked = method
    d.cur_digit = digit
    d.cur_method = method
    d.cur_start_ns = now
    d.cur_last_ns = now
    d.cur_duration = 0
    d.digits_in += 1
    if pd.send == DTMF_RFC2833:
        # a pass-through stream carries the party's own events on; anything else is the
        # engine's to send
        if not (method == DTMF_RFC2833 and leg.tc == NULL):
            tx_queue(w, peer, digit, 0, pd.volume, pd.gap_ms, now)
    elif pd.send == DTMF_INBAND and method != DTMF_INBAND:
        if dtmf_generator_add(&pd.gen, digit, pd.level_dbm0, pd.tone_ms, pd.gap_ms):
            pd.gen.hold = 1
            pd.tones_out += 1
    dtmf_schedule(w, leg, now + DTMF_RX_IDLE_NS)


cdef void digit_end(Worker *w, Leg *leg, int64_t now) noexcept nogil:
    cdef DtmfLeg *d = leg.dtmf
    cdef Leg *peer = &w.legs[leg.peer]
    cdef DtmfLeg *pd = peer.dtmf
    cdef int32_t duration_ms
    if not d.cur_digit:
        return
    if d.cur_method == DTMF_RFC2833 and d.cur_duration > 0:
        duration_ms = d.cur_duration // 8
    else:
        duration_ms = <int32_t>((now - d.cur_start_ns) // 1000000)
    if pd.send == DTMF_RFC2833:
        if not (d.cur_method == DTMF_RFC2833 and leg.tc == NULL):
            tx_release(w, peer, duration_ms, now)
    elif pd.send == DTMF_INBAND and d.cur_method != DTMF_INBAND:
        pd.gen.hold = 0
    dtmf_report(w, leg, d.cur_digit, d.cur_method, duration_ms, d.cur_start_ns)
    d.cur_digit = 0


cdef void inband_detect(Worker *w, Leg *leg, const int16_t *pcm, int n, int64_t now) noexcept nogil:
    cdef DtmfLeg *d = leg.dtmf
    cdef char found[8]
    cdef int k, i
    k = dtmf_detect(&d.det, pcm, n, found, 8)
    for i in range(k):
        digit_begin(w, leg, found[i], DTMF_INBAND, now)
    if d.cur_digit and d.cur_method == DTMF_INBAND:
        if d.det.current != d.cur_digit:
            digit_end(w, leg, now)
        else:
            d.cur_last_ns = now


cdef void dtmf_pcm_hook(void *ctx, int16_t *pcm, int n) noexcept nogil:
    """The transcoder's hook on a transcoded leg: decoded audio from the leg's party, about to
    be encoded toward the peer. Detect digits, mute them, or put generated tones in."""
    cdef Leg *leg = <Leg *>ctx
    cdef Worker *w = <Worker *>leg.dtmf.worker
    cdef DtmfLeg *d = leg.dtmf
    cdef DtmfLeg *pd = w.legs[leg.peer].dtmf
    cdef int16_t tones[TC_MAX_IN_SAMPLES]
    cdef int made
    if dtmf_accepts(d, DTMF_INBAND):
        inband_detect(w, leg, pcm, n, w.now_ns)
    if pd.mute_inband and d.cur_digit and d.cur_method == DTMF_INBAND:
        memset(pcm, 0, n * sizeof(int16_t))
    if pd.gen.count and n <= TC_MAX_IN_SAMPLES:
        made = dtmf_generate(&pd.gen, tones, n)
        memcpy(pcm, tones, made * sizeof(int16_t))


cdef void g711_inband(Worker *w, Leg *leg, Leg *peer, unsigned char *buf, unsigned int length,
                      int alaw, int64_t now) noexcept nogil:
    """In-band work on a pass-through G.711 packet: decode, detect, then mute or overwrite
    the payload with generated tones (re-encoded with the G.711 tables)."""
    cdef DtmfLeg *d = leg.dtmf
    cdef DtmfLeg *pd = peer.dtmf
    cdef unsigned int offset
    cdef int plen = rtp_payload(buf, length, &offset)
    cdef int16_t pcm[160]
    cdef int i = 0, n, made
    cdef unsigned char *p
    cdef bint detect = dtmf_accepts(d, DTMF_INBAND)
    while i < plen:
        n = plen - i if plen - i < 160 else 160
        p = buf + offset + i
        if detect:
            if alaw:
                alaw_decode(p, pcm, n)
            else:
                ulaw_decode(p, pcm, n)
            inband_detect(w, leg, pcm, n, now)
        if pd.mute_inband and d.cur_digit and d.cur_method == DTMF_INBAND:
            memset(p, 0xD5 if alaw else 0xFF, n)        # G.711 silence
        if pd.gen.count:
            made = dtmf_generate(&pd.gen, pcm, n)
            if alaw:
                alaw_encode(pcm, p, made)
            else:
                ulaw_encode(pcm, p, made)
        i += n


cdef void passthrough_out(Leg *out, unsigned char *buf, unsigned int length, bint audio,
                          int64_t now) noexcept nogil:
    """A packet of the other party's stream leaves through `out` as is, but for the
    sequence numbers the engine's own packets took in it; remember where the stream is."""
    cdef DtmfLeg *d = out.dtmf
    cdef uint16_t seq = be16(buf + 2)
    cdef uint32_t ssrc = be32(buf + 8)
    if d.seq_shift:
        seq = <uint16_t>(seq + d.seq_shift)
        buf[2] = seq >> 8
        buf[3] = seq & 0xFF
    if not d.pt_started or ssrc != d.pt_ssrc or <int16_t>(seq - d.pt_seq) > 0:
        d.pt_seq = seq
    d.pt_started = 1
    d.pt_ssrc = ssrc
    if audio:
        d.pt_ts = be32(buf + 4)
        d.pt_ns = now


cdef bint telephone_event(Worker *w, Leg *leg, Leg *peer, unsigned char *buf, unsigned int length,
                          int64_t now) noexcept nogil:
    """An RFC 4733 packet from the leg's party; True when it is consumed here."""
    cdef DtmfLeg *d = leg.dtmf
    cdef DtmfLeg *pd = peer.dtmf
    cdef unsigned int offset
    cdef int plen = rtp_payload(buf, length, &offset)
    cdef uint32_t ts = be32(buf + 4)
    cdef Rfc4733Event ev
    cdef char digit = 0
    cdef int r
    if plen < RFC4733_PAYLOAD or rfc4733_parse(buf + offset, plen, &ev) < 0:
        leg.drops.bad_payload += 1
        leg.rx.errors += 1
        return True
    if not dtmf_accepts(d, DTMF_RFC2833):
        d.suppressed += 1           # another method is locked, or events are not taken
        return True
    r = rfc4733_receive(&d.rx, be32(buf + 8), ts, buf + offset, plen, &digit)
    if r == 1:
        digit_begin(w, leg, digit, DTMF_RFC2833, now)
        d.cur_ts = ts
        d.cur_duration = ev.duration
        if ev.end:
            digit_end(w, leg, now)
    elif d.cur_digit and d.cur_method == DTMF_RFC2833 and ts == d.cur_ts:
        d.cur_last_ns = now
        if ev.duration > d.cur_duration:
            d.cur_duration = ev.duration
        if ev.end:
            digit_end(w, leg, now)
    if pd.send == DTMF_RFC2833 and leg.tc == NULL and pd.tx_pt >= 0:
        buf[1] = (buf[1] & 0x80) | <unsigned char>pd.tx_pt
        passthrough_out(peer, buf, length, False, now)
        return False
    return True


cdef bint dtmf_rtp(Worker *w, Leg *leg, Leg *peer, unsigned char *buf, unsigned int length,
                   int64_t now) noexcept nogil:
    """DTMF work on an RTP packet arriving on a leg with dtmf_path; True when consumed."""
    cdef uint8_t pt = buf[1] & 0x7F
    cdef DtmfLeg *d = leg.dtmf
    cdef DtmfLeg *pd = peer.dtmf
    if pt == d.rx_pt:
        return telephone_event(w, leg, peer, buf, length, now)
    if leg.tc != NULL:
        return False                # the transcoder's hook does the in-band work
    if pt == 0 or pt == 8:
        if dtmf_accepts(d, DTMF_INBAND) or pd.gen.count or (d.cur_digit and pd.mute_inband):
            g711_inband(w, leg, peer, buf, length, pt == 8, now)
    passthrough_out(peer, buf, length, True, now)
    return False


cdef void handle_ready(Worker *w, uint64_t token) noexcept nogil:
    cdef uint32_t low = <uint32_t>(token & 0xFFFFFFFFU)
    cdef uint32_t gen = <uint32_t>(token >> 32)
    cdef uint32_t slot = low >> 1
    cdef bint on_rtcp_socket = low & 1
    cdef Leg *leg
    cdef uint64_t scratch
    if token == WAKE_TOKEN:
        read(w.wakefd, &scratch, 8)
        return
    if slot >= <uint32_t>w.capacity:
        w.totals.stale_events += 1
        return
    leg = &w.legs[slot]
    if not leg.in_use or leg.gen != gen:
        w.totals.stale_events += 1
        return
    # Level-triggered: a socket still holding datagrams after one batch is reported
    # again by the next epoll_wait, so every ready socket gets its turn.
    relay_batch(w, leg, on_rtcp_socket)


cdef int relay_batch(Worker *w, Leg *leg, bint on_rtcp_socket) noexcept nogil:
    """Receive one batch on a leg's socket, account it, forward it; return datagrams read."""
    cdef Leg *peer
    cdef int got, i, nrtp = 0, nrtcp = 0
    cdef unsigned int length
    cdef unsigned char *buf
    cdef const Addr *src
    cdef int64_t now
    cdef unsigned int offset
    cdef int plen, made, k, tcused = 0
    cdef int tclens[TC_MAX_OUT_PACKETS]
    got = sys_recvmmsg(leg.rtcp_fd if on_rtcp_socket else leg.rtp_fd, w.rmsg, BATCH)
    if got <= 0:
        return 0
    now = mono_ns()
    w.now_ns = now
    peer = &w.legs[leg.peer]
    for i in range(got):
        length = w.rmsg[i].msg_len
        buf = w.bufs + i * BUFSZ
        src = &w.raddr[i]
        w.rmsg[i].msg_hdr.msg_namelen = sizeof(Addr)
        if w.rmsg[i].msg_hdr.msg_flags & MSG_TRUNC:
            leg.drops.truncated += 1
            leg.rx.errors += 1
            continue
        if on_rtcp_socket or looks_like_rtcp(buf, length):
            if length < 8 or (buf[0] >> 6) != 2 or not looks_like_rtcp(buf, length):
                leg.drops.rtcp_malformed += 1
                leg.rtcp.errors += 1
                continue
            if on_rtcp_socket:
                if not rtcp_source_ok(leg, src):
                    continue
            elif not rtp_source_ok(leg, src, be32(buf + 4), now):
                continue
            if not parse_rtcp(leg, peer, buf, length, now):
                leg.drops.rtcp_malformed += 1
                leg.rtcp.errors += 1
                continue
            leg.rtcp.rx_packets += 1
            leg.rtcp.rx_octets += length
            leg.rtcp.last_ns = now
            if not peer.has_dst_rtcp:
                leg.drops.no_destination += 1
                continue
            w.ciov[nrtcp].iov_base = buf
            w.ciov[nrtcp].iov_len = length
            nrtcp += 1
            continue
        if length < 12:
            leg.drops.too_short += 1
            leg.rx.errors += 1
            continue
        if (buf[0] >> 6) != 2:
            leg.drops.bad_version += 1
            leg.rx.errors += 1
            continue
        if not rtp_source_ok(leg, src, be32(buf + 8), now):
            continue
        account_rtp(leg, buf, length, now)
        if not peer.has_dst_rtp:
            leg.drops.no_destination += 1
            continue
        if leg.dtmf_path and dtmf_rtp(w, leg, peer, buf, length, now):
            continue
        if leg.tc != NULL and (buf[1] & 0x7F) != leg.dtmf_pt:
            # media path: decode, repacketise, encode; the packets are the engine's own
            if (buf[1] & 0x7F) != leg.tc.in_codec:
                leg.drops.unknown_payload_type += 1
                continue
            plen = rtp_payload(buf, length, &offset)
            if plen < 0:
                leg.drops.bad_payload += 1
                leg.rx.errors += 1
                continue
            if leg.jb != NULL:
                # played out (decoded, re-encoded, sent) by the leg's playout tick
                jb_put(leg.jb, be32(buf + 8), be16(buf + 2), be32(buf + 4), buf[1] >> 7,
                       buf + offset, plen, now / 1e6)
                continue
            if nrtp + TC_MAX_OUT_PACKETS > BATCH or tcused + TC_OUT_CAP > TCBUF_SIZE:
                flush_rtp(w, peer, nrtp)
                nrtp = 0
                tcused = 0
            made = tc_feed(leg.tc, be32(buf + 8), buf + offset, plen, be32(buf + 4), buf[1] >> 7,
                           w.tcbuf + tcused, TC_OUT_CAP, tclens, TC_MAX_OUT_PACKETS)
            nrtp = queue_made(w, leg, tclens, made, nrtp, &tcused)
            continue
        if leg.tc != NULL:
            # telephone-event passes to the peer under the peer's payload type
            buf[1] = (buf[1] & 0x80) | <unsigned char>leg.peer_dtmf_pt
        w.siov[nrtp].iov_base = buf
        w.siov[nrtp].iov_len = length
        nrtp += 1
    if nrtp:
        flush_rtp(w, peer, nrtp)
    if leg.dtmf_path:
        # events a digit in this batch started go out after the audio sent before them
        dtmf_service(w, peer, now)
    if nrtcp:
        for i in range(nrtcp):
            w.cmsg[i].msg_hdr.msg_name = &peer.dst_rtcp
            w.cmsg[i].msg_hdr.msg_namelen = peer.addrlen
        send_batch(peer, peer.rtp_fd if peer.rtcp_mux else peer.rtcp_fd, w.cmsg, nrtcp, True)
        w.totals.rtcp_relayed += nrtcp
    return got


cdef void play_out(Worker *w, Leg *leg, int64_t now) noexcept nogil:
    """Run a jitter-buffered leg's playout ticks that are due: one frame (or concealment)
    per tick into the transcoder, the packets it makes out to the peer."""
    cdef Leg *peer = &w.legs[leg.peer]
    cdef JbSlot *frame
    cdef int made, k, nrtp = 0, used = 0
    cdef int tclens[TC_MAX_OUT_PACKETS]
    cdef int64_t tick
    if now - leg.next_tick_ns > 50 * leg.tick_ns:
        leg.next_tick_ns = now          # the worker stalled: do not replay the backlog
    w.now_ns = now
    while leg.next_tick_ns <= now:
        tick = leg.next_tick_ns
        leg.next_tick_ns += leg.tick_ns
        made = 0
        if nrtp + TC_MAX_OUT_PACKETS > BATCH or used + TC_OUT_CAP > TCBUF_SIZE:
            flush_rtp(w, peer, nrtp)
            nrtp = 0
            used = 0
        k = jb_get(leg.jb, tick / 1e6, &frame)
        if k == JB_FRAME:
            made = tc_feed(leg.tc, leg.jb.ssrc, frame.payload, frame.length, frame.ts, frame.marker,
                           w.tcbuf + used, TC_OUT_CAP, tclens, TC_MAX_OUT_PACKETS)
        elif k == JB_CONCEAL:
            made = tc_conceal(leg.tc, <int>(leg.tick_ns // 10000000), w.tcbuf + used, TC_OUT_CAP,
                              tclens, TC_MAX_OUT_PACKETS)
        elif leg.dtmf_path and peer.dtmf.gen.count:
            # the party is silent but tones are being generated toward the peer: the
            # transcoder's hook puts them into silence
            made = tc_silence(leg.tc, <int>(leg.tick_ns // 10000000), w.tcbuf + used, TC_OUT_CAP,
                              tclens, TC_MAX_OUT_PACKETS)
        nrtp = queue_made(w, leg, tclens, made, nrtp, &used)
    if nrtp:
        if peer.has_dst_rtp:
            flush_rtp(w, peer, nrtp)
        else:
            leg.drops.no_destination += nrtp
    if leg.dtmf_path:
        dtmf_service(w, peer, now)


cdef int playout_wait_ms(Worker *w, int64_t now) noexcept nogil:
    """How long epoll may sleep before the next playout tick is due (100 ms at most)."""
    cdef int i
    cdef int64_t soonest = now + 100000000
    for i in range(w.nplayout):
        if w.legs[w.playout[i]].next_tick_ns < soonest:
            soonest = w.legs[w.playout[i]].next_tick_ns
    if soonest <= now:
        return 0
    return <int>((soonest - now + 999999) // 1000000)


cdef void playout_forget(Worker *w, int32_t slot) noexcept nogil:
    cdef int i
    for i in range(w.nplayout):
        if w.playout[i] == slot:
            w.nplayout -= 1
            w.playout[i] = w.playout[w.nplayout]
            return


cdef Event *claim_event(Worker *w, int kind, const Leg *leg) noexcept nogil:
    """The next free slot of the event ring, cleared and addressed to this leg (NULL and
    counted as lost when the control plane has fallen behind)."""
    cdef Event *ev
    if w.ev_count == w.ev_cap:
        w.totals.events_lost += 1
        return NULL
    ev = &w.events[(w.ev_head + w.ev_count) % w.ev_cap]
    memset(ev, 0, sizeof(Event))
    ev.kind = kind
    ev.session = leg.session
    ev.side = leg.side
    return ev


cdef void post_event(Worker *w) noexcept nogil:
    """Publish the claimed event and wake the control plane's event fd."""
    cdef uint64_t one = 1
    w.ev_count += 1
    write(w.notifyfd, &one, 8)


cdef void push_event(Worker *w, int kind, const Leg *leg, int64_t idle_ns) noexcept nogil:
    cdef Event *ev = claim_event(w, kind, leg)
    if ev == NULL:
        return
    ev.idle_ms = idle_ns // 1000000
    post_event(w)


cdef void scan_timeouts(Worker *w, int64_t now) noexcept nogil:
    cdef int i
    cdef Leg *leg
    cdef int64_t last
    for i in range(w.high_water):
        leg = &w.legs[i]
        if not leg.in_use or leg.timed_out:
            continue
        last = leg.rx.last_ns if leg.rx.last_ns > leg.armed_ns else leg.armed_ns
        if now - last >= w.timeout_ns:
            leg.timed_out = 1
            push_event(w, EVENT_TIMEOUT, leg, now - last)


cdef void worker_loop(Worker *w) noexcept nogil:
    cdef int n, i, wait_ms = 100
    cdef int64_t now
    cdef bint stopping = False
    while not stopping:
        n = sys_epoll_wait(w.epfd, w.evs, MAXEVENTS, wait_ms)
        pthread_mutex_lock(&w.lock)
        w.totals.wakeups += 1
        for i in range(n):
            handle_ready(w, w.evs[i].data.u64)
        now = mono_ns()
        wait_ms = 100
        if w.nplayout:
            for i in range(w.nplayout):
                if w.legs[w.playout[i]].next_tick_ns <= now:
                    play_out(w, &w.legs[w.playout[i]], now)
            wait_ms = playout_wait_ms(w, mono_ns())
        if w.ndtmf:
            now = mono_ns()
            dtmf_timers(w, now)
            wait_ms = dtmf_wait_ms(w, now, wait_ms)
        if now - w.last_scan_ns >= SCAN_INTERVAL_NS:
            w.last_scan_ns = now
            scan_timeouts(w, now)
        stopping = w.stopping
        pthread_mutex_unlock(&w.lock)


cdef void install_hook(Leg *leg) noexcept nogil:
    """The transcoder of a leg with DTMF work calls the DTMF hook on its decoded audio."""
    if leg.tc != NULL:
        leg.tc.hook = NULL
        if leg.dtmf_path:
            leg.tc.hook = dtmf_pcm_hook
        leg.tc.hook_ctx = <void *>leg


cdef void drop_dtmf(Worker *w, Leg *leg) noexcept nogil:
    """Forget a leg's DTMF state (and its peer's DTMF path: it needs both legs)."""
    cdef Leg *peer
    if leg.dtmf == NULL:
        return
    dtmf_unschedule(w, leg)
    free(leg.dtmf)
    leg.dtmf = NULL
    leg.dtmf_path = 0
    install_hook(leg)
    peer = &w.legs[leg.peer]
    if peer.in_use and peer.peer == <int32_t>(leg - w.legs):
        peer.dtmf_path = 0
        install_hook(peer)


# ---------------------------------------------------------------- Python face

cdef int fill_addr(Addr *out, int family, bytes packed, int port) except -1:
    memset(out, 0, sizeof(Addr))
    if family == AF_INET and len(packed) == 4:
        (<sockaddr_in *>out).sin_family = AF_INET
        memcpy(&(<sockaddr_in *>out).sin_addr, <const char *>packed, 4)
    elif family == AF_INET6 and len(packed) == 16:
        (<sockaddr_in6 *>out).sin6_family = AF_INET6
        memcpy(&(<sockaddr_in6 *>out).sin6_addr, <const char *>packed, 16)
    else:
        raise ValueError("address does not match its family")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1..65535")
    set_port(out, port)
    return 0


cdef object addr_tuple(const Addr *a):
    if a.sin6_family == AF_INET:
        host = _socket.inet_ntop(AF_INET, (<const char *>&(<const sockaddr_in *>a).sin_addr)[:4])
    else:
        host = _socket.inet_ntop(AF_INET6, (<const char *>&(<const sockaddr_in6 *>a).sin6_addr)[:16])
    return (host, get_port(a))


cdef object dtmf_stats(const DtmfLeg *d):
    cdef int i
    cdef const DtmfDigit *dg
    now_mono = _time.monotonic()
    now_wall = _time.time()
    recent = []
    for i in range(d.recent_n):
        dg = &d.recent[(d.recent_head - d.recent_n + i + DTMF_RECENT) % DTMF_RECENT]
        recent.append({"digit": chr(dg.digit), "method": DTMF_METHOD_NAMES[dg.method],
                       "duration_ms": dg.duration_ms,
                       "time": now_wall - (now_mono - dg.start_ns / 1e9)})
    return {
        "receive": [name for bit, name in DTMF_METHOD_NAMES.items() if bit and d.accept & bit],
        "locked": DTMF_METHOD_NAMES[d.locked] if d.locked else None,
        "send": DTMF_METHOD_NAMES[d.send],
        "rx_pt": d.rx_pt if d.rx_pt >= 0 else None,
        "tx_pt": d.tx_pt if d.tx_pt >= 0 else None,
        "mute_inband": bool(d.mute_inband),
        "digits_in": d.digits_in,
        "events_out": d.events_out,
        "tones_out": d.tones_out,
        "suppressed": d.suppressed,
        "recent": recent,
    }


cdef class Relay:
    """One worker: its legs, epoll set, event queue and the nogil loop (`run`)."""
    cdef Worker *w
    cdef bint running

    def __cinit__(self, int capacity, int notify_fd, double timeout_s, int event_capacity=65536):
        cdef int i
        cdef epoll_event ev
        cdef Worker *w
        if capacity < 2:
            raise ValueError("capacity must be at least 2 legs")
        self.w = <Worker *>calloc(1, sizeof(Worker))
        if self.w == NULL:
            raise MemoryError()
        w = self.w
        w.epfd = -1
        w.wakefd = -1
        pthread_mutex_init(&w.lock, NULL)
        w.legs = <Leg *>calloc(capacity, sizeof(Leg))
        w.free_slots = <int32_t *>calloc(capacity, sizeof(int32_t))
        w.events = <Event *>calloc(event_capacity, sizeof(Event))
        w.bufs = <unsigned char *>calloc(BATCH, BUFSZ)
        w.tcbuf = <unsigned char *>calloc(1, TCBUF_SIZE)
        w.playout = <int32_t *>calloc(capacity, sizeof(int32_t))
        w.dtmf_timers = <int32_t *>calloc(capacity, sizeof(int32_t))
        w.dtmfbuf = <unsigned char *>calloc(BATCH, DTMF_PACKET)
        if w.legs == NULL or w.free_slots == NULL or w.events == NULL or w.bufs == NULL \
                or w.tcbuf == NULL or w.playout == NULL or w.dtmf_timers == NULL or w.dtmfbuf == NULL:
            raise MemoryError()
        w.capacity = capacity
        w.ev_cap = event_capacity
        for i in range(capacity):
            w.free_slots[i] = capacity - 1 - i
        w.nfree = capacity
        w.notifyfd = notify_fd
        w.timeout_ns = <int64_t>(timeout_s * 1e9)
        for i in range(BATCH):
            w.riov[i].iov_base = w.bufs + i * BUFSZ
            w.riov[i].iov_len = BUFSZ
            w.rmsg[i].msg_hdr.msg_iov = &w.riov[i]
            w.rmsg[i].msg_hdr.msg_iovlen = 1
            w.rmsg[i].msg_hdr.msg_name = &w.raddr[i]
            w.rmsg[i].msg_hdr.msg_namelen = sizeof(Addr)
            w.smsg[i].msg_hdr.msg_iov = &w.siov[i]
            w.smsg[i].msg_hdr.msg_iovlen = 1
            w.cmsg[i].msg_hdr.msg_iov = &w.ciov[i]
            w.cmsg[i].msg_hdr.msg_iovlen = 1
        w.epfd = epoll_create1(EPOLL_CLOEXEC)
        w.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if w.epfd < 0 or w.wakefd < 0:
            raise OSError("cannot create the worker's epoll set")
        ev.events = EPOLLIN
        ev.data.u64 = WAKE_TOKEN
        epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.wakefd, &ev)

    def __dealloc__(self):
        cdef int i
        cdef Worker *w = self.w
        if w == NULL:
            return
        if w.legs != NULL:
            for i in range(w.capacity):
                if w.legs[i].in_use:
                    close(w.legs[i].rtp_fd)
                    close(w.legs[i].rtcp_fd)
                    free(w.legs[i].dtmf)
        if w.epfd >= 0:
            close(w.epfd)
        if w.wakefd >= 0:
            close(w.wakefd)
        pthread_mutex_destroy(&w.lock)
        free(w.legs)
        free(w.free_slots)
        free(w.events)
        free(w.bufs)
        free(w.tcbuf)
        free(w.playout)
        free(w.dtmf_timers)
        free(w.dtmfbuf)
        free(w)
        self.w = NULL

    def run(self):
        """The worker thread's body: returns after `stop()`."""
        with nogil:
            worker_loop(self.w)

    def stop(self):
        cdef uint64_t one = 1
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            self.w.stopping = 1
            pthread_mutex_unlock(&self.w.lock)
            write(self.w.wakefd, &one, 8)

    def set_timeout(self, double seconds):
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            self.w.timeout_ns = <int64_t>(seconds * 1e9)
            pthread_mutex_unlock(&self.w.lock)

    @property
    def free_legs(self):
        return self.w.nfree

    def add_pair(self, long long session, int rtp_a, int rtcp_a, int rtp_b, int rtcp_b,
                 int family, bint strict=False):
        """Adopt two legs' sockets (the relay closes them on removal); return their slots."""
        cdef int32_t a, b
        if self.w.nfree < 2:
            raise MemoryError("worker has no free leg slots")
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            a = self._take_slot(session, 0, rtp_a, rtcp_a, family, strict)
            b = self._take_slot(session, 1, rtp_b, rtcp_b, family, strict)
            self.w.legs[a].peer = b
            self.w.legs[b].peer = a
            self._watch(a)
            self._watch(b)
            pthread_mutex_unlock(&self.w.lock)
        return a, b

    cdef int32_t _take_slot(self, int64_t session, int side, int rtp_fd, int rtcp_fd,
                            int family, bint strict) noexcept nogil:
        cdef Worker *w = self.w
        cdef int32_t slot
        cdef uint32_t gen
        cdef int64_t now = mono_ns()
        cdef Leg *leg
        w.nfree -= 1
        slot = w.free_slots[w.nfree]
        gen = w.legs[slot].gen + 1
        memset(&w.legs[slot], 0, sizeof(Leg))
        leg = &w.legs[slot]
        leg.gen = gen
        leg.in_use = 1
        leg.session = session
        leg.side = side
        leg.rtp_fd = rtp_fd
        leg.rtcp_fd = rtcp_fd
        leg.strict = strict
        leg.clock_rate = 8000
        leg.base_ns = now
        leg.armed_ns = now
        leg.rtcp.rtt_ns = -1
        leg.dtmf_pt = -1
        leg.peer_dtmf_pt = -1
        leg.addrlen = sizeof(sockaddr_in) if family == AF_INET else sizeof(sockaddr_in6)
        if slot >= w.high_water:
            w.high_water = slot + 1
        return slot

    cdef void _watch(self, int32_t slot) noexcept nogil:
        cdef epoll_event ev
        cdef Leg *leg = &self.w.legs[slot]
        ev.events = EPOLLIN
        ev.data.u64 = (<uint64_t>leg.gen << 32) | (<uint32_t>slot << 1)
        epoll_ctl(self.w.epfd, EPOLL_CTL_ADD, leg.rtp_fd, &ev)
        ev.data.u64 = ev.data.u64 | 1
        epoll_ctl(self.w.epfd, EPOLL_CTL_ADD, leg.rtcp_fd, &ev)

    cdef Leg *_leg(self, int slot) except NULL:
        if slot < 0 or slot >= self.w.capacity or not self.w.legs[slot].in_use:
            raise KeyError(f"no leg in slot {slot}")
        return &self.w.legs[slot]

    def set_remote(self, int slot, int family, bytes packed, int rtp_port, int rtcp_port,
                   bint rtcp_mux=False, int clock_rate=8000, object strict=None):
        """The remote party's media address from signalling (SDP). A changed address
        drops the latch (the call moved); the same address keeps it (a refresh)."""
        cdef Addr rtp, rtcp
        cdef Leg *leg = self._leg(slot)
        cdef int strict_flag = -1 if strict is None else (1 if strict else 0)
        if (family == AF_INET) != (leg.addrlen == sizeof(sockaddr_in)):
            raise ValueError("remote address family differs from the leg's socket")
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        fill_addr(&rtp, family, packed, rtp_port)
        fill_addr(&rtcp, family, packed, rtp_port if rtcp_mux else rtcp_port)
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            if not leg.has_sdp or not same_addr(&leg.sdp_rtp, &rtp) or not same_addr(&leg.sdp_rtcp, &rtcp):
                memcpy(&leg.dst_rtp, &rtp, sizeof(Addr))
                memcpy(&leg.dst_rtcp, &rtcp, sizeof(Addr))
                leg.has_dst_rtp = 1
                leg.has_dst_rtcp = 1
                leg.latched = 0
                leg.rtcp_latched = 0
            memcpy(&leg.sdp_rtp, &rtp, sizeof(Addr))
            memcpy(&leg.sdp_rtcp, &rtcp, sizeof(Addr))
            leg.has_sdp = 1
            leg.rtcp_mux = rtcp_mux
            leg.clock_rate = clock_rate
            leg.armed_ns = mono_ns()
            leg.timed_out = 0
            if strict_flag >= 0:
                leg.strict = strict_flag
            pthread_mutex_unlock(&self.w.lock)

    def set_transcoder(self, int slot, Transcoder transcoder, int dtmf_pt=-1, int peer_dtmf_pt=-1,
                       JitterBuffer jitter=None, int frame_ms=20):
        """Transcode audio arriving on a leg toward its peer (None: back to pass-through),
        through `jitter` (played out every `frame_ms`) when given. The caller keeps the
        transcoder and the buffer alive while they are set."""
        cdef Leg *leg = self._leg(slot)
        cdef bint buffered = transcoder is not None and jitter is not None
        if not (-1 <= dtmf_pt <= 127 and -1 <= peer_dtmf_pt <= 127) or (dtmf_pt >= 0) != (peer_dtmf_pt >= 0):
            raise ValueError("telephone-event payload types must both be 0..127, or both -1")
        if buffered and not 10 <= frame_ms <= 60:
            raise ValueError("frame_ms must be in 10..60")
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            if leg.tc != NULL:
                leg.tc.hook = NULL
            leg.tc = transcoder.tc if transcoder is not None else NULL
            install_hook(leg)
            leg.dtmf_pt = dtmf_pt
            leg.peer_dtmf_pt = peer_dtmf_pt
            if leg.jb != NULL:
                playout_forget(self.w, slot)
            leg.jb = jitter.jb if buffered else NULL
            if buffered:
                leg.tick_ns = <int64_t>frame_ms * 1000000
                leg.next_tick_ns = mono_ns() + leg.tick_ns
                self.w.playout[self.w.nplayout] = slot
                self.w.nplayout += 1
            pthread_mutex_unlock(&self.w.lock)

    def remove_pair(self, int a, int b):
        """Stop relaying for two legs, close their sockets, free their slots; return their stats."""
        self._leg(a)
        self._leg(b)
        stats = (self.stats(a), self.stats(b))
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            self._release(a)
            self._release(b)
            pthread_mutex_unlock(&self.w.lock)
        return stats

    cdef void _release(self, int32_t slot) noexcept nogil:
        cdef Worker *w = self.w
        cdef Leg *leg = &w.legs[slot]
        if leg.jb != NULL:
            playout_forget(w, slot)
            leg.jb = NULL
        if leg.tc != NULL:
            leg.tc.hook = NULL
        leg.tc = NULL
        drop_dtmf(w, leg)
        epoll_ctl(w.epfd, EPOLL_CTL_DEL, leg.rtp_fd, NULL)
        epoll_ctl(w.epfd, EPOLL_CTL_DEL, leg.rtcp_fd, NULL)
        close(leg.rtp_fd)
        close(leg.rtcp_fd)
        leg.in_use = 0
        leg.gen += 1
        w.free_slots[w.nfree] = slot
        w.nfree += 1

    def stats(self, int slot):
        """A snapshot of one leg's counters."""
        cdef Leg copy
        cdef RxStats rx
        cdef TcStats tcs
        cdef JbStats jbs
        cdef double depth = 0, target = 0
        cdef int64_t now
        cdef DtmfLeg dt
        cdef bint has_dtmf = False
        self._leg(slot)
        memset(&tcs, 0, sizeof(TcStats))
        memset(&jbs, 0, sizeof(JbStats))
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            memcpy(&copy, &self.w.legs[slot], sizeof(Leg))
            if copy.dtmf != NULL:
                memcpy(&dt, copy.dtmf, sizeof(DtmfLeg))
                has_dtmf = True
            if copy.tc != NULL:
                tcs = copy.tc.st
            if copy.jb != NULL:
                jbs = copy.jb.st
                depth = jb_depth_ms(copy.jb, mono_ns() / 1e6)
                target = jb_target_ms(copy.jb)
            pthread_mutex_unlock(&self.w.lock)
            now = mono_ns()
        rx = copy.rx
        cdef double rate = copy.clock_rate
        return {
            "side": copy.side,
            "remote": addr_tuple(&copy.dst_rtp) if copy.has_dst_rtp else None,
            "remote_rtcp": addr_tuple(&copy.dst_rtcp) if copy.has_dst_rtcp else None,
            "latched": bool(copy.latched),
            "strict": bool(copy.strict),
            "relatches": copy.relatches,
            "timed_out": bool(copy.timed_out),
            "rx": {
                "packets": rx.packets,
                "bytes": rx.octets,
                "errors": rx.errors,
                "lost": rx.lost_prior + seq_lost(&rx),
                "jitter_ms": (rx.jitter_q4 / 16.0) * 1000.0 / rate,
                "ssrc": rx.ssrc if rx.seq_started else None,
                "ssrc_changes": rx.ssrc_changes,
                "last_packet_age": (now - rx.last_ns) / 1e9 if rx.packets else None,
            },
            "tx": {"packets": copy.tx.packets, "bytes": copy.tx.octets, "errors": copy.tx.errors},
            "rtcp": {
                "rx_packets": copy.rtcp.rx_packets,
                "rx_bytes": copy.rtcp.rx_octets,
                "tx_packets": copy.rtcp.tx_packets,
                "tx_bytes": copy.rtcp.tx_octets,
                "errors": copy.rtcp.errors,
                "reports": copy.rtcp.reports,
                "rtt_ms": copy.rtcp.rtt_ns / 1e6 if copy.rtcp.rtt_ns >= 0 else None,
                "remote_fraction_lost": copy.rtcp.remote_fraction_lost / 256.0,
                "remote_cumulative_lost": copy.rtcp.remote_cumulative_lost,
                "remote_jitter_ms": copy.rtcp.remote_jitter * 1000.0 / rate,
            },
            "drops": {
                "too_short": copy.drops.too_short,
                "bad_version": copy.drops.bad_version,
                "foreign_source": copy.drops.foreign_source,
                "no_destination": copy.drops.no_destination,
                "truncated": copy.drops.truncated,
                "rtcp_malformed": copy.drops.rtcp_malformed,
                "unknown_payload_type": copy.drops.unknown_payload_type,
                "bad_payload": copy.drops.bad_payload,
            },
            "transcoding": None if copy.tc == NULL else {
                "packets_in": tcs.packets_in, "packets_out": tcs.packets_out,
                "gaps": tcs.gaps, "late": tcs.late, "concealed": tcs.concealed,
                "sid_out": tcs.sid_out, "dtx_frames": tcs.dtx_frames,
            },
            "jitter_buffer": None if copy.jb == NULL else {
                "depth_ms": depth, "target_ms": target, "played": jbs.played,
                "late": jbs.late, "concealed": jbs.concealed, "reorders": jbs.reorders,
                "duplicates": jbs.duplicates, "overflow": jbs.overflow, "resyncs": jbs.resyncs,
                "ssrc_changes": jbs.ssrc_changes,
            },
            "dtmf": dtmf_stats(&dt) if has_dtmf else None,
        }

    def totals(self):
        cdef Totals t
        cdef int legs
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            t = self.w.totals
            legs = self.w.capacity - self.w.nfree
            pthread_mutex_unlock(&self.w.lock)
        return {
            "legs": legs,
            "rtp_relayed": t.rtp_relayed,
            "rtcp_relayed": t.rtcp_relayed,
            "stale_events": t.stale_events,
            "wakeups": t.wakeups,
            "events_lost": t.events_lost,
        }

    def drain_events(self):
        """Pending events as (kind, session, side, idle_ms, digit, method, forward,
        duration_ms, start_ns) tuples, oldest first (the DTMF fields are empty for timeouts;
        start_ns is CLOCK_MONOTONIC)."""
        cdef Event ev
        out = []
        while True:
            with nogil:
                pthread_mutex_lock(&self.w.lock)
                if self.w.ev_count:
                    ev = self.w.events[self.w.ev_head]
                    self.w.ev_head = (self.w.ev_head + 1) % self.w.ev_cap
                    self.w.ev_count -= 1
                else:
                    ev.kind = 0
                pthread_mutex_unlock(&self.w.lock)
            if ev.kind == 0:
                return out
            out.append((EVENT_KINDS[ev.kind], ev.session, ev.side, ev.idle_ms,
                        chr(ev.digit) if ev.digit else "", DTMF_METHOD_NAMES.get(ev.method, ""),
                        DTMF_METHOD_NAMES.get(ev.forward, ""), ev.duration_ms, ev.start_ns))

    # ------------------------------------------------------------ DTMF

    def set_dtmf(self, int slot, int accept, int send, int rx_pt, int tx_pt, bint mute_inband=False,
                 double level_dbm0=-10.0, int tone_ms=50, int gap_ms=50, int volume=10,
                 unsigned int ssrc=0, unsigned int seq=0, unsigned int ts=0):
        """DTMF configuration of one leg's party (see MediaEngine.set_dtmf); `ssrc`, `seq`
        and `ts` start the engine's own numbering of a pass-through stream toward it
        before any packet was forwarded. The DTMF path is on once both legs have one."""
        cdef Leg *leg = self._leg(slot)
        cdef Leg *peer
        cdef DtmfLeg *d
        cdef bint fresh = False
        if accept & ~(DTMF_RFC2833 | DTMF_INBAND | DTMF_INFO) or send not in (0, DTMF_RFC2833, DTMF_INBAND, DTMF_INFO):
            raise ValueError("unknown DTMF method")
        if not (-1 <= rx_pt <= 127 and -1 <= tx_pt <= 127):
            raise ValueError("telephone-event payload types are 0..127 (or -1: none)")
        if send == DTMF_RFC2833 and tx_pt < 0:
            raise ValueError("sending RFC 2833 needs a telephone-event payload type")
        if not (0 <= tone_ms <= 5000 and 0 <= gap_ms <= 5000 and 0 <= volume <= 63) or level_dbm0 > 3.0:
            raise ValueError("tone_ms and gap_ms are 0..5000, volume 0..63, level at most 3 dBm0")
        if leg.dtmf == NULL:
            d = <DtmfLeg *>calloc(1, sizeof(DtmfLeg))
            if d == NULL:
                raise MemoryError()
            fresh = True
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            if fresh:
                rfc4733_rx_init(&d.rx)
                dtmf_detector_init(&d.det)
                d.pt_ssrc = ssrc
                d.pt_seq = <uint16_t>seq
                d.pt_ts = ts
                d.pt_ns = mono_ns()
                d.worker = <void *>self.w
                leg.dtmf = d
            d = leg.dtmf
            if d.accept != accept:
                d.locked = 0
            d.accept = <uint8_t>accept
            d.send = <uint8_t>send
            d.rx_pt = <int16_t>rx_pt
            d.tx_pt = <int16_t>tx_pt
            d.mute_inband = mute_inband
            d.volume = <uint8_t>volume
            d.level_dbm0 = level_dbm0
            d.tone_ms = tone_ms
            d.gap_ms = gap_ms
            if fresh:
                dtmf_generator_init(&d.gen, level_dbm0, tone_ms, gap_ms)
            peer = &self.w.legs[leg.peer]
            leg.dtmf_path = peer.dtmf != NULL
            peer.dtmf_path = leg.dtmf_path
            install_hook(leg)
            install_hook(peer)
            pthread_mutex_unlock(&self.w.lock)

    def clear_dtmf(self, int slot):
        """No DTMF work on this leg and its peer any more."""
        cdef Leg *leg = self._leg(slot)
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            drop_dtmf(self.w, &self.w.legs[leg.peer])
            drop_dtmf(self.w, leg)
            pthread_mutex_unlock(&self.w.lock)

    def has_dtmf(self, int slot):
        return self._leg(slot).dtmf != NULL

    def send_dtmf(self, int slot, bytes digits, int method, int duration_ms=100, int pause_ms=50,
                  double level_dbm0=-10.0, int volume=10):
        """Queue digits toward the leg's party as RFC 4733 events or in-band tones."""
        cdef Leg *leg = self._leg(slot)
        cdef const char *p = digits
        cdef int n = len(digits), i, queued = 0
        cdef int64_t now
        cdef uint64_t one = 1
        if leg.dtmf == NULL:
            raise ValueError("DTMF is not configured on this leg")
        if method not in (DTMF_RFC2833, DTMF_INBAND):
            raise ValueError("the engine sends digits as RFC 2833 events or in-band tones")
        if method == DTMF_RFC2833 and leg.dtmf.tx_pt < 0:
            raise ValueError("no telephone-event payload type toward this party")
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            now = mono_ns()
            for i in range(n):
                if method == DTMF_RFC2833:
                    if not tx_queue(self.w, leg, p[i], duration_ms, volume, pause_ms, now):
                        break
                else:
                    if not dtmf_generator_add(&leg.dtmf.gen, p[i], level_dbm0, duration_ms, pause_ms):
                        break
                    leg.dtmf.tones_out += 1
                queued += 1
            pthread_mutex_unlock(&self.w.lock)
            write(self.w.wakefd, &one, 8)      # the worker recomputes its timers
        return queued

    def info_digit(self, int slot, bytes digit, int duration_ms):
        """A digit the leg's party sent by SIP INFO: True if taken (reported, passed on by the
        peer's method), False if the leg does not take INFO (or locked another method)."""
        cdef Leg *leg = self._leg(slot)
        cdef Leg *peer
        cdef DtmfLeg *d = leg.dtmf
        cdef DtmfLeg *pd
        cdef char c
        cdef bint taken = False
        cdef int64_t now
        cdef uint64_t one = 1
        if d == NULL or not leg.dtmf_path:
            raise ValueError("DTMF is not configured on this leg")
        if len(digit) != 1 or rfc4733_char_event(digit[0]) < 0:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        c = digit[0]
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            now = mono_ns()
            peer = &self.w.legs[leg.peer]
            pd = peer.dtmf
            if dtmf_accepts(d, DTMF_INFO):
                taken = True
                if d.cur_digit:
                    digit_end(self.w, leg, now)
                d.locked = DTMF_INFO
                d.digits_in += 1
                if pd.send == DTMF_RFC2833:
                    tx_queue(self.w, peer, c, duration_ms, pd.volume, pd.gap_ms, now)
                elif pd.send == DTMF_INBAND:
                    if dtmf_generator_add(&pd.gen, c, pd.level_dbm0,
                                          duration_ms if duration_ms > pd.tone_ms else pd.tone_ms, pd.gap_ms):
                        pd.tones_out += 1
                dtmf_report(self.w, leg, c, DTMF_INFO, duration_ms, now)
            else:
                d.suppressed += 1
            pthread_mutex_unlock(&self.w.lock)
            write(self.w.wakefd, &one, 8)
        return taken
