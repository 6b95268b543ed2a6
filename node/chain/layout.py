"""The ONE key table of the node's LevelDB. Nobody else invents keys.

  V                              -> pack([db_version, network, genesis_hash])
  R                              -> tip block hash
  b + hash32                     -> block (canonical msgpack)
  h + hash32                     -> header entry pack([header112, height, chainwork, status])
  H + height4                    -> hash of the main-chain block at that height
  u + hash32                     -> undo record of a connected block
  c + txid32 + index4            -> unspent coin pack([value, address, covenant, height, coinbase])
  t + txid32                     -> pack([block_hash, position]) for main-chain transactions
  a + address20 + txid32 + index4 -> b""  address -> its unspent coins
  A + address20 + height4 + txid32 -> b"" address -> transactions touching it
  n + len1 + name                -> current name record pack([name, value, address, height, txid, vout])
  N + len1 + name + height4 + pos4 -> name history entry (the record as of that operation)
  e + height4 + name             -> expiry index: names last updated so they expire at that height
(the 1-byte length before a name makes iteration length-first, the order Namecoin's name_scan
shows, and keeps one name's history prefix from matching a longer name)
  T + node_hash32                -> name-tree node (content-addressed, never deleted)
  K + len1 + name                -> latest MinimaLT ephemeral-key update (off-chain, resolver)
  X + serial16                   -> CA-issued certificate record (off-chain, resolver CA)
  x + len1 + name + serial16     -> b"" a name's CA-issued certificates
  Y                              -> the CA's current CRL pack([crl_number, der])
  Z                              -> zone meta pack([serial, tip_hash, resolver_pubkey, first_step, next_step])
  z o + owner_key                -> one owner of the signed bit. zone pack([owner_wire, flags, sig_expiration, [[type, ttl, rdata]...]])
  z n + len1 + name              -> a d/ name's share of the zone pack([owner_keys, imported_names])
  z r + len1 + imported + name   -> b"" reverse import index: who must be re-rendered when `imported` changes
  z s + expiration4 + owner_key  -> b"" signature expiry index (oldest signatures are refreshed first)
  z i + step8                    -> one IXFR step pack([old_serial, new_serial, tip_hash, deleted, added])
(owner_key: labels from the root down, lower-cased, each closed by 0x00, so key order is DNS
canonical order and AXFR iterates in it; the zone keys are the resolver's projection, kept in
each block's batch while a resolver with DNS runs, rebuilt when it starts on a stale one; reindex
rebuilds them but keeps Z's serial, which must only increase for secondaries)
(K, X, x and Y are not projections: they are not derived from blocks, so reindex and checkdb
leave them alone; a CA's issuance and revocation history cannot be rebuilt from the chain)
Integers in keys are big-endian fixed width so key order is numeric order.
"""
from __future__ import annotations

import struct

DB_VERSION = 1
_U32 = struct.Struct(">I")
assert _U32.unpack(_U32.pack(0x01020304))[0] == 0x01020304 and _U32.pack(1) < _U32.pack(256)

VERSION = b"V"
TIP = b"R"
BLOCK = b"b"
HEADER = b"h"
HEIGHT = b"H"
UNDO = b"u"
COIN = b"c"
TXINDEX = b"t"
ADDR_COIN = b"a"
ADDR_HIST = b"A"
NAME = b"n"
NAME_HIST = b"N"
EXPIRY = b"e"
TREE = b"T"
EKEY = b"K"
CA_CERT = b"X"
CA_BY_NAME = b"x"
CA_CRL = b"Y"
ZONE_META = b"Z"
ZONE_OWNER = b"zo"
ZONE_NAME = b"zn"
ZONE_IMPORT = b"zr"
ZONE_SIGEXP = b"zs"
ZONE_STEP = b"zi"
ZONE_PARTS = (ZONE_OWNER, ZONE_NAME, ZONE_IMPORT, ZONE_SIGEXP, ZONE_STEP)

# Prefixes rebuilt by reindex and compared by checkdb (everything derived from the blocks).
PROJECTIONS = (TIP, HEIGHT, UNDO, COIN, TXINDEX, ADDR_COIN, ADDR_HIST, NAME, NAME_HIST, EXPIRY)


def u32(n: int) -> bytes:
    return _U32.pack(n)


def read_u32(b: bytes) -> int:
    return _U32.unpack(b)[0]


def block_key(h: bytes) -> bytes: return BLOCK + h
def header_key(h: bytes) -> bytes: return HEADER + h
def height_key(height: int) -> bytes: return HEIGHT + _U32.pack(height)
def undo_key(h: bytes) -> bytes: return UNDO + h
def coin_key(txid: bytes, index: int) -> bytes: return COIN + txid + _U32.pack(index)
def txindex_key(txid: bytes) -> bytes: return TXINDEX + txid
def addr_coin_key(addr: bytes, txid: bytes, index: int) -> bytes: return ADDR_COIN + addr + txid + _U32.pack(index)
def addr_hist_key(addr: bytes, height: int, txid: bytes) -> bytes: return ADDR_HIST + addr + _U32.pack(height) + txid
def name_key(name: bytes) -> bytes: return NAME + bytes([len(name)]) + name
def name_hist_prefix(name: bytes) -> bytes: return NAME_HIST + bytes([len(name)]) + name
def name_hist_key(name: bytes, height: int, pos: int) -> bytes: return name_hist_prefix(name) + _U32.pack(height) + _U32.pack(pos)
def expiry_prefix(height: int) -> bytes: return EXPIRY + _U32.pack(height)
def expiry_key(height: int, name: bytes) -> bytes: return EXPIRY + _U32.pack(height) + name
def tree_key(node_hash: bytes) -> bytes: return TREE + node_hash
def ekey_key(name: bytes) -> bytes: return EKEY + bytes([len(name)]) + name
def ca_cert_key(serial: bytes) -> bytes: return CA_CERT + serial
def ca_name_prefix(name: bytes) -> bytes: return CA_BY_NAME + bytes([len(name)]) + name
def ca_name_key(name: bytes, serial: bytes) -> bytes: return ca_name_prefix(name) + serial
def zone_owner_key(okey: bytes) -> bytes: return ZONE_OWNER + okey
def zone_name_key(name: bytes) -> bytes: return ZONE_NAME + bytes([len(name)]) + name
def zone_import_prefix(dep: bytes) -> bytes: return ZONE_IMPORT + bytes([len(dep)]) + dep
def zone_import_key(dep: bytes, name: bytes) -> bytes: return zone_import_prefix(dep) + name
def zone_sigexp_key(expiration: int, okey: bytes) -> bytes: return ZONE_SIGEXP + _U32.pack(expiration) + okey
def zone_step_key(n: int) -> bytes: return ZONE_STEP + n.to_bytes(8, "big")
