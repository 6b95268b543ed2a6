"""The seeded mutation fuzzer behind bench/fuzz.py's `mutate` engine, also used by
tests/unit/test_fuzz_targets.py: byte flips, interesting values (msgpack and DNS markers,
boundaries), inserts, deletes, duplications, splices and deep nesting."""
from __future__ import annotations

import random

INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xcc, 0xcd, 0xce, 0xcf,
               0xd0, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x91, 0x96, 0x9f, 0xa0, 0xbf, 0x3f, 0xe0,
               ord("["), ord("{"), ord('"'), ord(":"), ord("."), ord("\\")]



def mutate(rng: random.Random, parents: list[bytes]) -> bytes:
    data = bytearray(rng.choice(parents))
    for _ in range(1 + (rng.random() < 0.3) * rng.randrange(1, 6)):
        op = rng.randrange(11)
        n = len(data)
        if op == 0 and n:
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            data[rng.randrange(n)] = rng.choice(INTERESTING)
        elif op == 2 and n:
            data[rng.randrange(n)] = rng.randrange(256)
        elif op == 3:
            i = rng.randrange(n + 1)
            data[i:i] = rng.randbytes(rng.choice([1, 1, 2, 4, 8, 32]))
        elif op == 4 and n:
            i = rng.randrange(n)
            del data[i:i + rng.choice([1, 1, 2, 4, 16, 64])]
        elif op == 5 and n:
            i = rng.randrange(n)
            j = min(n, i + rng.choice([1, 2, 4, 8, 32, 128]))
            k = rng.randrange(n + 1)
            data[k:k] = data[i:j]
        elif op == 6:
            other = rng.choice(parents)
            if other:
                cut, ocut = rng.randrange(n + 1), rng.randrange(len(other))
                data = data[:cut] + other[ocut:]
        elif op == 7 and n:
            del data[rng.randrange(n):]
        elif op == 8 and n >= 2:                 # a little/big-endian integer field at a random place
            i = rng.randrange(n - 1)
            data[i:i + 2] = rng.choice([b"\x00\x00", b"\xff\xff", b"\x7f\xff", b"\x80\x00", b"\x00\x01"])
        elif op == 9 and n:                      # repeat a structural byte (deep nesting, long runs)
            i = rng.randrange(n)
            data[i:i] = bytes([data[i]]) * rng.choice([2, 16, 256, 4096])
        elif op == 10:                           # wrap what follows in deep nesting: msgpack
            i = rng.randrange(n + 1)             # 1-element arrays, or JSON arrays
            data[i:i] = b"\x91" * rng.choice([600, 1000]) if rng.random() < 0.5 else b"[" * rng.choice([1200, 5000])
    return bytes(data)
