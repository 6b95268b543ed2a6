"""Input signature checks as plain data, so that they can run anywhere: in line while a block
connects, or in worker processes (node/chain/sigpool.py) while the connecting thread does the
coin and name work that needs the store.

A job is a tuple of bytes and ints, cheap to pickle and complete on its own:
    (tx position in the block, input index, txid, spent value, spent address, pubkey33, sig64)
The sighash is computed where the job runs: it is half of the per-input hashing.

Which error a block reports must not depend on how its checks were spread. The rule is the
one serial validation follows: the first failure in block order (transactions in order, and
within a transaction each input's own checks, its signature last, then the whole-tx checks).
`check_tx_inputs` appends each input's job exactly where it would have verified it, so the
jobs appended before any other failure are exactly the signatures serial validation checked
first, and the earliest failing job among them wins.
"""
from __future__ import annotations

from core.crypto import sighash, verify_digest
from core.errors import ValidationError

SigJob = tuple  # (tx_pos, input_index, txid, value, address, pubkey, sig)


def job_ok(job: SigJob) -> bool:
    _, n, txid, value, address, pubkey, sig = job
    return verify_digest(pubkey, sig, sighash(txid, n, value, address))


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


def bad_signature(job: SigJob) -> ValidationError:
    """The error serial validation raises for this input (same reason, score and detail)."""
    return ValidationError("bad-txns-bad-signature", 100, f"input {job[1]}")
