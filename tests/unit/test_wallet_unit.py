"""Wallet parts without a node: BIP32 against the official vectors, the wallet file
(round trip, wrong passphrase, upgrade from v1, atomic replace), registration salts, value
checks and the tls item, coin selection."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from core.consensus import check_tx_inputs, Coin
from core.primitives import Covenant, TxOut
from core.names.dvalue import lookup_records
from core.params import REGTEST
from support.wallet_cli import make_cert
from wallet import storage
from wallet.errors import WalletError
from wallet.keys import HARDENED, ExtendedKey, Keychain, SeedError, parse_path, seed_from_words
from wallet.names import registration_salt
from wallet.nodeclient import NodeError
from wallet.txbuild import WalletCoin, parse_amount, select_and_sign
from wallet.values import (add_tls, check_value, encode_value, minimalt_item, name_problem, parse_value,
                           tls_row)

# BIP32 test vector 1 (bitcoin/bips bip-0032.mediawiki)
VECTOR1_SEED = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
VECTOR1 = [
    ("m", "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
     "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"),
    ("m/0'", "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
     "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7"),
    ("m/0'/1", "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
     "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs"),
    ("m/0'/1/2'", "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
     "xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM"),
    ("m/0'/1/2'/2", "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
     "xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334"),
    ("m/0'/1/2'/2/1000000000", "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
     "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76"),
]


@pytest.mark.parametrize("path,xpub,xprv", VECTOR1)
def test_bip32_vector1(path, xpub, xprv):
    key = ExtendedKey.from_seed(VECTOR1_SEED).derive(parse_path(path))
    assert key.xprv() == xprv
    assert key.xpub() == xpub


def test_parse_path_and_seed_words():
    assert parse_path("m/44'/7h/0H/2/5") == [44 | HARDENED, 7 | HARDENED, HARDENED, 2, 5]
    # BIP39 reference vector (Trezor): all-"abandon" entropy, empty passphrase
    seed = seed_from_words("abandon " * 11 + "about")
    assert seed.hex().startswith("5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1")
    with pytest.raises(SeedError, match="not a seed word"):
        seed_from_words("abandon " * 11 + "bitcoinz")
    with pytest.raises(SeedError, match="do not check out"):
        seed_from_words("abandon " * 12)


# --- wallet file -------------------------------------------------------------------------------

def _doc():
    return {"version": storage.VERSION, "network": "regtest", "seed": "00" * 64,
            "used": {"0": 3, "1": 0, "2": 1}, "pending": {"d/x": {"state": "new"}}}


def test_wallet_file_roundtrip_mode_and_wrong_passphrase(tmp_path):
    path = str(tmp_path / "w.json")
    storage.save(path, _doc(), storage.Sealer("correct horse"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc, _ = storage.load(path, "correct horse")
    assert doc == _doc()
    assert "seed" not in open(path).read()          # nothing readable outside the box
    with pytest.raises(storage.StorageError, match="wrong passphrase"):
        storage.load(path, "wrong horse")
    assert os.listdir(tmp_path) == ["w.json"]        # the temp file was renamed away


def test_wallet_file_upgrade_from_v1_and_refuses_newer(tmp_path):
    path = str(tmp_path / "old.json")
    v1 = {"version": 1, "network": "regtest", "seed": "11" * 64, "used": {"0": 1, "1": 0, "2": 0}}
    storage.save(path, v1, storage.Sealer("pw"))
    doc, _ = storage.load(path, "pw")
    assert doc["version"] == storage.VERSION and doc["pending"] == {} and doc["seed"] == "11" * 64
    assert doc["values"] == {}            # v4: no value this wallet set is known yet
    storage.save(path, dict(v1, version=storage.VERSION + 1), storage.Sealer("pw"))
    with pytest.raises(storage.StorageError, match="newer"):
        storage.load(path, "pw")


def test_tampered_file_is_refused(tmp_path):
    path = str(tmp_path / "w.json")
    storage.save(path, _doc(), storage.Sealer("pw"))
    env = json.load(open(path))
    box = bytearray(base64.b64decode(env["aead_box"]))
    box[-1] ^= 1
    env["aead_box"] = base64.b64encode(bytes(box)).decode()
    open(path, "w").write(json.dumps(env))
    with pytest.raises(storage.StorageError, match="wrong passphrase .or the wallet file was altered"):
        storage.load(path, "pw")


@pytest.mark.parametrize("field,value,error", [
    ("opslimit", 2**31, "opslimit 2147483648, outside 1..4"),       # hung the wallet for hours
    ("memlimit", 2**36, "memlimit 68719476736, outside 8192..1073741824"),    # an internal error
    ("opslimit", "2", "opslimit 2, outside"), ("memlimit", True, "memlimit True, outside"),
    ("opslimit", 3, "wrong passphrase"), ("alg", "scrypt", "unknown key derivation"),
    ("note", "anything", "wrong passphrase"),        # changes no key: the header is authenticated
    ("salt", "!", "damaged")])
def test_kdf_header_is_bounded_and_authenticated(tmp_path, field, value, error):
    path = str(tmp_path / "w.json")
    storage.save(path, _doc(), storage.Sealer("pw"))
    env = json.load(open(path))
    env["kdf"][field] = value
    open(path, "w").write(json.dumps(env))
    with pytest.raises(storage.StorageError, match=error) as e:
        storage.load(path, "pw")
    assert "\n" not in str(e.value)


def test_a_file_from_before_the_authenticated_header_opens_and_is_rewritten(tmp_path):
    """The old layout: the same KDF, the document in a SecretBox without associated data."""
    import nacl.pwhash
    import nacl.secret
    salt = bytes(range(16))
    key = nacl.pwhash.argon2id.kdf(32, b"pw", salt, opslimit=storage.OPSLIMIT, memlimit=storage.MEMLIMIT)
    box = nacl.secret.SecretBox(key).encrypt(json.dumps(_doc()).encode())
    path = str(tmp_path / "old.json")
    open(path, "w").write(json.dumps({"format": "dotbit-wallet", "kdf": {
        "alg": "argon2id", "opslimit": storage.OPSLIMIT, "memlimit": storage.MEMLIMIT,
        "salt": base64.b64encode(salt).decode()}, "nonce_box": base64.b64encode(bytes(box)).decode()}))
    doc, sealer = storage.load(path, "pw")
    assert doc == _doc()
    storage.save(path, doc, sealer)
    env = json.load(open(path))
    assert "nonce_box" not in env and "aead_box" in env and storage.load(path, "pw")[0] == _doc()
    env["kdf"]["note"] = "x"
    open(path, "w").write(json.dumps(env))
    with pytest.raises(storage.StorageError, match="altered"):
        storage.load(path, "pw")


# --- names and values -----------------------------------------------------------------------------

def test_registration_salt_is_deterministic_per_key_and_name():
    kc = Keychain(bytes(64))
    k0, k1 = kc.key(2, 0), kc.key(2, 1)
    assert registration_salt(k0.secret, b"d/a") == registration_salt(k0.secret, b"d/a")
    assert len(registration_salt(k0.secret, b"d/a")) == 20
    assert registration_salt(k0.secret, b"d/a") != registration_salt(k0.secret, b"d/b")
    assert registration_salt(k0.secret, b"d/a") != registration_salt(k1.secret, b"d/a")


def test_value_checks():
    with pytest.raises(WalletError, match="not valid JSON"):
        parse_value("{ip: 1}")
    with pytest.raises(WalletError, match="JSON object"):
        parse_value('["1.2.3.4"]')
    with pytest.raises(WalletError, match="value too long: 5.. bytes, at most 520"):
        encode_value({"txt": "x" * 520})
    data, errors, warnings = check_value("d/example", {"ip": "1.2.3.4", "ip4": "5.6.7.8", "ns": 7}, lambda n: None)
    assert data == b'{"ip":"1.2.3.4","ip4":"5.6.7.8","ns":7}'
    assert any("'ip4'" in w for w in warnings) and any("ns" in e for e in errors)
    assert check_value("d/example", {"ip": "1.2.3.4"}, lambda n: None)[1:] == ([], [])


# Namecoin's d/ policy: one lower-case domain label. (name, what the refusal must say)
NAME_CASES = [
    ("example.bit", "did you mean d/example?"),
    ("example", "has no namespace"),
    ("www.example.bit", "register d/example and put www in its value's map"),
    ("d/Example", "did you mean d/example?"),
    ("d/Bad Name", "did you mean d/bad-name?"),
    ("d/", "d/ needs a domain label"),
    ("d/-lead", "not a .bit name resolvers serve"),
    ("d/trail-", "not a .bit name resolvers serve"),
    ("d/under_score", "did you mean d/under-score?"),
    ("d/www.example", "register d/example and put www"),
    ("d/" + "a" * 64, "at most 63"),
    ("d/ex ample!", "use d/ and a label such as d/example"),
]
NAMES_OK = ["d/example", "d/xn--bcher-kva", "d/a-b-c", "d/" + "a" * 63, "id/alice", "x/anything goes"]


@pytest.mark.parametrize("name,says", NAME_CASES)
def test_names_no_resolver_serves_are_refused_with_the_right_form(name, says):
    assert says in name_problem(name)


@pytest.mark.parametrize("name", NAMES_OK)
def test_good_names_pass(name):
    assert name_problem(name) is None


# (value, an error it must report) — items the resolver would skip as invalid
VALUE_ERRORS = [
    ({"ip": "999.1.1.1"}, "malformed ip address"),
    ({"ip6": "not:an:address:at:all::x"}, "malformed ip6"),
    ({"ns": ["bad name!"]}, "ns"),
    ({"alias": "no spaces allowed"}, "alias"),
    ({"tls": [[3, 1, 1]]}, "tls"),
    ({"map": {"www": {"ip": "1.2.3.256"}}}, "malformed ip address"),
]


@pytest.mark.parametrize("value,says", VALUE_ERRORS)
def test_values_with_invalid_items_are_errors(value, says):
    _, errors, _ = check_value("d/example", value, lambda n: None)
    assert any(says in e for e in errors), errors


def test_harmless_value_issues_stay_warnings():
    _, errors, warnings = check_value("d/example", {"ip": "1.2.3.4", "import": "d/missing", "ip4": "x"},
                                      lambda n: None)
    assert errors == [] and any("'ip4'" in w for w in warnings) and len(warnings) >= 2


def test_tls_item_is_what_the_resolver_serves(tmp_path):
    import hashlib
    path, cert = make_cert(tmp_path)
    row = tls_row(open(path, "rb").read(), 3, 1, 1)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    assert row == [3, 1, 1, base64.b64encode(hashlib.sha256(spki).digest()).decode()]
    value = add_tls({"ip": "1.2.3.4"}, row, 443)
    assert add_tls(value, row, 443) == value                 # adding twice changes nothing
    data, errors, warnings = check_value("d/example", value, lambda n: None)
    assert errors == warnings == []
    recs = lookup_records("d/example", lambda n: data.decode() if n == "d/example" else None).records
    tlsa = [r.to_text() for r in recs if r.rtype == "TLSA"]
    assert tlsa == [f"_443._tcp.example.bit. IN TLSA 3 1 1 {hashlib.sha256(spki).hexdigest().upper()}"]
    with pytest.raises(WalletError, match="not a PEM"):
        tls_row(b"junk", 3, 1, 1)


def test_minimalt_item_checks_keys():
    k = base64.b64encode(bytes(range(32))).decode()
    assert minimalt_item(4000, k, k) == {"port": 4000, "id_key": k, "eph_key": k}
    with pytest.raises(WalletError, match="32-byte"):
        minimalt_item(4000, base64.b64encode(b"short").decode(), k)


# --- coin selection --------------------------------------------------------------------------------

def _coin(kc, i, value, kind="none", height=1, coinbase=False):
    cov = {"type": kind} | ({"commitment": "00" * 20} if kind == "name_new" else {})
    return WalletCoin(bytes([i]) * 32, 0, value, kc.key(0, i), cov, height, coinbase)


def test_selection_skips_name_coins_and_immature_and_pays_exact_fee():
    kc = Keychain(bytes(64))
    name_coin = _coin(kc, 1, 10 * 10**8, "name_update")
    immature = _coin(kc, 2, 50 * 10**8, coinbase=True, height=150)
    small, big = _coin(kc, 3, 3 * 10**8), _coin(kc, 4, 5 * 10**8)
    tip = 200
    cands = [c for c in (name_coin, immature, small, big) if c.spendable_payment(tip, 100)]
    assert cands == [small, big]
    dest = kc.key(0, 9).address
    change = kc.key(1, 0).address
    tx, fee = select_and_sign([TxOut(6 * 10**8, dest)], cands, change, 3)
    spent = {i.prev_txid for i in tx.inputs}
    assert spent == {small.txid, big.txid}
    assert tx.outputs[1].address == change
    assert tx.outputs[1].value == 8 * 10**8 - 6 * 10**8 - fee
    assert 3 * tx.size <= fee <= 3 * (tx.size + 8)
    # the signatures are valid under consensus rules
    coins = [Coin(c.value, c.key.address, Covenant(), 1, False) for c in (big, small)]
    order = {big.txid: coins[0], small.txid: coins[1]}
    assert check_tx_inputs(tx, [order[i.prev_txid] for i in tx.inputs], tip + 1, REGTEST) == fee


class _FloorNode:
    """A node whose full mempool raised its floor (or that answers without one)."""

    def __init__(self, info):
        self.info = info

    def call(self, method, *params):
        assert method == "getmempoolinfo"
        if isinstance(self.info, Exception):
            raise self.info
        return self.info


@pytest.mark.parametrize("info, asked, paid", [
    ({"mempoolminfee": 34.69}, 2, 35),          # the floor rose above what was asked: pay the floor
    ({"mempoolminfee": 1}, 2, 2),               # the floor is lower: pay what was asked
    ({}, 3, 3),                                 # an older node without the field
    ({"mempoolminfee": "nan"}, 3, 3),           # nonsense from the node is ignored
    (NodeError("cannot reach node"), 3, 3),     # no node: the broadcast will say why
])
def test_the_wallet_pays_at_least_the_nodes_fee_floor(tmp_path, info, asked, paid):
    from wallet.wallet import Wallet
    w, _ = Wallet.create(str(tmp_path / "w.json"), "pw", REGTEST)
    w.node = _FloorNode(info)
    w.tip = 200
    w.coins = [_coin(w.keys, 3, 5 * 10**8)]
    tx, fee = w.build([TxOut(10**8, w.keys.key(0, 9).address)], asked)
    assert paid * tx.size <= fee <= paid * (tx.size + 8)


def test_selection_drops_dust_change_and_reports_insufficient_funds():
    kc = Keychain(bytes(64))
    c = _coin(kc, 3, 100_000)
    dest, change = kc.key(0, 9).address, kc.key(1, 0).address
    tx, fee = select_and_sign([TxOut(99_000, dest)], [c], change, 1)
    assert len(tx.outputs) == 1 and fee == 1_000
    with pytest.raises(WalletError, match="insufficient funds"):
        select_and_sign([TxOut(100_000, dest)], [c], change, 1)
    with pytest.raises(WalletError, match="invalid amount"):
        parse_amount("0.000000001")
    assert parse_amount("1.5") == 150_000_000


SAVE_LOOP = """
import sys
from wallet import storage
path, pw = sys.argv[1], sys.argv[2]
doc, sealer = storage.load(path, pw)
print("ready", flush=True)
i = doc["used"]["0"]
while True:
    i += 1
    doc["used"]["0"] = i
    doc["pending"] = {f"d/n{j}": {"state": "new", "value": "ab" * 40} for j in range(i % 200)}
    storage.save(path, doc, sealer)
"""


def test_sigkill_during_saves_leaves_old_or_new_file(tmp_path):
    import random
    import signal
    import subprocess
    import sys
    import time
    path = str(tmp_path / "w.json")
    storage.save(path, _doc(), storage.Sealer("pw"))
    rng = random.Random(7)
    last = 0
    for _ in range(6):
        p = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, path, "pw"], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.3))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        p.stdout.close()
        doc, _ = storage.load(path, "pw")          # never torn: decrypts and parses
        assert doc["used"]["0"] >= last
        assert len(doc["pending"]) == doc["used"]["0"] % 200
        last = doc["used"]["0"]
    assert last > 3                                # the loop really saved many times
    lock = storage.FileLock(path)
    lock.acquire()                                 # stale temp files are swept under the lock
    lock.release()
    assert sorted(os.listdir(tmp_path)) == ["w.json", "w.json.lock"]


def test_one_set_of_env_var_names_everywhere_users_read_them(capsys):
    """config's canonical DOTBIT_<SECTION>_<KEY> names; the older DOTBIT_NETWORK/DOTBIT_WALLET
    still work but are documented nowhere a new user starts."""
    import re
    from node.devrun import BANNER
    from wallet.cli import build_parser
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    texts = {"--help": build_parser().format_help(), "make run banner": BANNER}
    for doc in ("README.md", "docs/quickstart.md", "docs/owners.md"):
        with open(os.path.join(root, doc)) as f:
            texts[doc] = f.read()
    legacy = re.compile(r"DOTBIT_(NETWORK|WALLET)\b")
    assert {where: legacy.findall(text) for where, text in texts.items()} == {where: [] for where in texts}
    for where in ("--help", "make run banner", "README.md", "docs/quickstart.md"):
        assert "DOTBIT_NODE_NETWORK" in texts[where] and "DOTBIT_WALLET_FILE" in texts[where], where


def test_times_are_utc_dates():
    from wallet.cliutil import utc
    assert utc(1796157588) == "2026-12-01 20:39:48 UTC"
