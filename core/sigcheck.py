"""Input key and signature checks as plain data, so that they can run anywhere: in line while
a block connects, or in worker processes (node/chain/sigpool.py) while the connecting thread
does the coin and name work that needs the store.

A job is a tuple of bytes and ints, cheap to pickle and complete on its own:
    (tx position in the block, input index, txid, spent value, spent address, pubkey33, sig64)
The key's hash and the sighash are computed where the job runs: they are the per-input
hashing, which the connecting thread is then spared.

Which error a block reports must not depend on how its checks were spread. The rule is the
one serial validation follows: the first failure in block order (transactions in order, and
within a transaction each input's own checks, its signature last, then the whole-tx checks).
`check_tx_inputs` appends each input's job exactly where it would have checked its key, so
the jobs appended before any other failure are exactly the keys and signatures serial
validation checked first, and the earliest failing job among them wins.
"""
from __future__ import annotations

from core.consensus import wrong_key
from core.crypto import hash160, sighash, verify_digest
from core.errors import ValidationError

SigJob = tuple  # (tx_pos, input_index, txid, value, address, pubkey, sig)


def job_ok(job: SigJob) -> bool:
    """The input's key owns the spent coin and its signature holds: check_tx_inputs's last
    two checks of an input, in its order (job_error tells which failed)."""
    _, n, txid, value, address, pubkey, sig = job
    return hash160(pubkey) == address and verify_digest(pubkey, sig, sighash(txid, n, value, address))


def first_bad(jobs: list[SigJob]) -> int:
    """Position of the first job whose signature fails, -1 when all hold. What a worker runs."""
    for i, job in enumerate(jobs):
        if not job_ok(job):
            return i
    return -1


def verdicts(jobs: list[SigJob]) -> bytes:
    """One byte per job, 1 where its signature holds: a worker's answer for jobs checked ahead
    of their block (node/chain/sigpool.py), each a pure fact about its own job."""
    return bytes(job_ok(job) for job in jobs)


def job_error(job: SigJob) -> ValidationError:
    """The error serial validation raises for this failing job's input (same reason, score
    and detail): a key that does not own the coin is found before its signature is checked."""
    _, n, _, _, address, pubkey, _ = job
    if hash160(pubkey) != address:
        return wrong_key(n)
    return ValidationError("bad-txns-bad-signature", 100, f"input {n}")
