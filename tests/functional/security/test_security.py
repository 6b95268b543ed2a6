"""The security pass: secret files, secrets kept out of logs and errors, RPC exposure and auth,
domain separation of every signing/hashing context, p2p caps under a flood. (The DNS side —
answer sizes, minimal ANY, response rate limiting — is in test_security_dns.py.)"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import stat
import subprocess
import sys
import time

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import msgpack
import pytest

from support.chain import Key
from core import crypto
from core.crypto import sha256d, sighash, sign_digest, verify_digest
from node.exposure import check_rpc_bind
from core.names import rules
from core.names.proof import internal_hash, leaf_hash
from node.resolver import ekeys
from core import envelope
from core import ca_proof
from core.params import REGTEST
from node.resolver.dnssec import OnlineSigner
from node.resolver.identity import ALGORITHM, ZONE, ResolverKey
from support.harness import ROOT, NodeProcess, free_port, run_cli
from p2p import messages as M
from support.p2p import RawPeer, pay, wait_until
from support.resolver import ResolverNode
from wallet import names as wallet_names
from wallet import storage
from wallet.keys import Keychain, seed_from_words

PASS = "correct horse battery staple 7f3a"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def with_umask(mask: int):
    """Run the next process creation under `mask` (Popen inherits it)."""
    class _U:
        def __enter__(self):
            self.old = os.umask(mask)

        def __exit__(self, *exc):
            os.umask(self.old)
    return _U()


# --- files ------------------------------------------------------------------------------------

def test_key_and_cookie_files_are_0600_whatever_the_umask(tmp_path):
    d = tmp_path / "node"
    d.mkdir()
    for stale in (".cookie.tmp", "resolver_key.tmp"):       # left-overs with loose modes
        (d / stale).write_text("x")
        os.chmod(d / stale, 0o666)
    (d / "mining_key").write_text(os.urandom(32).hex())      # an existing key others can read
    os.chmod(d / "mining_key", 0o644)
    node = ResolverNode(str(d))
    with with_umask(0):
        node.start()
    try:
        for name in (".cookie", "mining_key", "resolver_key"):
            assert mode(d / name) == 0o600, (name, oct(mode(d / name)))
        assert "mining key file" in node.log() and "was mode 0644" in node.log()
    finally:
        node.stop()


def test_wallet_file_and_lock_are_0600(tmp_path):
    path = tmp_path / "w.json"
    env = dict(os.environ, DOTBIT_WALLET_PASSPHRASE=PASS, DOTBIT_NETWORK="regtest")
    r = subprocess.run([sys.executable, "-m", "wallet.cli", "--wallet", str(path), "create", "--json"],
                       capture_output=True, text=True, env=env, timeout=60, preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0, r.stderr
    assert mode(path) == 0o600 and mode(str(path) + ".lock") == 0o600
    # a stale temp file with a loose mode does not loosen the next save
    tmp = f"{path}.tmp-{os.getpid()}"
    open(tmp, "w").close()
    os.chmod(tmp, 0o666)
    doc, sealer = storage.load(str(path), PASS)
    storage.save(str(path), doc, sealer)
    assert mode(path) == 0o600


def test_ca_key_file_is_0600(tmp_path):
    from node.resolver.ca.authority import KEY_FILE, init_ca
    d = tmp_path / "ca"
    d.mkdir()
    (d / (KEY_FILE + ".tmp")).write_text("x")
    os.chmod(d / (KEY_FILE + ".tmp"), 0o666)
    with with_umask(0):
        init_ca(str(d), PASS, "regtest", time.time())
    assert mode(d / KEY_FILE) == 0o600


# --- secrets never in logs or errors -------------------------------------------------------------

def bad_checksum(words: str) -> str:
    """The same words but the last, swapped for the first list word that breaks the BIP39
    checksum (a shuffled phrase still passes the checksum one time in 16 or 256)."""
    from mnemonic import Mnemonic
    m = Mnemonic("english")
    head = words.split()[:-1]
    return next(" ".join(head + [w]) for w in m.wordlist if not m.check(" ".join(head + [w])))


def test_no_secrets_in_logs_or_errors(tmp_path):
    node = ResolverNode(str(tmp_path / "node"), "--log-level", "debug", "--mine", "--mine-interval", "0.5")
    node.start()
    outputs: list[str] = []
    wallet = str(tmp_path / "w.json")
    passfile = tmp_path / "pass"
    passfile.write_text(PASS + "\n")
    env = dict(os.environ, DOTBIT_NETWORK="regtest", DOTBIT_RPC_URL=f"http://127.0.0.1:{node.rpc_port}",
               DOTBIT_RPC_COOKIE=os.path.join(node.datadir, ".cookie"), DOTBIT_WALLET_DEBUG="1")

    def w(*args, path=wallet, ok=True, keep_stdout=True, stdin=None):
        r = subprocess.run([sys.executable, "-m", "wallet.cli", "--wallet", path, "--passphrase-file",
                            str(passfile), *args], capture_output=True, text=True, env=env, timeout=120, input=stdin)
        outputs.append(r.stderr)
        if keep_stdout:
            outputs.append(r.stdout)
        assert (r.returncode == 0) == ok, (args, r.stdout, r.stderr)
        return r
    try:
        cookie = open(os.path.join(node.datadir, ".cookie")).read().split(":", 1)[1]
        created = json.loads(w("create", "--json", keep_stdout=False).stdout)   # the words are shown here, once
        words = created["words"]
        addr = created["address"]
        node.call("generatetoaddress", 101, addr)
        w("balance")
        w("send", node.call("getminingaddress"), "1.5")
        w("name", "register", "d/secrettest", "--value", '{"ip":"192.0.2.7"}')
        node.call("generate", 13)
        w("name", "sync")
        node.call("generate", 1)
        w("name", "update", "d/secrettest", "--value", '{"ip":"192.0.2.8"}')
        w("name", "list")
        w("coins")
        # errors users can hit: wrong passphrase, bad words, a bad amount, a node that says no
        bad = tmp_path / "bad"
        bad.write_text("wrong passphrase\n")
        r = subprocess.run([sys.executable, "-m", "wallet.cli", "--wallet", wallet, "--passphrase-file", str(bad),
                            "balance"], capture_output=True, text=True, env=env, timeout=60)
        outputs += [r.stdout, r.stderr]
        assert r.returncode == 1 and "wrong passphrase" in r.stderr
        words_file = tmp_path / "words"
        words_file.write_text(words)
        w("restore", "--words-file", str(words_file), path=str(tmp_path / "w2.json"))
        words_file.write_text(bad_checksum(words))
        w("restore", "--words-file", str(words_file), path=str(tmp_path / "w3.json"), ok=False)
        w("send", addr, "-1", ok=False)
        w("send", addr, "100000000", ok=False)
        r = run_cli("--network", "regtest", "--datadir", node.datadir, "--rpc-port", str(node.rpc_port),
                    "call", "sendrawtransaction", "00ff")
        outputs += [r.stdout, r.stderr]
        for creds in ("", "__cookie__:wrong", "__cookie__:" + cookie[:-1]):
            outputs.append(rpc_raw(node.rpc_port, creds)[1])
        mining_key = open(os.path.join(node.datadir, "mining_key")).read().strip()
        resolver_key = open(os.path.join(node.datadir, "resolver_key")).read().strip()
    finally:
        node.stop()
    outputs.append(open(node.log_path).read())
    text = "\n".join(outputs)
    assert "DEBUG" in text                      # the node did log at debug level
    seed = seed_from_words(words)
    chain = Keychain(seed)
    secrets = {"passphrase": PASS, "words": words, "seed": seed.hex(), "cookie password": cookie,
               "mining key": mining_key, "resolver key": resolver_key,
               "resolver key b64": base64.b64encode(bytes.fromhex(resolver_key)).decode()}
    for c in range(3):
        for i in range(5):
            secrets[f"key {c}/{i}"] = chain.key(c, i).secret.hex()
    ws = words.split()
    for i in range(len(ws) - 2):                # any three seed words in a row
        secrets[f"words {i}..{i + 2}"] = " ".join(ws[i:i + 3])
    leaked = {what: s for what, s in secrets.items() if s.lower() in text.lower()}
    assert not leaked, leaked


def rpc_raw(port: int, credentials: str | None, body: bytes = b'{"method":"getblockcount","params":[],"id":1}',
            header: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    elif credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    try:
        conn.request("POST", "/", body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


# --- RPC exposure and auth ---------------------------------------------------------------------

def test_rpc_never_answers_without_the_cookie(tmp_path):
    with NodeProcess(str(tmp_path / "n")) as node:
        good = open(os.path.join(node.datadir, ".cookie")).read()
        user, password = good.split(":", 1)
        assert rpc_raw(node.rpc_port, good)[0] == 200
        for creds in (None, f"{user}:wrong", f"{user}:{password[:-1]}", f"other:{password}", f"{user}:{password}x",
                      ":" + password, password):
            status, body = rpc_raw(node.rpc_port, creds)
            assert status == 401 and "result" not in body, creds
        for header in ("Basic !!!", "Bearer " + password, "Basic", "basic " + base64.b64encode(good.encode()).decode()):
            assert rpc_raw(node.rpc_port, None, header=header)[0] == 401, header
        # the cookie is new every start: the old one stops working
        node.stop()
        node.start()
        assert rpc_raw(node.rpc_port, good)[0] == 401
        assert rpc_raw(node.rpc_port, open(os.path.join(node.datadir, ".cookie")).read())[0] == 200


def test_rpc_refuses_a_non_loopback_bind_unless_asked(tmp_path):
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.com"):
        r = run_cli("--network", "regtest", "--datadir", str(tmp_path / "n"), "--rpc-port", str(free_port()),
                    "--rpc-bind", host, timeout=60)
        err = r.stderr.strip()
        assert r.returncode == 1 and "\n" not in err and "--rpc-allow-remote" in err, (host, err)
        assert not os.path.exists(tmp_path / "n" / ".cookie")
    conf = tmp_path / "c" / "dotbit.toml"                     # the config file is held to it too
    conf.parent.mkdir()
    conf.write_text('[rpc]\nbind = "0.0.0.0"\n')
    r = run_cli("--network", "regtest", "--datadir", str(conf.parent), "--rpc-port", str(free_port()), timeout=60)
    assert r.returncode == 1 and "--rpc-allow-remote" in r.stderr, r.stderr
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_rpc_bind(host, False)
    for host in ("0.0.0.0", "::", "10.1.2.3", "fe80::1", "my-host"):
        with pytest.raises(ValueError):
            check_rpc_bind(host, False)
        check_rpc_bind(host, True)


# --- domain separation -------------------------------------------------------------------------

# Every context that signs or hashes with a tag: (what, tag, key type or "hash").
CONTEXTS = [
    ("tx input signature (sighash)", crypto.SIGHASH_TAG, "secp256k1"),
    ("MinimaLT ephemeral-key update", ekeys.TAG, "secp256k1"),
    ("CA issuance proof of name control", ca_proof.ISSUE_TAG, "secp256k1"),
    ("CA revocation request", ca_proof.REVOKE_TAG, "secp256k1"),
    ("resolver envelope (HTTP API)", envelope.TAG, "ed25519"),
    ("name record leaf value", b"dotbit/name-record", "hash"),
    ("registration salt (wallet HKDF)", wallet_names.SALT_TAG, "hmac"),
]


def test_every_tag_in_the_code_is_listed_and_tags_are_prefix_free():
    found = set()
    for top in ("node", "wallet", "p2p"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    src = open(os.path.join(dirpath, f), encoding="utf-8").read()
                    found |= {m.encode().decode("unicode_escape").encode("latin-1")
                              for m in re.findall(r'b"(dotbit/[^"]*)"', src)}
    tags = [t for _, t, _ in CONTEXTS]
    assert found <= set(tags), f"a new tagged context: list it here and in docs/security.md: {found - set(tags)}"
    assert len(set(tags)) == len(tags)
    for a in tags:
        for b in tags:
            assert a == b or not b.startswith(a), (a, b)        # no tag is a prefix of another
        # and none can be read as an RRSIG's signed data (type, algorithm 15, ...) or a tree node
        assert a[2] != ALGORITHM and a[0] not in (0, 1)


def test_a_signature_from_one_context_does_not_verify_in_another():
    owner = Key.from_seed(77)
    # an ephemeral-key update signed by a name's owner is no spend authorisation for its coins
    u = ekeys.make_update(b"d/x", bytes(32), 1, 2_000_000_000, owner.secret, owner.pubkey)
    assert verify_digest(owner.pubkey, u.sig, u.digest)
    txid = sha256d(b"some tx")
    assert not verify_digest(owner.pubkey, u.sig, sighash(txid, 0, 10**8, owner.address))
    # same message bytes, two contexts: the tags make the digests differ
    msg = msgpack.packb([b"d/x", bytes(32), 1, 2_000_000_000], use_bin_type=True)
    sig = sign_digest(owner.secret, sha256d(crypto.SIGHASH_TAG + msg))
    assert not verify_digest(owner.pubkey, sig, sha256d(ekeys.TAG + msg))
    assert not verify_digest(owner.pubkey, sign_digest(owner.secret, sha256d(ekeys.TAG + msg)),
                             sha256d(crypto.SIGHASH_TAG + msg))
    # a CA proof (issue or revoke) is neither a spend nor the other kind of CA request
    block = sha256d(b"a recent block")
    csr = b"0" * 64
    m = REGTEST.magic
    issue = ca_proof.sign_issue(owner.secret, m, "d/x", csr, block)
    assert verify_digest(owner.pubkey, issue, ca_proof.issue_digest(m, "d/x", csr, block))
    serial = crypto.sha256(csr)[:16]
    for other in (ca_proof.revoke_digest(m, "d/x", serial, block), ca_proof.issue_digest(m, "d/y", csr, block), sighash(crypto.sha256(csr), 0, 0, block[:20]),
                  sha256d(ekeys.TAG + crypto.sha256(csr) + block)):
        assert not verify_digest(owner.pubkey, issue, other)
    revoke = ca_proof.sign_revoke(owner.secret, m, "d/x", serial, block)
    assert not verify_digest(owner.pubkey, revoke, ca_proof.issue_digest(m, "d/x", csr, block))

    # the resolver key signs envelopes and DNSSEC RRsets: neither passes for the other
    key = ResolverKey(bytes(range(32)))
    body = {"v": 1, "q": "example.bit"}
    raw = envelope.encode_body(body)
    sealed = envelope.seal(body, key.sign, "msgpack")
    assert envelope.open_envelope(sealed, key.public_key)["q"] == "example.bit"
    untagged = msgpack.packb([1, raw, key.sign(raw)], use_bin_type=True)       # same key, no tag
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_envelope(untagged, key.public_key)
    rrset = dns.rrset.from_text("example.bit.", 300, "IN", "A", "192.0.2.1")
    rrsig = OnlineSigner(key).sign(rrset)
    dnskeys = {ZONE: dns.rrset.from_rdata(ZONE, 300, key.dnskey)}
    dns.dnssec.validate(rrset, rrsig, dnskeys)                                 # the real thing passes
    env_sig = msgpack.unpackb(sealed)[2]
    forged = dns.rrset.from_rdata(rrsig.name, rrsig.ttl, rrsig[0].replace(signature=env_sig))
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate(rrset, forged, dnskeys)
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_envelope(msgpack.packb([1, raw, rrsig[0].signature], use_bin_type=True), key.public_key)

    # hashes: a record's leaf value, a tree leaf and an inner node never coincide for the same bytes
    data = bytes(64)
    assert len({rules.record_hash(data), leaf_hash(data[:32], data[32:]), internal_hash(data[:32], data[32:]),
                crypto.sha256(data)}) == 4


def test_wallet_keys_are_per_file_and_the_box_is_authenticated(tmp_path):
    """The wallet file has no tag: its Argon2id key (per-file random salt) does one job,
    sealing that file; a box never opens under another file's key or altered parameters."""
    a, b = storage.Sealer(PASS), storage.Sealer(PASS)
    env = json.loads(a.seal({"version": 2, "x": 1}))
    assert a.open(env)["x"] == 1
    with pytest.raises(storage.StorageError):
        b.open(env)
    box = bytearray(base64.b64decode(env["aead_box"]))
    box[-1] ^= 1
    tampered = dict(env, aead_box=base64.b64encode(bytes(box)).decode())
    with pytest.raises(storage.StorageError):
        a.open(tampered)
    with pytest.raises(storage.StorageError):          # the header is the box's associated data
        a.open(dict(env, kdf=dict(env["kdf"], note="x")))
    assert env["kdf"]["alg"] == "argon2id" and env["kdf"]["opslimit"] >= 2 and env["kdf"]["memlimit"] >= 64 << 20


# --- p2p under a flood -------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_p2p_caps_hold_under_a_flood_and_an_honest_peer_is_served(tmp_path):
    victim = NodeProcess(str(tmp_path / "victim"), "--maxpeers", "12").start()   # 6 inbound per host
    honest = None
    attackers: list[RawPeer] = []
    try:
        rss0 = rss_kib(victim.proc.pid)
        # 1. many connections from one address: it gets its share, not every slot
        refused = 0
        for _ in range(30):
            try:
                p = RawPeer(victim.p2p_port, "127.0.0.8")
                attackers.append(p)
                p.handshake()
            except (ConnectionError, OSError):
                refused += 1
        held = [p for p in victim.call("getpeerinfo") if p["addr"].startswith("127.0.0.8:")]
        assert len(held) == 6 and refused >= 24, (len(held), refused)
        # 2. junk transaction announcements from one of them: 60,000 txids nobody has
        flooder = next(p for p in attackers if not p.closed_by_remote(0.1))
        for _ in range(3):
            flooder.send(M.Inv(tuple((M.INV_TX, os.urandom(32)) for _ in range(M.MAX_INV))))
        # 3. an oversized frame and a message flood from two more hosts: both banned
        big = RawPeer(victim.p2p_port, "127.0.0.9")
        attackers.append(big)
        big.send_raw(victim_magic() + (M.MAX_FRAME + 1).to_bytes(4, "little") + b"x" * 1000)
        pinger = RawPeer(victim.p2p_port, "127.0.0.10")
        attackers.append(pinger)
        pinger.handshake()
        try:
            pinger.send_raw(M.encode_frame(victim_magic(), M.Ping(1)) * 20_000)
        except OSError:
            pass
        assert big.closed_by_remote(10) and pinger.closed_by_remote(10)
        banned = {b["address"] for b in victim.call("listbanned")}
        assert {"127.0.0.9", "127.0.0.10"} <= banned and "127.0.0.8" not in banned

        # the victim still serves an honest peer: blocks and a fresh transaction arrive at once
        honest = NodeProcess(str(tmp_path / "honest"), "--connect", victim.p2p_addr).start()
        key = Key.from_seed(78)
        honest.call("generatetoaddress", 101, key.addr_text())
        tip = honest.call("getbestblockhash")
        wait_until(lambda: victim.call("getbestblockhash") == tip, 30, "victim to sync the honest chain")
        u = honest.call("getaddressutxos", key.addr_text())[0]
        tx = pay((bytes.fromhex(u["txid"]), u["outputIndex"], u["value_sat"]), Key.from_seed(79).address, key)
        t0 = time.monotonic()
        honest.call("sendrawtransaction", tx.to_bytes().hex())
        wait_until(lambda: tx.txid.hex() in victim.call("getrawmempool"), 10, "the honest tx to reach the victim")
        assert time.monotonic() - t0 < 10
        assert len([p for p in victim.call("getpeerinfo") if p["addr"].startswith("127.0.0.8:")]) <= 6
        assert rss_kib(victim.proc.pid) - rss0 < 64 * 1024, "memory grew by more than 64 MiB under the flood"
        assert victim.proc.poll() is None
    finally:
        for a in attackers:
            a.close()
        if honest is not None:
            honest.stop()
        victim.stop()


def victim_magic() -> bytes:
    from core.params import REGTEST
    return REGTEST.magic
