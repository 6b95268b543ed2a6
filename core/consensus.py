"""Consensus rules as pure functions: no I/O, no clock, no globals. Parameters are passed in
(a `core.params.Params`), the current time too. Name covenant rules live in core/names/rules.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.auxpow import AUXPOW_FLAG, check_auxpow, chain_id_of
from core.crypto import hash160, sighash, verify_digest
from core.errors import ValidationError
from core.primitives import (BURN, NONE, PLAIN, Block, Covenant, Header, Tx,
                         block_merkle_root)

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
MAX_FUTURE_SECONDS = 2 * 60 * 60
MEDIAN_TIME_SPAN = 11
MAX_TIMEWARP = 600          # BIP94: how far a period's first block may precede its parent
BURN_ADDRESS = bytes(20)


@dataclass(frozen=True, slots=True)
class Coin:
    """An unspent output as the UTXO set keeps it."""
    value: int
    address: bytes
    covenant: Covenant
    height: int
    coinbase: bool

    def to_obj(self) -> list:
        return [self.value, self.address, self.covenant.to_obj(), self.height, self.coinbase]

    @staticmethod
    def from_obj(obj) -> "Coin":
        cov = obj[2]
        # Most coins are plain payments: they share PLAIN (equal to a new Covenant(0, ())).
        covenant = PLAIN if cov == [NONE] else Covenant(cov[0], tuple(cov[1:]))
        return Coin(obj[0], obj[1], covenant, obj[3], obj[4])


# --- proof of work ---------------------------------------------------------------------------

def bits_to_target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000:          # negative targets are invalid in compact form
        return 0
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def target_to_bits(target: int) -> int:
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        mantissa = target << (8 * (3 - size))
    else:
        mantissa = target >> (8 * (size - 3))
    if mantissa & 0x00800000:      # keep the sign bit clear
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def block_work(bits: int) -> int:
    target = bits_to_target(bits)
    return (1 << 256) // (target + 1) if target > 0 else 0


def check_pow(header: Header, block_hash: bytes, params) -> None:
    """The header's own proof of work, or (AuxPoW flag in its version) its parent block's.
    Whether AuxPoW is active at the header's height is a context rule (check_header_context)."""
    target = bits_to_target(header.bits)
    if target <= 0 or target > params.pow_limit:
        raise ValidationError("bad-diffbits", 100, "target out of range")
    # The flag is tested inline here and below (not via is_auxpow_version): every header of a
    # sync passes, and plain headers should cost what they did before merged mining.
    if bool(header.version & AUXPOW_FLAG) != (header.auxpow is not None):
        raise ValidationError("auxpow-flag-mismatch", 100, "AuxPoW flag and AuxPoW data disagree")
    if header.auxpow is None:
        if int.from_bytes(block_hash, "big") > target:
            raise ValidationError("high-hash", 50, "proof of work failed")
        return
    if chain_id_of(header.version) != params.auxpow_chain_id:
        raise ValidationError("auxpow-wrong-chain-id", 100, "AuxPoW block without our chain ID")
    check_auxpow(header.auxpow, block_hash, params.auxpow_chain_id, target)


def next_bits(params, prev_height: int, prev_bits: int, prev_time: int, first_time: int | None) -> int:
    """Bits required for the block at prev_height + 1. `first_time` is the time of the first
    block of the period that ends at prev_height (height prev_height + 1 - interval). As in
    Bitcoin, that window spans interval - 1 spacings while the expected span counts interval:
    the off-by-one that makes the time-warp attack possible, closed by the period-start rule
    in `check_header_context` rather than by a new window."""
    height = prev_height + 1
    if not params.retarget or height % params.retarget_interval != 0:
        return prev_bits
    if first_time is None:
        raise ValueError("retarget needs the time one interval back")
    expected = params.spacing * params.retarget_interval
    actual = min(max(prev_time - first_time, expected // 4), expected * 4)
    target = min(bits_to_target(prev_bits) * actual // expected, params.pow_limit)
    return target_to_bits(target)


def median_time_past(times: list[int]) -> int:
    s = sorted(times[-MEDIAN_TIME_SPAN:])
    return s[len(s) // 2]


# `time_at(h)`: the time of the checked header's ancestor at height h (h below its height).
# Every party passes its own view of the branch: the chain's block index, the light client's
# header list, p2p's header tree. Only these functions decide what the next header may be.
TimeAt = Callable[[int], int]


def required_bits(params, height: int, prev_bits: int, time_at: TimeAt) -> int:
    """Bits the header at `height` must carry, given its parent's bits."""
    first_time = None
    if params.retarget and height % params.retarget_interval == 0:
        first_time = time_at(height - params.retarget_interval)
    return next_bits(params, height - 1, prev_bits, time_at(height - 1), first_time)


def median_time_at(height: int, time_at: TimeAt) -> int:
    """The median time past a header at `height` must exceed."""
    return median_time_past([time_at(h) for h in range(max(0, height - MEDIAN_TIME_SPAN), height)])


def starts_period(params, height: int) -> bool:
    return height > 0 and height % params.retarget_interval == 0


def earliest_time(params, height: int, time_at: TimeAt) -> int:
    """The earliest time the header at `height` may carry: after the median time past and,
    for the first block of a retarget period, no more than MAX_TIMEWARP before its parent."""
    mtp = median_time_at(height, time_at)
    if starts_period(params, height):
        return max(mtp + 1, time_at(height - 1) - MAX_TIMEWARP)
    return mtp + 1


def check_header_context(header: Header, height: int, prev_bits: int, time_at: TimeAt,
                         params, now: int) -> None:
    """The rules a header must meet on its branch: difficulty, time after the median time
    past, BIP94's period start (every network, whether it retargets or not) and not too far
    in the future."""
    if header.version & AUXPOW_FLAG and height < params.auxpow_height:
        raise ValidationError("auxpow-before-activation", 100, f"AuxPoW is valid from height {params.auxpow_height}")
    if header.bits != required_bits(params, height, prev_bits, time_at):
        raise ValidationError("bad-diffbits", 100, "incorrect proof of work target")
    mtp = median_time_at(height, time_at)
    if header.time <= mtp:
        raise ValidationError("time-too-old", 0, "block time not after median time past")
    if starts_period(params, height) and header.time < time_at(height - 1) - MAX_TIMEWARP:
        # A period's first block stamped far before the previous period's last one lets a
        # majority miner shrink every measured window: difficulty collapses (time warp).
        raise ValidationError("time-timewarp-attack", 100,
                              f"a period's first block may be at most {MAX_TIMEWARP} s before its parent")
    if header.time > now + MAX_FUTURE_SECONDS:
        # Not the sender's fault for sure (clocks differ): no ban, and not remembered invalid.
        raise ValidationError("time-too-new", 0, "block time too far in the future")


# --- money -------------------------------------------------------------------------------------

def subsidy(height: int, params) -> int:
    halvings = height // params.halving_interval
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


def money_range(v: int) -> bool:
    return 0 <= v <= MAX_MONEY


# --- transactions ------------------------------------------------------------------------------

def check_tx_sanity(tx: Tx, params) -> None:
    """Context-free checks (sizes, value ranges, duplicate inputs, output shapes)."""
    if not tx.outputs:
        raise ValidationError("bad-txns-vout-empty", 100)
    if tx.size > params.max_tx_size:
        raise ValidationError("bad-txns-oversize", 100)
    total = 0
    for out in tx.outputs:
        if not money_range(out.value):
            raise ValidationError("bad-txns-vout-toolarge", 100)
        total += out.value
        if not money_range(total):
            raise ValidationError("bad-txns-txouttotal-toolarge", 100)
        ctype = out.covenant.type
        if ctype == BURN:
            if out.address != BURN_ADDRESS or out.covenant.items:
                raise ValidationError("bad-txns-burn-shape", 100)
        elif ctype == NONE:
            if out.covenant.items:
                raise ValidationError("bad-txns-covenant-shape", 100)
        elif ctype not in params.covenant_types:
            raise ValidationError("bad-txns-covenant-type", 100)
    seen = set()
    for i in tx.inputs:
        if i.outpoint in seen:
            raise ValidationError("bad-txns-inputs-duplicate", 100)
        seen.add(i.outpoint)
    if tx.is_coinbase and any(o.covenant.type != NONE for o in tx.outputs):
        raise ValidationError("bad-cb-covenant", 100)


def wrong_key(n: int) -> ValidationError:
    return ValidationError("bad-txns-wrong-key", 100, f"input {n} pubkey does not match address")


def check_tx_inputs(tx: Tx, coins: list[Coin], height: int, params, verify_sigs: bool = True,
                    sig_jobs: list | None = None, tx_pos: int = 0) -> int:
    """Checks a non-coinbase tx against the coins it spends (in input order); returns its fee.
    With `sig_jobs`, each input's key and signature checks are appended there as a
    core.sigcheck job (tx_pos names the tx in its block) instead of run, at the point serial
    validation would run them."""
    total_in = 0
    txid = tx.txid
    for n, (txin, coin) in enumerate(zip(tx.inputs, coins)):
        if coin.coinbase and height - coin.height < params.coinbase_maturity:
            raise ValidationError("bad-txns-premature-spend-of-coinbase", 0)
        if coin.covenant.type == BURN:
            raise ValidationError("bad-txns-spends-burn", 100)
        total_in += coin.value
        if not money_range(coin.value) or not money_range(total_in):
            raise ValidationError("bad-txns-inputvalues-outofrange", 100)
        if verify_sigs and sig_jobs is not None:
            # The key's hash is checked where the signature is (core.sigcheck.job_ok): the
            # job reports a wrong key with the error this line would raise (job_error).
            sig_jobs.append((tx_pos, n, txid, coin.value, coin.address, txin.pubkey, txin.sig))
            continue
        if hash160(txin.pubkey) != coin.address:
            raise wrong_key(n)
        if verify_sigs and not verify_digest(txin.pubkey, txin.sig, sighash(txid, n, coin.value, coin.address)):
            raise ValidationError("bad-txns-bad-signature", 100, f"input {n}")
    total_out = sum(o.value for o in tx.outputs)
    if total_in < total_out:
        raise ValidationError("bad-txns-in-belowout", 100)
    return total_in - total_out


# --- blocks ----------------------------------------------------------------------------------

def check_block_sanity(block: Block, params) -> None:
    """Context-free block checks: PoW, size, coinbase placement, merkle root, tx sanity."""
    check_pow(block.header, block.hash, params)
    if not block.txs or not block.txs[0].is_coinbase:
        raise ValidationError("bad-cb-missing", 100)
    # The merkle check comes first: a failure before it may be transit corruption of a valid
    # block (the caller must not remember the hash as invalid); every failure after it is not.
    if block_merkle_root(block.txs) != block.header.merkle_root:
        raise ValidationError("bad-txnmrklroot", 100, "merkle root mismatch")
    if block.size > params.max_block_size:
        raise ValidationError("bad-blk-length", 100)
    seen = set()
    for n, tx in enumerate(block.txs):
        if n and tx.is_coinbase:
            raise ValidationError("bad-cb-multiple", 100)
        check_tx_sanity(tx, params)
        if tx.txid in seen:
            raise ValidationError("bad-txns-duplicate", 100)
        seen.add(tx.txid)


def check_coinbase_height(block: Block, height: int) -> None:
    if block.txs[0].locktime != height:
        raise ValidationError("bad-cb-height", 100, "coinbase must carry the block height")
