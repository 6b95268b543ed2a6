"""The tunnel's pure parts: the wire codec (hypothesis round trips, golden layouts, refusal of
malformed input), key agreement and sealing, puzzles, the replay cache and packet window,
and one stream's reliability and flow control."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_box_keypair

from tunnel import crypto as C
from tunnel import packet as P
from tunnel.stream import RecvSide, SendSide

b = st.binary
u32, u64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
frames = st.one_of(
    st.builds(P.Stream, u32, u64, b(max_size=1200), st.booleans()),
    st.builds(P.Ack, u32, u64, u32), st.builds(P.Reset, u32),
    st.builds(P.NextTid, b(min_size=8, max_size=8), b(min_size=32, max_size=32)),
    st.builds(P.NextTidAck, b(min_size=8, max_size=8)), st.just(P.Ping()), st.just(P.Close()),
    st.just(P.Probe()), st.builds(P.ProbeAck, u32))


@given(st.lists(frames, max_size=8), st.integers(0, 30))
def test_frames_round_trip_with_padding(fs, pad):
    assert P.decode_frames(P.encode_frames(fs) + bytes(pad)) == fs


@given(b(min_size=8, max_size=8), u64, b(min_size=16, max_size=1300))
def test_data_round_trip(tid, pn, sealed):
    d = P.Data(tid, pn, sealed)
    assert P.parse_datagram(d.to_bytes()) == d


@given(b(min_size=8, max_size=8), u64, b(min_size=4, max_size=4), b(min_size=32, max_size=32), u64,
       b(min_size=16, max_size=16), b(min_size=8, max_size=8), b(min_size=16, max_size=1300))
def test_open_round_trip(tid, pn, kid, pub, when, challenge, solution, sealed):
    o = P.Open(tid, pn, kid, pub, when, challenge, solution, sealed)
    assert len(o.header()) == P.OPEN_HEADER and P.parse_datagram(o.to_bytes()) == o


@settings(max_examples=300)
@given(b(max_size=1500))
def test_garbage_is_refused_with_packet_error_only(data):
    for parse in (P.parse_datagram, P.decode_frames):
        try:
            parse(data)
        except P.PacketError:
            pass


def test_golden_layouts():
    assert P.encode_frame(P.Stream(1, 2, b"hi", True)).hex() == "01" "00000001" "0000000000000002" "01" "0002" "6869"
    assert P.encode_frame(P.Ack(3, 4, 5)).hex() == "02" "00000003" "0000000000000004" "00000005"
    assert P.Data(bytes(range(8)), 1, b"").header().hex() == "02" "0001020304050607" "0000000000000001"
    assert P.Puzzle(bytes(8), bytes(16)).to_bytes()[0] == 3 and P.PUZZLE_SIZE < P.OPEN_HEADER + P.TAG_LEN
    assert P.encode_frame(P.ProbeAck(65507)).hex() == "09" "0000ffe3"
    probe = P.probe_plaintext(9000)
    assert len(probe) == 9000 - 17 - 16 and probe[0] == 8 and P.decode_frames(probe) == [P.Probe()]
    assert P.max_plaintext(P.BASE_DATAGRAM) == P.MAX_PLAINTEXT == 1400 - 85 - 16


def test_datagrams_up_to_the_largest_udp_payload_parse():
    d = P.Data(bytes(8), 7, bytes(P.MAX_DATAGRAM - P.DATA_HEADER))
    assert len(d.to_bytes()) == 65507 and P.parse_datagram(d.to_bytes()) == d


@pytest.mark.parametrize("data, why", [
    (b"", "datagram size"), (bytes([9]) + bytes(40), "unknown kind"), (bytes([2]) + bytes(20), "short data"),
    (bytes([1]) + bytes(90), "short open"), (bytes([3]) + bytes(30), "puzzle size"),
    (bytes([2]) + bytes(P.MAX_DATAGRAM), "datagram size"), (bytes([1]) + bytes(P.BASE_DATAGRAM), "open size")])
def test_malformed_datagrams(data, why):
    with pytest.raises(P.PacketError, match=why):
        P.parse_datagram(data)


@pytest.mark.parametrize("data, why", [
    (bytes([1, 0, 0, 0, 1]), "truncated"), (P.encode_frame(P.Stream(1, 0, b"abc"))[:-1], "truncated"),
    (bytes([1]) + bytes(12) + bytes([2, 0, 0]), "flags"), (bytes([0, 1]), "padding"), (bytes([99]), "unknown frame")])
def test_malformed_frames(data, why):
    with pytest.raises(P.PacketError, match=why):
        P.decode_frames(data)


# --- crypto ----------------------------------------------------------------------------------

def _pairs():
    (ip, isk), (ep, esk), (cp, csk) = crypto_box_keypair(), crypto_box_keypair(), crypto_box_keypair()
    return ip, isk, ep, esk, cp, csk


def test_both_sides_agree_and_each_direction_has_its_key():
    ip, isk, ep, esk, cp, csk = _pairs()
    tid = bytes(8)
    c, s = C.client_keys(csk, ep, ip, tid), C.server_keys(esk, isk, cp, tid)
    assert c.send == s.recv and c.recv == s.send and c.send != c.recv
    assert C.next_keys(c, True) == C.Keys(C.next_keys(s, False).recv, C.next_keys(s, False).send)
    assert C.next_keys(c, True).send not in (c.send, c.recv)


def test_a_server_without_the_id_secret_or_the_eph_secret_derives_other_keys():
    ip, isk, ep, esk, cp, csk = _pairs()
    good = C.client_keys(csk, ep, ip, bytes(8))
    other = crypto_box_keypair()[1]
    assert C.server_keys(other, isk, cp, bytes(8)).recv != good.send
    assert C.server_keys(esk, other, cp, bytes(8)).recv != good.send
    assert C.server_keys(esk, isk, cp, bytes([1] * 8)).recv != good.send     # bound to the tunnel ID


def test_seal_binds_key_pn_and_header():
    key = bytes(32)
    sealed = C.seal(key, 7, b"header", b"data")
    assert C.unseal(key, 7, b"header", sealed) == b"data"
    for k, pn, h, s in ((bytes([1] * 32), 7, b"header", sealed), (key, 8, b"header", sealed),
                        (key, 7, b"headex", sealed), (key, 7, b"header", sealed[:-1] + bytes([sealed[-1] ^ 1]))):
        with pytest.raises(C.TunnelCryptoError):
            C.unseal(k, pn, h, s)


def test_low_order_public_keys_are_refused():
    with pytest.raises(C.TunnelCryptoError):
        C.client_keys(crypto_box_keypair()[1], bytes(32), crypto_box_keypair()[0], bytes(8))


def test_puzzles():
    secret = bytes(32)
    ch = C.make_challenge(secret, 100, 10)
    assert C.challenge_fields(secret, ch) == (100, 10) and C.challenge_fields(bytes([1] * 32), ch) is None
    assert C.challenge_fields(secret, ch[:4] + bytes([1]) + ch[5:]) is None      # difficulty is MACed
    sol = C.solve(ch, bytes(8), bytes(32))
    assert C.puzzle_ok(ch, bytes(8), bytes(32), sol)
    assert not C.puzzle_ok(ch, bytes(8), bytes([1] * 32), sol) or not C.puzzle_ok(ch, bytes([2] * 8), bytes(32), sol)


def test_replay_cache_refuses_repeats_and_refuses_all_when_full():
    cache = C.ReplayCache(3, window=60)
    assert all(cache.check_and_add(bytes([i] * 32), 1000 + i, 1000) for i in range(3))
    assert not cache.check_and_add(bytes([0] * 32), 1000, 1000)
    assert cache.full(1050) and not cache.check_and_add(bytes([9] * 32), 1050, 1050)   # full: refuse, never forget
    assert not cache.check_and_add(bytes([0] * 32), 1000, 1060)          # still replayable: still known
    assert cache.check_and_add(bytes([9] * 32), 1061, 1061)              # 1000 is out of the window: forgotten
    assert bytes([0] * 32) not in cache.seen and bytes([1] * 32) in cache.seen


def test_packet_window():
    w = C.PacketWindow(span=16)
    assert w.accept(5) and not w.accept(5) and w.accept(3) and w.accept(100)
    assert not w.accept(84) and w.accept(85)
    for pn in range(101, 200):
        w.accept(pn)
    assert len(w.seen) <= 2 * 16 + 1


# --- one stream ------------------------------------------------------------------------------

def test_stream_survives_loss_duplication_and_reordering():
    rng = random.Random(4)
    data = rng.randbytes(50_000)
    tx, rx, out, now = SendSide(), RecvSide(), bytearray(), 0.0
    tx.buf += data
    tx.fin_queued = True
    while not tx.fin_acked:
        now += 1
        segs = []
        while (seg := tx.take(1000, now)) is not None:
            segs.append(seg)
        if not segs and tx.flight:
            tx.rewind()                                   # a timeout: go back to the first unacked byte
            continue
        rng.shuffle(segs)
        for seq, chunk, fin in segs + segs[:2]:           # reordered, two duplicated
            if rng.random() < 0.2:
                continue                                  # lost
            out += rx.on_data(seq, chunk, fin)
            rx.consumed(rx.unread)
            tx.on_ack(rx.ack_value(), rx.window(), now)
    assert bytes(out) == data and rx.eof


def test_flow_control_stops_the_sender_at_the_window():
    tx, rx = SendSide(), RecvSide(window=4000)
    tx.buf += bytes(10_000)
    sent = 0
    while (seg := tx.take(1000, 0.0)) is not None and sent < 20_000:
        got = rx.on_data(*seg)
        sent += len(seg[1])
        tx.on_ack(rx.ack_value(), rx.window(), 0.0)
        assert len(got) == len(seg[1])
    assert sent == 4000 and rx.window() == 0               # nothing consumed: the sender waits
    rx.consumed(4000)
    tx.on_ack(rx.ack_value(), rx.window(), 0.0)
    assert tx.take(1000, 0.0) is not None
