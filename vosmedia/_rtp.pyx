# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Relay core: one `Relay` per worker thread.

A worker owns an epoll set over its legs' sockets and runs `run()` with the GIL
released: recvmmsg a batch from a ready socket, validate and account every packet,
sendmmsg the batch out of the peer leg's socket. Python only adds, changes, queries
and removes legs (under the worker's mutex) and drains events (RTP timeouts).

Slots: legs live in a fixed array; an epoll registration carries (generation, slot,
is_rtcp) so an event that raced with a removal is recognised as stale and ignored.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memset, memcpy, memcmp
from libc.stdlib cimport calloc, free
from posix.unistd cimport close, read, write

from vosmedia._transcode cimport Transcoder, TcStats, tc_feed, tc_conceal
from vosmedia._jitter cimport (JitterBuffer, JbSlot, JbStats, jb_put, jb_get, jb_depth_ms,
                               jb_target_ms, JB_FRAME, JB_CONCEAL)

import socket as _socket

cdef enum:
    EVENT_TIMEOUT = 1
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

EVENT_KINDS = {EVENT_TIMEOUT: "timeout"}


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
        nrtp = queue_made(w, leg, tclens, made, nrtp, &used)
    if nrtp:
        if peer.has_dst_rtp:
            flush_rtp(w, peer, nrtp)
        else:
            leg.drops.no_destination += nrtp


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


cdef void push_event(Worker *w, int kind, const Leg *leg, int64_t idle_ns) noexcept nogil:
    cdef Event *ev
    cdef uint64_t one = 1
    if w.ev_count == w.ev_cap:
        w.totals.events_lost += 1
        return
    ev = &w.events[(w.ev_head + w.ev_count) % w.ev_cap]
    ev.kind = kind
    ev.session = leg.session
    ev.side = leg.side
    ev.idle_ms = idle_ns // 1000000
    w.ev_count += 1
    write(w.notifyfd, &one, 8)


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
        if now - w.last_scan_ns >= SCAN_INTERVAL_NS:
            w.last_scan_ns = now
            scan_timeouts(w, now)
        stopping = w.stopping
        pthread_mutex_unlock(&w.lock)


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
        if w.legs == NULL or w.free_slots == NULL or w.events == NULL or w.bufs == NULL \
                or w.tcbuf == NULL or w.playout == NULL:
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
            leg.tc = transcoder.tc if transcoder is not None else NULL
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
        leg.tc = NULL
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
        self._leg(slot)
        memset(&tcs, 0, sizeof(TcStats))
        memset(&jbs, 0, sizeof(JbStats))
        with nogil:
            pthread_mutex_lock(&self.w.lock)
            memcpy(&copy, &self.w.legs[slot], sizeof(Leg))
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
        """Pending events as (kind, session, side, idle_ms) tuples, oldest first."""
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
            out.append((EVENT_KINDS[ev.kind], ev.session, ev.side, ev.idle_ms))
