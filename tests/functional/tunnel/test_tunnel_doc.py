"""docs/protocol.md §9 is precise enough to write a second tunnel client: this one is written
from the document alone (hashlib, struct, PyNaCl's libsodium bindings; no tunnel code) and
fetches a page through the real `dotbit-tunnel serve` in one OPEN."""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time

from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_decrypt, crypto_aead_chacha20poly1305_ietf_encrypt,
                           crypto_box_keypair, crypto_scalarmult)

from support.tunnel import INDEX


def blake2b_512(person: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64, person=person).digest()


def nonce(pn: int) -> bytes:
    return bytes(4) + struct.pack(">Q", pn)


def frames(plain: bytes) -> list:
    out, o = [], 0
    while o < len(plain) and plain[o] != 0:
        t = plain[o]
        if t == 1:
            sid, seq, flags, n = struct.unpack_from(">IQBH", plain, o + 1)
            out.append(("stream", sid, seq, plain[o + 16:o + 16 + n], flags & 1))
            o += 16 + n
        elif t == 2:
            out.append(("ack",) + struct.unpack_from(">IQI", plain, o + 1))
            o += 17
        else:
            o += {3: 5, 4: 41, 5: 9, 6: 1, 7: 1, 8: 1, 9: 5}[t]     # 8: PROBE, padding follows
    return out


def test_a_client_written_from_the_document_gets_the_page(world):
    id_key, eph_key = base64.b64decode(world.pub["id_key"]), base64.b64decode(world.pub["eph_key"])
    c_pub, c_sec = crypto_box_keypair()
    tid = os.urandom(8)
    k = blake2b_512(b"dotbit-tun-open", crypto_scalarmult(c_sec, eph_key) + crypto_scalarmult(c_sec, id_key)
                    + c_pub + eph_key + id_key + tid)
    c2s, s2c = k[:32], k[32:]
    key_id = hashlib.sha256(b"dotbit-tun-keyid" + eph_key).digest()[:4]
    header = (b"\x01" + tid + struct.pack(">Q", 0) + key_id + c_pub + struct.pack(">Q", int(time.time()))
              + bytes(16) + bytes(8))
    assert len(header) == 85
    request = b"GET /index.html?doc HTTP/1.0\r\n\r\n"
    body = struct.pack(">BIQBH", 1, 1, 0, 1, len(request)) + request           # STREAM sid 1, FIN
    datagram = header + crypto_aead_chacha20poly1305_ietf_encrypt(body, header, nonce(0), c2s)

    got, fin_at = {}, None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(datagram, ("127.0.0.1", world.udp_port))
        end = time.monotonic() + 20
        while (fin_at is None or sum(map(len, got.values())) < fin_at) and time.monotonic() < end:
            data = s.recv(2048)
            assert data[0] == 2 and data[1:9] == tid                            # DATA on our tunnel
            pn = struct.unpack(">Q", data[9:17])[0]
            plain = crypto_aead_chacha20poly1305_ietf_decrypt(data[17:], data[:17], nonce(pn), s2c)
            for f in frames(plain):
                if f[0] == "stream" and f[1] == 1:
                    got[f[2]] = f[3]
                    if f[4]:
                        fin_at = f[2] + len(f[3])
    page = b"".join(got[k] for k in sorted(got))
    head, _, content = page.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and content == INDEX
