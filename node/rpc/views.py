"""JSON views of chain objects, shaped like bitcoind's where they overlap. Amounts appear
both as `value` (coins, float, as bitcoind shows them) and `value_sat` (exact base units)."""
from __future__ import annotations

from core.consensus import COIN, bits_to_target
from core.crypto import encode_address
from core.primitives import COVENANT_NAMES, NAME_FIRSTUPDATE, NAME_NEW, NAME_UPDATE, Covenant, Tx
from node.rpc import name_encoding


def coins(value: int) -> float:
    return value / COIN


def text_or_hex(b: bytes) -> str:
    try:
        return b.decode("ascii") if all(32 <= c < 127 for c in b) else b.hex()
    except UnicodeDecodeError:
        return b.hex()


def covenant_view(c: Covenant) -> dict:
    v = {"type": COVENANT_NAMES.get(c.type, str(c.type))}
    if c.type == NAME_NEW and c.items:
        v["commitment"] = c.items[0].hex()
    elif c.type == NAME_FIRSTUPDATE and len(c.items) == 3:
        v.update(name=text_or_hex(c.items[0]), rand=c.items[1].hex(), value=c.items[2].decode("utf-8", "replace"))
    elif c.type == NAME_UPDATE and len(c.items) == 2:
        v.update(name=text_or_hex(c.items[0]), value=c.items[1].decode("utf-8", "replace"))
    return v


def name_op_view(c: Covenant, encodings: tuple[str, str]) -> dict | None:
    """Namecoin's vout[].scriptPubKey.nameOp: {op, hash | rand, name, name_encoding, value,
    value_encoding}, names and values in the node's encodings (an `_error` field where the
    encoding cannot show them); None for an output without a name operation."""
    if c.type == NAME_NEW and len(c.items) == 1:
        return {"op": "name_new", "hash": c.items[0].hex()}
    if c.type == NAME_FIRSTUPDATE and len(c.items) == 3:
        op = {"op": "name_firstupdate", "rand": c.items[1].hex()}
        name, value = c.items[0], c.items[2]
    elif c.type == NAME_UPDATE and len(c.items) == 2:
        op = {"op": "name_update"}
        name, value = c.items
    else:
        return None
    name_encoding.put(op, "name", name, encodings[0])
    name_encoding.put(op, "value", value, encodings[1])
    return op


def output_view(n: int, o, ver: int, encodings: tuple[str, str]) -> dict:
    address = encode_address(ver, o.address)
    # bitcoind-shaped scriptPubKey for clients that read vout[].scriptPubKey (ncdns, ElectrumX
    # ports): dotbit outputs are an address plus a covenant, so there is no asm or hex script.
    spk = {"address": address, "type": "pubkeyhash"}
    op = name_op_view(o.covenant, encodings)
    if op is not None:
        spk["nameOp"] = op
    return {"n": n, "value": coins(o.value), "value_sat": o.value, "address": address,
            "covenant": covenant_view(o.covenant), "scriptPubKey": spk}


def tx_view(tx: Tx, params, encodings: tuple[str, str] = ("ascii", "ascii")) -> dict:
    """`encodings`: (name, value) encodings of vout[].scriptPubKey.nameOp."""
    ver = params.address_version
    vin = [{"txid": i.prev_txid.hex(), "vout": i.prev_index, "pubkey": i.pubkey.hex(), "sig": i.sig.hex()}
           for i in tx.inputs]
    if tx.is_coinbase:
        vin = [{"coinbase": True, "height": tx.locktime}]
    vout = [output_view(n, o, ver, encodings) for n, o in enumerate(tx.outputs)]
    return {"txid": tx.txid.hex(), "hash": tx.wtxid.hex(), "version": tx.version, "size": tx.size,
            "locktime": tx.locktime, "vin": vin, "vout": vout, "hex": tx.to_bytes().hex()}


def header_view(chain, entry) -> dict:
    h = entry.header
    confirmations = chain.height - entry.height + 1 if chain.on_main_chain(entry) else -1
    nxt = chain.entry_at(entry.height + 1) if chain.on_main_chain(entry) else None
    v = {"hash": entry.hash.hex(), "confirmations": confirmations, "height": entry.height,
         "version": h.version, "merkleroot": h.merkle_root.hex(), "name_root": h.name_root.hex(),
         "time": h.time, "mediantime": entry.median_time_past(), "nonce": h.nonce,
         "bits": f"{h.bits:08x}", "target": f"{bits_to_target(h.bits):064x}",
         "difficulty": difficulty(chain.params, h.bits), "chainwork": f"{entry.work:064x}"}
    if entry.prev is not None:
        v["previousblockhash"] = entry.prev.hash.hex()
    if nxt is not None:
        v["nextblockhash"] = nxt.hash.hex()
    if h.auxpow is not None:
        v["auxpow"] = auxpow_view(h.auxpow)
    return v


def auxpow_view(aux) -> dict:
    """Namecoin Core's `auxpow` object of getblock/getblockheader (the coinbase as hex only);
    branch hashes in Bitcoin's display order, as Namecoin shows them."""
    return {"tx": {"hex": aux.coinbase_tx.hex()}, "index": aux.coinbase_index,
            "merklebranch": [b[::-1].hex() for b in aux.coinbase_branch],
            "chainindex": aux.chain_index, "chainmerklebranch": [b[::-1].hex() for b in aux.chain_branch],
            "parentblock": aux.parent_header.hex()}


def difficulty(params, bits: int) -> float:
    return params.pow_limit / max(bits_to_target(bits), 1)
