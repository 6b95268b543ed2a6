/* Double SHA-256 and Bitcoin Merkle branches in one C call each (core/crypto.py loads it and
 * keeps the pure-Python versions it falls back to; tests/unit check the two agree).
 *
 * Why native: a merge-mined header's check is about 14 double SHA-256 of 64-80 bytes. In
 * CPython each costs four hashlib calls and two short-lived objects (~0.6 us), more than the
 * hashing itself; here a whole branch is one call, and the hashing is OpenSSL's SHA-256
 * (libcrypto, with the CPU's SHA extensions where it has them), so no hash code is ours. */
/* SHA256_Init/Update/Final go straight to libcrypto's SHA-256 code. OpenSSL 3 deprecates them in
 * favour of EVP, but its one-shot SHA256() and EVP look up a provider on every call, which
 * costs more than hashing 64 bytes (measured: no faster than hashlib), so we keep the direct
 * calls and say so to the compiler. */
#define OPENSSL_SUPPRESS_DEPRECATED
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <openssl/sha.h>

#define MAX_BRANCH 64

static void sha256d_raw(const unsigned char *data, size_t len, unsigned char out[32])
{
    unsigned char once[32];
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, len);
    SHA256_Final(once, &ctx);
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, once, 32);
    SHA256_Final(out, &ctx);
}

static PyObject *py_sha256d(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    unsigned char out[32];
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    sha256d_raw((const unsigned char *)view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

/* merkle_branch_root(leaf: bytes, branch: tuple[bytes, ...], index: int) -> bytes
 * Namecoin's CheckMerkleBranch: at each level the running hash is the right-hand side when
 * the index's low bit is set. Every hash must be 32 bytes (ValueError otherwise). */
static PyObject *py_merkle_branch_root(PyObject *self, PyObject *args)
{
    const char *leaf;
    Py_ssize_t leaf_len;
    PyObject *seq, *branch;
    unsigned long long index;
    unsigned char pair[64];
    /* K masks the index to 64 bits: for the <= 64 levels read, its low bits and shifts are
     * those of Python's unbounded two's complement, negative indices included. */
    if (!PyArg_ParseTuple(args, "y#OK", &leaf, &leaf_len, &seq, &index))
        return NULL;
    if (leaf_len != 32) {
        PyErr_SetString(PyExc_ValueError, "leaf must be 32 bytes");
        return NULL;
    }
    branch = PySequence_Fast(seq, "branch must be a sequence of 32-byte hashes");
    if (branch == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(branch);
    if (n > MAX_BRANCH) {
        Py_DECREF(branch);
        PyErr_SetString(PyExc_ValueError, "branch too long");
        return NULL;
    }
    unsigned char h[32];
    memcpy(h, leaf, 32);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *sib = PySequence_Fast_GET_ITEM(branch, i);
        if (!PyBytes_Check(sib) || PyBytes_GET_SIZE(sib) != 32) {
            Py_DECREF(branch);
            PyErr_SetString(PyExc_ValueError, "branch hashes must be 32-byte bytes");
            return NULL;
        }
        const char *s = PyBytes_AS_STRING(sib);
        if (index & 1) {
            memcpy(pair, s, 32);
            memcpy(pair + 32, h, 32);
        } else {
            memcpy(pair, h, 32);
            memcpy(pair + 32, s, 32);
        }
        sha256d_raw(pair, 64, h);
        index >>= 1;
    }
    Py_DECREF(branch);
    return PyBytes_FromStringAndSize((const char *)h, 32);
}


/* --- AuxPoW decoding (the fast path of core/auxpow.py AuxPow.from_bytes) ------------------
 * parse_auxpow(data, max_coinbase_branch, max_chain_branch) -> None or
 *   (coinbase_end, script_offset, script_length, coinbase_branch, coinbase_index,
 *    chain_branch, chain_index, parent_offset)
 * None for ANY input it does not take apart cleanly: the caller then runs the Python reference
 * parser, which raises the precise DecodeError. So this may be stricter than the reference,
 * never looser, and only ever returns what the reference would (tests/unit check both ways). */

static int read_varint(const unsigned char *d, size_t len, size_t *pos, uint64_t *out)
{
    if (*pos >= len)
        return 0;
    unsigned char first = d[*pos];
    if (first < 0xFD) {
        *out = first;
        *pos += 1;
        return 1;
    }
    size_t size = first == 0xFD ? 2 : first == 0xFE ? 4 : 8;
    if (*pos + 1 + size > len)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < size; i++)
        n |= (uint64_t)d[*pos + 1 + i] << (8 * i);
    uint64_t least = size == 2 ? 0xFD : size == 4 ? 0x10000ULL : 0x100000000ULL;
    if (n < least)                       /* non-canonical */
        return 0;
    *out = n;
    *pos += 1 + size;
    return 1;
}

/* Skips `count` items of: `before` fixed bytes, a length-prefixed script, `after` fixed bytes
 * (inputs: outpoint 36, script, sequence 4; outputs: value 8, script). The first item's script
 * is reported when `first_off` is given. 0 when anything runs past the end. All sizes stay
 * below 2 * len + 64 before each check, so nothing overflows. */
static int skip_items(const unsigned char *d, size_t len, size_t *pos, uint64_t count, size_t before,
                      size_t after, size_t *first_off, size_t *first_len)
{
    if (count > len)
        return 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n;
        *pos += before;
        if (!read_varint(d, len, pos, &n) || n > len)
            return 0;
        if (i == 0 && first_off != NULL) {
            *first_off = *pos;
            *first_len = (size_t)n;
        }
        *pos += (size_t)n + after;
        if (*pos > len)
            return 0;
    }
    return 1;
}

static PyObject *hash_tuple(const unsigned char *d, size_t len, size_t *pos, uint64_t limit)
{
    uint64_t n;
    if (!read_varint(d, len, pos, &n) || n > limit || n > len || *pos + 32 * n > len)
        return NULL;
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    if (t == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)d + *pos + 32 * i, 32);
        if (h == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, h);
    }
    *pos += 32 * n;
    return t;
}

static long read_i32(const unsigned char *d)
{
    return (long)(int32_t)((uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24);
}

static PyObject *py_parse_auxpow(PyObject *self, PyObject *args)
{
    const unsigned char *d;
    Py_ssize_t slen;
    unsigned long long max_cb, max_chain;
    if (!PyArg_ParseTuple(args, "y#KK", &d, &slen, &max_cb, &max_chain))
        return NULL;
    size_t len = (size_t)slen, pos = 4, script_off = 0, script_len = 0;
    uint64_t n_in, n_out;
    if (!read_varint(d, len, &pos, &n_in) || n_in == 0
        || !skip_items(d, len, &pos, n_in, 36, 4, &script_off, &script_len)
        || !read_varint(d, len, &pos, &n_out)
        || !skip_items(d, len, &pos, n_out, 8, 0, NULL, NULL))
        Py_RETURN_NONE;
    size_t coinbase_end = pos + 4;                       /* lock time */
    pos = coinbase_end + 32;                             /* the unused legacy block hash */
    if (pos > len)
        Py_RETURN_NONE;
    PyObject *cb_branch = hash_tuple(d, len, &pos, max_cb);
    if (cb_branch == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    size_t cb_index_at = pos;
    pos += 4;
    PyObject *chain_branch = pos <= len ? hash_tuple(d, len, &pos, max_chain) : NULL;
    if (chain_branch == NULL || pos + 4 + 80 != len) {
        Py_DECREF(cb_branch);
        Py_XDECREF(chain_branch);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(nnnNlNln)", (Py_ssize_t)coinbase_end, (Py_ssize_t)script_off,
                         (Py_ssize_t)script_len, cb_branch, read_i32(d + cb_index_at), chain_branch,
                         read_i32(d + pos), (Py_ssize_t)(pos + 4));
}

static PyMethodDef methods[] = {
    {"sha256d", py_sha256d, METH_O, "SHA-256 of the SHA-256 of a bytes-like object."},
    {"merkle_branch_root", py_merkle_branch_root, METH_VARARGS,
     "Root of a Bitcoin Merkle branch from a 32-byte leaf, a tuple of 32-byte hashes and the leaf index."},
    {"parse_auxpow", py_parse_auxpow, METH_VARARGS,
     "Offsets and branches of a well-formed AuxPoW encoding, or None (see the comment above)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "core._hashes", "Native double SHA-256 and Merkle branches (OpenSSL).", -1, methods
};

PyMODINIT_FUNC PyInit__hashes(void)
{
    return PyModule_Create(&module);
}
