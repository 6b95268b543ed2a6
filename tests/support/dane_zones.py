"""DNSSEC-signed test zones for the DANE source: real keys (a KSK and a ZSK, both Ed25519 or
both ECDSA P-256: RFC 4035 §2.2 wants every algorithm of the DNSKEY RRset to sign everything),
signed with dnspython, written as BIND zone files, and trust-anchor files for them. Helpers to
break a zone the ways an attacker or a lapsed signing job would (a flipped RRSIG byte, a
missing RRSIG, expired signatures)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

TLSA_HEX = bytes(range(1, 33)).hex().upper()


@dataclass
class ZoneKeys:
    ksk: object
    ksk_dnskey: object
    zsk: object
    zsk_dnskey: object

    @classmethod
    def generate(cls, algorithm: int = 15) -> "ZoneKeys":
        """15 Ed25519 or 13 ECDSAP256SHA256."""
        new = ed25519.Ed25519PrivateKey.generate if algorithm == 15 else lambda: ec.generate_private_key(ec.SECP256R1())
        ksk, zsk = new(), new()
        return cls(ksk, dns.dnssec.make_dnskey(ksk.public_key(), algorithm, flags=257),
                   zsk, dns.dnssec.make_dnskey(zsk.public_key(), algorithm, flags=256))

    def ds_line(self, origin: str) -> str:
        return f"{origin} 3600 IN DS {dns.dnssec.make_ds(origin, self.ksk_dnskey, 'SHA256').to_text()}"

    def dnskey_line(self, origin: str) -> str:
        return f"{origin} 3600 IN DNSKEY {self.ksk_dnskey.to_text()}"


def zone_text(origin: str, extra: str = "", tlsa: str = f"3 1 1 {TLSA_HEX}") -> str:
    """An SOA, NS and glue, www A, a TLSA for _443._tcp.www, a CNAME, plus `extra` lines."""
    o = origin
    return (f"{o} 3600 IN SOA ns1.{o} hostmaster.{o} 1 7200 3600 1209600 300\n"
            f"{o} 3600 IN NS ns1.{o}\n"
            f"ns1.{o} 3600 IN A 192.0.2.53\n"
            f"www.{o} 3600 IN A 192.0.2.1\n"
            f"www.{o} 3600 IN AAAA 2001:db8::1\n"
            f"_443._tcp.www.{o} 3600 IN TLSA {tlsa}\n"
            f"web.{o} 3600 IN CNAME www.{o}\n" + extra)


def signed_zone(origin: str, keys: ZoneKeys | None, extra: str = "", *, inception: float | None = None,
                expiration: float | None = None, tlsa: str = f"3 1 1 {TLSA_HEX}") -> dns.zone.Zone:
    """The zone, signed (KSK signs the DNSKEY RRset, ZSK the rest) unless keys is None."""
    zone = dns.zone.from_text(zone_text(origin, extra, tlsa), origin=origin, relativize=False)
    if keys is not None:
        now = time.time()
        dns.dnssec.sign_zone(zone, keys=[(keys.ksk, keys.ksk_dnskey), (keys.zsk, keys.zsk_dnskey)],
                             inception=now - 3600 if inception is None else inception,
                             expiration=now + 7 * 86400 if expiration is None else expiration)
    return zone


def write_zone(zone: dns.zone.Zone, path: str) -> str:
    zone.to_file(path, relativize=False)
    return path


def write_anchors(path: str, *lines: str) -> str:
    with open(path, "w") as f:
        f.write("; trust anchors for the DANE source\n" + "\n".join(lines) + "\n")
    return path


def flip_rrsig(zone: dns.zone.Zone, owner: str, covered: str, byte: int = 10) -> None:
    """One bit of one signature byte changed, the rest of the zone untouched."""
    name = dns.name.from_text(owner)
    node = zone.get_node(name)
    sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.from_text(covered))
    bad = [s.replace(signature=s.signature[:byte] + bytes([s.signature[byte] ^ 1]) + s.signature[byte + 1:])
           for s in sigs]
    node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, sigs.covers)
    new = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, sigs.covers, create=True)
    for s in bad:
        new.add(s, sigs.ttl)


def drop_rrsig(zone: dns.zone.Zone, owner: str, covered: str) -> None:
    zone.get_node(dns.name.from_text(owner)).delete_rdataset(
        dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.from_text(covered))
