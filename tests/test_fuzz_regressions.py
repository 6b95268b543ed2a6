"""Every contract violation the fuzzers (bench/fuzz.py) found, as the exact input that found
it, fixed in the code and kept here so it stays fixed. Each case runs through the same target
the fuzzer used and also asserts what the boundary now answers."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

import msgpack
import pytest

# Appended, not prepended: bench/wallet.py must not shadow the wallet package.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))

from fuzz_targets import TARGETS, check, world  # noqa: E402
from node.params import REGTEST  # noqa: E402
from node.resolver import envelope  # noqa: E402
from node.resolver.lightverify import VerifyError, open_answer, verify_answer  # noqa: E402
from nodeproc import NodeProcess  # noqa: E402

# rpc: a JSON body nested deeper than the decoder recurses raised RecursionError out of
# RPCServer.handle (aiohttp then answered a bare 500). Now: parse error -32700.
RPC_DEEP_JSON = b'{"method": "name_pending", "params": ' + b"[" * 3029 + b'"id": 9}'

# rpc: a name argument longer than 255 bytes (the mutator repeated one "m" 4096 times) made
# name_history raise ValueError from the index key builder: "internal error". Now every name
# method answers RPC_INVALID_PARAMETER "the name is too long", as Namecoin Core does.
RPC_LONG_NAME = b'{"method": "name_history", "params": ["d/exam' + b"m" * 4096 + b'ple"], "id": 28}'

# lightverify: a signed /v1/domain body of kind "domain" whose "answer" key was mangled
# ("\x00nswer") made verify_answer raise KeyError. Now: VerifyError("shape").
LIGHT_NO_ANSWER = bytes.fromhex(
    "88a17601a87175657374696f6e82a46e616d65ac612e64656c65672e6269742ea474797065a3414e59a374697083a668"
    "656967687405a468617368c4200f379474c19cd9375f7417bab429c839ae26a7944c4a40efea5e20f4e67b645fa96e61"
    "6d655f726f6f74c420e354c8a7898e3743645ad4512d6d685fd615fdf9a30a1a3276752744103bbd43a6736572766564"
    "0aab76616c69645f756e74696ccf00000002540be400a670726f6f66739183a46e616d65c407642f64656c6567a67265"
    "636f7264c4e496c407642f64656c6567c49e7b226e73223a205b226e73312e64656c65672e6269742e222c20226e732e"
    "656c736577686572652e6e65742e225d2c20226473223a205b5b31323334352c20382c20322c20224141454341775146"
    "4267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d225d5d2c20226d6170223a20"
    "7b226e7331223a207b226970223a205b223139322e302e322e3533225d7d7d7dc414187870288b6eec26d4fb0dbb3942"
    "dbda3eac688301c42085a857dfb072a2879b87290e8607e4ad39bb8936a4e7837154496c411e4d69c700a570726f6f66"
    "c46f970105c4018892c4206310712f13ab5acef8c48983bdff9c008918a6d0fbf3c68328b01bfe0d3e2f67c420994889"
    "c028bdc979dde290296618642f7b33debdf0fff2d4d34549381754b22600c0c4200be802c6d040d520a96334ecbbb237"
    "1d058ee518eac0b814a32f873348ccca64a46b696e64a6646f6d61696ea6006e7377657283a77265636f7264739493aa"
    "64656c65672e6269742ea24453d94a313233343520382032203030303130323033303430353036303730383039304130"
    "423043304430453046313031313132313331343135313631373138313931413142314331443145314693aa64656c6567"
    "2e6269742ea24e53b16e732e656c736577686572652e6e65742e93aa64656c65672e6269742ea24e53ae6e73312e6465"
    "6c65672e6269742e93ae6e73312e64656c65672e6269742ea141aa3139322e302e322e3533a3746c7390a86d696e696d"
    "616c7490")

# lightverify: a proof entry whose "record" key was mangled ("recor[") — the shape check
# allowed a missing record as absent — made _check_proofs raise KeyError. Now: treated as
# absent, so the proof must prove absence, which it does not.
LIGHT_NO_RECORD = bytes.fromhex(
    "88a17601a87175657374696f6e82a46e616d65a7636e2e6269742ea474797065a141a374697083a668656967687405a4"
    "68617368c4200f379474c19cd9375f7417bab429c839ae26a7944c4a40efea5e20f4e67b645fa96e616d655f726f6f74"
    "c420e354c8a7898e3743645ad4512d6d685fd615fdf9a30a1a3276752744103bbd43a67365727665640aab76616c6964"
    "5f756e74696ccf00000002540be400a670726f6f66739183a46e616d65c404642f636ea67265636f725bc45c96c40464"
    "2f636ec4197b22616c696173223a20226578616d706c652e6269742e227dc414187870288b6eec26d4fb0dbb3942dbda"
    "3eac688301c4206a3a4e1851699951b40aba6bf5607a6ddf9e460de88676348f88d5c8d44595f100a570726f6f66c491"
    "970105c401a893c420ec2cabde5ee928ad2a4d04207eef001ea224c1ed81ad9fe3e5896315ccc885f6c4206cfbc49b2a"
    "9b4df2d9038e25cf60dd185872bb1ecef67a9556b903bc13aadd89c4204091be0e4a21f37de825a7b242f16ef8ba82ab"
    "d2e452b374e7431dac065ab15300c0c4209fb88e574e1eac8d748f486f3c62a7a82b5b98d99b1cbd9f0e8e249cf1202f"
    "4ea46b696e64a6646f6d61696ea6616e7377657283a77265636f7264739193a7636e2e6269742ea5434e414d45ac6578"
    "616d706c652e6269742ea3746c7390a86d696e696d616c7490")

# lightverify (mutator, deep nesting): a signed error body whose "error" is an array 1000 deep:
# repr() in the message raised RecursionError. Now quoted through reprlib: VerifyError("resolver-error").
LIGHT_DEEP_ERROR = bytes.fromhex(
    "89a17601a87175657374696f6e82a46e616d65a76e782e6269742ea474797065a4544c5341a374697083a66865696768"
    "7405a468617368c4200f379474c19cd9375f7417bab429c839ae26a7944c4a40efea5e20f4e67b645fa96e616d655f72"
    "6f6f74c420e354c8a7898e3743645ad4512d6d685fd615fdf9a30a1a3276752744103bbd43a67365727665640aab7661"
    "6c69645f756e74696ccf00000002540be400a670726f6f66739183a46e616d65c404642f6e78a67265636f7264c0a570"
    "726f6f66c44e970103c401a092c4206310712f13ab5acef8c48983bdff9c008918a6d0fbf3c68328b01bfe0d3e2f67c4"
    "2092b12a808135510f91ffe67fbecbf2afd6c8912013e8483b13389ea52a762fbe01c0c0a46b696e64a56572726f72a6"
    "616e73776572c0a56572726f72") + b"\x91" * 1000 + bytes.fromhex(
    "d9246e6f742d666f756e643a2074686520646f6d61696e20646f6573206e6f74206578697374")

# lightverify (mutator): the same with "kind" 1000 deep: VerifyError("shape").
LIGHT_DEEP_KIND = bytes.fromhex(
    "88a17601a87175657374696f6e82a46e616d65aa64656c65672e6269742ea474797065a4544c5341a374697083a66865"
    "6967687405a468617368c4200f379474c19cd9375f7417bab429c839ae26a7944c4a40efea5e20f4e67b645fa96e616d"
    "655f726f6f74c420e354c8a7898e3743645ad4512d6d685fd615fdf9a30a1a3276752744103bbd43a67365727665640a"
    "ab76616c69645f756e74696ccf00000002540be400a670726f6f66739183a46e616d65c407647f80006c6567a6726563"
    "6f7264c4e496c407642f64656c6567c49e7b226e73223a205b226e73312e64656c65672e6269742e222c20226e732e65"
    "6c736577686572652e6e65742e225d2c20226473223a205b5b31323334352c20382c20322c2022414145434177514642"
    "67634943516f4c4441304f4478415245684d554652595847426b61477877644868383d225d5d2c20226d6170223a207b"
    "226e7331223a207b226970223a205b223139322e302e322e3533225d7d7d7dc414187870288b6eec26d4fb0dbb3942db"
    "da3eac688301c42085a857dfb072a2879b87290e8607e4ad39bb8936a4e7837154496c411e4d69c700a570726f6f66c4"
    "6f977f0001018892c4206310712f13ab5acef8c48983bdff9c008918a6d0fbf3c68328b01bfe0d3e2f67c420994889c0"
    "28bdc979dde290296618642f7b33debdf0fff2d4d34549381754b22600c0c4200be802c6d040d520a96334ecbbb2371d"
    "058ee518eac0b814a32f873348ccca64a46b696e64") + b"\x91" * 1000 + bytes.fromhex(
    "a6646f6d61696ea6616e7377657283a77265636f72647390a3746c7390a86d696e696d616c7490")

# lightverify (mutator): a TLSA item wrapped in arrays beside plain ones: sorting the
# resolver's "tls" list compared str with list (TypeError). Now its shape is checked first.
LIGHT_MIXED_TLS = bytes.fromhex(
    "88a17601a87175657374696f6e82a46e616d65ac6578616d706c652e6269742ea474797065a4544c5341a374697083a6"
    "68656967687405a468617368c4200f379474c19cd9375f7417bab429c839ae26a7944c4a40efea5e20f4e67b645fa96e"
    "616d655f726f6f74c420e354c8a7898e3743645ad4512d6d685fd615fdf9a30a1a3276752744103bbd43a67365727665"
    "640aab76616c69645f756e74696ccf00000002540be400a670726f6f66739283a46e616d65c409642f6578616d706c65"
    "a67265636f7264c502ba96c409642f6578616d706c65c502717b226970223a205b223139322e302e322e31225d2c2022"
    "697036223a205b22323030313a6462383a3a31225d2c20226d78223a205b5b31302c20226d61696c2e6578616d706c65"
    "2e6269742e225d5d2c2022747874223a205b2268656c6c6f225d2c20227373686670223a205b5b312c20322c20224141"
    "4543417751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d225d5d2c2022"
    "6d6170223a207b22777777223a207b22696d706f7274223a2022642f6c6962227d2c2022616c696173223a207b22616c"
    "696173223a20227777772e6578616d706c652e6269742e227d2c20226f6c64223a207b227472616e736c617465223a20"
    "226578616d706c652e6269742e227d2c20222a223a207b226970223a205b223139322e302e322e3939225d7d2c20225f"
    "746370223a207b226d6170223a207b225f343433223a207b22746c73223a205b5b332c20312c20312c20224141454341"
    "7751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d225d5d7d7d7d2c2022"
    "5f756470223a207b226d6170223a207b225f736970223a207b22737276223a205b5b31302c2032302c20353036302c20"
    "227369702e6578616d706c652e6269742e225d5d7d7d7d7d2c20226d696e696d616c54223a207b22706f7274223a2037"
    "3030302c202269645f6b6579223a20224151454241514542415145424151454241514542415145424151454241514542"
    "41514542415145424151453d222c20226570685f6b6579223a2022416749434167494341674943416749434167494341"
    "674943416749434167494341674943416749434167493d227d7dc414187870288b6eec26d4fb0dbb3942dbda3eac6883"
    "01c4208e717edc6c2c68b894297375639efcc982eb304eb32d4ffa49f9f1abb51f596400a570726f6f66c46f970105c4"
    "018892c4206310712f13ab5acef8c48983bdff9c008918a6d0fbf3c68328b01bfe0d3e2f67c420b7d5de88ee4560d610"
    "e5365757dfe8abc321338510af966b157a51035b9b148200c0c4208f6a78cfa69164c7ed9b5701219e8b9ca35dd4218d"
    "f453d4781054d0806edfcb83a46e616d65c405642f6c6962a67265636f7264c4ad96c405642f6c6962c4697b22697022"
    "3a205b223139382e35312e3130302e3939225d2c2022746c73223a205b5b3434332c2022746370222c20332c20312c20"
    "312c202241414543417751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d"
    "225d5d7dc414187870288b6eec26d4fb0dbb3942dbda3eac688301c420525c98651bb64a12769eef9ce7eabf00e5829f"
    "86af11cb28fd30e52cb3b913a600a570726f6f66c46f970103c401a092c420ec2cabde5ee928ad2a4d04207eef001ea2"
    "24c1ed81ad9fe3e5896315ccc885f6c420adee9a6927d65b8e535d1e8f75b10e8df80698d157dcf64f85d0695ccbaeb4"
    "9c00c0c4203379f32da867857c4e4783a115b15f508328137dc7381c10a2f5da2265761bc2a46b696e64a6646f6d6169"
    "6ea6616e7377657283a77265636f72647390a3746c739292") + b"\x91" * 1000 + bytes.fromhex(
    "b65f3434332e5f7463702e6578616d706c652e6269742ed9463320312031203030303130323033303430353036303730"
    "383039304130423043304430453046313031313132313331343135313631373138313931413142314331443145314692"
    "ba5f3434332e5f7463702e7777772e6578616d706c652e6269742ed94633203120312030303031303230333034303530"
    "363037303830393041304230433044304530463130313131323133313431353136313731383139314131423143314431"
    "453146a86d696e696d616c749186a56f776e6572ac6578616d706c652e6269742ea26970c0a4706f7274cd1b58a66964"
    "5f6b6579c4200101010101010101010101010101010101010101010101010101010101010101a76570685f6b6579c420"
    "0909090909090909090909090909090909090909090909090909090909090909aa6570685f757064617465c49796c409"
    "642f6578616d706c65c420090909090909090909090909090909090909090909090909090909090909090901cd03e8c4"
    "21037589c3d110094d09cf8b7fb2c4bd5ff87fb14413cd98d2c0adb935cfbafd6ad0c440269dd29684966364c1238dd5"
    "29e40890de4ac0bbe32933b7f3b683c912b1951f1cc5257932cdbc7bdc8a25484c68e6345d097a024582e0f43e1c0c83"
    "6cc7087e")

# envelope (found while fixing the RPC case: the same json.loads pattern): a JSON envelope
# nested deeper than json.loads recurses raised RecursionError out of open_envelope.
ENVELOPE_DEEP_JSON = b'{"body":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_inputs_are_the_found_ones():
    assert hashlib.sha256(RPC_DEEP_JSON).hexdigest() == "4b7e84e2ceb74791a39660603dec05e272f88e4d71bdc37a35f5ce25984d3329"
    assert hashlib.sha256(RPC_LONG_NAME).hexdigest() == "36136ce392bb66ac1c335e46cfcffcf7c011f91dfc62bba1a9e41e9e9c0dbd00"
    assert hashlib.sha256(LIGHT_NO_ANSWER).hexdigest() == "baa268d0b35a13d682ab0ba8f06bedca934c1c0e22d6c415370e72fbe87d7032"
    assert hashlib.sha256(LIGHT_NO_RECORD).hexdigest() == "5f66ac45e389b784c3864bb5a9837537d718145f9890fdcf3b5ca2b1978f5365"
    assert hashlib.sha256(LIGHT_DEEP_ERROR).hexdigest() == "4f387bc60ca35fd6cb94b1a890d221e3235f8dd1ab22ee4520a0c56908749c8e"
    assert hashlib.sha256(LIGHT_DEEP_KIND).hexdigest() == "933bd36005d0d46708c7496d7c0fea43bfbfec08717dee710fd00b5b2acd9ee3"
    assert hashlib.sha256(LIGHT_MIXED_TLS).hexdigest() == "98e78dbd02e54b2725c8e8261446f63734cb947253c2fd73899a64b2957d03c4"


@pytest.mark.parametrize("target,data", [("rpc", RPC_DEEP_JSON), ("rpc", RPC_LONG_NAME),
                                         ("lightverify", LIGHT_NO_ANSWER),
                                         ("lightverify", LIGHT_NO_RECORD), ("envelope", b"\x00" + ENVELOPE_DEEP_JSON),
                                         ("lightverify", LIGHT_DEEP_ERROR), ("lightverify", LIGHT_DEEP_KIND),
                                         ("lightverify", LIGHT_MIXED_TLS)])
def test_found_input_keeps_to_the_contract(target, data):
    assert check(TARGETS[target], data) is None


@pytest.mark.parametrize("method", ["name_show", "name_history", "name_pending", "name_scan", "getnameproof"])
def test_rpc_too_long_name_is_invalid_parameter(method):
    from fuzz_targets import rpc_replies
    (reply,) = rpc_replies(RPC_LONG_NAME.replace(b"name_history", method.encode()))
    assert reply["error"] == {"code": -8, "message": "the name is too long"}


def verify_signed(body_bytes: bytes):
    """Sign the body with the fuzz world's resolver key and run the light client's checks."""
    w = world()
    signed = msgpack.packb([envelope.VERSION, body_bytes, w["key"].sign(envelope.TAG + body_bytes)],
                           use_bin_type=True)
    q = msgpack.unpackb(body_bytes)["question"]
    body = open_answer(signed, w["key"].public_key, q["name"], q["type"], now=100.0)
    return verify_answer(body, lambda h: w["headers"][h], len(w["headers"]) - 1, REGTEST, now=100.0)


def test_light_answer_without_answer_field_is_a_shape_lie():
    with pytest.raises(VerifyError) as e:
        verify_signed(LIGHT_NO_ANSWER)
    assert e.value.check == "shape"


def test_light_proof_without_record_key_counts_as_absent():
    with pytest.raises(VerifyError) as e:        # d/cn exists, so "absent" contradicts its proof
        verify_signed(LIGHT_NO_RECORD)
    assert e.value.check == "proof"


@pytest.mark.parametrize("data,check", [(LIGHT_DEEP_ERROR, "resolver-error"), (LIGHT_DEEP_KIND, "shape"),
                                        (LIGHT_MIXED_TLS, "shape")])
def test_light_lies_nested_or_mixed_are_reported(data, check):
    with pytest.raises(VerifyError) as e:
        verify_signed(data)
    assert e.value.check == check and len(str(e.value)) < 400


def test_envelope_too_deep_is_an_envelope_error():
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_envelope(ENVELOPE_DEEP_JSON, world()["key"].public_key)
    # The same depth inside a correctly signed body: the JSON view cannot be compared, refused.
    key = world()["key"]
    deep = 1
    for _ in range(511):
        deep = [deep]
    raw = msgpack.packb({"v": 1, "x": deep})
    data = envelope._json_text({"body": base64.b64encode(raw).decode(), "v": 1, "view": {},
                                "sig": base64.b64encode(key.sign(envelope.TAG + raw)).decode()})
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_envelope(data, key.public_key)


def test_rpc_deep_json_over_http_is_a_parse_error(tmp_path):
    with NodeProcess(str(tmp_path / "n")) as node:
        with open(os.path.join(node.datadir, ".cookie")) as f:
            auth = base64.b64encode(f.read().strip().encode()).decode()
        req = urllib.request.Request(f"http://127.0.0.1:{node.rpc_port}/", data=RPC_DEEP_JSON,
                                     headers={"Authorization": "Basic " + auth})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        reply = json.loads(e.value.read())
        assert e.value.code == 500 and reply["error"]["code"] == -32700, reply
        assert node.call("getblockcount") == 0          # and the server is still serving
