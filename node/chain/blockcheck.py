"""The transaction checks of a block connect: each transaction against the coins and names
before it, in block order, filling the block's coin view. ChainState._connect runs this,
then writes the batch; signature jobs go to a sigpool.BlockSigs when one is given.
"""
from __future__ import annotations

from core.consensus import BURN, Coin, check_tx_inputs
from core.errors import ValidationError
from core.names.rules import check_name_tx
from core.primitives import Block
from node.chain.chaindb import CoinView
from node.chain.sigpool import BlockSigs


def check_block_txs(block: Block, height: int, view: CoinView, params, names, verify_sigs: bool,
                    sigs: BlockSigs | None):
    """Every transaction against the coins and names before it: (fees, spent undo, name
    ops, names as they were before the block). Signature jobs go to `sigs` when given."""
    spent_undo = []
    fees = 0
    name_ops = []            # (tx position, new record)
    in_block: dict = {}      # name -> record as changed earlier in this block
    before: dict = {}        # name -> record before this block (read once, reused by names.connect)
    jobs = sigs.jobs if sigs is not None else None

    def lookup(name):
        rec = in_block.get(name)
        if rec is not None:
            return rec
        if name not in before:
            before[name] = names.get(name)
        return before[name]

    for n, tx in enumerate(block.txs):
        txid = tx.txid
        if n:
            coins = []
            for txin in tx.inputs:
                coin = view.get(txin.outpoint)
                if coin is None:
                    raise ValidationError("bad-txns-inputs-missingorspent", 100,
                                          f"{txin.prev_txid.hex()}:{txin.prev_index}")
                coins.append(coin)
            fees += check_tx_inputs(tx, coins, height, params, verify_sigs, jobs, n)
            if sigs is not None:
                sigs.dispatch()
            op = check_name_tx(tx, coins, height, params, lookup)
            if op is not None and op.record is not None:
                in_block[op.name] = op.record
                name_ops.append((n, op.record))
            for txin, coin in zip(tx.inputs, coins):
                if view.spend(txin.outpoint, coin):
                    spent_undo.append([txin.prev_txid, txin.prev_index, coin.to_obj()])
        for i, out in enumerate(tx.outputs):
            if out.covenant.type != BURN:
                view.created[(txid, i)] = Coin(out.value, out.address, out.covenant, height, n == 0)
    return fees, spent_undo, name_ops, before


def ahead_jobs(block: Block, view: CoinView, found: dict | None = None, before: dict | None = None) -> list:
    """`block`'s signature jobs as check_tx_inputs would make them if the coins are as `view`
    has them, plus the outputs of the block before it (`before`, outpoint -> TxOut: that block
    not yet connected) and the block's own earlier outputs: what SigPool.check_ahead hands out
    early. Stops at the first coin not found. A guess only: a job is ever used only where the
    real check makes the very same one. The coins read from `view` go into `found` (outpoint
    -> coin) when given."""
    jobs: list = []
    created: dict = {}
    if found is None:
        found = {}
    try:
        for pos, tx in enumerate(block.txs):
            txid = tx.txid
            if pos:
                for n, txin in enumerate(tx.inputs):
                    op = txin.outpoint
                    coin = created.pop(op, None)
                    if coin is None and before:
                        coin = before.get(op)
                    if coin is None:
                        coin = found[op] = view.get(op)
                        if coin is None:
                            del found[op]
                            return jobs
                    jobs.append((pos, n, txid, coin.value, coin.address, txin.pubkey, txin.sig))
            for i, out in enumerate(tx.outputs):
                created[(txid, i)] = out
    except Exception:        # noqa: BLE001 — a guess must never fail the block being written:
        pass                 # a store error is met again, where it belongs, by the real check
    return jobs


def send_ahead(sigpool, nxt: Block, block: Block | None, view: CoinView) -> dict:
    """The next block's signature checks to the workers (SigPool.check_ahead) as `block`
    starts to connect, so that they have that block's whole connect to work on them: the
    coins as the store has them (`view`, untouched yet), or as `block` creates them. Returns
    the coins read, for settle_ahead."""
    before = {(tx.txid, i): out for tx in block.txs for i, out in enumerate(tx.outputs)} if block else None
    found: dict = {}
    sigpool.check_ahead(ahead_jobs(nxt, view, found, before))
    return found


def settle_ahead(nxt: Block, found: dict, entry, view: CoinView, expired: list) -> tuple:
    """What the next block's connect may take of the coins send_ahead read before `entry`'s
    block connected (`view` now holds that block's changes): not the coins it spent or
    created, nor the name coins it expires (`expired`, deleted by the name index). Returns
    (next block's hash, entry, coins) for known_coins."""
    for op in view.spent:
        found.pop(op, None)
    for op in view.created:
        found.pop(op, None)
    for txid, vout, _ in expired:
        found.pop((txid, vout), None)
    return nxt.hash, entry, found


def known_coins(pre: tuple | None, entry, tip) -> dict:
    """The coins send_ahead read for `entry`'s block, if this is that block and the block it
    was read after is the tip (its batch committed, nothing connected since); else none."""
    if pre is not None and pre[0] == entry.hash and pre[1] is tip:
        return pre[2]
    return {}
